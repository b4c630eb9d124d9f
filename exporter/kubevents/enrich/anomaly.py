"""Anomalies: an occurrence rate that breaks from its own baseline.

Two scopes are scored: each (namespace, reason) and each category. Time is
cut into fixed event-time buckets (default 1 min). When a bucket is over, its
count updates an exponentially weighted mean and variance (weight ``alpha``
for the newest bucket); buckets without occurrences count as zero, applied
in closed form so a long gap costs nothing. The bucket in progress is scored
against that baseline at every occurrence::

    score = (count - mean) / sqrt(max(variance, mean) + 1)

``max(variance, mean)`` is the Poisson floor: a series that was always quiet
has variance 0, and the ``+ 1`` keeps its score finite (it is then about the
count itself). A bucket is **anomalous** when the score reaches
``threshold``, the count reaches ``min_count`` and ``min_ratio`` times the
mean, and at least ``warmup`` of event time has been seen since the first
occurrence. A steady rate, however high, has a mean near its count and never
qualifies; a storm of a reason that is normally quiet does within a bucket.
Each anomalous bucket emits one ``anomalous`` transition.

While a bucket is anomalous its count enters the baseline clipped to
``mean + threshold * sd``, so a storm does not immediately teach the baseline
that storms are normal, yet a lasting new level is learnt after a while.

A series that was quiet for ``idle`` is forgotten: its baseline has decayed
to about zero, which is also where a new series starts, so nothing is lost.
Past ``max_series`` the least recently updated series is evicted
(``evicted``). Occurrences for a bucket already closed are counted in
``late`` and not scored.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from kubevents.enrich.pattern_rules import AnomalySettings, PatternRules
from kubevents.enrich.patterns import (
    MAX_SAMPLES,
    PatternState,
    Sample,
    Transition,
    add_sample,
    pattern_id,
)
from kubevents.model import Enriched

REASON_SCOPE: Final = "reason"
CATEGORY_SCOPE: Final = "category"
SCOPES: Final = (CATEGORY_SCOPE, REASON_SCOPE)
"""The scopes series are scored in (the ``kubevents.anomalies.active`` gauge reports both)."""
_MINUTE_NS: Final = 60_000_000_000

_SeriesKey = tuple[str, ...]


@dataclass(slots=True)
class _Series:
    key: _SeriesKey
    fields: tuple[tuple[str, str], ...]
    bucket: int
    count: int = 0
    mean: float = 0.0
    var: float = 0.0
    first_ns: int = 0
    """Earliest occurrence in the current bucket."""
    last_ns: int = 0
    score: float = 0.0
    anomalous: bool = False
    samples: tuple[Sample, ...] = ()
    older: _Series | None = field(default=None, repr=False, compare=False)
    """The series updated before this one (None: this is the least recently updated)."""
    newer: _Series | None = field(default=None, repr=False, compare=False)
    """The series updated after this one (None: this is the most recently updated)."""


@dataclass(frozen=True, slots=True)
class AnomalyScore:
    """The score of one anomalous series, for the ``kubevents.anomaly.score`` gauge."""

    scope: str
    """:data:`REASON_SCOPE` or :data:`CATEGORY_SCOPE`."""
    namespace: str
    reason: str
    category: str
    score: float


def _fields(key: _SeriesKey) -> tuple[tuple[str, str], ...]:
    """The (field, value) pairs a series key stands for."""
    if key[0] == REASON_SCOPE:
        return (("namespace", key[1]), ("reason", key[2]))
    return (("category", str(key[1])),)


class AnomalyDetector:
    """Scores occurrence rates per (namespace, reason) and per category."""

    def __init__(
        self,
        rules: PatternRules,
        *,
        max_series: int = 20_000,
        max_exported: int = 100,
    ) -> None:
        self.rules = rules
        self.settings: AnomalySettings = rules.anomaly
        self.max_series = max_series
        self.max_exported = max_exported
        self._series: dict[_SeriesKey, _Series] = {}
        # The series from the least to the most recently updated, linked through the
        # series themselves: an update relinks one series, where an OrderedDict's
        # move_to_end was a method call that hashed the key again.
        self._oldest: _Series | None = None
        self._newest: _Series | None = None
        self._anomalous: dict[_SeriesKey, AnomalyScore] = {}
        self._pending: list[Transition] = []
        self._start_ns: int | None = None
        self._swept = -1
        self.high_water_ns = 0
        self.late = 0
        """Occurrences that arrived after their bucket had closed."""
        self.evicted = 0
        """Series dropped because of ``max_series``."""
        self.transition_counts: dict[PatternState, int] = {PatternState.ANOMALOUS: 0}
        """Transitions emitted so far, by state (only ``anomalous``)."""

    def __len__(self) -> int:
        """Series currently tracked."""
        return len(self._series)

    def observe(self, enriched: Enriched) -> None:
        """Count one Event update's occurrences in its series and score them."""
        n = enriched.occurrences
        if n <= 0 or not self.rules.policy_for(enriched).anomalies:
            return
        t = enriched.event.time_ns
        if self._start_ns is None:
            self._start_ns = t
        if t > self.high_water_ns:
            self._advance(t)
        event = enriched.event
        namespace = event.regarding.namespace or event.namespace
        if not self._add((REASON_SCOPE, namespace, event.reason), enriched):
            self.late += n
        # A Category is a str enum: the member is its value.
        self._add((CATEGORY_SCOPE, enriched.classification.category), enriched)

    def expire(self, now_ns: int) -> None:
        """Move "now" to ``now_ns`` (the pipeline's clock) when no Event does.

        Closes the finished buckets of anomalous series (so ``scores()`` drops
        them) and forgets idle series. In a replay, do not pass the wall clock.
        """
        if now_ns > self.high_water_ns:
            self._advance(now_ns)

    def transitions(self) -> Sequence[Transition]:
        """Drain the ``anomalous`` transitions produced since the last call.

        Called once per record, and nearly always with nothing: then it returns a
        shared empty tuple rather than a new list."""
        pending = self._pending
        if not pending:
            return ()
        self._pending = []
        return pending

    def scores(self) -> list[AnomalyScore]:
        """Anomalous series now, highest score first, at most ``max_exported``: any thread
        (one builtin copy; see :mod:`kubevents.telemetry`)."""
        scores = list(self._anomalous.values())
        scores.sort(key=lambda s: (-s.score, s.scope, s.namespace, s.reason, s.category))
        return scores[: self.max_exported]

    @property
    def active(self) -> int:
        """Series whose current bucket is anomalous."""
        return len(self._anomalous)

    def active_counts(self) -> list[tuple[str, int]]:
        """Anomalous series by scope (of :data:`SCOPES`, those with any): any thread."""
        scopes = [key[0] for key in list(self._anomalous)]
        return [(scope, scopes.count(scope)) for scope in SCOPES if scope in scopes]

    def baseline(self, key: _SeriesKey) -> tuple[float, float] | None:
        """(mean, variance) per bucket of a series, e.g. ``("reason", ns, reason)``."""
        series = self._series.get(key)
        return (series.mean, series.var) if series is not None else None

    # -- internals ----------------------------------------------------------

    def _add(self, key: _SeriesKey, enriched: Enriched) -> bool:
        """Count and score; False when the occurrence's bucket had already closed."""
        settings = self.settings
        t = enriched.event.time_ns
        bucket = t // settings.bucket_ns
        series = self._series.get(key)
        if series is None:
            oldest = self._oldest
            if len(self._series) >= self.max_series and oldest is not None:
                self._forget(oldest)
                self.evicted += 1
            series = self._series[key] = _Series(key, _fields(key), bucket, first_ns=t)
            self._append(series)
        else:
            if series.newer is not None:
                self._unlink(series)
                self._append(series)
            if bucket > series.bucket:
                self._roll(key, series, bucket)
            elif bucket < series.bucket:
                return False
        series.count += enriched.occurrences
        series.last_ns = max(series.last_ns, t)
        series.first_ns = min(series.first_ns, t) if series.count > enriched.occurrences else t
        if len(series.samples) < MAX_SAMPLES:
            series.samples = add_sample(series.samples, enriched)
        floor = max(series.var, series.mean) + 1.0
        series.score = (series.count - series.mean) / math.sqrt(floor)
        if series.anomalous:
            self._anomalous[key] = self._score(key, series, enriched)
        elif (
            series.score >= settings.threshold
            and series.count >= settings.min_count
            and series.count >= settings.min_ratio * series.mean
            and self._start_ns is not None
            and t - self._start_ns >= settings.warmup_ns
        ):
            series.anomalous = True
            self._anomalous[key] = self._score(key, series, enriched)
            self._pending.append(self._transition(key, series, enriched))
            self.transition_counts[PatternState.ANOMALOUS] += 1
        return True

    def _roll(self, key: _SeriesKey, series: _Series, bucket: int) -> None:
        """Close the current bucket into the baseline and move to ``bucket``."""
        settings = self.settings
        alpha = settings.alpha
        x = float(series.count)
        if series.anomalous:
            sd = math.sqrt(max(series.var, series.mean) + 1.0)
            x = min(x, series.mean + settings.threshold * sd)
            self._drop(key)
        diff = x - series.mean
        incr = alpha * diff
        series.mean += incr
        series.var = (1 - alpha) * (series.var + diff * incr)
        gap = bucket - series.bucket - 1
        if gap > 0:
            # k empty buckets in closed form: mean * q^k, q^k * (var + mean^2 * (1 - q^k)).
            qk = (1 - alpha) ** gap
            series.var = qk * (series.var + series.mean * series.mean * (1 - qk))
            series.mean *= qk
        series.bucket = bucket
        series.count = 0
        series.score = 0.0
        series.anomalous = False
        series.samples = ()

    def _drop(self, key: _SeriesKey) -> None:
        if key in self._anomalous:
            del self._anomalous[key]

    def _append(self, series: _Series) -> None:
        """Link ``series`` in as the most recently updated."""
        newest = self._newest
        series.older = newest
        if newest is None:
            self._oldest = series
        else:
            newest.newer = series
        self._newest = series

    def _unlink(self, series: _Series) -> None:
        """Take ``series`` out of the order (its neighbours linked to each other)."""
        older, newer = series.older, series.newer
        if older is None:
            self._oldest = newer
        else:
            older.newer = newer
        if newer is None:
            self._newest = older
        else:
            newer.older = older
        series.older = series.newer = None

    def _forget(self, series: _Series) -> None:
        """Drop ``series``: from the table, the order and the anomalous ones."""
        del self._series[series.key]
        self._unlink(series)
        self._drop(series.key)

    def _advance(self, now_ns: int) -> None:
        self.high_water_ns = now_ns
        bucket = now_ns // self.settings.bucket_ns
        if bucket == self._swept:
            return  # once per bucket is enough
        self._swept = bucket
        # An anomalous bucket that is over is closed now rather than at the
        # series' next occurrence (the result is the same), so the score
        # gauge does not show it any longer.
        for key in list(self._anomalous):
            series = self._series[key]
            if series.bucket < bucket:
                self._roll(key, series, bucket)
        cutoff = now_ns - self.settings.idle_ns
        oldest = self._oldest
        while oldest is not None and oldest.last_ns < cutoff:
            self._forget(oldest)
            oldest = self._oldest

    def _score(self, key: _SeriesKey, series: _Series, enriched: Enriched) -> AnomalyScore:
        category = enriched.classification.category.value
        if key[0] == REASON_SCOPE:
            return AnomalyScore(REASON_SCOPE, key[1], key[2], category, round(series.score, 3))
        return AnomalyScore(CATEGORY_SCOPE, "", "", category, round(series.score, 3))

    def _transition(self, key: _SeriesKey, series: _Series, enriched: Enriched) -> Transition:
        bucket_ns = self.settings.bucket_ns
        start = series.bucket * bucket_ns
        incident = enriched.correlation.incident_id if enriched.correlation else ""
        return Transition(
            pattern_id=pattern_id((("anomaly", key[0]), *series.fields), start),
            state=PatternState.ANOMALOUS,
            time_ns=enriched.event.time_ns,
            fields=series.fields,
            rule_id=None,
            category=enriched.classification.category,
            severity=enriched.classification.severity,
            count=series.count,
            rate_per_minute=round(series.count * _MINUTE_NS / bucket_ns, 6),
            first_seen_ns=series.first_ns,
            last_seen_ns=series.last_ns,
            samples=series.samples,
            incidents=(incident,) if incident else (),
            score=round(series.score, 3),
        )
