"""Patterns: recurring groups of similar Events, with a lifecycle.

Occurrences (not Event updates: a record that adds 3 occurrences counts 3)
are grouped by a **similarity key** chosen by the pattern rules (default:
reason + involved kind + namespace). Each group keeps its occurrences of the
last ``window`` of event time in fixed buckets (``window / 20`` wide, so the
window slides in steps of 30 s by default). A group becomes a **pattern**::

    started   when, at an occurrence, the window holds at least min_count
              occurrences at a rate of at least min_rate_per_minute
    ongoing   at most once per window while the condition still holds
    resolved  once the condition has not held for ``quiet``; the group's
              window is emptied, so a new pattern needs fresh occurrences

The rate is measured between the first and the last occurrence in the
window: ``(count - 1) / span``, the span at least one minute. A loop every
30 s is 2/min, three occurrences over four minutes are 0.5/min, a burst of
three in one second is 2/min. The pattern id is ``pat-`` and 12 hex digits of the
SHA-1 of the key fields and the time of the first occurrence in the window
when it started, so replaying the same Events gives the same ids.

Time is event time only. "Now" is the latest occurrence time seen (the
high-water mark), or what the pipeline passes to :meth:`PatternDetector.expire`
from its injected clock; the wall clock is never read. An occurrence older
than the window at the high-water mark is too late for any window: it is
counted in ``late`` and still attributed to the group's active pattern.

State is bounded: groups with an empty window and no pattern are dropped as
the high-water mark moves on; past ``max_groups`` the least recently updated
inactive group is evicted (``evicted_groups``); past ``max_active`` new
patterns are not started (``suppressed``).
"""

from __future__ import annotations

import enum
import hashlib
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final, NamedTuple

from kubevents.conventions import Category, Severity
from kubevents.enrich.pattern_rules import PatternPolicy, PatternRules
from kubevents.enrich.sharing import SharedStrings
from kubevents.enrich.templates import template
from kubevents.errors import TEXT_MAX, clip
from kubevents.model import CategorySeverity, Enriched


class RateKey(NamedTuple):
    """What the window rates of active patterns are summed by (bounded, see
    :meth:`PatternDetector.active_rates`): never a workload, node or template."""

    rule: str
    """The pattern rule ("" for the default policy)."""
    namespace: str
    """The key's namespace ("" when the key has none)."""
    reason: str
    """The key's reason ("" when the key has none)."""
    category: Category
    """The category the pattern started with."""
    severity: Severity
    """The severity the pattern started with."""


MAX_SAMPLES: Final = 3
MAX_INCIDENTS: Final = 10
BUCKETS_PER_WINDOW: Final = 20
_MINUTE_NS: Final = 60_000_000_000


class PatternState(enum.StrEnum):
    """Where a pattern is in its lifecycle (``kubevents.pattern.state``)."""

    STARTED = "started"
    ONGOING = "ongoing"
    RESOLVED = "resolved"
    ANOMALOUS = "anomalous"


@dataclass(frozen=True, slots=True)
class Sample:
    """One Event of a pattern, to show what it is about."""

    uid: str
    message: str


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of a pattern's state: what a ``kubevents.pattern`` record says."""

    pattern_id: str
    state: PatternState
    time_ns: int
    """Event time of the change (for ``resolved``: when the quiet period ended)."""
    fields: tuple[tuple[str, str], ...]
    """The similarity key, as (field, value) pairs in the rule's order."""
    rule_id: str | None
    category: Category
    severity: Severity
    """Category and severity of the occurrence that started the pattern."""
    count: int
    """Occurrences attributed to the pattern since ``first_seen_ns``."""
    rate_per_minute: float
    """The window's rate (started, ongoing, anomalous); the lifetime average (resolved)."""
    first_seen_ns: int
    last_seen_ns: int
    samples: tuple[Sample, ...] = ()
    incidents: tuple[str, ...] = ()
    score: float = 0.0
    """The anomaly score (``anomalous`` only)."""

    @property
    def key(self) -> str:
        """``reason=BackOff;kind=Pod;namespace=shop``: the key as one string."""
        return format_key(self.fields)

    @property
    def namespace(self) -> str:
        """The key's namespace, or empty when the key has none."""
        return dict(self.fields).get("namespace", "")


def format_key(fields: tuple[tuple[str, str], ...]) -> str:
    """The similarity key as one string: ``field=value`` pairs joined by ``;``."""
    return ";".join(f"{name}={value}" for name, value in fields)


def pattern_id(fields: tuple[tuple[str, str], ...], first_seen_ns: int) -> str:
    """``pat-`` + 12 hex digits of SHA-1(key fields, first occurrence time)."""
    text = "\x1f".join([*(f"{n}={v}" for n, v in fields), str(first_seen_ns)])
    return "pat-" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def add_sample(samples: tuple[Sample, ...], enriched: Enriched) -> tuple[Sample, ...]:
    """``samples`` with this Event added, if there is room and it is not there yet."""
    if len(samples) >= MAX_SAMPLES:
        return samples
    key = enriched.event.key
    for sample in samples:
        if sample.uid == key:
            return samples
    return (*samples, Sample(key, _quoted(enriched.event.message)))


def _quoted(message: str) -> str:
    """``clip(message)``, without calling it for a message it would leave as it is.

    A printable string has no line break nor control character, and its only
    whitespace is the space: clip changes it only to strip spaces at its ends or
    to cut it. Most messages are such, and ``clip`` (two regular expressions, in an
    uncompiled module) was a sixth of the pattern stage's time.
    """
    if (
        len(message) <= TEXT_MAX
        and message.isprintable()
        and not message.startswith(" ")
        and not message.endswith(" ")
    ):
        return message
    if len(message) > 2 * _HEAD:
        head = _clipped_head(message)
        if head is not None:
            return head
    return clip(message)


_HEAD: Final = 4 * TEXT_MAX
"""Characters of a long message that :func:`_clipped_head` hands to ``clip``."""


def _clipped_head(message: str) -> str | None:
    """``clip(message)`` from the message's head alone, or None when the head is too short
    to tell.

    ``clip`` folds runs of whitespace that hold a line break and drops control
    characters, then keeps 256 characters: for the mix's stack traces (2 to 15 KB) it
    ran its two regular expressions over the whole text to keep its first lines. Cut
    just after a character that is not whitespace, no run is split, so the head comes
    out of ``clip`` as the start of what the whole would; when that is already cut
    (longer than ``TEXT_MAX``), it is the whole's result.
    """
    text = message.strip()
    end = _HEAD
    while end < len(text) and text[end - 1].isspace():
        end += 1
    head = clip(text[:end])
    return head if len(head) > TEXT_MAX else None


def rate_per_minute(count: int, span_ns: int) -> float:
    """Occurrences per minute between the first and the last of ``count`` occurrences.

    ``(count - 1) / span``, the span at least a minute: a loop every 30 s is
    2.0/min however long it runs, a burst of 3 in one second is 2.0/min.
    """
    return max(count - 1, 0) * _MINUTE_NS / max(span_ns, _MINUTE_NS)


def _node(enriched: Enriched) -> str:
    if enriched.correlation is not None and enriched.correlation.node:
        return enriched.correlation.node
    ref = enriched.event.regarding
    return ref.name if ref.kind == "Node" else ""


def _workload(enriched: Enriched) -> str:
    workload = enriched.correlation.workload if enriched.correlation else None
    return workload.key if workload is not None else ""


def key_values(enriched: Enriched, fields: tuple[str, ...]) -> tuple[str, ...]:
    """The values of the key ``fields`` for one Event (empty string when unknown).

    One test per field name rather than a table of functions: compiled, each field
    is a read of the Event, where a call through the table (and its cache of the
    functions of ``fields``) cost more than the read itself. The names are those of
    ``pattern_rules.KEY_FIELDS``, which the rules were checked against.
    """
    event = enriched.event
    values: list[str] = []
    for name in fields:
        if name == "reason":
            values.append(event.reason)
        elif name == "namespace":
            values.append(event.regarding.namespace or event.namespace)
        elif name == "kind":
            values.append(event.regarding.kind)
        elif name == "workload":
            values.append(_workload(enriched))
        elif name == "template":
            values.append(template(event.message))
        elif name == "node":
            values.append(_node(enriched))
        elif name == "type":
            values.append(event.type)
        elif name == "component":
            values.append(event.reporting_controller)
        elif name == "category":
            values.append(enriched.classification.category.value)
        elif name == "severity":
            values.append(enriched.classification.severity.value)
        else:
            raise KeyError(name)
    return tuple(values)


@dataclass(slots=True)
class _Rate:
    key: RateKey
    rate: float


@dataclass(slots=True)
class _Active:
    id: str
    first_seen_ns: int
    count: int
    held_ns: int
    """Latest event time at which the start condition held."""
    reported_ns: int
    """Time of the latest started/ongoing transition."""
    category: Category
    severity: Severity
    rate: _Rate
    """Its entry of ``PatternDetector._rates`` (updated in place at each occurrence)."""


@dataclass(slots=True)
class _Group:
    policy: PatternPolicy
    values: tuple[str, ...]
    width: int
    """Bucket width (ns): ``window / 20``."""
    per_window: int
    """Buckets per window."""
    buckets: list[int]
    """Flat triples (bucket index, occurrences, earliest time), sorted by index.

    Flat ints rather than a list per bucket: fewer objects for the memory
    and for the garbage collector to walk.
    """
    total: int = 0
    last_ns: int = 0
    samples: tuple[Sample, ...] = ()
    incidents: tuple[str, ...] = ()
    pattern: _Active | None = None
    older: _Group | None = field(default=None, repr=False, compare=False)
    """The group updated before this one (None: this is the least recently updated)."""
    newer: _Group | None = field(default=None, repr=False, compare=False)
    """The group updated after this one (None: this is the most recently updated)."""

    @property
    def fields(self) -> tuple[tuple[str, str], ...]:
        return tuple(zip(self.policy.key, self.values, strict=True))


@lru_cache(maxsize=256)
def _resolution(window_ns: int) -> tuple[int, int]:
    """(bucket width ns, buckets per window) of a window."""
    width = max(window_ns // BUCKETS_PER_WINDOW, 1)
    return width, window_ns // width


class PatternDetector:
    """Groups occurrences by similarity key and tracks each pattern's lifecycle."""

    def __init__(
        self, rules: PatternRules, *, max_groups: int = 50_000, max_active: int = 1000
    ) -> None:
        self.rules = rules
        self.max_groups = max_groups
        self.max_active = max_active
        self._groups: dict[tuple[str | None, tuple[str, ...]], _Group] = {}
        # The groups from the least to the most recently updated, linked through the
        # groups themselves: an update relinks one group, where an OrderedDict's
        # move_to_end was a method call that hashed the key again.
        self._oldest: _Group | None = None
        self._newest: _Group | None = None
        self._deadlines: list[tuple[int, int, tuple[str | None, tuple[str, ...]], str]] = []
        self._seq = 0
        self._pending: list[Transition] = []
        self._active_labels: dict[CategorySeverity, int] = {}
        self._active_total = 0
        self._rates: dict[str, _Rate] = {}
        """Pattern id -> its RateKey and latest window rate."""
        self._share = SharedStrings()
        self.high_water_ns = 0
        """The latest event time seen (or passed to :meth:`expire`)."""
        self.late = 0
        """Occurrences that arrived after their window had passed."""
        self.evicted_groups = 0
        """Groups dropped because of ``max_groups`` before their window emptied."""
        self.suppressed = 0
        """Occurrences at which a pattern would have started, but ``max_active`` were active."""
        self.transition_counts: dict[PatternState, int] = {
            state: 0 for state in PatternState if state is not PatternState.ANOMALOUS
        }
        """Transitions emitted so far, by state."""

    def __len__(self) -> int:
        """Groups currently tracked."""
        return len(self._groups)

    @property
    def active(self) -> int:
        """Patterns currently started or ongoing."""
        return self._active_total

    def observe(self, enriched: Enriched) -> str:
        """Count one Event update; return the id of its group's active pattern, or ""."""
        policy = self.rules.policy_for(enriched)
        if not policy.patterns:
            return ""
        t = enriched.event.time_ns
        if t > self.high_water_ns:
            self._advance(t)
        gkey = (policy.rule_id, key_values(enriched, policy.key))
        group = self._groups.get(gkey)
        n = enriched.occurrences
        if n <= 0:
            return group.pattern.id if group is not None and group.pattern is not None else ""
        if group is None:
            gkey, group = self._new_group(gkey, policy)
        elif group.newer is not None:
            self._unlink(group)
            self._append(group)
        width = group.width
        cut = self.high_water_ns // width - group.per_window
        self._evict_buckets(group, cut)
        if not group.buckets and group.pattern is None:
            # Nothing left of the last burst: start over, as a new group would.
            group.samples = group.incidents = ()
        index = t // width
        if index <= cut:
            self.late += n
        else:
            self._insert(group, index, n, t)
            self._remember(group, enriched)
        pattern = group.pattern
        if pattern is not None:
            pattern.count += n
        if index > cut:
            self._judge(gkey, group, enriched, t)
        return group.pattern.id if group.pattern is not None else ""

    def expire(self, now_ns: int) -> None:
        """Move "now" to ``now_ns`` (the pipeline's clock): resolve and drop what is due.

        In a replay, do not pass the wall clock: event times are in the past,
        and everything would resolve at once.
        """
        if now_ns > self.high_water_ns:
            self._advance(now_ns)

    def transitions(self) -> Sequence[Transition]:
        """Drain the transitions produced since the last call, in order.

        Called once per record, and nearly always with nothing: then it returns a
        shared empty tuple rather than a new list."""
        pending = self._pending
        if not pending:
            return ()
        self._pending = []
        return pending

    def active_counts(self) -> list[tuple[CategorySeverity, int]]:
        """Active patterns by category and severity, sorted: safe to call from any thread
        (one builtin copy; see :mod:`kubevents.telemetry`)."""
        return sorted(self._active_labels.copy().items())

    def active_rates(self, limit: int = 100) -> list[tuple[RateKey, float]]:
        """Window rate of the active patterns, summed by :class:`RateKey`: any thread.

        Highest rates first, at most ``limit`` keys, so the gauge stays small
        whatever the pattern keys are.
        """
        entries = [(r.key, r.rate) for r in list(self._rates.values())]
        summed: dict[RateKey, float] = {}
        for key, rate in entries:
            summed[key] = summed.get(key, 0.0) + rate
        return sorted(summed.items(), key=lambda item: (-item[1], item[0]))[:limit]

    def active_patterns(self) -> list[Transition]:
        """The patterns active now, as ``ongoing`` transitions (for a summary).

        Call it from the pipeline thread, like :meth:`observe`.
        """
        out = []
        group = self._oldest
        while group is not None:
            if group.pattern is not None:
                out.append(self._transition(group, PatternState.ONGOING, self.high_water_ns))
            group = group.newer
        return out

    def window_count(self, enriched: Enriched) -> int:
        """Occurrences in the window of the group ``enriched`` belongs to, at the high-water mark."""
        policy = self.rules.policy_for(enriched)
        group = self._groups.get((policy.rule_id, key_values(enriched, policy.key)))
        if group is None:
            return 0
        cut = self.high_water_ns // group.width - group.per_window
        b = group.buckets
        return sum(b[i + 1] for i in range(0, len(b), 3) if b[i] > cut)

    # -- internals ----------------------------------------------------------

    def _new_group(
        self, gkey: tuple[str | None, tuple[str, ...]], policy: PatternPolicy
    ) -> tuple[tuple[str | None, tuple[str, ...]], _Group]:
        """A new group under ``gkey``, and the key as stored (its values shared)."""
        if len(self._groups) >= self.max_groups:
            # Least recently updated first; active patterns are never evicted.
            old = self._oldest
            while old is not None and old.pattern is not None:
                old = old.newer
            if old is not None:
                self._forget(old)
                self.evicted_groups += 1
        width, per_window = _resolution(policy.window_ns)
        # A group may live for hours: its key holds shared names, not the Event's copies.
        gkey = (gkey[0], tuple([self._share(value) for value in gkey[1]]))
        group = self._groups[gkey] = _Group(policy, gkey[1], width, per_window, [])
        self._append(group)
        return gkey, group

    def _append(self, group: _Group) -> None:
        """Link ``group`` in as the most recently updated."""
        newest = self._newest
        group.older = newest
        if newest is None:
            self._oldest = group
        else:
            newest.newer = group
        self._newest = group

    def _unlink(self, group: _Group) -> None:
        """Take ``group`` out of the order (its neighbours linked to each other)."""
        older, newer = group.older, group.newer
        if older is None:
            self._oldest = newer
        else:
            older.newer = newer
        if newer is None:
            self._newest = older
        else:
            newer.older = older
        group.older = group.newer = None

    def _forget(self, group: _Group) -> None:
        """Drop ``group``: from the table and from the order."""
        del self._groups[(group.policy.rule_id, group.values)]
        self._unlink(group)

    @staticmethod
    def _evict_buckets(group: _Group, cut: int) -> None:
        b = group.buckets
        while b and b[0] <= cut:
            group.total -= b[1]
            del b[:3]

    @staticmethod
    def _insert(group: _Group, index: int, n: int, t: int) -> None:
        b = group.buckets
        if not b or b[-3] < index:
            b += (index, n, t)
        else:
            # Out of order (rare): walk back to the bucket's place.
            at = len(b) - 3
            while at > 0 and b[at] > index:
                at -= 3
            if b[at] == index:
                b[at + 1] += n
                b[at + 2] = min(b[at + 2], t)
            else:
                at = at + 3 if b[at] < index else at
                b[at:at] = (index, n, t)
        group.total += n
        group.last_ns = max(group.last_ns, t)

    @staticmethod
    def _remember(group: _Group, enriched: Enriched) -> None:
        if len(group.samples) < MAX_SAMPLES:
            group.samples = add_sample(group.samples, enriched)
        incident = enriched.correlation.incident_id if enriched.correlation else ""
        if incident and len(group.incidents) < MAX_INCIDENTS and incident not in group.incidents:
            group.incidents = (*group.incidents, incident)

    @staticmethod
    def _rate(group: _Group) -> float:
        if not group.buckets:
            return 0.0
        return rate_per_minute(group.total, group.last_ns - group.buckets[2])

    def _judge(
        self,
        gkey: tuple[str | None, tuple[str, ...]],
        group: _Group,
        enriched: Enriched,
        t: int,
    ) -> None:
        policy = group.policy
        pattern = group.pattern
        rate = 0.0
        if pattern is not None or group.total >= policy.min_count:
            rate = self._rate(group)
        if pattern is not None:
            pattern.rate.rate = rate
        if group.total < policy.min_count or rate < policy.min_rate_per_minute:
            return
        if pattern is not None:
            pattern.held_ns = max(pattern.held_ns, t)
            if t - pattern.reported_ns >= policy.window_ns:
                pattern.reported_ns = t
                self._emit(self._transition(group, PatternState.ONGOING, t))
            return
        if self._active_total >= self.max_active:
            self.suppressed += 1
            return
        first = group.buckets[2]
        cls = enriched.classification
        fields = dict(group.fields)
        rate_key = RateKey(
            policy.rule_id or "",
            fields.get("namespace", ""),
            fields.get("reason", ""),
            cls.category,
            cls.severity,
        )
        pattern = group.pattern = _Active(
            id=pattern_id(group.fields, first),
            first_seen_ns=first,
            count=group.total,
            held_ns=t,
            reported_ns=t,
            category=cls.category,
            severity=cls.severity,
            rate=_Rate(rate_key, rate),
        )
        label = CategorySeverity(cls.category, cls.severity)
        # One store each: a reader (the scrape thread) copies these dicts whole.
        self._active_labels[label] = self._active_labels.get(label, 0) + 1
        self._active_total += 1
        self._rates[pattern.id] = pattern.rate
        self._seq += 1
        heapq.heappush(self._deadlines, (t + policy.quiet_ns, self._seq, gkey, pattern.id))
        self._emit(self._transition(group, PatternState.STARTED, t))

    def _advance(self, now_ns: int) -> None:
        self.high_water_ns = now_ns
        while self._deadlines and self._deadlines[0][0] <= now_ns:
            deadline, _, gkey, pid = heapq.heappop(self._deadlines)
            group = self._groups.get(gkey)
            if group is None or group.pattern is None or group.pattern.id != pid:
                continue
            due = group.pattern.held_ns + group.policy.quiet_ns
            if due > deadline:
                self._seq += 1
                heapq.heappush(self._deadlines, (due, self._seq, gkey, pid))
                continue
            self._resolve(group, due)
        # Groups with nothing in their window and no pattern are forgotten,
        # least recently updated first.
        group = self._oldest
        while group is not None:
            width = group.width
            if (
                group.pattern is not None
                or group.last_ns // width > now_ns // width - group.per_window
            ):
                break
            self._forget(group)
            group = self._oldest

    def _resolve(self, group: _Group, due: int) -> None:
        pattern = group.pattern
        assert pattern is not None
        self._emit(self._transition(group, PatternState.RESOLVED, due))
        label = CategorySeverity(pattern.category, pattern.severity)
        left = self._active_labels[label] - 1
        if left:
            self._active_labels[label] = left
        else:
            del self._active_labels[label]  # never seen at 0 by a reader
        self._active_total -= 1
        del self._rates[pattern.id]
        group.pattern = None
        group.buckets.clear()
        group.total = 0
        group.samples = ()
        group.incidents = ()

    def _transition(self, group: _Group, state: PatternState, t: int) -> Transition:
        pattern = group.pattern
        assert pattern is not None
        if state is PatternState.RESOLVED:
            rate = rate_per_minute(pattern.count, group.last_ns - pattern.first_seen_ns)
        else:
            rate = self._rate(group)
        return Transition(
            pattern_id=pattern.id,
            state=state,
            time_ns=t,
            fields=group.fields,
            rule_id=group.policy.rule_id,
            category=pattern.category,
            severity=pattern.severity,
            count=pattern.count,
            rate_per_minute=round(rate, 6),
            first_seen_ns=pattern.first_seen_ns,
            last_seen_ns=group.last_ns,
            samples=group.samples,
            incidents=group.incidents,
        )

    def _emit(self, transition: Transition) -> None:
        self.transition_counts[transition.state] += 1
        self._pending.append(transition)
