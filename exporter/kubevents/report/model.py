"""What the report shows, gathered from records: Events, incidents, patterns, anomalies.

Everything here comes from the output contract (docs/attributes.md), so a
report of a replay and a report of the jsonl records ``kubevents run`` wrote
are the same. Two things the records say only indirectly are worked out here:

* **merged incidents**: a ``kubevents.incident`` record with state ``merged``
  names the incident it was merged into (``kubevents.incident.merged_into``);
  ids are resolved with union-find, so an Event record that still carries a
  merged id lands in the surviving incident, however long the chain;
* **Event counts of incidents still open**: ``ongoing`` records are written
  only when an incident's scope grows, so the latest one may be behind. The
  count is the incident's Event records plus its root cause (whose record
  carries no incident id when it became the root later, docs/correlation.md);
  a ``resolved`` record, final by definition, is taken as it is.
"""

from __future__ import annotations

import calendar
import functools
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from kubevents import conventions as c
from kubevents.report.reading import Record

KV_INCIDENT_MERGED_INTO: Final = "kubevents.incident.merged_into"
"""On a ``merged`` incident record: the id of the incident it joined."""
KV_INCIDENT_RULE: Final = "kubevents.incident.rule"
"""On an Event record: the correlation rule of the link that joined it (``group`` for group links)."""
KV_INCIDENT_SCOPE: Final = "kubevents.incident.scope"
"""On an Event record: the scope of that link (object, workload, node, volume, namespace)."""
MERGED: Final = "merged"
RESOLVED: Final = "resolved"
SEVERITIES: Final = ("critical", "error", "warning", "info", "debug")
SEVERITY_RANK: Final = {name: len(SEVERITIES) - i for i, name in enumerate(SEVERITIES)}


@dataclass(slots=True)
class EventRow:
    """One ``k8s.event`` record: one update of one Event."""

    time_ns: int
    uid: str
    reason: str
    type: str
    category: str
    severity: str
    object: str
    namespace: str
    workload: str
    node: str
    incident: str
    root: bool
    occurrences: int
    count: int
    message: str
    controller: str
    rule: str
    """The classification rule; empty when the type's default applied (unclassified)."""
    pattern: str
    join_rule: str
    join_scope: str


@dataclass(slots=True)
class Incident:
    """One incident as the records tell it, merged ids resolved."""

    id: str
    state: str
    """``resolved`` or ``open`` (still open at the end of the input)."""
    root_reason: str
    root_object: str
    root_uid: str
    category: str
    severity: str
    first_ns: int
    last_ns: int
    events: int
    occurrences: int
    workloads: list[str]
    nodes: list[str]
    namespaces: list[str]
    description: str
    members: list[EventRow] = field(default_factory=list)
    """Its Event records (those of merged incidents included), in time order."""
    root_row: EventRow | None = None
    """The root cause's record, when the input holds it."""
    merged: list[str] = field(default_factory=list)
    """Ids merged into this one."""

    def rows(self) -> list[EventRow]:
        """Its Event records and the root cause's (when that carries no incident id)."""
        root = self.root_row
        if root is None or any(e is root for e in self.members):
            return self.members
        return [root, *self.members]


@dataclass(slots=True)
class Pattern:
    """One pattern or anomaly: its transitions, latest last."""

    id: str
    key: str
    rule: str
    category: str
    severity: str
    anomaly: bool
    transitions: list[tuple[int, str, float, int, float]] = field(default_factory=list)
    """(time, state, rate per minute, count, anomaly score) per record."""

    @property
    def count(self) -> int:
        """Occurrences so far (the latest record's)."""
        return self.transitions[-1][3]

    @property
    def state(self) -> str:
        """The latest state."""
        return self.transitions[-1][1]

    def fields(self) -> dict[str, str]:
        """The key as fields: ``reason=BackOff;namespace=shop`` -> {reason: BackOff, ...}."""
        out = {}
        for part in self.key.split(";"):
            name, sep, value = part.partition("=")
            if sep:
                out[name] = value
        return out


@dataclass
class ReportData:
    """Everything the page shows, aggregated from records."""

    events: list[EventRow]
    incidents: list[Incident]
    patterns: list[Pattern]
    cluster: str = ""
    problems: int = 0
    """Input lines or objects that could not be used."""

    @property
    def occurrences(self) -> int:
        return sum(e.occurrences for e in self.events)

    @property
    def span_ns(self) -> tuple[int, int]:
        """(first, last) event time of the input."""
        if not self.events:
            return (0, 0)
        return (self.events[0].time_ns, self.events[-1].time_ns)

    def counts(self, attribute: str) -> Counter[str]:
        """Occurrences by one EventRow attribute (``category``, ``severity``, ...)."""
        out: Counter[str] = Counter()
        for e in self.events:
            out[getattr(e, attribute)] += e.occurrences
        return out


def parse_time(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time as the sinks write it (UTC)."""
    seconds = _seconds(text[:19])
    frac = text[20:-1] if len(text) > 20 and text[19] == "." else ""
    return seconds * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if frac else 0)


@functools.lru_cache(maxsize=8192)
def _seconds(prefix: str) -> int:
    return calendar.timegm(time.strptime(prefix, "%Y-%m-%dT%H:%M:%S"))


class UnionFind:
    """Incident ids, each pointing at the one it was merged into."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        """The surviving id of ``key`` (itself when never merged)."""
        root = key
        while (up := self.parent.get(root)) is not None:
            root = up
        while key != root:  # path compression
            up = self.parent[key]
            self.parent[key] = root
            key = up
        return root

    def merge(self, merged: str, survivor: str) -> None:
        """``merged`` joined ``survivor``; a record that would make a cycle is ignored."""
        a, b = self.find(merged), self.find(survivor)
        if a != b:
            self.parent[a] = b


def _str(attrs: dict[str, Any], key: str) -> str:
    value = attrs.get(key)
    return value if isinstance(value, str) else ""


def _int(attrs: dict[str, Any], key: str, default: int = 0) -> int:
    value = attrs.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _float(attrs: dict[str, Any], key: str) -> float:
    value = attrs.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _list(attrs: dict[str, Any], key: str) -> list[str]:
    value = _str(attrs, key)
    return value.split(",") if value else []


def event_row(record: Record) -> EventRow:
    """The EventRow of one ``k8s.event`` record."""
    a = record["attributes"]
    resource = record.get("resource") or {}
    return EventRow(
        time_ns=parse_time(record.get("timestamp") or ""),
        uid=_str(a, c.EVENT_UID),
        reason=_str(a, c.EVENT_REASON) or "(no reason)",
        type=record.get("severity_text") or "",
        category=_str(a, c.KV_CATEGORY) or "Other",
        severity=_str(a, c.KV_SEVERITY) or "info",
        object=_str(a, c.KV_OBJECT) or _object_key(a, resource),
        namespace=_namespace(a, resource),
        workload=_str(a, c.KV_WORKLOAD),
        node=_str(a, c.KV_NODE),
        incident=_str(a, c.KV_INCIDENT_ID),
        root=a.get(c.KV_INCIDENT_ROOT_CAUSE) is True,
        occurrences=_int(a, c.KV_OCCURRENCES, 1),
        count=_int(a, c.EVENT_COUNT, 1),
        message=record.get("body") or "",
        controller=_str(a, c.EVENT_REPORTING_CONTROLLER),
        rule=_str(a, c.KV_RULE),
        pattern=_str(a, c.KV_PATTERN_ID),
        join_rule=_str(a, KV_INCIDENT_RULE),
        join_scope=_str(a, KV_INCIDENT_SCOPE),
    )


def _namespace(attrs: dict[str, Any], resource: dict[str, Any]) -> str:
    # The involved object's namespace, as incidents count it: an Event about a Node is
    # kept in some namespace ("default"), but the Node has none.
    obj = _str(attrs, c.KV_OBJECT)
    if obj:
        parts = obj.split("/", 2)
        return parts[0] if len(parts) == 3 else ""
    return _str(resource, c.K8S_NAMESPACE_NAME)


def _object_key(attrs: dict[str, Any], resource: dict[str, Any]) -> str:
    # Correlation off: the same namespace/Kind/name, from the plain attributes.
    kind, name = _str(attrs, c.OBJECT_KIND), _str(attrs, c.OBJECT_NAME)
    namespace = _str(resource, c.K8S_NAMESPACE_NAME)
    return "/".join(part for part in (namespace, kind, name) if part)


def build(records: Iterable[Record], *, problems: int = 0) -> ReportData:
    """Aggregate records (in any order) into what the report shows."""
    events: list[EventRow] = []
    incident_records: dict[str, list[tuple[int, dict[str, Any], str]]] = {}
    patterns: dict[str, Pattern] = {}
    merges = UnionFind()
    cluster = ""
    for record in records:
        name = record.get("event_name")
        attrs = record["attributes"]
        if not cluster:
            cluster = _str(record.get("resource") or {}, c.K8S_CLUSTER_NAME)
        if name == c.EVENT_NAME_EVENT:
            events.append(event_row(record))
        elif name == c.EVENT_NAME_INCIDENT:
            incident = _str(attrs, c.KV_INCIDENT_ID)
            if not incident:
                continue
            t = parse_time(record.get("timestamp") or "")
            incident_records.setdefault(incident, []).append((t, attrs, record.get("body") or ""))
            survivor = _str(attrs, KV_INCIDENT_MERGED_INTO)
            if _str(attrs, c.KV_INCIDENT_STATE) == MERGED and survivor:
                merges.merge(incident, survivor)
        elif name == c.EVENT_NAME_PATTERN:
            _add_pattern(patterns, record)
    events.sort(key=lambda e: e.time_ns)  # stable: same-time records keep their order
    for p in patterns.values():
        p.transitions.sort(key=lambda t: t[0])
    return ReportData(
        events=events,
        incidents=_incidents(events, incident_records, merges),
        patterns=sorted(patterns.values(), key=lambda p: (-p.count, p.id)),
        cluster=cluster,
        problems=problems,
    )


def _add_pattern(patterns: dict[str, Pattern], record: Record) -> None:
    a = record["attributes"]
    pid = _str(a, c.KV_PATTERN_ID)
    if not pid:
        return
    state = _str(a, c.KV_PATTERN_STATE)
    pattern = patterns.get(pid)
    if pattern is None:
        pattern = patterns[pid] = Pattern(
            id=pid,
            key=_str(a, c.KV_PATTERN_KEY),
            rule=_str(a, c.KV_PATTERN_RULE),
            category=_str(a, c.KV_CATEGORY),
            severity=_str(a, c.KV_SEVERITY),
            anomaly=state == "anomalous",
        )
    elif state != "resolved":
        pattern.severity = _str(a, c.KV_SEVERITY) or pattern.severity
    pattern.transitions.append(
        (
            parse_time(record.get("timestamp") or ""),
            state,
            _float(a, c.KV_PATTERN_RATE),
            _int(a, c.KV_PATTERN_COUNT),
            _float(a, c.KV_ANOMALY_SCORE),
        )
    )


def _incidents(
    events: list[EventRow],
    records: dict[str, list[tuple[int, dict[str, Any], str]]],
    merges: UnionFind,
) -> list[Incident]:
    by_id: dict[str, Incident] = {}
    for incident_id in records:
        survivor = merges.find(incident_id)
        if survivor != incident_id:
            continue
        by_id[survivor] = _incident(survivor, records[survivor])
    for incident_id in records:
        survivor = merges.find(incident_id)
        if survivor != incident_id and survivor in by_id:
            by_id[survivor].merged.append(incident_id)
    roots: dict[str, list[Incident]] = {}
    for incident in by_id.values():
        roots.setdefault(incident.root_uid, []).append(incident)
    for e in events:
        if e.incident:
            found = by_id.get(merges.find(e.incident))
            if found is None:  # its incident records are not in the input
                found = by_id[e.incident] = _stub(e)
            found.members.append(e)
        for rooted in roots.get(e.uid, ()):
            # The root's record is the one at the incident's first-seen time (an Event
            # has one record per update); failing that, its earliest.
            current = rooted.root_row
            if current is None or (
                e.time_ns == rooted.first_ns and current.time_ns != rooted.first_ns
            ):
                rooted.root_row = e
    for incident in by_id.values():
        _recount(incident, records.get(incident.id, []))
    return sorted(by_id.values(), key=lambda i: (i.first_ns, i.id))


def _incident(incident_id: str, records: list[tuple[int, dict[str, Any], str]]) -> Incident:
    records.sort(key=lambda r: r[0])
    live = [r for r in records if _str(r[1], c.KV_INCIDENT_STATE) != MERGED] or records
    _, a, body = live[-1]
    first, last = _str(a, c.KV_INCIDENT_FIRST_SEEN), _str(a, c.KV_INCIDENT_LAST_SEEN)
    return Incident(
        id=incident_id,
        state=RESOLVED if _str(a, c.KV_INCIDENT_STATE) == RESOLVED else "open",
        root_reason=_str(a, c.KV_INCIDENT_ROOT_REASON),
        root_object=_str(a, c.KV_INCIDENT_ROOT_OBJECT),
        root_uid=_str(a, c.KV_INCIDENT_ROOT_UID),
        category=_str(a, c.KV_CATEGORY) or "Other",
        severity=_str(a, c.KV_SEVERITY) or "warning",
        first_ns=parse_time(first) if first else live[0][0],
        last_ns=parse_time(last) if last else live[-1][0],
        events=_int(a, c.KV_INCIDENT_EVENTS),
        occurrences=_int(a, c.KV_INCIDENT_OCCURRENCES),
        workloads=_list(a, c.KV_INCIDENT_WORKLOADS),
        nodes=_list(a, c.KV_INCIDENT_NODES),
        namespaces=_list(a, c.KV_INCIDENT_NAMESPACES),
        description=body,
    )


def _stub(e: EventRow) -> Incident:
    """An incident known only from its Events' records (its own records were cut off)."""
    return Incident(
        id=e.incident,
        state="open",
        root_reason="",
        root_object="",
        root_uid="",
        category=e.category,
        severity=e.severity,
        first_ns=e.time_ns,
        last_ns=e.time_ns,
        events=0,
        occurrences=0,
        workloads=[],
        nodes=[],
        namespaces=[],
        description="",
    )


def _recount(incident: Incident, records: list[tuple[int, dict[str, Any], str]]) -> None:
    """Event and occurrence counts, scope and severity from the Events (see the module doc)."""
    members = incident.members
    root = incident.root_row
    root_inside = any(e.root or e is root for e in members)
    events = len(members) + (0 if root_inside or not incident.root_uid else 1)
    occurrences = sum(e.occurrences for e in members)
    if not root_inside and root is not None:
        occurrences += root.occurrences
    final = bool(records) and not incident.merged and incident.state == RESOLVED
    if not final:
        incident.events = max(events, incident.events if not incident.merged else 0)
        incident.occurrences = max(occurrences, incident.occurrences if not incident.merged else 0)
    rows = incident.rows()
    if rows:
        incident.last_ns = max(incident.last_ns, max(e.time_ns for e in rows))
        incident.first_ns = min(incident.first_ns, min(e.time_ns for e in rows))
        worst = max(rows, key=lambda e: SEVERITY_RANK.get(e.severity, 0)).severity
        if SEVERITY_RANK.get(worst, 0) > SEVERITY_RANK.get(incident.severity, 0):
            incident.severity = worst
    for values, attr in (
        (incident.workloads, "workload"),
        (incident.nodes, "node"),
        (incident.namespaces, "namespace"),
    ):
        seen = set(values)
        for e in rows:
            value = getattr(e, attr)
            if value and value not in seen:
                seen.add(value)
                values.append(value)
        values.sort()
