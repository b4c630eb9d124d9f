"""The protobuf-free reader of OTLP answers against messages built with the official classes."""

from __future__ import annotations

import subprocess
import sys

import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)

from kubevents.sinks.otlp_response import (
    WireError,
    partial_success,
    retry_info_delay,
    status_message,
)


def metrics_response(rejected: int = 0, message: str = "", *, set_partial: bool = True) -> bytes:
    response = ExportMetricsServiceResponse()
    if set_partial:
        response.partial_success.CopyFrom(
            ExportMetricsPartialSuccess(rejected_data_points=rejected, error_message=message)
        )
    return response.SerializeToString()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (metrics_response(set_partial=False), (0, "")),
        (metrics_response(), (0, "")),
        (metrics_response(3, "3 too big"), (3, "3 too big")),
        (metrics_response(2**40, "é, 日本"), (2**40, "é, 日本")),
        (metrics_response(-1, "negative"), (-1, "negative")),
        (metrics_response(0, "a warning only"), (0, "a warning only")),
        (
            ExportLogsServiceResponse(
                partial_success={"rejected_log_records": 7, "error_message": "logs too"}
            ).SerializeToString(),
            (7, "logs too"),
        ),
    ],
    ids=["empty", "empty-partial", "rejected", "large-utf8", "negative", "message-only", "logs"],
)
def test_partial_success_reads_what_protobuf_wrote(data: bytes, expected: tuple[int, str]) -> None:
    assert partial_success(data) == expected
    # and what protobuf itself reads from the same bytes
    parsed = ExportMetricsServiceResponse.FromString(data).partial_success
    assert (parsed.rejected_data_points, parsed.error_message) == expected


def test_unknown_fields_are_skipped() -> None:
    extra = b"\x10\x05" + b"\x19" + bytes(8) + b"\x25" + bytes(4) + b"\x2a\x01x"
    data = metrics_response(4, "m") + extra
    assert partial_success(data) == (4, "m")


def test_a_status_message_is_read_past_its_details() -> None:
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2))
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=14, message="collector overloaded", details=[detail])
    assert status_message(status.SerializeToString()) == "collector overloaded"
    assert status_message(b"") == ""


@pytest.mark.parametrize(
    "data",
    [b"\x0a\x05ab", b"\x08", b"\x0b", b"\x00\x00", b"\x0a\x02\x0a\x09", b"\x09\x00\x00"],
    ids=["truncated", "no-varint", "group", "field-zero", "inner-truncated", "short-fixed64"],
)
def test_bytes_that_are_no_message_raise_wire_error(data: bytes) -> None:
    with pytest.raises(WireError):
        partial_success(data)


def packed(message: object) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def status(*details: object, message: str = "slow down") -> bytes:
    return status_pb2.Status(
        code=8, message=message, details=[packed(d) for d in details]
    ).SerializeToString()


def retry_info(seconds: int = 0, nanos: int = 0) -> error_details_pb2.RetryInfo:
    return error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=seconds, nanos=nanos)
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (status(retry_info(2)), 2.0),
        (status(retry_info(1, 500_000_000)), 1.5),
        (status(retry_info(0, 250_000_000)), 0.25),
        (status(error_details_pb2.RetryInfo()), 0.0),  # a RetryInfo with no delay: 0, as protobuf reads it
        (status(error_details_pb2.ErrorInfo(reason="QUOTA"), retry_info(7)), 7.0),  # past another detail
        (status(error_details_pb2.ErrorInfo(reason="QUOTA")), None),
        (status(), None),
        (b"", None),
        (b"\x1a\x05ab", None),  # a truncated detail: not a Status
    ],
    ids=["seconds", "seconds-nanos", "nanos", "no-delay", "after-other", "other-only", "none",
         "empty", "truncated"],
)
def test_the_retry_delay_is_read_as_protobuf_reads_it(data: bytes, expected: float | None) -> None:
    assert retry_info_delay(data) == expected
    if expected is not None:  # and what protobuf itself reads from the same bytes
        info = error_details_pb2.RetryInfo()
        assert next(d for d in status_pb2.Status.FromString(data).details if d.Unpack(info))
        assert info.retry_delay.ToNanoseconds() / 1e9 == expected


def test_reading_any_answer_loads_no_protobuf() -> None:
    # The answers are read from the wire: a rejecting partial success or a throttled call's
    # details must not import the protobuf runtime and the message classes (3.7 MiB).
    rejecting = metrics_response(3, "3 too big")
    throttled = status(retry_info(2))
    script = f"""
import sys
from kubevents.sinks import otlp_grpc, otlp_http
from kubevents.sinks.otlp_response import partial_success, retry_info_delay, status_message
assert partial_success({rejecting!r}) == (3, "3 too big")
assert retry_info_delay({throttled!r}) == 2.0 and status_message({throttled!r}) == "slow down"
loaded = sorted(m for m in sys.modules if m.startswith(("google", "opentelemetry.proto")))
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
