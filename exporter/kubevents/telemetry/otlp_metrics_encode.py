"""OTLP encoding of the metrics SDK's ``MetricsData``: one ``ExportMetricsServiceRequest``,
written as bytes with the logs encoder's wire writers (``sinks/otlp_encode.py``). Pure, no I/O.

Why not the SDK's encoder (``opentelemetry-exporter-otlp-proto-common``'s
``encode_metrics``): it builds the request with protobuf's message classes,
and importing the protobuf runtime and the OTLP classes costs 3.7 MiB at rest
(docs/performance.md, "At rest") for a request of a few kilobytes a minute.
This module writes the same message, field for field, as that encoder fills it
in (tests/unit/telemetry/test_otlp_metrics_encode.py compares both on the same
``MetricsData``): the data kinds kubevents produces (``Sum``, ``Gauge`` and
explicit-bucket ``Histogram``), with int or double points, attributes,
exemplars, the resource and the scope. Any other kind (exponential histograms,
which kubevents never asks the SDK for) is left out with a debug line, as the
SDK's encoder leaves out what it does not know.

Field numbers (opentelemetry-proto v1.11.0, 790608c, ``metrics/v1/metrics.proto`` and
``collector/metrics/v1/metrics_service.proto``): ExportMetricsServiceRequest.resource_metrics
= 1; ResourceMetrics.resource = 1, .scope_metrics = 2, .schema_url = 3; ScopeMetrics.scope =
1, .metrics = 2, .schema_url = 3; InstrumentationScope.name = 1, .version = 2, .attributes =
3; Metric.name = 1, .description = 2, .unit = 3, .gauge = 5, .sum = 7, .histogram = 9;
Gauge.data_points = 1; Sum.data_points = 1, .aggregation_temporality = 2, .is_monotonic = 3;
Histogram.data_points = 1, .aggregation_temporality = 2; NumberDataPoint.start_time_unix_nano
= 2 (fixed64), .time_unix_nano = 3 (fixed64), .as_double = 4 (double), .exemplars = 5,
.as_int = 6 (sfixed64), .attributes = 7; HistogramDataPoint.start_time_unix_nano = 2,
.time_unix_nano = 3, .count = 4 (fixed64), .sum = 5 (optional double), .bucket_counts = 6
(packed fixed64), .explicit_bounds = 7 (packed double), .exemplars = 8, .attributes = 9,
.min = 11, .max = 12 (optional doubles); Exemplar.time_unix_nano = 2, .as_double = 3,
.span_id = 4, .trace_id = 5, .as_int = 6, .filtered_attributes = 7. As protobuf does, fields
go in field-number order, proto3 defaults are left out, and a oneof member, an ``optional``
field and a sub-message that is set are always written.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricsData,
    NumberDataPoint,
    Sum,
)

# The wire writers of the logs encoder: one writer for both signals.
from kubevents.sinks.otlp_encode import (
    _any_value,
    _attributes,
    _field,
    _key_field,
    _pack_double,
    _pack_fixed64,
    _Unsupported,
    _varint,
)

logger = logging.getLogger(__name__)

_pack_sfixed64 = struct.Struct("<q").pack


class MetricsEncodeError(ValueError):
    """A value the OTLP wire format cannot carry (an int outside int64, a string that is
    not UTF-8, an attribute of an unknown type), naming the metric."""


def _value(value: Any) -> bytes:
    """The serialized ``AnyValue`` of an SDK attribute value: a scalar, or a sequence
    (the SDK keeps list values as tuples) as an ``ArrayValue`` of scalars."""
    if type(value) in (tuple, list):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _value(v)) for v in value))
    if value is None:
        return b""
    if type(value) is bytes:
        return _field(b"\x3a", value)
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_key_values(b"\x0a", value)))
    return _any_value(value)


def _key_values(tag: bytes, attributes: Mapping[str, Any] | None) -> list[bytes]:
    """One ``tag`` field (a KeyValue) per attribute, in order."""
    if not attributes:
        return []
    if type(attributes) is not dict:  # BoundedAttributes (resource, scope): the compiled
        attributes = dict(attributes)  # otlp_encode takes exactly a dict
    try:
        return _attributes(tag, attributes)  # str, int, float, bool, list of str
    except (_Unsupported, TypeError):  # compiled, otlp_encode checks its argument types
        return [
            _field(tag, _key_field(key) + _field(b"\x12", _value(value)))
            for key, value in attributes.items()
        ]


def _exemplars(tag: bytes, exemplars: Iterable[Any]) -> list[bytes]:
    out = []
    for exemplar in exemplars:
        parts = []
        if exemplar.time_unix_nano:
            parts.append(b"\x11" + _pack_fixed64(exemplar.time_unix_nano))
        if type(exemplar.value) is float:
            parts.append(b"\x19" + _pack_double(exemplar.value))
        if exemplar.span_id is not None and exemplar.trace_id is not None:
            parts.append(_field(b"\x22", exemplar.span_id.to_bytes(8, "big")))
            parts.append(_field(b"\x2a", exemplar.trace_id.to_bytes(16, "big")))
        if type(exemplar.value) is not float:
            parts.append(b"\x31" + _pack_sfixed64(exemplar.value))
        parts += _key_values(b"\x3a", exemplar.filtered_attributes)
        out.append(_field(tag, b"".join(parts)))
    return out


def _number_point(point: NumberDataPoint, *, with_start: bool) -> bytes:
    parts = []
    if with_start and point.start_time_unix_nano:
        parts.append(b"\x11" + _pack_fixed64(point.start_time_unix_nano))
    if point.time_unix_nano:
        parts.append(b"\x19" + _pack_fixed64(point.time_unix_nano))
    is_int = isinstance(point.value, int)
    if not is_int:
        parts.append(b"\x21" + _pack_double(point.value))
    parts += _exemplars(b"\x2a", point.exemplars or ())
    if is_int:
        parts.append(b"\x31" + _pack_sfixed64(point.value))
    parts += _key_values(b"\x3a", point.attributes)
    return _field(b"\x0a", b"".join(parts))


def _histogram_point(point: HistogramDataPoint) -> bytes:
    parts = []
    if point.start_time_unix_nano:
        parts.append(b"\x11" + _pack_fixed64(point.start_time_unix_nano))
    if point.time_unix_nano:
        parts.append(b"\x19" + _pack_fixed64(point.time_unix_nano))
    if point.count:
        parts.append(b"\x21" + _pack_fixed64(point.count))
    if point.sum is not None:
        parts.append(b"\x29" + _pack_double(point.sum))
    if point.bucket_counts:
        parts.append(
            _field(b"\x32", struct.pack(f"<{len(point.bucket_counts)}Q", *point.bucket_counts))
        )
    if point.explicit_bounds:
        bounds = point.explicit_bounds
        parts.append(_field(b"\x3a", struct.pack(f"<{len(bounds)}d", *bounds)))
    parts += _exemplars(b"\x42", point.exemplars or ())
    parts += _key_values(b"\x4a", point.attributes)
    if point.min is not None:
        parts.append(b"\x59" + _pack_double(point.min))
    if point.max is not None:
        parts.append(b"\x61" + _pack_double(point.max))
    return _field(b"\x0a", b"".join(parts))


def _temporality(value: Any) -> bytes:
    return b"\x10" + _varint(int(value)) if int(value) else b""


def _data(metric: Metric) -> bytes:
    """The ``data`` oneof of one metric (nothing for a kind without data points, as the
    SDK's encoder sets the oneof only from a data point)."""
    data = metric.data
    if isinstance(data, Sum):
        if not data.data_points:
            return b""
        points = [_number_point(p, with_start=True) for p in data.data_points]
        tail = _temporality(data.aggregation_temporality)
        tail += b"\x18\x01" if data.is_monotonic else b""
        return _field(b"\x3a", b"".join(points) + tail)
    if isinstance(data, Gauge):
        if not data.data_points:
            return b""
        return _field(
            b"\x2a", b"".join(_number_point(p, with_start=False) for p in data.data_points)
        )
    if isinstance(data, Histogram):
        if not data.data_points:
            return b""
        points = [_histogram_point(p) for p in data.data_points]
        return _field(b"\x4a", b"".join(points) + _temporality(data.aggregation_temporality))
    logger.debug("metrics: %s (%s) is not encoded", metric.name, type(data).__name__)
    return b""


def _text(tag: bytes, text: str | None) -> bytes:
    return _field(tag, text.encode()) if text else b""


def _metric(metric: Metric) -> bytes:
    try:
        return _field(
            b"\x12",
            _text(b"\x0a", metric.name)
            + _text(b"\x12", metric.description)
            + _text(b"\x1a", metric.unit)
            + _data(metric),
        )
    except (UnicodeEncodeError, _Unsupported, struct.error, TypeError, AttributeError) as e:
        raise MetricsEncodeError(f"metric {metric.name}: {type(e).__name__}: {e}") from None


def _scope(scope: Any) -> bytes:
    if scope is None:
        return _field(b"\x0a", b"")
    body = _text(b"\x0a", scope.name) + _text(b"\x12", scope.version)
    body += b"".join(_key_values(b"\x1a", getattr(scope, "attributes", None)))
    return _field(b"\x0a", body)


def encode_metrics_bytes(data: MetricsData) -> bytes:
    """The serialized ``ExportMetricsServiceRequest`` of ``data``.

    Raises:
        MetricsEncodeError: a value the wire format cannot carry (names the metric).
    """
    out = []
    for resource_metrics in data.resource_metrics:
        resource = resource_metrics.resource
        try:
            attributes = b"".join(_key_values(b"\x0a", resource.attributes))
        except (UnicodeEncodeError, _Unsupported, struct.error, TypeError) as e:
            raise MetricsEncodeError(f"the resource: {type(e).__name__}: {e}") from None
        scopes = []
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            scopes.append(
                _field(
                    b"\x12",
                    _scope(scope)
                    + b"".join(_metric(m) for m in scope_metrics.metrics)
                    + _text(b"\x1a", getattr(scope, "schema_url", "") if scope else ""),
                )
            )
        body = _field(b"\x0a", attributes) + b"".join(scopes)
        body += _text(b"\x1a", resource.schema_url)
        out.append(_field(b"\x0a", body))
    return b"".join(out)


def data_points(data: MetricsData) -> int:
    """How many data points ``data`` holds (what a partial success's count is of)."""
    points: Sequence[Any]
    total = 0
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                points = getattr(metric.data, "data_points", ())
                total += len(points)
    return total
