"""Bounded label counters: occurrence counts whose label sets cannot explode.

A metric label takes its values from the Events (namespace, kind, reason),
so a buggy controller inventing a new reason per Event would create a new
Prometheus series per Event. :class:`BoundedCounter` caps that twice:

* each label has a cap on its distinct values; a value that arrives when its
  label is full is counted as ``__other__``;
* the counter has a cap on its series; a label set that would be one series
  too many keeps only its ``keep_on_overflow`` labels (closed sets such as
  category and severity) and has every other label set to ``__other__``.

Admission is first come, first served, so the same input always gives the
same series. Series idle for ``idle_ttl_s`` of event time are evicted by
:meth:`BoundedCounter.expire`, and a label value no series uses any more
frees its slot, so ephemeral namespaces do not fill the caps for good
(a Prometheus counter that disappears and comes back is a counter reset,
which ``rate()`` handles). Everything folded or evicted is counted in plain
ints for the metrics layer to export.

The pipeline thread writes and takes no lock; the metrics layer reads
:meth:`BoundedCounter.snapshot` from its own thread at collection time, which
copies the series with one builtin call (see :mod:`kubevents.telemetry`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from kubevents.conventions import MetricLabel as L
from kubevents.model import Enriched

OTHER: Final = "__other__"
"""The value a label takes when its cap (or the series cap) is reached."""

_NS = 1_000_000_000


@dataclass(slots=True)
class _Series:
    key: tuple[str, ...]
    """The label values (kept here so a reader copies the values alone, see snapshot)."""
    count: int
    last_ns: int
    older: _Series | None = field(default=None, repr=False, compare=False)
    """The series updated before this one (None: this is the least recently updated)."""
    newer: _Series | None = field(default=None, repr=False, compare=False)
    """The series updated after this one (None: this is the most recently updated)."""


class BoundedCounter:
    """Counts by label set, with caps per label and on the number of series."""

    def __init__(
        self,
        labels: Sequence[str],
        *,
        max_values: Mapping[str, int],
        max_series: int,
        keep_on_overflow: Collection[str] = (),
        idle_ttl_s: float | None = None,
    ) -> None:
        """
        Args:
            labels: the label names, in the order :meth:`add` takes values.
            max_values: distinct values allowed per label (``__other__`` not included).
            max_series: series allowed before label sets are folded.
            keep_on_overflow: labels kept when a label set is folded for the
                series cap; they must be closed sets, or the fold is unbounded.
            idle_ttl_s: evict series not updated for this long (event time);
                None keeps them for the life of the process.
        """
        unknown = [name for name in [*max_values, *keep_on_overflow] if name not in labels]
        if unknown:
            raise ValueError(f"unknown labels {unknown} (labels are {list(labels)})")
        self.labels = tuple(labels)
        self._caps = tuple(max_values.get(name, max_series) for name in self.labels)
        self._keep = tuple(name in keep_on_overflow for name in self.labels)
        self._max_series = max_series
        self._ttl_ns = None if idle_ttl_s is None else int(idle_ttl_s * _NS)
        self._series: dict[tuple[str, ...], _Series] = {}
        # The series from the least to the most recently updated, linked through the
        # series themselves: an add relinks one series, where an OrderedDict's
        # move_to_end was a method call that hashed the key again.
        self._oldest: _Series | None = None
        self._newest: _Series | None = None
        # Per label: value -> number of series that use it.
        self._values: tuple[dict[str, int], ...] = tuple({} for _ in self.labels)
        self.value_overflows = 0
        """Occurrences counted with a label set to ``__other__`` because the label was full."""
        self.series_overflows = 0
        """Occurrences folded because the counter had ``max_series`` series."""
        self.evicted = 0
        """Series evicted after ``idle_ttl_s`` without an update."""

    def __len__(self) -> int:
        return len(self._series)

    def add(self, values: Sequence[str], n: int = 1, *, time_ns: int = 0) -> tuple[str, ...]:
        """Add ``n`` to the series of ``values``; return the label set it counted under."""
        key = tuple(values)
        series = self._series.get(key)
        if series is None:
            key = self._admit(key, n)
            series = self._series.get(key)
            if series is None:
                for value, used in zip(key, self._values, strict=True):
                    if value != OTHER:
                        used[value] = used.get(value, 0) + 1
                # One store: a reader sees the series with its first count or not at all.
                series = self._series[key] = _Series(key, n, time_ns)
                self._append(series)
                return key
        if series.newer is not None:
            self._unlink(series)
            self._append(series)
        series.count += n
        series.last_ns = max(series.last_ns, time_ns)
        return key

    def _admit(self, key: tuple[str, ...], n: int) -> tuple[str, ...]:
        """The label set a new ``key`` is counted under (caps applied), as plain strings."""
        values = []
        overflow = False
        for value, used, cap in zip(key, self._values, self._caps, strict=True):
            if value in used or len(used) < cap:
                values.append(str(value))  # str(): a str enum member becomes its value
            else:
                values.append(OTHER)
                overflow = True
        folded = tuple(values)
        if overflow:
            self.value_overflows += n
        if folded in self._series or len(self._series) < self._max_series:
            return folded
        self.series_overflows += n
        return tuple(
            value if keep else OTHER for value, keep in zip(folded, self._keep, strict=True)
        )

    def expire(self, now_ns: int) -> int:
        """Evict series idle since before ``now_ns - idle_ttl_s``; return how many."""
        if self._ttl_ns is None:
            return 0
        cutoff = now_ns - self._ttl_ns
        evicted = 0
        # Least recently updated first; stop at the first one still fresh.
        series = self._oldest
        while series is not None and series.last_ns < cutoff:
            key = series.key
            del self._series[key]
            self._unlink(series)
            series = self._oldest
            for value, used in zip(key, self._values, strict=True):
                if value != OTHER:
                    used[value] -= 1
                    if not used[value]:
                        del used[value]
            evicted += 1
        self.evicted += evicted
        return evicted

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

    def snapshot(self) -> list[tuple[dict[str, str], int]]:
        """Every series as (labels, count), sorted by labels: safe from any thread.

        ``list(values())`` copies the series in one builtin call that runs no Python
        code and allocates nothing the collector tracks, so under the GIL the pipeline
        thread cannot change the dict half-way (an ``items()`` copy would build a tuple
        per series).
        """
        items = [(series.key, series.count) for series in list(self._series.values())]
        items.sort()
        return [(dict(zip(self.labels, key, strict=True)), count) for key, count in items]


EVENT_LABELS: Final = (
    L.NAMESPACE,
    L.KIND,
    L.EVENT_REASON,
    L.EVENT_TYPE,
    L.CATEGORY,
    L.SEVERITY,
)
"""The labels of ``kubevents.events`` (attribute names with dots as underscores)."""

EVENT_LABEL_CAPS: Final[Mapping[str, int]] = {
    L.NAMESPACE: 200,
    L.KIND: 50,
    L.EVENT_REASON: 300,
    L.EVENT_TYPE: 5,
    L.CATEGORY: 20,
    L.SEVERITY: 10,
}
"""Default distinct values per label. Category and severity are closed sets."""

UNCLASSIFIED_LABELS: Final = (L.REPORTING_CONTROLLER, L.EVENT_TYPE)
"""The labels of ``kubevents.events.unclassified``: who reports the Events no rule matched."""

UNCLASSIFIED_CONTROLLERS_CAP: Final = 50
"""Distinct reporting controllers counted apart; the rest are ``__other__``. Unclassified
Events come from a handful of operators at a time: 50 names are enough to say which pack or
rule to write, and few enough to keep the series bounded."""


class EventCounts:
    """Occurrences by namespace, kind, reason, type, category and severity.

    The state behind the ``kubevents.events`` counter
    (``kubevents_events_total`` in Prometheus).
    """

    def __init__(
        self,
        *,
        max_values: Mapping[str, int] = EVENT_LABEL_CAPS,
        max_series: int = 5000,
        idle_ttl_s: float | None = 3600.0,
    ) -> None:
        self.counter = BoundedCounter(
            EVENT_LABELS,
            max_values=max_values,
            max_series=max_series,
            keep_on_overflow=(L.EVENT_TYPE, L.CATEGORY, L.SEVERITY),
            idle_ttl_s=idle_ttl_s,
        )
        self.unclassified = BoundedCounter(
            UNCLASSIFIED_LABELS,
            max_values={L.REPORTING_CONTROLLER: UNCLASSIFIED_CONTROLLERS_CAP, L.EVENT_TYPE: 5},
            max_series=2 * UNCLASSIFIED_CONTROLLERS_CAP + 10,
            keep_on_overflow=(L.EVENT_TYPE,),
            idle_ttl_s=idle_ttl_s,
        )
        """Occurrences no rule classified, by reporting controller and type."""

    def record(self, enriched: Enriched) -> None:
        """Count the occurrences of one Event update (nothing for 0)."""
        n = enriched.occurrences
        if n <= 0:
            return
        event, cls = enriched.event, enriched.classification
        # Category and Severity are str enums: the members are the values.
        self.counter.add(
            (
                event.regarding.namespace or event.namespace,
                event.regarding.kind,
                event.reason,
                event.type,
                cls.category,
                cls.severity,
            ),
            n,
            time_ns=event.time_ns,
        )
        if cls.rule_id is None:
            self.unclassified.add(
                (event.reporting_controller, event.type), n, time_ns=event.time_ns
            )

    def expire(self, now_ns: int) -> int:
        """Evict idle series (see :meth:`BoundedCounter.expire`)."""
        return self.counter.expire(now_ns) + self.unclassified.expire(now_ns)

    def unclassified_snapshot(self) -> list[tuple[dict[str, str], int]]:
        """Unclassified occurrences by reporting controller and type, sorted."""
        return self.unclassified.snapshot()

    def __len__(self) -> int:
        """Series counted now."""
        return len(self.counter)

    def snapshot(self) -> list[tuple[dict[str, str], int]]:
        """Every series as (labels, count), sorted: what the metrics layer observes."""
        return self.counter.snapshot()

    @property
    def value_overflows(self) -> int:
        """Occurrences counted under ``__other__`` because a label was full."""
        return self.counter.value_overflows

    @property
    def series_overflows(self) -> int:
        """Occurrences folded because the series cap was reached."""
        return self.counter.series_overflows

    @property
    def evicted(self) -> int:
        """Series evicted as idle."""
        return self.counter.evicted
