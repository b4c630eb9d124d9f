"""kubevents' own telemetry: its metrics, apart from the sinks of Events.

What lives here:

* ``plan``: whether a command wants metrics (a ``/metrics`` port, an OTLP sink to push
  to), decided once, before anything of the OpenTelemetry SDK is imported;
* ``counting``: the bounded Event counters behind ``kubevents.events`` (updated by the
  pipeline thread, one call per Event update; compiled with the hot path);
* ``state``: the observable instruments that read the detectors' and the watch's counts;
* ``metrics``: the MeterProvider, its Prometheus and OTLP readers, the pipeline's and the
  sinks' instruments, and what one command starts (:func:`~kubevents.telemetry.metrics.start_metrics`);
* ``server``: ``/metrics``, ``/healthz`` and ``/readyz`` on one port, given an exposition
  callable.

What it may import: the model, ``conventions``, ``config``, ``records``, the enrichment
stages' types, and ``kubevents.sinks`` (the OTLP options, and
:class:`~kubevents.sinks.base.ObservableSink`, through which a sink reports its
delivery). Never ``pipeline``, ``running``, ``app`` or ``source``: they are read through
protocols. Nothing in ``kubevents.sinks`` imports this package (``.importlinter``).
Importing the package imports no OpenTelemetry module: ``pipeline`` imports ``counting``
on every start, and the SDK is loaded only when :mod:`plan` says metrics are wanted.

Naming. The stages count by typed keys (:class:`~kubevents.model.CategorySeverity`,
:class:`~kubevents.enrich.patterns.RateKey`, the pattern and incident state enums) and
name no metric label; the modules here turn them into the names of
:class:`~kubevents.conventions.MetricName` and :class:`~kubevents.conventions.MetricLabel`,
which ``docs/metrics.md`` documents.

Sharing with the scrape thread: one mechanism. The pipeline thread writes the stages'
state and takes no lock; a scrape (or an OTLP export) reads it on its own thread, only

* plain ``int`` attributes, read whole, and
* containers copied in **one builtin call** that runs no Python code and allocates no
  object the garbage collector tracks while it iterates: ``list(d)``,
  ``list(d.values())``, ``d.copy()`` and ``dict(d)`` of a plain dict. Under the GIL no
  other thread runs during such a call, so the copy is of one moment; the reader then
  works on the copy. (An ``items()`` copy builds a tuple per entry, which can start a
  collection and, through a finaliser, a thread switch half-way: values carry their key
  instead, as in ``counting._Series``.) Where one change takes several steps, the
  pipeline thread makes the one a reader can see a single store (a pattern count is
  deleted, never left at 0).

Why not a lock: the Event counters change on every Event and a scrape comes every 15 s;
without their lock ``EventCounts.record`` costs 0.69x as much in pure Python and 0.87x
compiled (medians of 9 alternated runs, 20 000 records over 2 000 series), and the lock
bought nothing the copy does not give. The copy was already how the
correlator's open incidents and the watch's counts were read, so it is now the only way.
A sink is different: it has a worker thread of its own, so its
:meth:`~kubevents.sinks.base.ObservableSink.snapshot` reads its queue under the lock that
worker needs anyway; telemetry sees only the snapshot.
"""
