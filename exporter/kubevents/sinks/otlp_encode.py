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

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from kubevents import __version__
from kubevents.records import AttrValue, OutputRecord, ResourceInfo

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

    Messages are built in place (``add()`` and field assignment): with the upb
    runtime this is about three times faster than passing sub-messages to
    constructors, which copies each of them into its parent.
    """
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


def decode_value(value: AnyValue) -> AttrValue:
    """The Python value of an ``AnyValue`` (the inverse of :func:`any_value`)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [v.string_value for v in value.array_value.values]
    decoded: AttrValue = getattr(value, kind) if kind else ""
    return decoded
