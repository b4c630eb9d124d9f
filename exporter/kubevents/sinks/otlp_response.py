"""What an OTLP server answers, decoded from the wire without protobuf. Pure, no I/O.

An ``Export*ServiceResponse`` (logs and metrics have the same shape:
``partial_success`` = 1, a message whose field 1 is the rejected count, int64,
and field 2 the error message) and a ``google.rpc.Status`` (``message`` = 2,
``details`` = 3, each a ``google.protobuf.Any``: ``type_url`` = 1, ``value`` = 2),
whose ``RetryInfo`` detail (``retry_delay`` = 1, a ``Duration``: ``seconds`` = 1,
``nanos`` = 2) says how long a throttled client should wait (the OTLP
specification's throttling section). The logs sinks and the OTLP metrics
exporter read their answers here, so that no export loads the protobuf runtime
and the message classes for them (3.7 MiB at rest, docs/performance.md "At rest").
Unknown fields are skipped, as protobuf skips them.
"""

from __future__ import annotations

from collections.abc import Iterator


class WireError(ValueError):
    """Bytes that are not a protobuf message (a truncated field, a bad wire type)."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of each field: an int for varint and fixed fields, the
    bytes of a length-delimited one.

    Raises:
        WireError: ``data`` is not a protobuf message.
    """
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, kind = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if kind == 0:
            value, pos = _varint(data, pos)
        elif kind in (1, 5):
            size = 8 if kind == 1 else 4
            if pos + size > len(data):
                raise WireError("truncated fixed field")
            value, pos = int.from_bytes(data[pos : pos + size], "little"), pos + size
        elif kind == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise WireError("truncated length-delimited field")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise WireError(f"unsupported wire type {kind}")
        yield number, value


def _int64(value: int) -> int:
    """A varint read as a signed 64-bit integer (int32 and int64 negatives take ten bytes)."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise WireError("a string field is not length-delimited")
    return value.decode("utf-8", "replace")


def partial_success(data: bytes) -> tuple[int, str]:
    """(rejected items, error message) of a serialized ``Export*ServiceResponse``.

    Raises:
        WireError: ``data`` is not one.
    """
    rejected, message = 0, ""
    for number, value in fields(data):
        if number != 1:
            continue
        if not isinstance(value, bytes):
            raise WireError("partial_success is not a message")
        for inner, item in fields(value):
            if inner == 1:
                if not isinstance(item, int):
                    raise WireError("the rejected count is not a varint")
                rejected = _int64(item)
            elif inner == 2:
                message = _text(item)
    return rejected, message


def status_message(data: bytes) -> str:
    """The ``message`` of a serialized ``google.rpc.Status``.

    Raises:
        WireError: ``data`` is not one.
    """
    message = ""
    for number, value in fields(data):
        if number == 2:
            message = _text(value)
    return message


def http_error_message(content_type: str, data: bytes) -> str:
    """The message of an OTLP/HTTP error answer: its ``google.rpc.Status`` when the body is
    protobuf and one, else the body's text (not clipped)."""
    if content_type.split(";")[0].strip().lower() == "application/x-protobuf":
        try:
            return status_message(data)
        except WireError:
            pass
    return data.decode("utf-8", "replace").strip()


RETRY_INFO = "google.rpc.RetryInfo"


def retry_info_delay(data: bytes) -> float | None:
    """The ``RetryInfo`` delay (seconds) among a serialized ``google.rpc.Status``'s details
    (the ``grpc-status-details-bin`` trailer), or None (none there, or not a Status)."""
    try:
        for number, detail in fields(data):
            if number != 3 or not isinstance(detail, bytes):
                continue
            type_url, packed = "", b""
            for inner, value in fields(detail):
                if inner == 1:
                    type_url = _text(value)
                elif inner == 2 and isinstance(value, bytes):
                    packed = value
            if type_url.rpartition("/")[2] == RETRY_INFO:
                return _retry_delay(packed)
    except WireError:
        return None
    return None


def _retry_delay(retry_info: bytes) -> float:
    """A serialized ``RetryInfo``'s delay in seconds (0 when it has none, as protobuf reads it)."""
    seconds = nanos = 0
    for number, duration in fields(retry_info):
        if number != 1 or not isinstance(duration, bytes):
            continue
        for inner, value in fields(duration):
            if inner == 1 and isinstance(value, int):
                seconds = _int64(value)
            elif inner == 2 and isinstance(value, int):
                nanos = _int64(value)
    return seconds + nanos / 1e9
