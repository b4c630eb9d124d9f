"""kubevents' own telemetry: its metrics, apart from the sinks of Events.

What lives here:

* ``counting``: the bounded Event counters behind ``kubevents.events`` (updated by the
  pipeline thread, one call per Event update; compiled with the hot path);
* ``state``: the observable instruments that read the stages' and the watch's counts;
* ``metrics``: the MeterProvider, its Prometheus and OTLP readers, the sinks'
  instruments, and the wiring of one command (:func:`~kubevents.telemetry.metrics.start_metrics`);
* ``server``: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

What it may import: the model, ``conventions``, ``config``, ``records``, the enrichment
stages' public types, and ``kubevents.sinks`` (for the OTLP options and what a sink
reports); never ``pipeline``, ``running``, ``app`` or the source (they are read through
protocols), and nothing in ``kubevents.sinks`` imports this package. Importing the
package itself imports no OpenTelemetry module: ``pipeline`` imports ``counting`` on every
start, and the SDK is loaded only when a command wants metrics.
"""
