"""The end-of-replay summary: what happened, at a glance.

Counts are occurrences (a series Event counted 5 times stands for 5), so the
numbers agree with ``kubevents_events_total``.
"""

from __future__ import annotations

from collections import Counter

from kubevents.conventions import Category, Severity
from kubevents.enrich.incidents import IncidentState, IncidentTransition, format_duration
from kubevents.enrich.patterns import PatternState, Transition
from kubevents.model import Enriched

_NS = 1_000_000_000


class Summary:
    """Accumulates counts from enriched Events and renders them as text."""

    def __init__(self) -> None:
        self.records = 0
        self.occurrences = 0
        self.by_category: Counter[str] = Counter()
        self.by_severity: Counter[str] = Counter()
        self.by_reason: Counter[str] = Counter()
        self.by_object: Counter[str] = Counter()
        self.unclassified: Counter[str] = Counter()
        self.namespaces: set[str] = set()
        self.patterns: dict[str, Transition] = {}
        """The latest transition of each pattern (and anomaly), by pattern id."""
        self.incidents: dict[str, IncidentTransition] = {}
        """The latest transition of each incident, by incident id."""

    def add(self, enriched: Enriched) -> None:
        """Count one enriched Event update."""
        n = enriched.occurrences
        event, cls = enriched.event, enriched.classification
        self.records += 1
        self.occurrences += n
        self.by_category[cls.category.value] += n
        self.by_severity[cls.severity.value] += n
        self.by_reason[f"{event.type or '?'} {event.reason or '(no reason)'}"] += n
        self.by_object[event.regarding.key or "(no object)"] += n
        if cls.rule_id is None:
            self.unclassified[event.reason or "(no reason)"] += n
        if event.regarding.namespace:
            self.namespaces.add(event.regarding.namespace)

    def add_pattern(self, transition: Transition) -> None:
        """Remember the latest state of a pattern or anomaly."""
        self.patterns[transition.pattern_id] = transition

    def add_incident(self, transition: IncidentTransition) -> None:
        """Remember the latest state of an incident."""
        self.incidents[transition.incident_id] = transition

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
            f"Top objects:{_table(self.by_object, top)}",
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
        return "\n".join(lines) + "\n"


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
