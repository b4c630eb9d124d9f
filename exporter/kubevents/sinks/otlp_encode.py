"""OTLP encoding: output records -> one ``ExportLogsServiceRequest``. Pure, no I/O.

The messages are the official ``opentelemetry-proto`` classes, filled in
directly rather than through the SDK's ``LoggerProvider``: the SDK builds one
``LogRecord`` object per emit, runs processors and encodes through a second
copy (several times the cost per record, see ``docs/sinks.md``), and a
provider has exactly one Resource, while kubevents needs one Resource per
involved namespace (``k8s.namespace.name`` must be a *resource* attribute so
that Loki's OTLP ingestion indexes it).

Shape of a request: one ``ResourceLogs`` per namespace in the batch (in the
order namespaces first appear; cluster-scoped objects share one without
``k8s.namespace.name``), each with one ``ScopeLogs`` (scope ``kubevents``,
version = the package version) holding that namespace's records in export
order. Attribute values keep their types: str, int, float, bool and lists
of strings.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from kubevents import __version__
from kubevents.records import AttrValue, OutputRecord, ResourceInfo

if TYPE_CHECKING:
    # protobuf's message classes are imported only where a message is built: the transports
    # send encode_logs_bytes' own bytes, so a process that never meets a value it cannot
    # write does not load the protobuf runtime for its logs (3.7 MiB at rest).
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SCOPE_NAME = "kubevents"


def set_value(target: AnyValue, value: AttrValue) -> None:
    """Fill the OTLP ``AnyValue`` ``target`` with one attribute value, keeping its type."""
    kind = value.__class__
    # Exact class checks: bool is a subclass of int, and str is by far the most common.
    if kind is str:
        target.string_value = value  # type: ignore[assignment]
    elif kind is int:
        target.int_value = value  # type: ignore[assignment]
    elif kind is bool:
        target.bool_value = value  # type: ignore[assignment]
    elif kind is float:
        target.double_value = value  # type: ignore[assignment]
    elif isinstance(value, list):
        from opentelemetry.proto.common.v1.common_pb2 import AnyValue

        target.array_value.values.extend(AnyValue(string_value=v) for v in value)
    else:
        raise TypeError(f"unsupported attribute value {value!r}")


def add_attributes(target: Any, attributes: dict[str, AttrValue]) -> None:
    """Append ``attributes`` to the repeated ``KeyValue`` field ``target``, in order."""
    add = target.add
    for key, value in attributes.items():
        kv = add()
        kv.key = key
        set_value(kv.value, value)


def group_by_namespace(records: Iterable[OutputRecord]) -> dict[str, list[OutputRecord]]:
    """Records by namespace, namespaces in first-seen order, records in export order."""
    groups: dict[str, list[OutputRecord]] = {}
    for record in records:
        group = groups.get(record.namespace)
        if group is None:
            groups[record.namespace] = group = []
        group.append(record)
    return groups


def encode_logs(
    records: Sequence[OutputRecord], resource: ResourceInfo, *, scope_version: str = __version__
) -> ExportLogsServiceRequest:
    """One export request for ``records``: one ``ResourceLogs`` per involved namespace.

    Parsed from :func:`encode_logs_bytes` (one C call); values that function
    cannot write (a string that is not encodable as UTF-8, an int outside
    int64, an unknown type) go through :func:`build_logs`, which fails on them
    the way protobuf does.
    """
    try:
        data = encode_logs_bytes(records, resource, scope_version=scope_version)
    except (UnicodeEncodeError, _Unsupported, struct.error):
        return build_logs(records, resource, scope_version=scope_version)
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request: ExportLogsServiceRequest = ExportLogsServiceRequest.FromString(data)
    return request


def encode_logs_wire(
    records: Sequence[OutputRecord], resource: ResourceInfo, *, scope_version: str = __version__
) -> bytes:
    """The serialized export request for ``records``: what the transports send.

    :func:`encode_logs_bytes` when it can write every value, else protobuf's own
    serialization of :func:`build_logs` (which fails the way protobuf does).
    """
    try:
        return encode_logs_bytes(records, resource, scope_version=scope_version)
    except (UnicodeEncodeError, _Unsupported, struct.error):
        data: bytes = build_logs(records, resource, scope_version=scope_version).SerializeToString()
        return data


def build_logs(
    records: Sequence[OutputRecord], resource: ResourceInfo, *, scope_version: str = __version__
) -> ExportLogsServiceRequest:
    """:func:`encode_logs` through the protobuf message API, field by field.

    Messages are built in place (``add()`` and field assignment): with the upb
    runtime this is about three times faster than passing sub-messages to
    constructors, which copies each of them into its parent.
    """
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    request = ExportLogsServiceRequest()
    for namespace, group in group_by_namespace(records).items():
        resource_logs = request.resource_logs.add()
        add_attributes(resource_logs.resource.attributes, resource.attributes(namespace))
        scope_logs = resource_logs.scope_logs.add()
        scope_logs.scope.name = SCOPE_NAME
        scope_logs.scope.version = scope_version
        add_record = scope_logs.log_records.add
        for record in group:
            log = add_record()
            log.time_unix_nano = record.timestamp_ns
            log.observed_time_unix_nano = record.observed_ns
            log.severity_number = record.severity_number
            log.severity_text = record.severity_text
            log.event_name = record.event_name
            log.body.string_value = record.body
            add_attributes(log.attributes, record.attributes)
    return request


# -- the wire format, written directly ----------------------------------------------------
#
# Field numbers (opentelemetry-proto): ExportLogsServiceRequest.resource_logs = 1;
# ResourceLogs.resource = 1, .scope_logs = 2; Resource.attributes = 1; ScopeLogs.scope = 1,
# .log_records = 2; InstrumentationScope.name = 1, .version = 2; LogRecord.time_unix_nano = 1
# (fixed64), .severity_number = 2, .severity_text = 3, .body = 5, .attributes = 6,
# .observed_time_unix_nano = 11 (fixed64), .event_name = 12; KeyValue.key = 1, .value = 2;
# AnyValue.string_value = 1, .bool_value = 2, .int_value = 3, .double_value = 4 (double),
# .array_value = 5; ArrayValue.values = 1. Fields are written in field-number order and
# proto3 defaults (0, "") are left out, as protobuf's own serializer does; members of a
# oneof (AnyValue) are always written.


class _Unsupported(Exception):
    """A value :func:`encode_logs_bytes` does not write (protobuf rejects it too)."""


_SMALL = [bytes([n]) for n in range(128)]
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_pack_fixed64 = struct.Struct("<Q").pack
_pack_double = struct.Struct("<d").pack


def _varint(n: int) -> bytes:
    """Base-128 varint of ``n`` (0 <= n < 2**64)."""
    if n < 128:
        return _SMALL[n]
    out = bytearray()
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    n = len(payload)
    return tag + (_SMALL[n] if n < 128 else _varint(n)) + payload


_KEYS: dict[str, bytes] = {}
"""Attribute key -> its ``KeyValue.key`` field, written once per key (bounded)."""
_HEADS: dict[bytes, dict[str, list[bytes | None]]] = {}
"""Field tag -> attribute key -> for each string value length n < _SHORT, every byte of
the attribute field up to the value's bytes: tag, lengths, key, AnyValue framing. A
short string attribute is then one concatenation."""
_SHORT = 100
_CACHE_MAX = 4096
_HEADS_MAX = 256
"""Keys per tag in :data:`_HEADS` (about 8 KiB each)."""


def _key_field(key: str) -> bytes:
    field = _KEYS.get(key)
    if field is None:
        if len(_KEYS) >= _CACHE_MAX:
            _KEYS.clear()
        field = _KEYS[key] = _field(b"\x0a", key.encode()) if key else b""
    return field


def _heads(tag: bytes, key: str) -> list[bytes | None]:
    table = _HEADS.setdefault(tag, {})
    heads = table.get(key)
    if heads is None:
        if len(table) >= _HEADS_MAX:
            table.clear()
        key_field = _key_field(key)
        if len(key_field) + _SHORT + 4 >= 128:  # a long key: lengths need two bytes
            heads = [None] * _SHORT
        else:
            heads = [
                b"%s%c%s\x12%c\x0a%c" % (tag, len(key_field) + n + 4, key_field, n + 2, n)
                for n in range(_SHORT)
            ]
        table[key] = heads
    return heads


def _any_value(value: AttrValue) -> bytes:
    """The serialized ``AnyValue`` of one attribute value (exact types, as :func:`set_value`)."""
    if type(value) is str:
        return _field(b"\x0a", value.encode())
    if type(value) is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _Unsupported
        return b"\x18" + _varint(value if value >= 0 else value + 2**64)
    if type(value) is bool:
        return b"\x10\x01" if value else b"\x10\x00"
    if type(value) is float:
        return b"\x21" + _pack_double(value)
    if type(value) is list and all(type(v) is str for v in value):
        return _field(
            b"\x2a", b"".join(_field(b"\x0a", _field(b"\x0a", v.encode())) for v in value)
        )
    raise _Unsupported


def _attributes(tag: bytes, attributes: dict[str, AttrValue]) -> list[bytes]:
    """One ``tag`` field (a KeyValue) per attribute, in order."""
    out: list[bytes] = []
    append = out.append
    table = _HEADS.get(tag) or {}
    for key, value in attributes.items():
        if type(value) is str:
            data = value.encode()
            n = len(data)
            if n < _SHORT:
                heads = table.get(key)
                if heads is None:
                    heads = _heads(tag, key)
                    table = _HEADS[tag]
                head = heads[n]
                if head is not None:
                    append(head + data)
                    continue
            append(_field(tag, _key_field(key) + _field(b"\x12", _field(b"\x0a", data))))
        else:
            append(_field(tag, _key_field(key) + _field(b"\x12", _any_value(value))))
    return out


def _log_record(record: OutputRecord) -> bytes:
    parts = []
    if record.timestamp_ns:
        parts.append(b"\x09" + _pack_fixed64(record.timestamp_ns))
    if record.severity_number:
        if record.severity_number < 0:
            raise _Unsupported
        parts.append(b"\x10" + _varint(record.severity_number))
    if record.severity_text:
        parts.append(_field(b"\x1a", record.severity_text.encode()))
    parts.append(_field(b"\x2a", _field(b"\x0a", record.body.encode())))
    parts += _attributes(b"\x32", record.attributes)
    if record.observed_ns:
        parts.append(b"\x59" + _pack_fixed64(record.observed_ns))
    if record.event_name:
        parts.append(_field(b"\x62", record.event_name.encode()))
    return _field(b"\x12", b"".join(parts))


def encode_logs_bytes(
    records: Sequence[OutputRecord], resource: ResourceInfo, *, scope_version: str = __version__
) -> bytes:
    """:func:`encode_logs`, serialized: the same bytes protobuf would write for it.

    Raises:
        UnicodeEncodeError: a string is not encodable as UTF-8 (lone surrogates).
        _Unsupported: a value protobuf rejects (int outside int64, unknown type).
    """
    scope = _field(
        b"\x0a",
        b"".join(
            [_field(b"\x0a", SCOPE_NAME.encode())]
            + ([_field(b"\x12", scope_version.encode())] if scope_version else [])
        ),
    )
    out = []
    for namespace, group in group_by_namespace(records).items():
        resource_field = _field(
            b"\x0a", b"".join(_attributes(b"\x0a", resource.attributes(namespace)))
        )
        scope_logs = _field(b"\x12", b"".join([scope, *map(_log_record, group)]))
        out.append(_field(b"\x0a", resource_field + scope_logs))
    return b"".join(out)


def decode_value(value: AnyValue) -> AttrValue:
    """The Python value of an ``AnyValue`` (the inverse of :func:`any_value`)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [v.string_value for v in value.array_value.values]
    decoded: AttrValue = getattr(value, kind) if kind else ""
    return decoded
