"""kubevents' OTLP metric exporter: the SDK's ``MetricExporter`` interface, without protobuf or grpcio.

Shape::

    PeriodicExportingMetricReader (the SDK: collects every metrics.otlp_interval_s)
      └─ OtlpMetricExporter.export(MetricsData)
           ├─ encode_metrics_bytes (otlp_metrics_encode.py: the request's bytes)
           └─ a transport: one request, its answer's bytes, or ExportFailed
                ├─ HttpMetricsTransport  POST <url> application/x-protobuf, on urllib3
                └─ GrpcMetricsTransport  MetricsService/Export, on sinks/grpc_unary.py (h2)

Why not the SDK's OTLP exporters: they import protobuf (3.7 MiB at rest) and,
for gRPC, grpcio (14.4 MiB), for a request of a few kilobytes a minute
(docs/performance.md, "At rest"). urllib3 is loaded anyway: kubevents'
Kubernetes client runs on it; and the ``otlp`` logs sink's own gRPC client
(``sinks/grpc_unary.py``) carries the gRPC calls.

One attempt per export, no retry: the metrics are cumulative, so the next
export carries the totals again and a failed one loses nothing but the
resolution between the two (docs/metrics.md). A failure is one log line (no
traceback) the first time, then repeats go to DEBUG but for a reminder every
:data:`REMIND_S`; the first export that goes through again says so.
"""

from __future__ import annotations

import gzip
import logging
import threading
import time
from typing import TYPE_CHECKING, Any, Protocol

import urllib3
from opentelemetry.sdk.metrics import (
    Counter,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    MetricExporter,
    MetricExportResult,
    MetricsData,
)
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation

from kubevents import __version__
from kubevents.errors import clip
from kubevents.sinks.http_client import NoAnswer, otlp_http, post
from kubevents.sinks.otlp_options import OtlpOptions
from kubevents.sinks.otlp_response import WireError, http_error_message, partial_success
from kubevents.telemetry.otlp_metrics_encode import (
    MetricsEncodeError,
    data_points,
    encode_metrics_bytes,
)

if TYPE_CHECKING:
    from kubevents.sinks.grpc_unary import UnaryChannel

logger = logging.getLogger(__name__)

EXPORT_METHOD = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export"
USER_AGENT = f"kubevents/{__version__}"
REMIND_S = 600.0
"""While exports keep failing the same way, one reminder at WARNING every 10 minutes."""

CUMULATIVE: dict[type, AggregationTemporality] = {
    kind: AggregationTemporality.CUMULATIVE
    for kind in (
        Counter,
        UpDownCounter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        ObservableGauge,
    )
}
"""Every instrument cumulative: what the SDK's OTLP exporters prefer by default, and what
makes a failed export lose nothing (the next one carries the totals)."""


class ExportFailed(Exception):
    """One export request that did not succeed: ``kind`` is what failed (``HTTP 503``,
    ``UNAVAILABLE``, ``connection``, ``timeout``, ``TLS``), ``detail`` the server's one-line message."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


class MetricsTransport(Protocol):
    """One OTLP metrics request: its serialized body in, the answer's body out."""

    endpoint: str

    def send(self, request: bytes, *, timeout_s: float) -> bytes:
        """Raises: ExportFailed: any answer but success, or none."""
        ...

    def close(self) -> None: ...


class HttpMetricsTransport:
    """``POST`` of one ``ExportMetricsServiceRequest`` on a one-connection urllib3 pool
    (``sinks/http_client.py``, which the ``otlp+http`` and ``loki`` sinks share)."""

    def __init__(self, options: OtlpOptions) -> None:
        self.endpoint = options.display
        self._url = options.url
        self._gzip = options.compression == "gzip"
        self._headers, self._pool = otlp_http(options, USER_AGENT)

    def send(self, request: bytes, *, timeout_s: float) -> bytes:
        body = gzip.compress(request, compresslevel=5) if self._gzip else request
        try:
            answer = post(self._pool, self._url, body, headers=self._headers, timeout_s=timeout_s)
        except NoAnswer as e:
            tls = isinstance(e.__cause__, urllib3.exceptions.SSLError)
            raise ExportFailed("TLS" if tls else e.failure.kind, e.failure.detail) from None
        if 200 <= answer.status < 300:
            return answer.data
        message = http_error_message(answer.headers.get("Content-Type", ""), answer.data)
        raise ExportFailed(f"HTTP {answer.status}", clip(message))

    def close(self) -> None:
        self._pool.clear()


class GrpcMetricsTransport:
    """``MetricsService/Export`` on one long-lived HTTP/2 connection (``sinks/grpc_unary.py``:
    TLS, the CA bundle, the client certificate and gzip as the options say)."""

    def __init__(self, options: OtlpOptions) -> None:
        # Imported here: h2 costs 4.5 MiB, which the OTLP/HTTP export does not need.
        from kubevents.sinks.grpc_unary import UnaryChannel

        self.endpoint = options.display
        self._metadata = options.headers
        self._channel: UnaryChannel = UnaryChannel(options, user_agent=USER_AGENT)

    def send(self, request: bytes, *, timeout_s: float) -> bytes:
        from kubevents.sinks.grpc_unary import GrpcStatusError

        try:
            return self._channel.call(
                EXPORT_METHOD, request, timeout_s=timeout_s, metadata=self._metadata
            )
        except GrpcStatusError as e:
            raise ExportFailed(e.code, clip(e.details or "")) from None

    def close(self) -> None:
        self._channel.close()


class _FailureLog:
    """What the log says of failed exports: the first failure, a change of kind and a
    reminder every :data:`REMIND_S` at WARNING, the rest at DEBUG; the recovery at INFO."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.failed = 0
        """Exports failed in a row."""
        self._kind = ""
        self._logged = 0.0

    def failure(self, kind: str, detail: str) -> None:
        self.failed += 1
        now = time.monotonic()
        loud = kind != self._kind or now - self._logged >= REMIND_S
        if loud:
            self._kind, self._logged = kind, now
        logger.log(
            logging.WARNING if loud else logging.DEBUG,
            "metrics: OTLP export to %s failed (%s)%s%s; the next export sends the totals again",
            self.endpoint,
            kind,
            f": {detail}" if detail else "",
            f" ({self.failed} in a row)" if self.failed > 1 else "",
        )

    def success(self) -> None:
        if self.failed:
            logger.info(
                "metrics: OTLP export to %s goes through again (after %d failed)",
                self.endpoint,
                self.failed,
            )
        self.failed, self._kind = 0, ""


class OtlpMetricExporter(MetricExporter):
    """Cumulative OTLP metrics through ``transport``, one attempt per export."""

    def __init__(self, transport: MetricsTransport, *, timeout_s: float) -> None:
        super().__init__(
            preferred_temporality=dict(CUMULATIVE),
            preferred_aggregation={Histogram: ExplicitBucketHistogramAggregation()},
        )
        self._transport = transport
        self._timeout_s = timeout_s
        self._log = _FailureLog(transport.endpoint)
        self._rejected_logged = 0.0
        self._closed = threading.Event()

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        if self._closed.is_set():
            return MetricExportResult.FAILURE
        try:
            request = encode_metrics_bytes(metrics_data)
        except MetricsEncodeError as e:
            self._log.failure("encoding", str(e))
            return MetricExportResult.FAILURE
        timeout_s = max(min(self._timeout_s, timeout_millis / 1000), 0.001)
        try:
            answer = self._transport.send(request, timeout_s=timeout_s)
        except ExportFailed as e:
            self._log.failure(e.kind, e.detail)
            return MetricExportResult.FAILURE
        self._log.success()
        self._partial(answer, metrics_data)
        return MetricExportResult.SUCCESS

    def _partial(self, answer: bytes, metrics_data: MetricsData) -> None:
        """Log a partial success (what the server refused stays refused: sending the
        same points again would not change its mind), at most once per :data:`REMIND_S`."""
        try:
            rejected, message = partial_success(answer)
        except WireError:
            return  # a success is a success, whatever the body
        if not rejected and not message:
            return
        now = time.monotonic()
        loud = not self._rejected_logged or now - self._rejected_logged >= REMIND_S
        if loud:
            self._rejected_logged = now
        logger.log(
            logging.WARNING if loud else logging.DEBUG,
            "metrics: %s rejected %d of %d data points: %s",
            self._transport.endpoint,
            rejected,
            data_points(metrics_data),
            clip(message) or "(no message)",
        )

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True  # nothing is held between exports

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._transport.close()


def metric_transport(options: OtlpOptions, transport: str) -> MetricsTransport:
    """The transport for ``options``: ``grpc`` or ``http``."""
    if transport == "grpc":
        return GrpcMetricsTransport(options)
    return HttpMetricsTransport(options)
