"""The few OTLP answers kubevents reads, decoded from the wire without protobuf. Pure, no I/O.

An ``Export*ServiceResponse`` (logs and metrics have the same shape:
``partial_success`` = 1, a message whose field 1 is the rejected count, int64,
and field 2 the error message) and a ``google.rpc.Status`` (``message`` = 2).
:mod:`otlp_response` reads the same messages with protobuf's classes, imported
only for a response with something in it; the OTLP metrics exporter
(``telemetry/otlp_metrics.py``) reads them here, so that it never loads the
protobuf runtime (3.7 MiB at rest, docs/performance.md "At rest").
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
                rejected = item - (1 << 64) if item >= 1 << 63 else item
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
