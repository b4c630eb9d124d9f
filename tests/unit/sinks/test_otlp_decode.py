"""The protobuf-free reader of OTLP answers against messages built with the official classes."""

from __future__ import annotations

import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsPartialSuccess,
    ExportMetricsServiceResponse,
)

from kubevents.sinks.otlp_decode import WireError, partial_success, status_message


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
