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

Memory stays bounded by what the page shows, not by the input: :func:`build`
reads its records three times (they are files: ``reading.Inputs``) and keeps
aggregates, never every record. Pass 1 keeps the records that are not Events
(incidents, patterns: a few per incident and pattern); pass 2 adds every Event
record into totals, tables keyed by namespace, object, reason and controller,
per-incident tallies and the bars of the charted patterns and anomalies; pass 3
keeps the Event records of the :data:`HELD_INCIDENTS` largest incidents, the
only ones the page draws Event by Event. Ties are ranked as a stable sort by
event time would rank them (an Event record's place is ``(time, position in the
input)``), so the page is the one the records, held and sorted, gave.
"""

from __future__ import annotations

import calendar
import functools
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from kubevents import conventions as c
from kubevents.enrich.pattern_rules import PatternRules, load_pattern_rules
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
PROBLEM: Final = frozenset({"critical", "error", "warning"})
"""Severities counted as problems (where it hurt: namespace x category, objects)."""
HELD_INCIDENTS: Final = 60
"""Incidents whose Event records are kept (the largest by Event count): the timeline
draws them, the incident detail lists the largest of them; the others are counts."""
CHARTS: Final = 8
"""Patterns, and anomaly series, with a rate chart (the first by count)."""
_MINUTE: Final = 60_000_000_000

Order = tuple[int, int]
"""An Event record's place in time order: (event time, position among the input's Events)."""


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
    tally: Tally | None = None
    """What its Event records add up to (while it is built)."""

    def rows(self) -> list[EventRow]:
        """Its Event records and the root cause's (when that carries no incident id).

        Held for the :data:`HELD_INCIDENTS` largest incidents only; empty for the others."""
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


class Ranked:
    """Occurrences by key; ties rank in the order the keys first came in time order.

    ``counter()`` is the Counter a pass over the records sorted by time would have
    filled: its ``most_common`` breaks ties the same way.
    """

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[str, list[int]] = {}

    def add(self, key: str, n: int, order: Order) -> None:
        found = self._counts.get(key)
        if found is None:
            self._counts[key] = [n, order[0], order[1]]
            return
        found[0] += n
        if order < (found[1], found[2]):
            found[1], found[2] = order

    def __len__(self) -> int:
        return len(self._counts)

    def counter(self) -> Counter[str]:
        ranked = sorted(self._counts.items(), key=lambda kv: (kv[1][1], kv[1][2]))
        return Counter({key: value[0] for key, value in ranked})


@dataclass(slots=True)
class Bars:
    """Occurrences per bucket of some Event records (the bars of a rate chart)."""

    bucket_ns: int
    counts: dict[int, float] = field(default_factory=dict)
    """Occurrences by bucket: event time // bucket_ns."""
    first_ns: int = 0
    last_ns: int = 0
    records: int = 0

    def add(self, time_ns: int, occurrences: int) -> None:
        bucket = time_ns // self.bucket_ns
        self.counts[bucket] = self.counts.get(bucket, 0.0) + occurrences
        if not self.records or time_ns < self.first_ns:
            self.first_ns = time_ns
        if not self.records or time_ns > self.last_ns:
            self.last_ns = time_ns
        self.records += 1

    def values(self, start_ns: int, count: int) -> list[float]:
        """``count`` buckets from ``start_ns`` (a multiple of ``bucket_ns``)."""
        first = start_ns // self.bucket_ns
        return [self.counts.get(first + i, 0.0) for i in range(count)]


@dataclass(slots=True)
class Unclassified:
    """The Event records of one reporting controller that no classification rule matched."""

    occurrences: int = 0
    records: int = 0
    reasons: Ranked = field(default_factory=Ranked)
    example: str = ""
    """The message of its first record in time order."""
    example_order: Order | None = None


@dataclass(slots=True)
class Totals:
    """Sums over every Event record: the page's header and the where-it-hurt tables."""

    records: int = 0
    occurrences: int = 0
    first_ns: int = 0
    last_ns: int = 0
    namespaces: set[str] = field(default_factory=set)
    severities: Counter[str] = field(default_factory=Counter)
    by_ns_category: dict[str, Counter[str]] = field(default_factory=dict)
    """Problem occurrences by namespace (``(cluster)`` for none) and category."""
    by_ns_severity: dict[str, Counter[str]] = field(default_factory=dict)
    objects: Ranked = field(default_factory=Ranked)
    objects_bad: Counter[str] = field(default_factory=Counter)
    """Problem occurrences by object."""
    reasons: Ranked = field(default_factory=Ranked)
    """Occurrences by ``<type> <reason>``."""
    unclassified: dict[str, Unclassified] = field(default_factory=dict)
    """By reporting controller (``(none)``)."""

    def add(self, e: EventRow, order: Order) -> None:
        n = e.occurrences
        if not self.records or e.time_ns < self.first_ns:
            self.first_ns = e.time_ns
        if not self.records or e.time_ns > self.last_ns:
            self.last_ns = e.time_ns
        self.records += 1
        self.occurrences += n
        if e.namespace:
            self.namespaces.add(e.namespace)
        self.severities[e.severity] += n
        ns = e.namespace or "(cluster)"
        by_severity = self.by_ns_severity.get(ns)
        if by_severity is None:
            by_severity = self.by_ns_severity[ns] = Counter()
        by_severity[e.severity] += n
        if e.severity in PROBLEM:
            by_category = self.by_ns_category.get(ns)
            if by_category is None:
                by_category = self.by_ns_category[ns] = Counter()
            by_category[e.category] += n
            self.objects_bad[e.object] += n
        self.objects.add(e.object, n, order)
        self.reasons.add(f"{e.type or '?'} {e.reason}", n, order)
        if not e.rule:
            controller = e.controller or "(none)"
            u = self.unclassified.get(controller)
            if u is None:
                u = self.unclassified[controller] = Unclassified()
            u.occurrences += n
            u.records += 1
            u.reasons.add(e.reason, n, order)
            if u.example_order is None or order < u.example_order:
                u.example, u.example_order = e.message, order


@dataclass
class ReportData:
    """Everything the page shows, aggregated from records."""

    incidents: list[Incident]
    patterns: list[Pattern]
    totals: Totals = field(default_factory=Totals)
    pattern_bars: dict[str, Bars] = field(default_factory=dict)
    """Per charted pattern id (:data:`CHARTS`): its Event records' occurrences per minute."""
    anomaly_bars: dict[str, Bars] = field(default_factory=dict)
    """Per charted anomaly series (its key): the scored Event records' occurrences per
    bucket of the anomaly settings the data was built with."""
    cluster: str = ""
    problems: int = 0
    """Input lines or objects that could not be used."""

    @property
    def records(self) -> int:
        """Event records in the input."""
        return self.totals.records

    @property
    def occurrences(self) -> int:
        return self.totals.occurrences

    @property
    def span_ns(self) -> tuple[int, int]:
        """(first, last) event time of the input."""
        return (self.totals.first_ns, self.totals.last_ns)


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


def charted_patterns(patterns: Iterable[Pattern]) -> list[Pattern]:
    """The patterns (not anomalies) with a rate chart: the first :data:`CHARTS`."""
    return [p for p in patterns if not p.anomaly][:CHARTS]


def anomaly_series(patterns: Iterable[Pattern]) -> list[tuple[str, list[Pattern]]]:
    """Anomalies by series key, the most anomalous minutes first (then by key)."""
    by_key: dict[str, list[Pattern]] = {}
    for a in patterns:
        if a.anomaly:
            by_key.setdefault(a.key, []).append(a)
    return sorted(by_key.items(), key=lambda kv: (-len(kv[1]), kv[0]))


def scored(rules: PatternRules, e: EventRow) -> bool:
    """True when the anomaly detector scores ``e`` (its policy has anomalies on)."""
    kind = e.object.split("/")[-2] if e.object.count("/") >= 1 else ""
    return rules.policy_of((e.reason, e.category, e.severity, e.type, kind, e.namespace)).anomalies


def _events(records: Iterable[Record]) -> Iterator[tuple[int, Record]]:
    """The Event records, each with its position among them (its place in time order
    is ``(event time, position)``)."""
    position = 0
    for record in records:
        if record.get("event_name") == c.EVENT_NAME_EVENT:
            yield position, record
            position += 1


def build(
    records: Iterable[Record], *, problems: int = 0, rules: PatternRules | None = None
) -> ReportData:
    """Aggregate records (in any order) into what the report shows.

    ``records`` is read three times (module doc): a list, or ``reading.Inputs``; a
    one-shot iterator is held as a list first. ``rules``: the pattern rules the anomaly
    charts score Events with (the page's, :func:`kubevents.report.page.render`);
    default the shipped ones.
    """
    if iter(records) is records:
        records = list(records)
    rules = rules if rules is not None else load_pattern_rules()
    # pass 1: the records that are not Events
    incident_records: dict[str, IncidentRecords] = {}
    patterns: dict[str, Pattern] = {}
    merges = UnionFind()
    cluster = ""
    for record in records:
        name = record.get("event_name")
        if not cluster:
            cluster = _str(record.get("resource") or {}, c.K8S_CLUSTER_NAME)
        if name == c.EVENT_NAME_INCIDENT:
            attrs = record["attributes"]
            incident = _str(attrs, c.KV_INCIDENT_ID)
            if not incident:
                continue
            t = parse_time(record.get("timestamp") or "")
            kept = incident_records.get(incident)
            if kept is None:
                kept = incident_records[incident] = IncidentRecords()
            kept.add(t, attrs, record.get("body") or "")
            survivor = _str(attrs, KV_INCIDENT_MERGED_INTO)
            if _str(attrs, c.KV_INCIDENT_STATE) == MERGED and survivor:
                merges.merge(incident, survivor)
        elif name == c.EVENT_NAME_PATTERN:
            _add_pattern(patterns, record)
    for p in patterns.values():
        p.transitions.sort(key=lambda t: t[0])
    ranked = sorted(patterns.values(), key=lambda p: (-p.count, p.id))
    # pass 2: every Event record into totals, tallies and bars
    pattern_bars = {p.id: Bars(_MINUTE) for p in charted_patterns(ranked)}
    # per charted series: its key, what its Events match (a category, or a reason in a
    # namespace) and its bars
    series: list[tuple[str, str | None, str | None, str, Bars]] = []
    for key, anomalies in anomaly_series(ranked)[:CHARTS]:
        fields = anomalies[0].fields()
        series.append(
            (
                key,
                fields.get("category"),
                fields.get("reason"),
                fields.get("namespace", ""),
                Bars(rules.anomaly.bucket_ns),
            )
        )
    totals = Totals()
    incidents = _Incidents(incident_records, merges)
    for position, record in _events(records):
        e = event_row(record)
        order = (e.time_ns, position)
        totals.add(e, order)
        incidents.add(e, order)
        bars = pattern_bars.get(e.pattern)
        if bars is not None:
            bars.add(e.time_ns, e.occurrences)
        for _, category, reason, namespace, bars in series:
            if category is not None:
                match = e.category == category
            else:
                match = e.reason == reason and e.namespace == namespace
            if match and e.occurrences > 0 and scored(rules, e):
                bars.add(e.time_ns, e.occurrences)
    found = incidents.finish()
    # pass 3: the Event records of the largest incidents
    incidents.hold(records, found)
    return ReportData(
        incidents=found,
        patterns=ranked,
        totals=totals,
        pattern_bars=pattern_bars,
        anomaly_bars={key: bars for key, _, _, _, bars in series},
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


@dataclass(slots=True)
class Tally:
    """What an incident's Event records add up to, without the records."""

    events: int = 0
    occurrences: int = 0
    any_root: bool = False
    """One of them is marked as the root cause."""
    first_ns: int = 0
    last_ns: int = 0
    worst: int = 0
    """The worst severity's rank (SEVERITY_RANK)."""
    worst_name: str = ""
    workloads: set[str] = field(default_factory=set)
    nodes: set[str] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)
    root_exact: tuple[Order, EventRow] | None = None
    """The root cause's first record at the incident's first-seen time."""
    root_any: tuple[Order, EventRow] | None = None
    """The root cause's first record."""

    def add(self, e: EventRow) -> None:
        if not self.events or e.time_ns < self.first_ns:
            self.first_ns = e.time_ns
        if not self.events or e.time_ns > self.last_ns:
            self.last_ns = e.time_ns
        self.events += 1
        self.occurrences += e.occurrences
        self.any_root = self.any_root or e.root
        rank = SEVERITY_RANK.get(e.severity, 0)
        if rank > self.worst:
            self.worst, self.worst_name = rank, e.severity
        if e.workload:
            self.workloads.add(e.workload)
        if e.node:
            self.nodes.add(e.node)
        if e.namespace:
            self.namespaces.add(e.namespace)


class _Incidents:
    """Incidents from their records, their Event records tallied as they come (pass 2),
    then the largest ones' Event records held (pass 3)."""

    def __init__(self, records: dict[str, IncidentRecords], merges: UnionFind) -> None:
        self.records = records
        self.merges = merges
        by_id: dict[str, Incident] = {}
        for incident_id in records:
            if merges.find(incident_id) == incident_id:
                by_id[incident_id] = _incident(incident_id, records[incident_id])
                by_id[incident_id].tally = Tally()
        for incident_id in records:
            survivor = merges.find(incident_id)
            if survivor != incident_id and survivor in by_id:
                by_id[survivor].merged.append(incident_id)
        self.by_id = by_id
        self.roots: dict[str, list[Incident]] = {}
        for incident in by_id.values():
            self.roots.setdefault(incident.root_uid, []).append(incident)
        self.orphans: list[tuple[Order, EventRow]] = []
        """Event records whose incident has no records in the input (held: rare)."""
        self.held: dict[Order, EventRow] = {}
        """Root causes' records, by place: pass 3 reuses them (the views compare by identity)."""

    def add(self, e: EventRow, order: Order) -> None:
        if e.incident:
            found = self.by_id.get(self.merges.find(e.incident))
            if found is None:
                self.orphans.append((order, e))
            else:
                assert found.tally is not None
                found.tally.add(e)
        for rooted in self.roots.get(e.uid, ()):
            tally = rooted.tally
            assert tally is not None
            if tally.root_any is None or order < tally.root_any[0]:
                tally.root_any = (order, e)
            if e.time_ns == rooted.first_ns and (
                tally.root_exact is None or order < tally.root_exact[0]
            ):
                tally.root_exact = (order, e)

    def finish(self) -> list[Incident]:
        """Every incident, counted (after pass 2), in time order."""
        by_id = dict(self.by_id)
        # Incidents known only from Event records: as a pass in time order makes them.
        self.orphans.sort(key=lambda item: item[0])
        for _, e in self.orphans:
            found = by_id.get(self.merges.find(e.incident))
            if found is None:
                found = by_id[e.incident] = _stub(e)
            found.members.append(e)
        for incident in by_id.values():
            if incident.tally is None:  # a stub: its records are held
                incident.tally = Tally()
                for e in incident.members:
                    incident.tally.add(e)
            else:
                root = incident.tally.root_exact or incident.tally.root_any
                if root is not None:
                    incident.root_row = root[1]
                    self.held[root[0]] = root[1]
            _recount(incident, incident.id in self.records, self.merges)
            incident.tally = None
        return sorted(by_id.values(), key=lambda i: (i.first_ns, i.id))

    def hold(self, records: Iterable[Record], incidents: list[Incident]) -> None:
        """Pass 3: the members of the :data:`HELD_INCIDENTS` largest incidents."""
        largest = sorted(incidents, key=lambda i: (-i.events, i.first_ns, i.id))[:HELD_INCIDENTS]
        wanted = {i.id: i for i in largest if i.id in self.by_id}  # stubs hold theirs
        for i in incidents:
            if i.id not in wanted and i.id in self.by_id:
                i.members = []
        if not wanted:
            return
        members: dict[str, list[tuple[Order, EventRow]]] = {key: [] for key in wanted}
        texts: dict[str, str] = {}
        find = self.merges.find
        for position, record in _events(records):
            incident = _str(record["attributes"], c.KV_INCIDENT_ID)
            if not incident:
                continue
            held = members.get(find(incident))
            if held is not None:
                order = (parse_time(record.get("timestamp") or ""), position)
                e = self.held.get(order)
                held.append((order, e if e is not None else _shared(event_row(record), texts)))
        for key, rows in members.items():
            rows.sort(key=lambda item: item[0])
            wanted[key].members = [e for _, e in rows]


_INCIDENT_KEYS: Final = (
    c.KV_INCIDENT_STATE,
    c.KV_INCIDENT_FIRST_SEEN,
    c.KV_INCIDENT_LAST_SEEN,
    c.KV_INCIDENT_ROOT_REASON,
    c.KV_INCIDENT_ROOT_OBJECT,
    c.KV_INCIDENT_ROOT_UID,
    c.KV_CATEGORY,
    c.KV_SEVERITY,
    c.KV_INCIDENT_EVENTS,
    c.KV_INCIDENT_OCCURRENCES,
    c.KV_INCIDENT_WORKLOADS,
    c.KV_INCIDENT_NODES,
    c.KV_INCIDENT_NAMESPACES,
)
"""The attributes of an incident record the page reads."""


class IncidentRecords:
    """What the page needs of one incident id's records: the latest one (of those not
    ``merged``, when there are some) and the first one's time; not every record."""

    __slots__ = ("any_first", "any_latest", "live_first", "live_latest")

    def __init__(self) -> None:
        self.live_latest: tuple[int, dict[str, Any], str] | None = None
        self.live_first = 0
        self.any_latest: tuple[int, dict[str, Any], str] | None = None
        self.any_first = 0

    def add(self, time_ns: int, attrs: dict[str, Any], body: str) -> None:
        # ">=": of records at the same time the later one in the input is the latest,
        # as a stable sort by time puts it last
        kept: tuple[int, dict[str, Any], str] | None = None
        if self.any_latest is None:
            self.any_first = time_ns
        if self.any_latest is None or time_ns >= self.any_latest[0]:
            kept = (time_ns, {k: attrs[k] for k in _INCIDENT_KEYS if k in attrs}, body)
            self.any_latest = kept
        self.any_first = min(self.any_first, time_ns)
        if _str(attrs, c.KV_INCIDENT_STATE) == MERGED:
            return
        if self.live_latest is None:
            self.live_first = time_ns
        if self.live_latest is None or time_ns >= self.live_latest[0]:
            if kept is None:
                kept = (time_ns, {k: attrs[k] for k in _INCIDENT_KEYS if k in attrs}, body)
            self.live_latest = kept
        self.live_first = min(self.live_first, time_ns)


_TEXT_FIELDS: Final = tuple(
    name for name, kind in EventRow.__annotations__.items() if kind in ("str", str)
)


def _shared(e: EventRow, texts: dict[str, str]) -> EventRow:
    """``e`` with its strings shared with the other kept records' equal ones (a reason,
    an object, a series' message and uid repeat across records; each parse makes new)."""
    for name in _TEXT_FIELDS:
        value = getattr(e, name)
        setattr(e, name, texts.setdefault(value, value))
    return e


def _incident(incident_id: str, records: IncidentRecords) -> Incident:
    if records.live_latest is not None:
        latest, first_ns = records.live_latest, records.live_first
    else:
        assert records.any_latest is not None
        latest, first_ns = records.any_latest, records.any_first
    last_ns, a, body = latest
    first, last = _str(a, c.KV_INCIDENT_FIRST_SEEN), _str(a, c.KV_INCIDENT_LAST_SEEN)
    return Incident(
        id=incident_id,
        state=RESOLVED if _str(a, c.KV_INCIDENT_STATE) == RESOLVED else "open",
        root_reason=_str(a, c.KV_INCIDENT_ROOT_REASON),
        root_object=_str(a, c.KV_INCIDENT_ROOT_OBJECT),
        root_uid=_str(a, c.KV_INCIDENT_ROOT_UID),
        category=_str(a, c.KV_CATEGORY) or "Other",
        severity=_str(a, c.KV_SEVERITY) or "warning",
        first_ns=parse_time(first) if first else first_ns,
        last_ns=parse_time(last) if last else last_ns,
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


def _recount(incident: Incident, recorded: bool, merges: UnionFind) -> None:
    """Event and occurrence counts, scope and severity from the Events (see the module doc)."""
    tally = incident.tally
    assert tally is not None
    root = incident.root_row
    # the root's record is one of the incident's own when its incident id leads here
    root_member = (
        root is not None and bool(root.incident) and merges.find(root.incident) == incident.id
    )
    root_inside = tally.any_root or root_member
    events = tally.events + (0 if root_inside or not incident.root_uid else 1)
    occurrences = tally.occurrences
    if not root_inside and root is not None:
        occurrences += root.occurrences
    final = recorded and not incident.merged and incident.state == RESOLVED
    if not final:
        incident.events = max(events, incident.events if not incident.merged else 0)
        incident.occurrences = max(occurrences, incident.occurrences if not incident.merged else 0)
    worst, worst_name = tally.worst, tally.worst_name
    found = [tally.workloads, tally.nodes, tally.namespaces]
    if tally.events or root is not None:
        first, last = tally.first_ns, tally.last_ns
        if root is not None:
            if not tally.events or root.time_ns < first:
                first = root.time_ns
            if not tally.events or root.time_ns > last:
                last = root.time_ns
            rank = SEVERITY_RANK.get(root.severity, 0)
            if rank > worst:
                worst, worst_name = rank, root.severity
            for more, value in zip(found, (root.workload, root.node, root.namespace), strict=True):
                if value:
                    more.add(value)
        incident.last_ns = max(incident.last_ns, last)
        incident.first_ns = min(incident.first_ns, first)
        if worst > SEVERITY_RANK.get(incident.severity, 0):
            incident.severity = worst_name
    for values, extra in zip(
        (incident.workloads, incident.nodes, incident.namespaces), found, strict=True
    ):
        seen = set(values)
        values.extend(value for value in extra if value not in seen)
        values.sort()
