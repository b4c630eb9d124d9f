"""What an OTLP server answers: the partial success of an export, a ``google.rpc.Status``.

A server that took every record answers an empty ``ExportLogsServiceResponse``
(zero bytes on the wire, or an empty ``partial_success``: two), so the protobuf runtime and the OTLP message classes
are imported only when there is something to decode: a process whose exports
all succeed does not load them for its logs (with the ``otlp+http`` sink and no
OTLP metrics export, 3.7 MiB less at rest; docs/performance.md, "At rest").
"""

from __future__ import annotations


class DecodeError(Exception):
    """Bytes that are not the message they should be (protobuf's ``DecodeError`` too)."""


def _decode_error() -> type[Exception]:
    from google.protobuf.message import DecodeError as ProtobufDecodeError

    error: type[Exception] = ProtobufDecodeError
    return error


_NOTHING_REJECTED = (b"", b"\n\x00")
"""An empty response, and one whose ``partial_success`` (field 1) is present and empty, as
the Collector's OTLP/HTTP receiver answers every successful export."""


def partial_success(data: bytes) -> tuple[int, str]:
    """(rejected log records, error message) of a serialized ``ExportLogsServiceResponse``.

    Raises:
        DecodeError: ``data`` is not one.
    """
    if data in _NOTHING_REJECTED:
        return 0, ""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

    try:
        partial = ExportLogsServiceResponse.FromString(data).partial_success
    except _decode_error() as e:
        raise DecodeError(str(e)) from e
    return partial.rejected_log_records, partial.error_message


def status_message(data: bytes) -> str:
    """The message of a serialized ``google.rpc.Status``.

    Raises:
        DecodeError: ``data`` is not one.
    """
    from google.rpc import status_pb2

    try:
        message: str = status_pb2.Status.FromString(data).message
    except _decode_error() as e:
        raise DecodeError(str(e)) from e
    return message


def retry_info_delay(data: bytes) -> float | None:
    """The ``RetryInfo`` delay (seconds) in a serialized ``google.rpc.Status``'s details
    (the ``grpc-status-details-bin`` trailer), or None (none there, or not a Status)."""
    from google.rpc import error_details_pb2, status_pb2

    try:
        status = status_pb2.Status.FromString(data)
    except _decode_error():
        return None
    name = error_details_pb2.RetryInfo.DESCRIPTOR.full_name
    for detail in status.details:
        if detail.type_url.endswith(name):
            info = error_details_pb2.RetryInfo()
            if detail.Unpack(info):
                return float(info.retry_delay.ToNanoseconds()) / 1e9
    return None
