"""The fake OTLP receiver, driven by the real OpenTelemetry SDK exporters (gRPC and HTTP).

If the fake's idea of OTLP were wrong (framing, status mapping, retry hints),
the SDK's own exporters would disagree here. Where the SDK hides an answer
(partial success, the bodies of failures), a plain grpc stub or ``requests``
reads it instead.

One test waits out the SDK's own first backoff (about 1 s, UNAVAILABLE
without RetryInfo); every other retry is told to come back in 50 ms.
"""

from __future__ import annotations

import functools
import gzip
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import grpc
import pytest
import requests
from google.rpc import error_details_pb2, status_pb2
from opentelemetry._logs import LogRecord, SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import (
    InMemoryLogRecordExporter,
    LogRecordExporter,
    LogRecordExportResult,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricExportResult
from opentelemetry.sdk.resources import Resource

from tests.fakes.otlp_receiver import OtlpReceiver, Transport

RESOURCE = {"service.name": "kubevents", "service.instance.id": "test-1", "k8s.cluster.name": "c1"}
EVENT_TIME_NS = 1_795_255_201_000_000_000
FAST_RETRY = 0.05  # seconds: RetryInfo / Retry-After that keep retries quick


def log_exporter(
    receiver: OtlpReceiver, transport: Transport, *, timeout: float = 5.0
) -> LogRecordExporter:
    """The SDK's OTLP log exporter for ``transport``, pointed at the receiver."""
    if transport == "grpc":
        return GrpcLogExporter(
            endpoint=receiver.grpc_endpoint,
            insecure=True,
            headers={"x-tenant": "shop"},
            timeout=timeout,
        )
    return HttpLogExporter(
        endpoint=receiver.http_endpoint("logs"),
        headers={"x-tenant": "shop"},
        timeout=timeout,
        compression=Compression.Gzip,
    )


def emit_events(exporter: LogRecordExporter, count: int = 1) -> None:
    """Emit ``count`` Kubernetes-event-like records through a real LoggerProvider."""
    provider = LoggerProvider(resource=Resource.create(RESOURCE))
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("kubevents", "0.1.0")
    for n in range(count):
        logger.emit(
            LogRecord(
                timestamp=EVENT_TIME_NS + n,
                observed_timestamp=EVENT_TIME_NS + 10**9,
                severity_number=SeverityNumber.WARN,
                severity_text="Warning",
                body=f"Back-off pulling image {n}",
                event_name="k8s.event",
                attributes={
                    "k8s.event.reason": "BackOff",
                    "k8s.event.count": 3,
                    "kubevents.incident": True,
                    "kubevents.score": 0.5,
                    "kubevents.related": ["shop/Pod/web-1", "shop/Pod/web-2"],
                },
            )
        )
    provider.shutdown()


def sdk_records(count: int = 1) -> Sequence[ReadableLogRecord]:
    """SDK log records, for calling ``exporter.export`` and reading its result."""
    memory = InMemoryLogRecordExporter()
    emit_events(memory, count)
    return memory.get_finished_logs()


@pytest.fixture
def exporters() -> Iterator[Callable[..., Any]]:
    """Builds exporters and shuts them all down after the test."""
    made: list[Any] = []

    def make(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        made.append(factory(*args, **kwargs))
        return made[-1]

    yield make
    for exporter in made:
        exporter.shutdown()


def raw_request() -> logs_service_pb2.ExportLogsServiceRequest:
    request = logs_service_pb2.ExportLogsServiceRequest()
    request.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "raw"
    return request


def grpc_export(receiver: OtlpReceiver) -> tuple[Any, grpc.Call]:
    """One raw gRPC Export of one record: (response, call), or raises RpcError."""
    with grpc.insecure_channel(receiver.grpc_endpoint) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        return stub.Export.with_call(raw_request(), timeout=2.0)  # type: ignore[no-any-return]


def http_export(
    receiver: OtlpReceiver, body: bytes | None = None, **headers: str
) -> requests.Response:
    if body is None:
        body = raw_request().SerializeToString()
    headers = {"Content-Type": "application/x-protobuf", **headers}
    return requests.post(receiver.http_endpoint("logs"), data=body, headers=headers, timeout=2)


# -- records arrive decoded ----------------------------------------------------------------


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_sdk_records_arrive_decoded(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any], transport: Transport
) -> None:
    emit_events(exporters(log_exporter, otlp_receiver, transport), count=2)

    records = otlp_receiver.wait_for_records(2)
    resource, scope, record = records[0]
    assert {k: resource[k] for k in RESOURCE} == RESOURCE
    assert (scope.name, scope.version) == ("kubevents", "0.1.0")
    assert records[0].body == "Back-off pulling image 0"
    assert records[0].attributes == {
        "k8s.event.reason": "BackOff",
        "k8s.event.count": 3,
        "kubevents.incident": True,
        "kubevents.score": 0.5,
        "kubevents.related": ["shop/Pod/web-1", "shop/Pod/web-2"],
    }
    assert (record.time_unix_nano, record.observed_time_unix_nano) == (
        EVENT_TIME_NS,
        EVENT_TIME_NS + 10**9,
    )
    assert (record.severity_number, record.severity_text, record.event_name) == (
        SeverityNumber.WARN.value,
        "Warning",
        "k8s.event",
    )
    assert [r.record.time_unix_nano for r in records] == [EVENT_TIME_NS, EVENT_TIME_NS + 1]
    export = otlp_receiver.exports[0]
    assert (export.signal, export.transport, export.outcome) == ("logs", transport, "ok")
    assert export.headers["x-tenant"] == "shop"
    assert "OTel-OTLP-Exporter-Python" in export.headers["user-agent"]
    assert otlp_receiver.outcomes(transport=transport) == {"ok": 2}


def test_http_gzip_body_is_decoded(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    emit_events(exporters(log_exporter, otlp_receiver, "http"))

    [record] = otlp_receiver.wait_for_records(1)
    headers = otlp_receiver.exports[0].headers
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Content-Type"] == "application/x-protobuf"
    assert record.body == "Back-off pulling image 0"


def test_metrics_arrive_over_both_transports(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(resource=Resource.create(RESOURCE), metric_readers=[reader])
    meter.get_meter("kubevents").create_counter("kubevents.events").add(3, {"reason": "BackOff"})
    data = reader.get_metrics_data()
    grpc_exporter = exporters(
        GrpcMetricExporter, endpoint=otlp_receiver.grpc_endpoint, insecure=True
    )
    http_exporter = exporters(HttpMetricExporter, endpoint=otlp_receiver.http_endpoint("metrics"))

    assert grpc_exporter.export(data) == MetricExportResult.SUCCESS
    assert http_exporter.export(data) == MetricExportResult.SUCCESS

    metrics = otlp_receiver.metrics()
    assert [m.metric.name for m in metrics] == ["kubevents.events", "kubevents.events"]
    assert [e.transport for e in otlp_receiver.exports] == ["grpc", "http"]
    assert metrics[0].metric.sum.data_points[0].as_int == 3
    assert otlp_receiver.records() == []


# -- gRPC faults ----------------------------------------------------------------------------


def test_grpc_unavailable_then_ok_is_retried_and_arrives_once(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.UNAVAILABLE)  # no RetryInfo: the SDK's ~1 s backoff
    exporter = exporters(log_exporter, otlp_receiver, "grpc")

    assert exporter.export(sdk_records()) == LogRecordExportResult.SUCCESS

    assert [e.outcome for e in otlp_receiver.exports] == ["unavailable", "ok"]
    assert len(otlp_receiver.records()) == 1


def test_grpc_resource_exhausted_with_retry_info_is_retried(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, times=2, retry_after=FAST_RETRY)
    exporter = exporters(log_exporter, otlp_receiver, "grpc")

    assert exporter.export(sdk_records()) == LogRecordExportResult.SUCCESS

    assert otlp_receiver.outcomes() == {"resource_exhausted": 2, "ok": 1}
    assert len(otlp_receiver.records()) == 1


def test_grpc_invalid_argument_is_not_retried(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.INVALID_ARGUMENT, times=None)
    exporter = exporters(log_exporter, otlp_receiver, "grpc")

    assert exporter.export(sdk_records()) == LogRecordExportResult.FAILURE

    assert otlp_receiver.outcomes() == {"invalid_argument": 1}
    assert otlp_receiver.records() == []


def test_grpc_failure_carries_retry_info_and_status_details(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.faults.fail(
        grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=1.5, message="slow down"
    )

    with pytest.raises(grpc.RpcError) as failure:
        grpc_export(otlp_receiver)

    error: Any = failure.value
    assert (error.code(), error.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")
    trailers = dict(error.trailing_metadata())
    retry = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
    assert (retry.retry_delay.seconds, retry.retry_delay.nanos) == (1, 500_000_000)
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert (status.code, status.message) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED.value[0],
        "slow down",
    )
    assert status.details[0].Is(error_details_pb2.RetryInfo.DESCRIPTOR)


def test_grpc_partial_success_is_answered_and_the_data_kept(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.faults.partial_success(rejected=1, message="1 record too large")

    response, _ = grpc_export(otlp_receiver)

    partial = response.partial_success
    assert (partial.rejected_log_records, partial.error_message) == (1, "1 record too large")
    assert otlp_receiver.outcomes() == {"partial": 1}
    assert [r.body for r in otlp_receiver.records()] == ["raw"]


# -- HTTP faults ----------------------------------------------------------------------------


def test_http_503_with_retry_after_is_retried(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.UNAVAILABLE, retry_after=FAST_RETRY)
    exporter = exporters(log_exporter, otlp_receiver, "http")

    assert exporter.export(sdk_records()) == LogRecordExportResult.SUCCESS

    assert [e.outcome for e in otlp_receiver.exports] == ["unavailable", "ok"]
    assert len(otlp_receiver.records()) == 1


def test_http_400_is_not_retried(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.INVALID_ARGUMENT, times=None)
    exporter = exporters(log_exporter, otlp_receiver, "http")

    assert exporter.export(sdk_records()) == LogRecordExportResult.FAILURE

    assert otlp_receiver.outcomes() == {"invalid_argument": 1}


@pytest.mark.parametrize(
    ("code", "status", "retry_after"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503, "2"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "0.5"),
        (grpc.StatusCode.INVALID_ARGUMENT, 400, None),
    ],
)
def test_http_failures_have_a_status_body_and_retry_after(
    otlp_receiver: OtlpReceiver, code: grpc.StatusCode, status: int, retry_after: str | None
) -> None:
    otlp_receiver.faults.fail(
        code, retry_after=None if retry_after is None else float(retry_after), message="no"
    )

    response = http_export(otlp_receiver)

    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert response.headers.get("Retry-After") == retry_after
    body = status_pb2.Status.FromString(response.content)
    assert (body.code, body.message) == (code.value[0], "no")
    assert len(body.details) == (retry_after is not None)


def test_http_success_and_partial_success_bodies(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.faults.partial_success(rejected=2, message="too old")

    partial, ok = http_export(otlp_receiver), http_export(otlp_receiver)

    assert (partial.status_code, ok.status_code) == (200, 200)
    decode = logs_service_pb2.ExportLogsServiceResponse.FromString
    assert decode(partial.content).partial_success.rejected_log_records == 2
    assert not decode(ok.content).HasField("partial_success")
    assert otlp_receiver.outcomes() == {"partial": 1, "ok": 1}


def test_http_undecodable_body_is_a_recorded_400(otlp_receiver: OtlpReceiver) -> None:
    response = http_export(
        otlp_receiver, gzip.compress(b"\xff\xff not protobuf"), **{"Content-Encoding": "gzip"}
    )

    assert response.status_code == 400
    assert "unable to decode" in status_pb2.Status.FromString(response.content).message
    assert otlp_receiver.outcomes() == {"invalid_argument": 1}


@pytest.mark.parametrize(
    ("path", "headers", "status", "hint"),
    [
        ("/v1/traces", {"Content-Type": "application/x-protobuf"}, 404, "/v1/logs"),
        ("/v1/logs", {"Content-Type": "application/json"}, 415, "application/x-protobuf"),
        (
            "/v1/logs",
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"},
            415,
            "gzip",
        ),
    ],
)
def test_http_requests_it_does_not_serve_say_why(
    otlp_receiver: OtlpReceiver, path: str, headers: dict[str, str], status: int, hint: str
) -> None:
    response = requests.post(otlp_receiver.http_url + path, data=b"{}", headers=headers, timeout=2)

    assert response.status_code == status
    assert hint in response.text
    assert otlp_receiver.exports == []


# -- slow, down, up ---------------------------------------------------------------------------


def test_slow_receiver_times_the_client_out_but_keeps_the_data(
    otlp_receiver: OtlpReceiver, exporters: Callable[..., Any]
) -> None:
    otlp_receiver.delay = 0.2
    exporter = exporters(log_exporter, otlp_receiver, "grpc", timeout=0.1)

    assert exporter.export(sdk_records()) == LogRecordExportResult.FAILURE

    # The receiver answered after the client gave up: a retry would duplicate this record.
    [export] = otlp_receiver.wait_for_calls(1)
    assert export.outcome == "ok"
    assert len(otlp_receiver.records()) == 1


def test_down_refuses_connections_and_up_serves_the_same_ports(
    otlp_receiver: OtlpReceiver,
) -> None:
    grpc_endpoint, http_url = otlp_receiver.grpc_endpoint, otlp_receiver.http_url
    with requests.Session() as session:  # keeps its connection alive between requests
        post = functools.partial(
            session.post,
            otlp_receiver.http_endpoint("logs"),
            data=raw_request().SerializeToString(),
            headers={"Content-Type": "application/x-protobuf"},
            timeout=2,
        )
        assert post().status_code == 200

        otlp_receiver.down()
        with pytest.raises(requests.ConnectionError):  # the idle connection was closed too
            post()
        with pytest.raises(grpc.RpcError) as failure:
            grpc_export(otlp_receiver)
        assert failure.value.code() == grpc.StatusCode.UNAVAILABLE

        otlp_receiver.up()
        assert (otlp_receiver.grpc_endpoint, otlp_receiver.http_url) == (grpc_endpoint, http_url)
        assert grpc_export(otlp_receiver)[1].code() == grpc.StatusCode.OK
        assert post().status_code == 200
    assert otlp_receiver.outcomes() == {"ok": 3}


def test_going_down_aborts_a_call_waiting_on_the_delay(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.delay = 30.0  # longer than the test may take: down() must cut it short
    with grpc.insecure_channel(otlp_receiver.grpc_endpoint) as channel:
        stub = logs_service_pb2_grpc.LogsServiceStub(channel)
        future = stub.Export.future(raw_request(), timeout=5.0)
        otlp_receiver.wait_for_in_flight(1)
        otlp_receiver.down()
        with pytest.raises(grpc.RpcError):
            future.result()

    assert otlp_receiver.outcomes() == {"aborted": 1}
    assert otlp_receiver.records() == []


def test_wait_for_records_says_what_arrived(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.INVALID_ARGUMENT)
    with pytest.raises(grpc.RpcError):
        grpc_export(otlp_receiver)

    with pytest.raises(TimeoutError, match=r"0 of 1 log records .*'invalid_argument': 1"):
        otlp_receiver.wait_for_records(1, timeout=0.05)
