"""Occurrences, not updates: which Event updates add something new.

A recurring Event is one object updated in place; the watch shows each bump
of its count as MODIFIED, a replay file may hold the same Event several times,
and a relist shows everything again. :class:`SeriesTracker` remembers, per
Event, the count already emitted (and a hash of the message), so that:

* an update that raises the count is emitted as that many new occurrences;
* an update that changes nothing that matters (same count, same message) is
  not emitted again;
* a relist after a restart emits only what the checkpoint does not cover.

Memory is bounded twice: entries older than ``ttl_s`` of event time are
dropped (the API server forgets Events after an hour anyway), and past
``max_entries`` the least recently updated entries are evicted and counted.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from kubevents.model import KubeEvent, new_occurrences

_NS = 1_000_000_000


@dataclass(slots=True)
class _Seen:
    count: int
    message_hash: int | None
    """None after a restore from a checkpoint: the message is unknown, any matches."""
    time_ns: int


class SeriesTracker:
    """Remembers the count emitted per Event; bounded by age and size."""

    def __init__(self, *, ttl_s: float = 2 * 3600, max_entries: int = 500_000) -> None:
        self._ttl_ns = int(ttl_s * _NS)
        self._max = max_entries
        self._seen: OrderedDict[str, _Seen] = OrderedDict()
        self._high_water_ns = 0
        self.evicted = 0
        """Entries dropped because of ``max_entries`` (not age): a restart may repeat them."""

    def __len__(self) -> int:
        return len(self._seen)

    def observe(self, event: KubeEvent) -> int | None:
        """Record ``event`` and return its new occurrences, or None to skip it.

        Returns 0 for an update whose message changed but whose count did not.
        """
        key = event.key
        message_hash = hash(event.message)
        if event.time_ns > self._high_water_ns:
            self._high_water_ns = event.time_ns
        seen = self._seen.get(key)
        if seen is None:
            added = new_occurrences(event, None)
            self._seen[key] = _Seen(event.count, message_hash, event.time_ns)
        else:
            added = new_occurrences(event, seen.count)
            if added == 0 and seen.message_hash in (message_hash, None):
                seen.message_hash = message_hash
                return None
            seen.count = max(seen.count, event.count)
            seen.message_hash = message_hash
            seen.time_ns = max(seen.time_ns, event.time_ns)
            self._seen.move_to_end(key)
        self._trim()
        return added

    def forget(self, event: KubeEvent) -> None:
        """Drop an Event that was deleted (TTL expiry): nothing more will come."""
        self._seen.pop(event.key, None)

    def snapshot(self) -> dict[str, int]:
        """The emitted count per Event key, for a checkpoint."""
        return {key: seen.count for key, seen in self._seen.items()}

    def restore(self, counts: Iterable[tuple[str, int]], *, time_ns: int) -> None:
        """Load counts from a checkpoint; messages are unknown, so only counts gate:
        a relist of an Event with the same count is not emitted again.

        ``time_ns`` is the checkpoint's event-time high-water mark (not the wall
        clock: Event timestamps and our clock may disagree).
        """
        for key, count in counts:
            self._seen[key] = _Seen(count, None, time_ns)
        self._high_water_ns = max(self._high_water_ns, time_ns)
        self._trim()

    @property
    def high_water_ns(self) -> int:
        """The newest event time seen: ages are measured from it, never from the wall clock."""
        return self._high_water_ns

    def count_of(self, event: KubeEvent) -> int | None:
        """The count already emitted for ``event``, or None."""
        seen = self._seen.get(event.key)
        return seen.count if seen else None

    def _trim(self) -> None:
        cutoff = self._high_water_ns - self._ttl_ns
        # Entries are ordered by last update, so stale ones gather at the front.
        while self._seen:
            key, oldest = next(iter(self._seen.items()))
            if oldest.time_ns >= cutoff and len(self._seen) <= self._max:
                break
            del self._seen[key]
            if oldest.time_ns >= cutoff:
                self.evicted += 1
