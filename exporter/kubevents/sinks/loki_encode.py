"""Loki push encoding: output records -> streams -> JSON or protobuf bodies. Pure, no I/O.

The mapping mirrors what Loki's native OTLP ingestion makes of kubevents' OTLP
output (grafana/loki ``pkg/loghttp/push/otlplabels``), so LogQL queries,
dashboards and rules work the same whichever way the logs arrived:

* **stream labels**: the resource attributes named in ``loki.labels``
  (default ``service.name``, ``k8s.cluster.name``, ``k8s.namespace.name``),
  with dots as underscores; at most 15 (Loki's ``max_label_names_per_series``);
* **line**: the body (the Event message);
* **timestamp**: the record's occurrence time;
* **structured metadata**, in Loki's order: the other resource attributes
  (``service_version``, ``service_instance_id``), ``scope_name``,
  ``scope_version``, every record attribute (``k8s_event_reason``,
  ``kubevents_category``...), then ``observed_timestamp`` (nanoseconds),
  ``severity_number``, ``severity_text`` and ``event_name``. Values are
  strings as Loki's ``AsString`` writes them: ``true``/``false``, integers in
  decimal, doubles in shortest form (``2.5``, ``3``), lists as JSON.
  ``severity_number`` is what Loki derives ``detected_level`` from, for
  pushed entries as for OTLP ones.

Loki 3.7 does not map the OTLP EventName field; the direct sink sends
``event_name`` anyway (Loki main does the same for OTLP), so queries can use
it on both paths once the Collector copies it (see ``otel/``).

With ``profile="k8s-monitoring"`` the stream labels are instead those Grafana's
k8s-monitoring Helm chart gives cluster Events (chart 4.4.0, feature-cluster-events
1.0.0; see docs/sinks.md): ``job`` and ``service_name`` (the chart's job label),
``source``, ``cluster`` and ``k8s_cluster_name``, ``namespace`` (and
``k8s_namespace_name``, so kubevents' own dashboards still select by namespace), and on
Event records ``level`` (the Event type, ``Normal`` as ``Info``) and ``reason``. The
chart's structured metadata ``name`` (the involved object) and ``node`` are added to
kubevents' own, which is otherwise the same.

Entries are sorted by timestamp within each stream. Label values are cut to
:data:`MAX_LABEL_VALUE_BYTES`, and the protobuf label selector text escapes
quotes, backslashes and control characters, so no Event field can add or
change a label.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

import orjson

from kubevents import __version__
from kubevents import conventions as c
from kubevents.records import AttrValue, OutputRecord, ResourceInfo
from kubevents.sinks.otlp_encode import SCOPE_NAME

MAX_LABELS: Final = 15
"""Loki's default ``max_label_names_per_series``."""
MAX_LABEL_VALUE_BYTES: Final = 1024
"""Half of Loki's default ``max_label_value_length`` (2048)."""
DEFAULT_LABELS: Final = (c.SERVICE_NAME, c.K8S_CLUSTER_NAME, c.K8S_NAMESPACE_NAME)
"""The resource attributes indexed as stream labels by default."""
PROFILES: Final = ("kubevents", "k8s-monitoring")
"""Label profiles: kubevents' own, or that of Grafana's k8s-monitoring chart."""
K8S_MONITORING_JOB: Final = "integrations/kubernetes/eventhandler"
"""The chart's ``jobLabel`` default: its ``job`` and ``service_name`` label."""
K8S_MONITORING_SOURCE: Final = "kubernetes-events"
"""The chart's static ``source`` label of cluster Events."""
DERIVED_SOURCE: Final = "kubevents"
"""The ``source`` label of kubevents' incident and pattern records under that profile."""

Pairs = list[tuple[str, str]]

_CHART_TWIN: Final = {
    "k8s_cluster_name": ("cluster",),
    "k8s_namespace_name": ("namespace",),
}
"""The chart's names for the cluster and namespace labels, set beside kubevents' own."""

_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_ESCAPES = re.compile(r'[\\"\x00-\x1f\x7f]')
_EXPONENT = re.compile(r"e([+-])0*(\d)")


def label_name(attribute: str) -> str:
    """An OTel attribute name as a Loki/Prometheus label name (``k8s.event.reason`` -> ``k8s_event_reason``)."""
    name = _INVALID_LABEL_CHARS.sub("_", attribute)
    if not name or name[0].isdigit():
        name = "key_" + name
    return name


def value_string(value: AttrValue) -> str:
    """An attribute value as Loki writes it into structured metadata (pcommon ``AsString``)."""
    kind = value.__class__
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return float_string(value)  # type: ignore[arg-type]
    return orjson.dumps(value).decode()


def float_string(value: float) -> str:
    """Shortest round-trip decimal, exponent only below 1e-6 or from 1e21 (as ES6 and Go's pdata)."""
    if math.isnan(value) or math.isinf(value):
        return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
    magnitude = abs(value)
    if value.is_integer() and magnitude < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text and 1e-6 <= magnitude < 1e21:
        from decimal import Decimal

        return format(Decimal(text), "f")
    return _EXPONENT.sub(r"e\1\2", text)


def clip_label_value(value: str) -> str:
    data = value.encode("utf-8", "replace")
    if len(data) <= MAX_LABEL_VALUE_BYTES:
        return value
    return data[:MAX_LABEL_VALUE_BYTES].decode("utf-8", "ignore")


@dataclass(frozen=True, slots=True)
class Entry:
    timestamp_ns: int
    line: str
    metadata: Pairs


@dataclass(frozen=True, slots=True)
class Stream:
    labels: tuple[tuple[str, str], ...]
    """Sorted (name, value) pairs."""
    entries: list[Entry]


class LokiMapper:
    """Maps records to streams for one resource and one label configuration."""

    def __init__(
        self,
        resource: ResourceInfo,
        *,
        labels: Sequence[str] = DEFAULT_LABELS,
        scope_version: str = __version__,
        profile: str = "kubevents",
        job: str = K8S_MONITORING_JOB,
    ) -> None:
        if len(labels) > MAX_LABELS:
            raise ValueError(f"at most {MAX_LABELS} stream labels, got {len(labels)}")
        if profile not in PROFILES:
            raise ValueError(f"unknown label profile {profile!r} (known: {', '.join(PROFILES)})")
        self._resource = resource
        self._chart = profile == "k8s-monitoring"
        self._job = clip_label_value(job)
        # The chart's profile indexes the cluster and namespace under both names, and
        # drops service.name ("kubevents"): its service_name label is the job.
        self._indexed = (
            (c.SERVICE_NAME, c.K8S_CLUSTER_NAME, c.K8S_NAMESPACE_NAME)
            if self._chart
            else tuple(labels)
        )
        self._scope: Pairs = [("scope_name", SCOPE_NAME), ("scope_version", scope_version)]
        self._cache: dict[str, tuple[tuple[tuple[str, str], ...], Pairs]] = {}

    def _for_namespace(self, namespace: str) -> tuple[tuple[tuple[str, str], ...], Pairs]:
        """Stream labels and resource structured metadata of ``namespace`` (cached)."""
        cached = self._cache.get(namespace)
        if cached is None:
            attrs = self._resource.attributes(namespace)
            pairs = [
                (label_name(key), clip_label_value(str(attrs[key])))
                for key in self._indexed
                if attrs.get(key)
            ]
            if self._chart:
                pairs = [(k, v) for k, v in pairs if k != "service_name"]
                pairs += [("job", self._job), ("service_name", self._job)]
                pairs += [(chart, v) for k, v in list(pairs) for chart in _CHART_TWIN.get(k, ())]
            labels = tuple(sorted(pairs))
            metadata = [
                (label_name(key), value_string(value))
                for key, value in attrs.items()
                if key not in self._indexed
            ]
            cached = self._cache[namespace] = (labels, metadata + self._scope)
        return cached

    def record_labels(
        self, record: OutputRecord, labels: tuple[tuple[str, str], ...]
    ) -> tuple[tuple[str, str], ...]:
        """The chart profile's per-record labels (source, level, reason) added to ``labels``."""
        if not self._chart:
            return labels
        if record.event_name != c.EVENT_NAME_EVENT:
            return tuple(sorted((*labels, ("source", DERIVED_SOURCE))))
        extra = [("source", K8S_MONITORING_SOURCE)]
        if record.severity_text:
            level = "Info" if record.severity_text == "Normal" else record.severity_text
            extra.append(("level", clip_label_value(level)))
        reason = record.attributes.get(c.EVENT_REASON)
        if reason:
            extra.append(("reason", clip_label_value(str(reason))))
        return tuple(sorted((*labels, *extra)))

    def entry_metadata(self, record: OutputRecord, resource_metadata: Pairs) -> Pairs:
        """The structured metadata of one record, in Loki's OTLP ingestion order."""
        metadata = list(resource_metadata)
        metadata.extend(
            (label_name(key), value_string(value)) for key, value in record.attributes.items()
        )
        metadata.append(("observed_timestamp", str(record.observed_ns)))
        metadata.append(("severity_number", str(record.severity_number)))
        if record.severity_text:
            metadata.append(("severity_text", record.severity_text))
        if record.event_name:
            metadata.append(("event_name", record.event_name))
        if self._chart:
            # The chart's structured metadata: the involved object's name, and its node.
            for name, key in (("name", c.OBJECT_NAME), ("node", c.KV_NODE)):
                value = record.attributes.get(key)
                if value:
                    metadata.append((name, value_string(value)))
        return metadata

    def streams(self, records: Iterable[OutputRecord]) -> list[Stream]:
        """Records grouped into streams (first-seen order), entries sorted by timestamp."""
        by_labels: dict[tuple[tuple[str, str], ...], list[Entry]] = {}
        for record in records:
            labels, resource_metadata = self._for_namespace(record.namespace)
            labels = self.record_labels(record, labels)
            entries = by_labels.setdefault(labels, [])
            entries.append(
                Entry(
                    record.timestamp_ns, record.body, self.entry_metadata(record, resource_metadata)
                )
            )
        out = []
        for labels, entries in by_labels.items():
            entries.sort(key=lambda e: e.timestamp_ns)  # stable: same time keeps export order
            out.append(Stream(labels, entries))
        return out


class TwinSeparator:
    """Moves same-stream, same-time, same-line twins apart by a nanosecond each, and
    gives an Event without any time its observed time.

    Loki keeps one entry per stream, timestamp and line: a second Event with the
    same message in the same second and namespace (two Pods of one Deployment
    failing the same probe) would vanish. Each later twin is moved by one
    nanosecond per earlier one. It runs once per record, when the sink takes it
    (in export order, before the queue and the spool), so a retried request is
    byte-identical and Loki still drops a true duplicate. It remembers the
    last ``memory`` records (a hash of the line, not the line).
    """

    def __init__(self, memory: int = 50_000) -> None:
        self._memory = memory
        self._seen: OrderedDict[tuple[str, int, int], None] = OrderedDict()

    def __call__(self, records: list[OutputRecord]) -> list[OutputRecord]:
        out = []
        for record in records:
            line = hash(record.body)
            # An Event without any time: its observed time, as Loki's OTLP ingestion does
            # (Loki refuses time 0 as too old).
            ts = record.timestamp_ns or record.observed_ns
            while (record.namespace, ts, line) in self._seen:
                ts += 1
            self._seen[(record.namespace, ts, line)] = None
            if len(self._seen) > self._memory:
                self._seen.popitem(last=False)
            out.append(record if ts == record.timestamp_ns else replace(record, timestamp_ns=ts))
        return out


def encode_json(streams: Sequence[Stream]) -> bytes:
    """The ``application/json`` push body (timestamps as strings, as the API requires)."""
    payload = {
        "streams": [
            {
                "stream": dict(stream.labels),
                "values": [[str(e.timestamp_ns), e.line, dict(e.metadata)] for e in stream.entries],
            }
            for stream in streams
        ]
    }
    return orjson.dumps(payload)


def selector(labels: Iterable[tuple[str, str]]) -> str:
    """``{name="value", ...}``: the label text of a protobuf stream, every value escaped."""
    return "{" + ", ".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


def _escape(value: str) -> str:
    def repl(m: re.Match[str]) -> str:
        ch = m.group()
        return {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(
            ch, f"\\x{ord(ch):02x}"
        )

    return _LABEL_ESCAPES.sub(repl, value)


def encode_protobuf(streams: Sequence[Stream]) -> bytes:
    """The serialized ``logproto.PushRequest`` (not yet snappy-compressed)."""
    from kubevents.sinks.loki_proto import PushRequest

    request = PushRequest()
    for stream in streams:
        out = request.streams.add()
        out.labels = selector(stream.labels)
        add_entry = out.entries.add
        for e in stream.entries:
            entry = add_entry()
            entry.timestamp.seconds, entry.timestamp.nanos = divmod(e.timestamp_ns, 1_000_000_000)
            entry.line = e.line
            add_pair = entry.structuredMetadata.add
            for name, value in e.metadata:
                pair = add_pair()
                pair.name = name
                pair.value = value
    data: bytes = request.SerializeToString()
    return data
