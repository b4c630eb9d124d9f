"""The end-of-replay summary: what happened, at a glance.

Counts are occurrences (a series Event counted 5 times stands for 5), so the
numbers agree with ``kubevents_events_total``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kubevents.conventions import Category, Severity
from kubevents.enrich.incidents import IncidentState, IncidentTransition, format_duration
from kubevents.enrich.patterns import PatternState, Transition
from kubevents.model import Enriched

_NS = 1_000_000_000

MAX_MEMBERS = 1000
"""Records ``--explain`` keeps per incident id, the first ones; the rest are counted. One
storm's incident of the bench dump has 10,244 records, and a longer dump more."""

MAX_OBJECTS = 4096
"""Objects the summary counts at once: past twice as many, only the busiest this many are
kept (and the table says it is approximate). The bench dump's 92,000 objects were most
of the 14 MiB the summary added to a replay's peak; reasons, namespaces and categories
are few."""


class Summary:
    """Accumulates counts from enriched Events and renders them as text."""

    def __init__(self, *, explain: bool = False) -> None:
        self.records = 0
        self.occurrences = 0
        self.by_category: Counter[str] = Counter()
        self.by_severity: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.by_object: Counter[str] = Counter()
        """Occurrences per object, for at most twice :data:`MAX_OBJECTS` objects."""
        self.objects_dropped = 0
        """Objects dropped from ``by_object`` (the least busy, when it was full)."""
        self.unclassified: Counter[str] = Counter()
        self.unclassified_by_controller: Counter[str] = Counter()
        """Unclassified occurrences by reporting controller: which pack or rule to write."""
        self.namespaces: set[str] = set()
        self.patterns: dict[str, Transition] = {}
        """The latest transition of each pattern (and anomaly), by pattern id."""
        self.incidents: dict[str, IncidentTransition] = {}
        """The latest transition of each incident, by incident id (merged ones leave)."""
        self.merged: dict[str, str] = {}
        """Incident id -> the id it was merged into."""
        self.members: dict[str, list[Member]] = {}
        """Per incident id, its Events as they were recorded (only with ``explain``)."""
        self.members_dropped: Counter[str] = Counter()
        """Per incident id, its records past :data:`MAX_MEMBERS` (counted, not kept)."""
        self.explain = explain

    def add(self, enriched: Enriched) -> None:
        """Count one enriched Event update."""
        n = enriched.occurrences
        event, cls = enriched.event, enriched.classification
        self.records += 1
        self.occurrences += n
        self.by_category[cls.category.value] += n
        self.by_severity[cls.severity.value] += n
        self.by_reason[f"{event.type or '?'} {event.reason or '(no reason)'}"] += n
        by_object = self.by_object
        by_object[event.regarding.key or "(no object)"] += n
        if len(by_object) > 2 * MAX_OBJECTS:
            self._drop_objects()
        if cls.rule_id is None:
            self.unclassified[event.reason or "(no reason)"] += n
            self.unclassified_by_controller[event.reporting_controller or "(no controller)"] += n
        if event.regarding.namespace:
            self.namespaces.add(event.regarding.namespace)
        corr = enriched.correlation
        if self.explain and corr is not None and corr.incident_id:
            members = self.members.setdefault(corr.incident_id, [])
            if len(members) >= MAX_MEMBERS:
                self.members_dropped[corr.incident_id] += 1
                return
            members.append(
                Member(
                    time_ns=event.time_ns,
                    reason=event.reason,
                    object=corr.object,
                    rule=corr.rule,
                    scope=corr.scope,
                    root=corr.root_cause,
                    occurrences=n,
                    uid=event.key,
                )
            )

    def _drop_objects(self) -> None:
        """Keep the :data:`MAX_OBJECTS` busiest objects: a dropped object that comes back
        counts from zero again, so the top objects of a larger input are approximate."""
        kept = self.by_object.most_common(MAX_OBJECTS)
        self.objects_dropped += len(self.by_object) - len(kept)
        self.by_object = Counter(dict(kept))

    def add_pattern(self, transition: Transition) -> None:
        """Remember the latest state of a pattern or anomaly."""
        self.patterns[transition.pattern_id] = transition

    def add_incident(self, transition: IncidentTransition) -> None:
        """Remember the latest state of an incident; a merged one gives way to its survivor."""
        if transition.state is IncidentState.MERGED:
            self.incidents.pop(transition.incident_id, None)
            self.merged[transition.incident_id] = transition.merged_into
            return
        self.incidents[transition.incident_id] = transition

    def survivor(self, incident_id: str) -> str:
        """The id an incident goes on as, following merges."""
        seen = {incident_id}
        while incident_id in self.merged:
            incident_id = self.merged[incident_id]
            if incident_id in seen:  # pragma: no cover - merges never form a cycle
                break
            seen.add(incident_id)
        return incident_id

    def explain_text(self, incident_id: str) -> str:
        """The chain of one incident (any id it was known by): root cause, then each link.

        Raises:
            KeyError: no incident has that id.
        """
        final = self.survivor(incident_id)
        t = self.incidents.get(final)
        if t is None:
            raise KeyError(incident_id)
        ids = {final, *(old for old in self.merged if self.survivor(old) == final)}
        members = sorted(
            (m for i in ids for m in self.members.get(i, ())), key=lambda m: (m.time_ns, m.uid)
        )
        root_ns = t.root.time_ns
        lines = [
            f"{final}: {t.describe()}",
            f"  root cause  {t.root.reason} {t.root.object}  at {format_offset(0)}",
        ]
        if len(ids) > 1:
            lines.append(f"  also known as {', '.join(sorted(ids - {final}))} (merged)")
        for m in members:
            if m.uid == t.root.uid:
                continue
            if m.scope:
                via = f"{m.rule} via {m.scope}"
            elif m.root:
                via = "opened it; the root cause came later and explained it"
            else:
                via = m.rule or "in a merged incident"
            lines.append(
                f"  {format_offset(m.time_ns - root_ns):>10}  {m.reason} {m.object}"
                f" x{m.occurrences}  <- {via}"
            )
        dropped = sum(self.members_dropped[i] for i in ids)
        if dropped:
            lines.append(f"  and {dropped} later records (the first {MAX_MEMBERS} are kept)")
        return "\n".join(lines) + "\n"

    def _objects_note(self) -> str:
        if not self.objects_dropped:
            return ""
        return f" (approximate: more than {2 * MAX_OBJECTS} objects, the busiest counted)"

    def render(self, *, top: int = 10, skipped: int = 0, problems: int = 0) -> str:
        """The summary as plain text lines."""
        lines = [
            "",
            "── kubevents summary " + "─" * 40,
            f"{self.occurrences} occurrences in {self.records} records "
            f"across {len(self.namespaces)} namespaces"
            + (f"; {skipped} unchanged updates skipped" if skipped else "")
            + (f"; {problems} input problems" if problems else ""),
            "",
            "By severity:  " + _inline(self.by_severity, [s.value for s in Severity]),
            "By category:  " + _inline(self.by_category, [c.value for c in Category]),
            "",
            f"Top reasons:{_table(self.by_reason, top)}",
            f"Top objects{self._objects_note()}:{_table(self.by_object, top)}",
        ]
        lines.append(f"Incidents:{_incidents(self.incidents, top)}")
        lines.append(f"Patterns:{_patterns(self.patterns, top, anomalies=False)}")
        lines.append(f"Anomalies:{_patterns(self.patterns, top, anomalies=True)}")
        if self.unclassified:
            names = ", ".join(f"{r} ({n})" for r, n in self.unclassified.most_common(top))
            more = len(self.unclassified) - top
            if more > 0:
                names += f", and {more} more (--top N lists more)"
            lines.append(f"Unclassified reasons (no rule matched): {names}")
            by = self.unclassified_by_controller.most_common(top)
            if by:
                lines.append(
                    "Unclassified by reporting controller: "
                    + ", ".join(f"{c} ({n})" for c, n in by)
                    + " (a rule pack or a rule for these: docs/rule-packs.md)"
                )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class Member:
    """One Event record of an incident, as ``--explain`` prints it."""

    time_ns: int
    reason: str
    object: str
    rule: str
    scope: str
    root: bool
    occurrences: int
    uid: str


def format_offset(ns: int) -> str:
    """``+0s``, ``+1m30s``, ``-8s``: an Event's time from the root cause's."""
    sign = "-" if ns < 0 else "+"
    seconds = abs(ns) // 1_000_000_000
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m{seconds:02d}s"
    if minutes:
        return f"{sign}{minutes}m{seconds:02d}s"
    return f"{sign}{seconds}s"


def _incidents(incidents: dict[str, IncidentTransition], top: int) -> str:
    """Largest first: root cause, then counts, duration and scope."""
    if not incidents:
        return " none"
    chosen = sorted(incidents.values(), key=lambda t: (-t.events, t.first_seen_ns, t.incident_id))
    resolved = sum(1 for t in chosen if t.state is IncidentState.RESOLVED)
    out = [f" {len(chosen)} ({resolved} resolved, {len(chosen) - resolved} open)"]
    for t in chosen[:top]:
        state = "resolved" if t.state is IncidentState.RESOLVED else "open"
        out.append(
            f"\n  {t.incident_id}  {t.root.category.value} {t.severity.value}, {state}: "
            f"root cause {t.root.reason} {t.root.object}"
        )
        out.append(
            f"\n    {_count(t.events, 'event')} ({_count(t.occurrences, 'occurrence')}) over "
            f"{format_duration(t.duration_ns)}; {_scope(t)}"
        )
    return "".join(out)


def _scope(t: IncidentTransition) -> str:
    parts = []
    for name, values in (("workload", t.workloads), ("node", t.nodes), ("namespace", t.namespaces)):
        if values:
            shown = ", ".join(values[:3]) + (", ..." if len(values) > 3 else "")
            parts.append(f"{_count(len(values), name)} ({shown})")
    return "; ".join(parts) or "no workload or node"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _patterns(patterns: dict[str, Transition], top: int, *, anomalies: bool) -> str:
    chosen = [t for t in patterns.values() if (t.state is PatternState.ANOMALOUS) == anomalies]
    if not chosen:
        return " none"
    chosen.sort(key=lambda t: (-t.count, t.pattern_id))
    out = []
    for t in chosen[:top]:
        minutes = max(t.last_seen_ns - t.first_seen_ns, 0) / _NS / 60
        state = f"score {t.score:.1f}" if anomalies else t.state.value
        out.append(
            f"\n  {t.count:>5}  {t.key}  {t.rate_per_minute:.1f}/min over {minutes:.0f} min ({state})"
        )
    return "".join(out)


def _inline(counts: Counter[str], order: list[str]) -> str:
    return "  ".join(f"{name} {counts[name]}" for name in order if counts[name]) or "none"


def _table(counts: Counter[str], top: int) -> str:
    if not counts:
        return " none"
    width = max(len(str(n)) for _, n in counts.most_common(top))
    return "".join(f"\n  {n:>{width}}  {name}" for name, n in counts.most_common(top))
