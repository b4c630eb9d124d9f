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
from typing import TYPE_CHECKING, Any, Final

from kubevents import __version__
from kubevents.records import AttrValue, OutputRecord, ResourceInfo

if TYPE_CHECKING:
    # protobuf's message classes are imported only where a message is built: the transports
    # send encode_logs_bytes' own bytes, so a process that never meets a value it cannot
    # write does not load the protobuf runtime for its logs (3.7 MiB at rest).
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SCOPE_NAME: Final = "kubevents"


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


def encode_logs_within(
    records: Sequence[OutputRecord],
    resource: ResourceInfo,
    *,
    max_body_bytes: int,
    max_attribute_bytes: int,
    scope_version: str = __version__,
) -> bytes | None:
    """The request for ``records`` if none of them needs
    :func:`~kubevents.sinks.limits.limit_record` with these limits, else None.

    When it gives bytes, they are what :func:`encode_logs_wire` makes of the records as
    the limits leave them (the very same records): every string encodes as UTF-8 and none
    is past its limit, checked as they are encoded. None also when it cannot tell: limits
    below the lengths the encoder keeps the fields of (``_SHORT``), a value only
    protobuf writes. The caller then applies the limits and encodes what they give.
    """
    if max_attribute_bytes < _SHORT:
        return None
    try:
        return encode_logs_bytes(
            records,
            resource,
            scope_version=scope_version,
            max_body_bytes=max_body_bytes,
            max_attribute_bytes=max_attribute_bytes,
        )
    except (UnicodeEncodeError, _Unsupported, struct.error, _OverLimits):
        return None


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


class _OverLimits(Exception):
    """A value past the limits :func:`encode_logs_within` was given."""


_NO_LIMIT: Final = 1 << 60
"""The limits of an encode that checks none (:func:`encode_logs_bytes`'s own); below
2**62, so that the compiled build holds it as a plain machine int, not a boxed one."""


# Final: the compiled build reads these as its own statics, not from the module's dict.
_SMALL: Final = [bytes([n]) for n in range(128)]
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_pack_fixed64: Final = struct.Struct("<Q").pack
_pack_double: Final = struct.Struct("<d").pack


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


_KEYS: Final[dict[str, bytes]] = {}
"""Attribute key -> its ``KeyValue.key`` field, written once per key (bounded)."""


class _KeyHeads:
    """What is kept of one attribute key under one field tag (:data:`_HEADS`)."""

    def __init__(self, short: list[bytes | None]) -> None:
        self.short = short
        """For each string value length n < _SHORT, every byte of the attribute field up
        to the value's bytes: tag, lengths, key, AnyValue framing (None: a long key)."""
        self.values: dict[str, bytes] | None = {}
        """Value -> the whole attribute field, for the short string values of a key that
        has had at most _VALUES_MAX of them (reason, kind, category, node...); None once a
        key has had more (uids, names): its values are written each time."""


_HEADS: Final[dict[bytes, dict[str, _KeyHeads]]] = {}
"""Field tag -> attribute key -> its heads and values (:class:`_KeyHeads`)."""
_SHORT: Final = 100
_CACHE_MAX: Final = 4096
_HEADS_MAX: Final = 256
"""Keys per tag in :data:`_HEADS` (about 8 KiB each, plus the values kept)."""
_VALUES_MAX: Final = 512
"""Values kept per key: past it, the key's values are taken for unbounded (a node name is
one of hundreds; a uid is one of as many as there are Events) and none is kept. At most
512 fields of under 250 bytes per key, for the few keys that stay under it."""


def _key_field(key: str) -> bytes:
    field = _KEYS.get(key)
    if field is None:
        if len(_KEYS) >= _CACHE_MAX:
            _KEYS.clear()
        field = _KEYS[key] = _field(b"\x0a", key.encode()) if key else b""
    return field


def _heads(tag: bytes, key: str) -> _KeyHeads:
    table = _HEADS.setdefault(tag, {})
    entry = table.get(key)
    if entry is None:
        if len(table) >= _HEADS_MAX:
            table.clear()
        key_field = _key_field(key)
        heads: list[bytes | None]
        if len(key_field) + _SHORT + 4 >= 128:  # a long key: lengths need two bytes
            heads = [None] * _SHORT
        else:
            heads = [
                b"%s%c%s\x12%c\x0a%c" % (tag, len(key_field) + n + 4, key_field, n + 2, n)
                for n in range(_SHORT)
            ]
        entry = table[key] = _KeyHeads(heads)
    return entry


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
    """The ``tag`` fields (KeyValues) of ``attributes``, in order, as pieces to join."""
    out: list[bytes] = []
    _put_attributes(out, tag, attributes)
    return out


# The request is written as one flat list of pieces, joined once: a message's tag and
# length go in a slot kept for them and filled once its pieces are counted, so that no
# nested message (attribute, record, scope, resource) is joined and then copied into its
# parent, and a short string attribute is two pieces (its precomputed head, its bytes) with
# no concatenation, or one (the whole field, kept) when its key has few values.


def _put_attributes(
    out: list[bytes], tag: bytes, attributes: dict[str, AttrValue], max_bytes: int = _NO_LIMIT
) -> int:
    """Append one ``tag`` field (a KeyValue) per attribute to ``out``; returns their bytes.

    Raises:
        _OverLimits: a string (or a string in a list) of more than ``max_bytes`` (UTF-8);
            a value written before, kept below, is shorter than ``_SHORT``.
    """
    size = 0
    table = _HEADS.get(tag)
    if table is None:
        table = _HEADS[tag] = {}
    for key, value in attributes.items():
        if type(value) is str:
            entry = table.get(key)
            if entry is None:
                entry = _heads(tag, key)
                table = _HEADS[tag]
            values = entry.values
            if values is not None:
                piece = values.get(value)
                if piece is not None:  # a value this key has had: the field as written then
                    out.append(piece)
                    size += len(piece)
                    continue
            data = value.encode()
            n = len(data)
            if n > max_bytes:
                raise _OverLimits
            head = entry.short[n] if n < _SHORT else None
            if head is None:
                piece = _field(tag, _key_field(key) + _field(b"\x12", _field(b"\x0a", data)))
            elif values is None:
                out.append(head)
                out.append(data)
                size += len(head) + n
                continue
            else:
                piece = head + data
            if values is not None and n < _SHORT:
                if len(values) < _VALUES_MAX:
                    values[value] = piece
                else:
                    entry.values = None  # more values than a bounded key has: keep none
            out.append(piece)
            size += len(piece)
            continue
        elif type(value) is int and 0 <= value <= _INT64_MAX:
            data = _SMALL[value] if value < 128 else _varint(value)
            head = _int_heads(tag, key)[len(data)]
            if head is not None:
                out.append(head)
                out.append(data)
                size += len(head) + len(data)
                continue
            piece = _field(tag, _key_field(key) + _field(b"\x12", b"\x18" + data))
        else:
            if type(value) is list and max_bytes < _NO_LIMIT:
                for v in value:
                    if type(v) is str and len(v.encode()) > max_bytes:
                        raise _OverLimits
            piece = _field(tag, _key_field(key) + _field(b"\x12", _any_value(value)))
        out.append(piece)
        size += len(piece)
    return size


_INT_HEADS: Final[dict[bytes, dict[str, list[bytes | None]]]] = {}
"""Field tag -> attribute key -> for each varint length n (1 to 10), every byte of a
non-negative int attribute up to its varint: tag, lengths, key, AnyValue framing."""


def _int_heads(tag: bytes, key: str) -> list[bytes | None]:
    table = _INT_HEADS.get(tag)
    if table is None:
        table = _INT_HEADS[tag] = {}
    heads = table.get(key)
    if heads is None:
        if len(table) >= _HEADS_MAX:
            table.clear()
        key_field = _key_field(key)
        if len(key_field) + 14 >= 128:  # a long key: lengths need two bytes
            heads = [None] * 11
        else:
            heads = [None] + [
                b"%s%c%s\x12%c\x18" % (tag, len(key_field) + n + 3, key_field, n + 1)
                for n in range(1, 11)
            ]
        table[key] = heads
    return heads


_TEXT_FIELDS: Final[dict[bytes, dict[str, bytes]]] = {}
"""Field tag -> string -> the field (severity texts and event names: a handful)."""


def _text_field(tag: bytes, text: str) -> bytes:
    table = _TEXT_FIELDS.get(tag)
    if table is None:
        table = _TEXT_FIELDS[tag] = {}
    field = table.get(text)
    if field is None:
        if len(table) >= _HEADS_MAX:
            table.clear()
        field = table[text] = _field(tag, text.encode())
    return field


def _put_record(
    out: list[bytes], record: OutputRecord, max_body: int = _NO_LIMIT, max_attr: int = _NO_LIMIT
) -> int:
    """Append one ``ScopeLogs.log_records`` field to ``out``; returns its bytes.

    Raises:
        _OverLimits: its body is longer than ``max_body``, or an attribute than ``max_attr``.
    """
    slot = len(out)
    out.append(b"")  # the record's tag and length, once its fields are counted
    size = 0
    if record.timestamp_ns:
        out.append(b"\x09")
        out.append(_pack_fixed64(record.timestamp_ns))
        size += 9
    severity = record.severity_number
    if severity:
        if severity < 0:
            raise _Unsupported
        if severity < 128:
            out.append(b"\x10")
            out.append(_SMALL[severity])
            size += 2
        else:
            piece = b"\x10" + _varint(severity)
            out.append(piece)
            size += len(piece)
    if record.severity_text:
        piece = _text_field(b"\x1a", record.severity_text)
        out.append(piece)
        size += len(piece)
    body = record.body.encode()
    n = len(body)
    if n > max_body:
        raise _OverLimits
    if n < 126:
        out.append(_BODY_HEADS[n])
        size += 4 + n
    else:
        length = _varint(n)
        head = b"\x2a" + _varint(n + 1 + len(length)) + b"\x0a" + length
        out.append(head)
        size += len(head) + n
    out.append(body)
    size += _put_attributes(out, b"\x32", record.attributes, max_attr)
    if record.observed_ns:
        out.append(b"\x59")
        out.append(_pack_fixed64(record.observed_ns))
        size += 9
    if record.event_name:
        piece = _text_field(b"\x62", record.event_name)
        out.append(piece)
        size += len(piece)
    head = b"\x12" + _SMALL[size] if size < 128 else b"\x12" + _varint(size)
    out[slot] = head
    return len(head) + size


_BODY_HEADS: Final = [b"\x2a%c\x0a%c" % (n + 2, n) for n in range(126)]
"""``LogRecord.body`` (an AnyValue holding a string) up to its bytes, for a body of n < 126."""


def _resource_field(resource: ResourceInfo, namespace: str) -> bytes:
    """``ResourceLogs.resource`` of the records about ``namespace``."""
    cached = _RESOURCES.get(namespace)
    if cached is not None and cached[0] is resource:
        return cached[1]
    out: list[bytes] = []
    _put_attributes(out, b"\x0a", resource.attributes(namespace))
    field = _field(b"\x0a", b"".join(out))
    if len(_RESOURCES) >= _CACHE_MAX:
        _RESOURCES.clear()
    _RESOURCES[namespace] = (resource, field)
    return field


_RESOURCES: Final[dict[str, tuple[ResourceInfo, bytes]]] = {}
"""Namespace -> the Resource field last written for it, and of which ResourceInfo."""


def encode_logs_bytes(
    records: Sequence[OutputRecord],
    resource: ResourceInfo,
    *,
    scope_version: str = __version__,
    max_body_bytes: int = _NO_LIMIT,
    max_attribute_bytes: int = _NO_LIMIT,
) -> bytes:
    """:func:`encode_logs`, serialized: the same bytes protobuf would write for it.

    Raises:
        UnicodeEncodeError: a string is not encodable as UTF-8 (lone surrogates).
        _Unsupported: a value protobuf rejects (int outside int64, unknown type).
        _OverLimits: a body, a namespace or a string attribute past the limits given
            (:func:`encode_logs_within`).
    """
    scope = _scope_field(scope_version)
    out: list[bytes] = []
    for namespace, group in group_by_namespace(records).items():
        if max_attribute_bytes < _NO_LIMIT and (
            len(namespace) > max_attribute_bytes or not namespace.isascii()
        ):
            raise _OverLimits  # (a non-ASCII namespace: left to the limits, to be sure)
        slot = len(out)
        out.append(b"")  # the ResourceLogs' tag and length
        resource_field = _resource_field(resource, namespace)
        out.append(resource_field)
        out.append(b"")  # the ScopeLogs' tag and length
        out.append(scope)
        scope_size = len(scope)
        for record in group:
            scope_size += _put_record(out, record, max_body_bytes, max_attribute_bytes)
        scope_head = _field_head(b"\x12", scope_size)
        out[slot + 2] = scope_head
        out[slot] = _field_head(b"\x0a", len(resource_field) + len(scope_head) + scope_size)
    return b"".join(out)


class StagedRecords:
    """The records of the batch being gathered, each encoded as it is made.

    The pipeline hands every record it makes to :meth:`add` (``DeliverySink.staged``),
    which writes its ``ScopeLogs.log_records`` field at once, checking the content limits
    as :func:`encode_logs_within` does: the record's strings were just read to build it and
    are still in the processor's caches, where a batch's worth of records later they are
    not. :meth:`take` then gives the request of a batch that is exactly the records added
    since the last take: the same bytes as :func:`encode_logs_within` of that batch. A
    record is taken as it was when added: records are made whole and never changed after
    (the limits make new ones).
    """

    def __init__(
        self,
        resource: ResourceInfo,
        *,
        max_body_bytes: int,
        max_attribute_bytes: int,
        max_records: int,
        scope_version: str = __version__,
    ) -> None:
        self.resource = resource
        self.max_body_bytes = max_body_bytes
        self.max_attribute_bytes = max_attribute_bytes
        self.max_records = max_records
        """Records kept at most: past it (no batch has taken them), none is kept."""
        self.scope_version = scope_version
        self.records: list[OutputRecord] = []
        self.fields: list[bytes] = []
        self.spoiled = max_attribute_bytes < _SHORT
        """A record since the last take could not be written within the limits (or the
        limits are below what the encoder can check): the next take gives None."""

    def add(self, record: OutputRecord) -> None:
        """Write ``record``'s field now (never raises: what fails is left to the limits and
        the encoder, which report it, when its batch is exported)."""
        if self.spoiled:
            return
        if len(self.records) >= self.max_records:
            self._spoil()
            return
        namespace = record.namespace
        if len(namespace) > self.max_attribute_bytes or not namespace.isascii():
            self._spoil()  # as encode_logs_bytes: left to the limits
            return
        out: list[bytes] = []
        try:
            _put_record(out, record, self.max_body_bytes, self.max_attribute_bytes)
        except Exception:
            self._spoil()
            return
        self.records.append(record)
        self.fields.append(b"".join(out))

    def _spoil(self) -> None:
        self.spoiled = True
        self.records = []
        self.fields = []

    def drop(self) -> None:
        """Let go of what is staged and stage nothing until the next take: the batch being
        gathered will not be taken either (its sink is behind, and encodes in its worker
        what it queues meanwhile), so that a sink that stays behind pays for no encode
        here but one batch's at each check."""
        self._spoil()

    def take(self, records: Sequence[OutputRecord]) -> bytes | None:
        """The request for ``records`` if they are the very records added since the last
        take, in order, each within the limits; else None. Starts the next batch."""
        staged, fields, spoiled = self.records, self.fields, self.spoiled
        self.records = []
        self.fields = []
        self.spoiled = self.max_attribute_bytes < _SHORT
        if spoiled or len(staged) != len(records) or len(fields) != len(staged):
            return None
        for i, record in enumerate(records):
            if record is not staged[i]:
                return None
        return _request_of_fields(staged, fields, self.resource, self.scope_version)


def _request_of_fields(
    records: list[OutputRecord], fields: list[bytes], resource: ResourceInfo, scope_version: str
) -> bytes:
    """:func:`encode_logs_bytes` of ``records``, given each one's ``log_records`` field."""
    scope = _scope_field(scope_version)
    groups: dict[str, list[bytes]] = {}
    for i, record in enumerate(records):
        group = groups.get(record.namespace)
        if group is None:
            groups[record.namespace] = group = []
        group.append(fields[i])
    out: list[bytes] = []
    for namespace, group in groups.items():
        resource_field = _resource_field(resource, namespace)
        scope_size = len(scope)
        for field in group:
            scope_size += len(field)
        scope_head = _field_head(b"\x12", scope_size)
        out.append(_field_head(b"\x0a", len(resource_field) + len(scope_head) + scope_size))
        out.append(resource_field)
        out.append(scope_head)
        out.append(scope)
        out.extend(group)
    return b"".join(out)


def _scope_field(scope_version: str) -> bytes:
    """``ScopeLogs.scope``: the name ``kubevents`` and ``scope_version``."""
    return _field(
        b"\x0a",
        b"".join(
            [_field(b"\x0a", SCOPE_NAME.encode())]
            + ([_field(b"\x12", scope_version.encode())] if scope_version else [])
        ),
    )


def _field_head(tag: bytes, n: int) -> bytes:
    """The tag and length of a length-delimited field of ``n`` bytes."""
    return tag + (_SMALL[n] if n < 128 else _varint(n))


def decode_value(value: AnyValue) -> AttrValue:
    """The Python value of an ``AnyValue`` (the inverse of :func:`any_value`)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [v.string_value for v in value.array_value.values]
    decoded: AttrValue = getattr(value, kind) if kind else ""
    return decoded
