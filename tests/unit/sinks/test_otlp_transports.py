"""The OTLP transports against the fake receiver: what reaches it, and how answers are read."""

from __future__ import annotations

import grpc
import pytest

from kubevents.records import OutputRecord, ResourceInfo
from kubevents.settings import OtlpSettings
from kubevents.sinks.otlp_grpc import OtlpGrpcTransport
from kubevents.sinks.otlp_http import OtlpHttpTransport
from kubevents.sinks.otlp_options import resolve_otlp
from kubevents.sinks.retry import is_retryable
from kubevents.sinks.transport import TransportError
from tests.fakes.otlp_receiver import OtlpReceiver

RESOURCE = ResourceInfo(service_version="1.0", instance_id="kv-0", cluster_name="c1")
RECORDS = [
    OutputRecord(
        timestamp_ns=1_795_255_201_000_000_000 + i,
        observed_ns=1_795_255_202_000_000_000,
        severity_number=13,
        severity_text="Warning",
        event_name="k8s.event",
        body=f"Back-off {i}",
        namespace=ns,
        attributes={"k8s.event.reason": "BackOff", "kubevents.occurrences": 1},
    )
    for i, ns in enumerate(["shop", "shop", "payments"])
]


def grpc_transport(receiver: OtlpReceiver, **settings: object) -> OtlpGrpcTransport:
    options = resolve_otlp(
        transport="grpc",
        signal="logs",
        spec_endpoint=f"http://{receiver.grpc_endpoint}",
        settings=OtlpSettings(**settings),  # type: ignore[arg-type]
        env={},
    )
    return OtlpGrpcTransport(options, RESOURCE)


def http_transport(receiver: OtlpReceiver, **settings: object) -> OtlpHttpTransport:
    options = resolve_otlp(
        transport="http",
        signal="logs",
        spec_endpoint=receiver.http_url,
        settings=OtlpSettings(**settings),  # type: ignore[arg-type]
        env={},
    )
    return OtlpHttpTransport(options, RESOURCE)


def transports(
    receiver: OtlpReceiver, **settings: object
) -> list[OtlpGrpcTransport | OtlpHttpTransport]:
    return [grpc_transport(receiver, **settings), http_transport(receiver, **settings)]


def test_records_headers_and_compression_reach_the_receiver(otlp_receiver: OtlpReceiver) -> None:
    for transport in transports(
        otlp_receiver, headers=("Authorization=Bearer t0ken",), compression="gzip"
    ):
        sent = transport.send(RECORDS)
        assert sent.bytes > 0 and sent.rejected == 0
        transport.close()
    exports = otlp_receiver.exports
    assert [e.transport for e in exports] == ["grpc", "http"]
    assert all(e.headers.get("authorization") == "Bearer t0ken" for e in exports)
    assert exports[1].headers.get("Content-Encoding") == "gzip"
    assert [len(e.request.resource_logs) for e in exports] == [2, 2]
    assert len(otlp_receiver.records()) == 6


@pytest.mark.parametrize("transport_kind", ["grpc", "http"])
def test_unavailable_with_a_retry_delay_is_retryable(
    otlp_receiver: OtlpReceiver, transport_kind: str
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.UNAVAILABLE, retry_after=2.5, message="busy")
    transport = (
        grpc_transport(otlp_receiver) if transport_kind == "grpc" else http_transport(otlp_receiver)
    )
    with pytest.raises(TransportError) as raised:
        transport.send(RECORDS)
    failure = raised.value.failure
    assert failure.retry_after_s == 2.5
    assert failure.reason == ("unavailable" if transport_kind == "grpc" else "http_503")
    assert "busy" in failure.detail
    assert is_retryable(failure)


def test_resource_exhausted_is_final_without_retry_info(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, transport="grpc")
    otlp_receiver.faults.fail(grpc.StatusCode.RESOURCE_EXHAUSTED, retry_after=0.1, transport="grpc")
    transport = grpc_transport(otlp_receiver)
    outcomes = []
    for _ in range(2):
        with pytest.raises(TransportError) as raised:
            transport.send(RECORDS)
        outcomes.append(is_retryable(raised.value.failure))
    assert outcomes == [False, True]


@pytest.mark.parametrize("transport_kind", ["grpc", "http"])
def test_invalid_argument_is_final_with_the_servers_message(
    otlp_receiver: OtlpReceiver, transport_kind: str
) -> None:
    otlp_receiver.faults.fail(grpc.StatusCode.INVALID_ARGUMENT, message="attribute too long")
    transport = (
        grpc_transport(otlp_receiver) if transport_kind == "grpc" else http_transport(otlp_receiver)
    )
    with pytest.raises(TransportError) as raised:
        transport.send(RECORDS)
    assert not is_retryable(raised.value.failure)
    assert "attribute too long" in raised.value.failure.detail


@pytest.mark.parametrize("transport_kind", ["grpc", "http"])
def test_partial_success_reports_the_rejected(
    otlp_receiver: OtlpReceiver, transport_kind: str
) -> None:
    otlp_receiver.faults.partial_success(rejected=1, message="one too old")
    transport = (
        grpc_transport(otlp_receiver) if transport_kind == "grpc" else http_transport(otlp_receiver)
    )
    sent = transport.send(RECORDS)
    assert (sent.rejected, sent.message) == (1, "one too old")


@pytest.mark.parametrize("transport_kind", ["grpc", "http"])
def test_a_receiver_that_is_down_is_retryable(
    otlp_receiver: OtlpReceiver, transport_kind: str
) -> None:
    transport = (
        grpc_transport(otlp_receiver) if transport_kind == "grpc" else http_transport(otlp_receiver)
    )
    otlp_receiver.down()
    with pytest.raises(TransportError) as raised:
        transport.send(RECORDS)
    assert is_retryable(raised.value.failure)
    otlp_receiver.up()


def test_a_slow_receiver_times_out_retryably(otlp_receiver: OtlpReceiver) -> None:
    otlp_receiver.delay = 2.0
    for transport in transports(otlp_receiver, timeout_s=0.2):
        with pytest.raises(TransportError) as raised:
            transport.send(RECORDS)
        assert raised.value.failure.reason in ("deadline_exceeded", "timeout")
        assert is_retryable(raised.value.failure)


def test_the_logs_sinks_read_what_the_collector_answers() -> None:
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    from kubevents.sinks.otlp_response import WireError, partial_success

    rejecting = ExportLogsServiceResponse()
    rejecting.partial_success.rejected_log_records = 3
    rejecting.partial_success.error_message = "too old"
    empty_partial = ExportLogsServiceResponse()
    empty_partial.partial_success.SetInParent()
    for data, want in [
        (b"", (0, "")),
        (empty_partial.SerializeToString(), (0, "")),  # what the Collector's OTLP/HTTP answers
        (rejecting.SerializeToString(), (3, "too old")),
    ]:
        assert partial_success(data) == want, data
    try:
        partial_success(b"\x0a\x05ab")
    except WireError:
        pass
    else:
        raise AssertionError("a truncated response decoded")
