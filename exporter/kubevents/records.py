"""Output records: exactly what every sink sends, built in one place.

An :class:`OutputRecord` is an OpenTelemetry log record in plain Python
values. The jsonl sink writes it as JSON, the OTLP sinks encode it to
protobuf and the Loki sink maps it to a stream entry, so all of them carry
the same content by construction. Attribute names come from
``conventions.py``; empty values are omitted rather than sent as "".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from kubevents import conventions as c
from kubevents.enrich.incidents import IncidentTransition
from kubevents.enrich.patterns import PatternState, Transition
from kubevents.model import Correlation, Enriched, KubeEvent

AttrValue = str | int | float | bool | list[str]


@dataclass(frozen=True, slots=True)
class ResourceInfo:
    """What describes this kubevents process (the OTLP Resource, less the namespace)."""

    service_version: str
    instance_id: str
    cluster_name: str = ""

    def attributes(self, namespace: str) -> dict[str, AttrValue]:
        """The resource attributes of a record about an object in ``namespace``."""
        attrs: dict[str, AttrValue] = {
            c.SERVICE_NAME: c.SERVICE_NAME_VALUE,
            c.SERVICE_VERSION: self.service_version,
            c.SERVICE_INSTANCE_ID: self.instance_id,
        }
        if self.cluster_name:
            attrs[c.K8S_CLUSTER_NAME] = self.cluster_name
        if namespace:
            attrs[c.K8S_NAMESPACE_NAME] = namespace
        return attrs


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One OpenTelemetry log record, sink-independent."""

    timestamp_ns: int
    observed_ns: int
    severity_number: int
    severity_text: str
    event_name: str
    body: str
    namespace: str
    """The involved object's namespace; sinks put it on the Resource."""
    attributes: dict[str, AttrValue]

    def __init__(
        self,
        timestamp_ns: int,
        observed_ns: int,
        severity_number: int,
        severity_text: str,
        event_name: str,
        body: str,
        namespace: str,
        attributes: dict[str, AttrValue],
    ) -> None:
        # Written out: see kubevents.model's docstring, "Constructors".
        object.__setattr__(self, "timestamp_ns", timestamp_ns)
        object.__setattr__(self, "observed_ns", observed_ns)
        object.__setattr__(self, "severity_number", severity_number)
        object.__setattr__(self, "severity_text", severity_text)
        object.__setattr__(self, "event_name", event_name)
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "attributes", attributes)


def event_record(enriched: Enriched) -> OutputRecord:
    """The ``k8s.event`` log record of one Event update."""
    event = enriched.event
    cls = enriched.classification
    severity = cls.severity
    attrs = _event_attributes(event)
    attrs[c.KV_CATEGORY] = _CATEGORY_VALUES[cls.category]
    attrs[c.KV_SEVERITY] = _SEVERITY_VALUES[severity]
    if cls.rule_id:
        attrs[c.KV_RULE] = cls.rule_id
    attrs[c.KV_OCCURRENCES] = enriched.occurrences
    if enriched.pattern_id:
        attrs[c.KV_PATTERN_ID] = enriched.pattern_id
    if enriched.correlation is not None:
        _add_correlation(attrs, enriched.correlation)
    return OutputRecord(
        event.time_ns,
        enriched.observed_ns,
        _SEVERITY_NUMBERS[severity],
        event.type,
        c.EVENT_NAME_EVENT,
        event.message,
        event.regarding.namespace or event.namespace,
        attrs,
    )


# Per record, precomputed: an Enum's ``.value`` and a property of conventions.py (not
# compiled) are each a Python-level lookup, a dict hit is one C call; Final, the compiled
# build holds each table as a static rather than looking it up in the module's dict.
_CATEGORY_VALUES: Final[dict[c.Category, str]] = {
    category: category.value for category in c.Category
}
_SEVERITY_VALUES: Final[dict[c.Severity, str]] = {
    severity: severity.value for severity in c.Severity
}
_SEVERITY_NUMBERS: Final[dict[c.Severity, int]] = {
    severity: severity.number for severity in c.Severity
}
_KIND_NAME_KEYS: Final[dict[str, str]] = {
    kind: key for kind in c.SEMCONV_KINDS if (key := c.kind_name_key(kind)) is not None
}
"""``conventions.kind_name_key`` of every kind that has one."""


def pattern_record(transition: Transition, observed_ns: int) -> OutputRecord:
    """The ``kubevents.pattern`` log record of one pattern transition (or anomaly)."""
    t = transition
    resolved = t.state is PatternState.RESOLVED
    severity = c.Severity.INFO if resolved else t.severity
    attrs: dict[str, AttrValue] = {
        c.KV_PATTERN_ID: t.pattern_id,
        c.KV_PATTERN_STATE: t.state.value,
        c.KV_PATTERN_KEY: t.key,
        c.KV_PATTERN_COUNT: t.count,
        c.KV_PATTERN_RATE: round(t.rate_per_minute, 3),
        c.KV_PATTERN_FIRST_SEEN: format_rfc3339(t.first_seen_ns),
        c.KV_PATTERN_LAST_SEEN: format_rfc3339(t.last_seen_ns),
        c.KV_CATEGORY: t.category.value,
        c.KV_SEVERITY: severity.value,
    }
    if t.rule_id:
        attrs[c.KV_PATTERN_RULE] = t.rule_id
    if t.samples:
        attrs[c.KV_PATTERN_SAMPLES] = ",".join(sample.uid for sample in t.samples)
    if t.incidents:
        attrs[c.KV_PATTERN_INCIDENTS] = ",".join(t.incidents)
    if t.state is PatternState.ANOMALOUS:
        attrs[c.KV_ANOMALY_SCORE] = round(t.score, 3)
    example = f'; e.g. "{t.samples[0].message}"' if t.samples else ""
    body = f"{t.state.value} pattern {t.key}: {t.count} occurrences, {t.rate_per_minute:.1f}/min{example}"
    return OutputRecord(
        timestamp_ns=t.time_ns,
        observed_ns=observed_ns,
        severity_number=severity.number,
        severity_text=severity.value,
        event_name=c.EVENT_NAME_PATTERN,
        body=body,
        namespace=t.namespace,
        attributes=attrs,
    )


def _add_correlation(attrs: dict[str, AttrValue], correlation: Correlation) -> None:
    """Correlation IDs: object, workload (+ semconv names of the owner chain), node, incident."""
    attrs[c.KV_OBJECT] = correlation.object
    owners = correlation.owners
    workload = owners[-1] if owners else correlation.subject
    if workload is not None:
        attrs[c.KV_WORKLOAD] = workload.key
    for owner in owners:
        key = _KIND_NAME_KEYS.get(owner.kind)
        if key is not None:
            attrs[key] = owner.name
    node = correlation.node
    if node:
        attrs[c.KV_NODE] = node
        attrs[c.K8S_NODE_NAME] = node
    if correlation.incident_id:
        attrs[c.KV_INCIDENT_ID] = correlation.incident_id
        if correlation.root_cause:
            attrs[c.KV_INCIDENT_ROOT_CAUSE] = True
        if correlation.rule:
            attrs[c.KV_INCIDENT_RULE] = correlation.rule
        if correlation.scope:
            attrs[c.KV_INCIDENT_SCOPE] = correlation.scope


def incident_record(transition: IncidentTransition, observed_ns: int) -> OutputRecord:
    """The ``kubevents.incident`` log record of one incident transition."""
    t = transition
    root = t.root
    attrs: dict[str, AttrValue] = {
        c.KV_INCIDENT_ID: t.incident_id,
        c.KV_INCIDENT_STATE: t.state.value,
        c.KV_INCIDENT_ROOT_REASON: root.reason,
        c.KV_INCIDENT_ROOT_OBJECT: root.object,
        c.KV_INCIDENT_ROOT_UID: root.uid,
        c.KV_INCIDENT_EVENTS: t.events,
        c.KV_INCIDENT_OCCURRENCES: t.occurrences,
        c.KV_INCIDENT_FIRST_SEEN: format_rfc3339(t.first_seen_ns),
        c.KV_INCIDENT_LAST_SEEN: format_rfc3339(t.last_seen_ns),
        c.KV_CATEGORY: root.category.value,
        c.KV_SEVERITY: t.severity.value,
    }
    # Strings (sorted, comma-joined), not arrays: Loki structured metadata and LogQL filter them.
    lists = (
        (c.KV_INCIDENT_WORKLOADS, t.workloads),
        (c.KV_INCIDENT_NODES, t.nodes),
        (c.KV_INCIDENT_NAMESPACES, t.namespaces),
    )
    for key, values in lists:
        if values:
            attrs[key] = ",".join(values)
    if t.categories:
        attrs[c.KV_INCIDENT_CATEGORIES] = ",".join(f"{name}={n}" for name, n in t.categories)
    if t.merged_into:
        attrs[c.KV_INCIDENT_MERGED_INTO] = t.merged_into
    if t.aliases:
        attrs[c.KV_INCIDENT_ALIASES] = ",".join(t.aliases)
    return OutputRecord(
        timestamp_ns=t.time_ns,
        observed_ns=observed_ns,
        severity_number=t.severity.number,
        severity_text=t.severity.value,
        event_name=c.EVENT_NAME_INCIDENT,
        body=t.describe(),
        namespace=t.namespace,
        attributes=attrs,
    )


def _event_attributes(event: KubeEvent) -> dict[str, AttrValue]:
    # One test per attribute, in the order the record has always listed them (no tuple of
    # pairs to build and walk for every record).
    ref = event.regarding
    attrs: dict[str, AttrValue] = {}
    if event.reason:
        attrs[c.EVENT_REASON] = event.reason
    if event.uid:
        attrs[c.EVENT_UID] = event.uid
    if event.name:
        attrs[c.EVENT_NAME] = event.name
    if event.action:
        attrs[c.EVENT_ACTION] = event.action
    if event.reporting_controller:
        attrs[c.EVENT_REPORTING_CONTROLLER] = event.reporting_controller
    if event.reporting_instance:
        attrs[c.EVENT_REPORTING_INSTANCE] = event.reporting_instance
    kind = ref.kind
    if kind:
        attrs[c.OBJECT_KIND] = kind
    name = ref.name
    if name:
        attrs[c.OBJECT_NAME] = name
    if ref.uid:
        attrs[c.OBJECT_UID] = ref.uid
    if ref.field_path:
        attrs[c.OBJECT_FIELDPATH] = ref.field_path
    if ref.api_version:
        attrs[c.OBJECT_API_VERSION] = ref.api_version
    if ref.resource_version:
        attrs[c.OBJECT_RESOURCE_VERSION] = ref.resource_version
    if event.api_version:
        attrs[c.KV_SOURCE_API] = event.api_version
    attrs[c.EVENT_COUNT] = event.count
    if event.first_time_ns:
        attrs[c.EVENT_START_TIME] = format_rfc3339(event.first_time_ns)
    kind_key = _KIND_NAME_KEYS.get(kind)
    if kind_key is not None and name:
        attrs[kind_key] = name
    related = event.related
    if related is not None and related.name:
        attrs[c.KV_RELATED] = related.key
    return attrs


def format_rfc3339(time_ns: int) -> str:
    """``2026-11-20T10:00:01.123456789Z`` (UTC, nanoseconds, no trailing-zero trimming)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    if not nanos:  # a whole second (an Event's firstTimestamp): the whole text kept
        whole = _WHOLE_SECONDS.get(seconds)
        if whole is None:
            if len(_WHOLE_SECONDS) >= _SECONDS_KEPT:
                _WHOLE_SECONDS.clear()
            head = _SECONDS.get(seconds) or _seconds_text(seconds)
            whole = _WHOLE_SECONDS[seconds] = head + "000000000Z"
        return whole
    text = _SECONDS.get(seconds)
    if text is None:
        text = _seconds_text(seconds)
    # The nanoseconds zero-padded to 9 digits: str of an int with a 10th digit in front,
    # cut off (an f-string's ``:09d`` goes through format()'s spec parsing, compiled too).
    return text + str(nanos + 1_000_000_000)[1:] + "Z"


def _seconds_text(seconds: int) -> str:
    """The text of ``seconds`` up to the ``.``, kept in :data:`_SECONDS`."""
    if len(_SECONDS) >= _SECONDS_KEPT:
        _SECONDS.clear()
    text = _SECONDS[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds))
    return text


_SECONDS_KEPT: Final = 4096
_SECONDS: Final[dict[int, str]] = {}
"""The text of the seconds seen lately, up to the ``.``: records come in bursts of the same
second, and strftime is most of the cost. A dict read in compiled code, not an
``lru_cache`` call; emptied when full. With the f-string, the call cost about 3.4 times
as much (546 against 162 ns, compiled, measured)."""
_WHOLE_SECONDS: Final[dict[int, str]] = {}
"""The whole text of the whole seconds seen lately (``...:01.000000000Z``): the start time
of every Event of the core/v1 API is one, so the record takes it as it is, no
concatenation. Emptied when full, as :data:`_SECONDS`."""
