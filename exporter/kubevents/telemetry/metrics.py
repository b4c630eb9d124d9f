"""kubevents' metrics: one OpenTelemetry instrumentation, read by Prometheus and (optionally) OTLP.

Shape::

    MeterProvider (explicit, never the global one)
      ├─ PrometheusMetricReader ──► own CollectorRegistry ──► MetricsServer: /metrics
      │                                                        (+ /healthz, /readyz)
      └─ PeriodicExportingMetricReader ──► OtlpMetricExporter (cumulative), optional
                                           (otlp_metrics.py: no protobuf, no grpcio)

Names follow ``docs/metrics.md`` (the contract, tested against a real
scrape): OTel names ``kubevents.<subsystem>.<name>`` with a UCUM unit become
``kubevents_<subsystem>_<name>[_<unit>][_total]`` in Prometheus, and label
names are attribute names with dots as underscores.

The hot path makes no metrics call. Counts live in plain objects that the
pipeline and the sinks already keep (``EventCounts``, ``PipelineStats``,
``DeliveryStats``); observable instruments read them when a reader collects
(a scrape, or an OTLP export). Only the two histograms are recorded as
things happen, once per request, not per record.

This module imports neither the pipeline nor the enrichment stages: it
takes callables that return their state (see :class:`EventCountsView` and
:class:`PipelineStatsView`), so the layering stays one-way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider, ObservableCounter
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from kubevents import __version__
from kubevents import conventions as c
from kubevents.conventions import MetricLabel as L
from kubevents.errors import ConfigError
from kubevents.records import ResourceInfo
from kubevents.settings import Settings
from kubevents.sinks.base import DeliverySnapshot, ObservableSink
from kubevents.sinks.otlp_options import OtlpOptions, resolve_otlp
from kubevents.sinks.transport import RequestReport
from kubevents.telemetry.otlp_metrics import OtlpMetricExporter, metric_transport
from kubevents.telemetry.plan import MetricsPlan, OtlpTarget
from kubevents.telemetry.server import MetricsServer, Probes
from kubevents.telemetry.state import (
    AnomaliesView,
    CorrelatorView,
    CountsView,
    PatternsView,
    RunView,
    WatchStatsView,
    observe_detectors,
    observe_run,
)

logger = logging.getLogger(__name__)

DURATION_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Request latency buckets: a local Collector answers in milliseconds, a far or struggling
backend in seconds; 30 s is past any sane request timeout."""
BATCH_BUCKETS = (1, 8, 32, 64, 128, 256, 512, 1024, 2048)
"""Batch size buckets: up to the default batch size (512) and beyond for larger settings."""
METRICS_SHUTDOWN_S = 5.0
"""Longest the final OTLP metrics export may take at exit (after the sinks' flush)."""

EVENTS_CARDINALITY_LIMIT = 10_000
"""Above ``EventCounts``' own series cap (5 000), so the SDK never folds a series itself."""


class EventCountsView(Protocol):
    """What the metrics layer reads from ``telemetry.counting.EventCounts``."""

    def snapshot(self) -> list[tuple[dict[str, str], int]]: ...

    def unclassified_snapshot(self) -> list[tuple[dict[str, str], int]]: ...

    @property
    def value_overflows(self) -> int: ...

    @property
    def series_overflows(self) -> int: ...


class PipelineStatsView(Protocol):
    """What the metrics layer reads from ``pipeline.PipelineStats``."""

    received: int
    records: int
    occurrences: int
    unchanged: int
    deleted: int
    repaired: dict[str, int]


class Telemetry:
    """The MeterProvider, its readers and kubevents' instruments."""

    def __init__(
        self,
        resource: ResourceInfo,
        *,
        otlp_reader: MetricReader | None = None,
    ) -> None:
        """
        Args:
            resource: the process's Resource (no namespace: metrics carry it as a label).
            otlp_reader: an extra reader, e.g. :func:`otlp_metric_reader`.
        """
        self.registry = CollectorRegistry(auto_describe=True)
        self._prometheus = PrometheusMetricReader(
            registry=self.registry,
            scope_info_enabled=False,  # otel_scope_* labels on every series add nothing here
            cardinality_limits={ObservableCounter: EVENTS_CARDINALITY_LIMIT},
        )
        readers: list[MetricReader] = [self._prometheus]
        if otlp_reader is not None:
            readers.append(otlp_reader)
        self.provider = MeterProvider(
            metric_readers=readers,
            resource=Resource(dict(resource.attributes(""))),
            shutdown_on_exit=False,
        )
        self.meter = self.provider.get_meter("kubevents", __version__)
        self._sinks: list[ObservableSink] = []
        self._lock = threading.Lock()
        self._durations = self.meter.create_histogram(
            c.MetricName.SINK_EXPORT_DURATION,
            unit="s",
            description="Duration of one export request, by sink and result.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )
        self._batch_sizes = self.meter.create_histogram(
            c.MetricName.SINK_BATCH_SIZE,
            unit="{record}",
            description="Records per export request, by sink.",
            explicit_bucket_boundaries_advisory=BATCH_BUCKETS,
        )
        self._build_info()
        self._sink_instruments()

    # -- what is observed --------------------------------------------------------------

    def _build_info(self) -> None:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            yield Observation(1, {L.VERSION: __version__})

        self.meter.create_observable_gauge(
            c.MetricName.BUILD_INFO,
            callbacks=[observe],
            description="Always 1; the version of kubevents as a label.",
        )

    def observe_events(self, counts: Callable[[], EventCountsView | None]) -> None:
        """Export ``kubevents.events`` (and its overflow counter) from the bounded counters."""

        def events(_: CallbackOptions) -> Iterable[Observation]:
            current = counts()
            if current is None:
                return
            for labels, count in current.snapshot():
                yield Observation(count, labels)

        def overflows(_: CallbackOptions) -> Iterable[Observation]:
            current = counts()
            if current is None:
                return
            yield Observation(current.value_overflows, {L.OVERFLOW_KIND: "value"})
            yield Observation(current.series_overflows, {L.OVERFLOW_KIND: "series"})

        self.meter.create_observable_counter(
            c.MetricName.EVENTS,
            callbacks=[events],
            unit="{event}",
            description=(
                "Event occurrences by namespace, kind, reason, type, category and severity "
                "(bounded: past a cap a label value is __other__)."
            ),
        )

        def unclassified(_: CallbackOptions) -> Iterable[Observation]:
            current = counts()
            if current is None:
                return
            for labels, count in current.unclassified_snapshot():
                yield Observation(count, labels)

        self.meter.create_observable_counter(
            c.MetricName.EVENTS_UNCLASSIFIED,
            callbacks=[unclassified],
            unit="{event}",
            description=(
                "Event occurrences no rule classified, by reporting controller and type "
                "(bounded: past 50 controllers the value is __other__)."
            ),
        )
        self.meter.create_observable_counter(
            c.MetricName.EVENTS_OVERFLOW,
            callbacks=[overflows],
            unit="{event}",
            description="Occurrences counted under __other__: a label was full (value) or the series cap was reached (series).",
        )

    def observe_pipeline(self, stats: Callable[[], PipelineStatsView | None]) -> None:
        """Export the pipeline's counters (``Pipeline.stats``; None while there is none)."""

        def updates(_: CallbackOptions) -> Iterable[Observation]:
            current = stats()
            if current is None:
                return
            yield Observation(current.received - current.unchanged, {L.RESULT: "emitted"})
            yield Observation(current.unchanged, {L.RESULT: "unchanged"})
            yield Observation(current.deleted, {L.RESULT: "deleted"})

        def records(_: CallbackOptions) -> Iterable[Observation]:
            current = stats()
            if current is not None:
                yield Observation(current.records)

        def occurrences(_: CallbackOptions) -> Iterable[Observation]:
            current = stats()
            if current is not None:
                yield Observation(current.occurrences)

        self.meter.create_observable_counter(
            c.MetricName.PIPELINE_UPDATES,
            callbacks=[updates],
            unit="{update}",
            description="Event updates processed: emitted (added occurrences), unchanged (skipped), deleted (never emitted).",
        )
        self.meter.create_observable_counter(
            c.MetricName.PIPELINE_RECORDS,
            callbacks=[records],
            unit="{record}",
            description="Log records handed to the sinks (Events, incidents and patterns).",
        )

        def repaired(_: CallbackOptions) -> Iterable[Observation]:
            current = stats()
            if current is not None:
                for field, n in current.repaired.items():
                    yield Observation(n, {L.FIELD: field})

        self.meter.create_observable_counter(
            c.MetricName.PIPELINE_REPAIRED,
            callbacks=[repaired],
            unit="{update}",
            description="Event updates with a malformed field repaired, by field: count (not a count: taken as 1), object (no involved object), type (not Normal or Warning).",
        )
        self.meter.create_observable_counter(
            c.MetricName.PIPELINE_OCCURRENCES,
            callbacks=[occurrences],
            unit="{occurrence}",
            description="Event occurrences the emitted records stand for.",
        )

    def observe_detectors(
        self,
        *,
        patterns: PatternsView | None = None,
        anomalies: AnomaliesView | None = None,
        correlator: CorrelatorView | None = None,
        counts: CountsView | None = None,
    ) -> None:
        """Export patterns, anomalies, incidents and state sizes (``telemetry/state.py``)."""
        observe_detectors(
            self.meter, patterns=patterns, anomalies=anomalies, correlator=correlator, counts=counts
        )

    def observe_run(
        self,
        run: Callable[[], RunView | None],
        watches: Mapping[str, Callable[[], Sequence[WatchStatsView]]],
    ) -> None:
        """Export the watch, leadership, checkpoint and queue metrics of ``kubevents run``."""
        observe_run(self.meter, run, watches)

    def observe_sinks(self, sinks: Iterable[object]) -> None:
        """Export the delivery metrics of every sink among ``sinks`` that reports them
        (an :class:`~kubevents.sinks.base.ObservableSink`: the network sinks)."""
        for sink in sinks:
            if isinstance(sink, ObservableSink):
                with self._lock:
                    self._sinks.append(sink)
                sink.on_request = self._request_observer(sink.name)

    def _request_observer(self, name: str) -> Callable[[RequestReport], None]:
        def observe(report: RequestReport) -> None:
            self._durations.record(report.seconds, {L.SINK: name, L.RESULT: report.result})
            self._batch_sizes.record(report.records, {L.SINK: name})

        return observe

    def _each_sink(self) -> list[tuple[str, DeliverySnapshot]]:
        with self._lock:
            sinks = list(self._sinks)
        return [(sink.name, sink.snapshot()) for sink in sinks]

    def _sink_instruments(self) -> None:
        Read = Callable[[DeliverySnapshot], Any]

        def counter(read: Read) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                for name, snapshot in self._each_sink():
                    yield Observation(read(snapshot), {L.SINK: name})

            return observe

        def by_reason(read: Read) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                for name, snapshot in self._each_sink():
                    table: Mapping[str, int] = read(snapshot)
                    for reason, count in sorted(table.items()):
                        yield Observation(count, {L.SINK: name, L.REASON: reason})

            return observe

        def gauge(read: Read) -> Callable[[CallbackOptions], Iterable[Observation]]:
            def observe(_: CallbackOptions) -> Iterable[Observation]:
                for name, snapshot in self._each_sink():
                    value = read(snapshot)
                    if value is not None:
                        yield Observation(value, {L.SINK: name})

            return observe

        m = self.meter
        for name, read, unit, description in (
            (
                c.MetricName.SINK_EXPORTED,
                lambda s: s.exported,
                "{record}",
                "Records the backend accepted, by sink.",
            ),
            (
                c.MetricName.SINK_SENT,
                lambda s: s.bytes_sent,
                "By",
                "Request bytes sent (after compression), by sink.",
            ),
            (
                c.MetricName.SINK_TRUNCATED,
                lambda s: s.truncated,
                "{record}",
                "Records whose body or attributes were cut to the limits (kubevents.truncated=true), by sink.",
            ),
        ):
            m.create_observable_counter(
                name, callbacks=[counter(read)], unit=unit, description=description
            )
        for name, read, description in (
            (
                c.MetricName.SINK_FAILED,
                lambda s: s.failed,
                "Records in failed requests, by sink and reason (a batch counts at each failed attempt).",
            ),
            (
                c.MetricName.SINK_RETRIED,
                lambda s: s.retried,
                "Records scheduled for another attempt after a retryable failure, by sink and reason.",
            ),
            (
                c.MetricName.SINK_DROPPED,
                lambda s: s.dropped,
                "Records given up on purpose, by sink and reason (a final failure, rejected, queue_full, retry_deadline, shutdown).",
            ),
        ):
            m.create_observable_counter(
                name, callbacks=[by_reason(read)], unit="{record}", description=description
            )
        for name, read, unit, description in (
            (
                c.MetricName.SINK_QUEUE_SIZE,
                lambda s: s.queue_size,
                "{record}",
                "Records waiting for delivery (the batch in flight included), by sink.",
            ),
            (
                c.MetricName.SINK_QUEUE_CAPACITY,
                lambda s: s.queue_capacity,
                "{record}",
                "Records the in-memory queue holds, by sink (absent with a spool).",
            ),
            (
                c.MetricName.SINK_SPOOL_SIZE,
                lambda s: s.spool_bytes,
                "By",
                "Bytes in the on-disk spool, by sink (with --spool).",
            ),
            (
                c.MetricName.SINK_SPOOL_CAPACITY,
                lambda s: s.spool_capacity,
                "By",
                "The spool's size cap, by sink (with --spool).",
            ),
        ):
            m.create_observable_gauge(
                name, callbacks=[gauge(read)], unit=unit, description=description
            )

    # -- exposition ----------------------------------------------------------------------

    def exposition(self, accept: str = "") -> tuple[bytes, str]:
        """The ``/metrics`` body and its Content-Type (text format unless OpenMetrics is asked for)."""
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type

    def shutdown(self, timeout_s: float = METRICS_SHUTDOWN_S) -> None:
        """Final OTLP export (if any, within ``timeout_s``) and release the readers."""
        try:
            self.provider.shutdown(timeout_millis=max(int(timeout_s * 1000), 1))
        except Exception:  # never let metrics break an exit
            logger.debug("metrics: shutdown failed", exc_info=True)


def otlp_metric_reader(
    options: OtlpOptions, *, transport: str, interval_s: float
) -> PeriodicExportingMetricReader:
    """A periodic reader pushing cumulative metrics with kubevents' own OTLP exporter
    (``telemetry/otlp_metrics.py``: neither protobuf nor grpcio)."""
    exporter = OtlpMetricExporter(metric_transport(options, transport), timeout_s=options.timeout_s)
    return PeriodicExportingMetricReader(
        exporter,
        export_interval_millis=interval_s * 1000,
        cardinality_limits={ObservableCounter: EVENTS_CARDINALITY_LIMIT},
    )


# ---------------------------------------------------------------------------
# Wiring: what a command starts
# ---------------------------------------------------------------------------


def otlp_reader_for(settings: Settings, target: OtlpTarget | None) -> MetricReader | None:
    """The OTLP metrics reader to ``target`` (the first OTLP sink's endpoint), if any."""
    if target is None:
        return None
    options = resolve_otlp(
        transport=target.transport,
        signal="metrics",
        spec_endpoint=target.endpoint,
        settings=settings.otlp,
    )
    return otlp_metric_reader(
        options, transport=target.transport, interval_s=settings.metrics.otlp_interval_s
    )


def metrics_shutdown_s(settings: Settings, plan: MetricsPlan) -> float:
    """How long the final OTLP metrics export may take at exit: :data:`METRICS_SHUTDOWN_S`,
    or less with a shorter ``delivery.flush_timeout_s``; 0 without an OTLP export."""
    if plan.otlp is None:
        return 0.0
    return min(METRICS_SHUTDOWN_S, settings.delivery.flush_timeout_s)


class MetricsRuntime:
    """The telemetry of one command, and its HTTP server when there is one."""

    def __init__(
        self,
        telemetry: Telemetry,
        server: MetricsServer | None,
        shutdown_s: float = METRICS_SHUTDOWN_S,
    ) -> None:
        self.telemetry = telemetry
        self.server = server
        self.shutdown_s = shutdown_s
        """Longest the final OTLP metrics export may take (:func:`metrics_shutdown_s`)."""

    def hold(self, seconds: float, stop: threading.Event | None = None) -> None:
        """Keep serving ``/metrics`` for ``seconds`` (``--hold``), or until ``stop`` is set."""
        if self.server is None or seconds <= 0:
            return
        logger.info("holding /metrics at %s for %.0fs", self.server.url, seconds)
        (stop or threading.Event()).wait(seconds)

    def close(self, within_s: float | None = None) -> None:
        """Stop serving and make the final OTLP export, within ``within_s`` (what is left of
        the flush timeout after the sinks' flush: one timeout for all) and ``shutdown_s``."""
        if self.server is not None:
            self.server.close()
        limit = self.shutdown_s if within_s is None else min(self.shutdown_s, within_s)
        self.telemetry.shutdown(max(limit, 0.0))


def start_metrics(
    settings: Settings,
    plan: MetricsPlan,
    resource: ResourceInfo,
    sinks: Iterable[object],
    *,
    probes: Probes | None = None,
) -> MetricsRuntime:
    """Telemetry for a command, as :func:`~kubevents.telemetry.plan.metrics_plan` decided:
    served on ``plan.port`` (0: any free port), pushed over OTLP to ``plan.otlp``.

    Raises:
        ConfigError: the port cannot be bound, or the OTLP options are invalid.
    """
    reader = otlp_reader_for(settings, plan.otlp)
    telemetry = Telemetry(resource, otlp_reader=reader)
    telemetry.observe_sinks(sinks)
    server = None
    port = plan.port
    if port is not None:
        try:
            server = MetricsServer(
                telemetry.exposition, host=settings.metrics.host, port=port, probes=probes
            )
        except OSError as e:
            telemetry.shutdown()
            raise ConfigError(
                f"metrics -> port: cannot listen on {settings.metrics.host}:{port}: {e.strerror or e}"
            ) from e
    return MetricsRuntime(telemetry, server, metrics_shutdown_s(settings, plan))
