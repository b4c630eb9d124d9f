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
``max_entries`` the entries updated longest ago (in event time) are evicted
and counted.

The tracker holds one entry per Event of the last two hours (175,000 in the
memory bench), so an entry is kept small:

* its count, message hash and time are packed into one int of 48 bytes
  (:func:`pack`), where a slots object and the int of its hash took 112;
* the entries live in a plain dict, updated in place, about 45 bytes per
  entry where an ``OrderedDict`` (to keep them in update order) took 100.
  Without that order, age is swept in one pass at most every
  ``ttl_s / 64`` of event time, and the size cap evicts the oldest
  1/64th of the entries at once (:meth:`SeriesTracker._trim`);
* the key stays the Event's own key string: as a 128-bit int a UUID would
  take 48 bytes less, but the checkpoint's emitted counts hold the same
  strings, and printing ints back for every checkpoint made it 2.5 times
  slower.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final, NamedTuple

from kubevents.enrich.owners import evict_oldest
from kubevents.model import KubeEvent, new_occurrences

_NS = 1_000_000_000

UNKNOWN_MESSAGE: Final = 1 << 64
"""The message fingerprint of an entry restored from a checkpoint: any message matches.

Fingerprints of real messages are below it (:func:`fingerprint`)."""
_FINGERPRINT_BITS: Final = 65
_COUNT_BITS: Final = 32
_TIME_SHIFT: Final = _FINGERPRINT_BITS + _COUNT_BITS
_COUNT_MASK: Final = (1 << _COUNT_BITS) - 1
_FINGERPRINT_MASK: Final = (1 << _FINGERPRINT_BITS) - 1


class Seen(NamedTuple):
    """What the tracker remembers of one Event (unpacked)."""

    emitted: int
    """The highest count emitted."""
    fingerprint: int
    """:func:`fingerprint` of the latest message, or :data:`UNKNOWN_MESSAGE`."""
    time_ns: int
    """Event time of the latest update: what ages the entry out."""


Entry = int | Seen
"""A packed :class:`Seen` (see :func:`pack`), or the Seen itself when it does not fit."""


def fingerprint(message: str) -> int:
    """``hash(message)`` as an unsigned 64-bit int.

    The mapping from the signed hash is one to one, so two messages have the
    same fingerprint exactly when they have the same hash, as before packing.
    """
    return hash(message) & (UNKNOWN_MESSAGE - 1)


def pack(emitted: int, fingerprint: int, time_ns: int) -> Entry:
    """One entry: an int with time in the high bits, a 32-bit count, a 65-bit fingerprint.

    Time goes on top because it is the one field without a fixed range (an
    Event dated year 1 is negative; shifts and masks keep it exact). A count
    outside 32 bits (Kubernetes counts are int32, a replay file may say
    anything) is kept in a plain :class:`Seen` rather than cut short.
    """
    if 0 <= emitted <= _COUNT_MASK:
        return (time_ns << _TIME_SHIFT) | (emitted << _FINGERPRINT_BITS) | fingerprint
    return Seen(emitted, fingerprint, time_ns)


def unpack(entry: Entry) -> Seen:
    """The fields :func:`pack` made ``entry`` from."""
    if isinstance(entry, Seen):
        return entry
    return Seen(
        (entry >> _FINGERPRINT_BITS) & _COUNT_MASK,
        entry & _FINGERPRINT_MASK,
        entry >> _TIME_SHIFT,
    )


def _emitted(entry: Entry) -> int:
    return entry.emitted if isinstance(entry, Seen) else (entry >> _FINGERPRINT_BITS) & _COUNT_MASK


def _time_of(entry: Entry) -> int:
    return entry.time_ns if isinstance(entry, Seen) else entry >> _TIME_SHIFT


class SeriesTracker:
    """Remembers the count emitted per Event; bounded by age and size."""

    def __init__(self, *, ttl_s: float = 2 * 3600, max_entries: int = 500_000) -> None:
        self._ttl_ns = int(ttl_s * _NS)
        self._sweep_every_ns = self._ttl_ns // 64
        self._max = max_entries
        self._seen: dict[str, Entry] = {}
        self._high_water_ns = 0
        self._swept_ns: int | None = None
        """The high-water mark at the last age sweep (None: never swept)."""
        self._oldest_ns: int | None = None
        """No entry is older than this (a lower bound; None while the tracker is empty)."""
        self.evicted = 0
        """Entries dropped because of ``max_entries`` (not age): a restart may repeat them."""
        self.removals = 0
        """Entries dropped for any reason (age, size, deletion): while it has not changed,
        every key a checkpoint holds is still here and need not be checked."""

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, key: object) -> bool:
        """Whether the Event with this key is remembered."""
        return key in self._seen

    def observe(self, event: KubeEvent) -> int | None:
        """Record ``event`` and return its new occurrences, or None to skip it.

        Returns 0 for an update whose message changed but whose count did not.
        """
        key = event.key
        message = fingerprint(event.message)
        time_ns = event.time_ns
        if time_ns > self._high_water_ns:
            self._high_water_ns = time_ns
        entry = self._seen.get(key)
        if entry is None:
            added = new_occurrences(event, None)
            self._seen[key] = pack(event.count, message, time_ns)
            if self._oldest_ns is None or time_ns < self._oldest_ns:
                self._oldest_ns = time_ns
        else:
            # unpack(entry), without making a Seen: a named tuple's constructor is
            # interpreted Python even in the compiled build.
            if isinstance(entry, Seen):
                emitted, seen_message, seen_ns = entry
            else:
                emitted = (entry >> _FINGERPRINT_BITS) & _COUNT_MASK
                seen_message = entry & _FINGERPRINT_MASK
                seen_ns = entry >> _TIME_SHIFT
            added = new_occurrences(event, emitted)
            if added == 0 and seen_message in (message, UNKNOWN_MESSAGE):
                if seen_message != message:
                    self._seen[key] = pack(emitted, message, seen_ns)
                return None
            self._seen[key] = pack(max(emitted, event.count), message, max(seen_ns, time_ns))
        self._trim()
        return added

    def forget(self, event: KubeEvent) -> None:
        """Drop an Event that was deleted (TTL expiry): nothing more will come."""
        if self._seen.pop(event.key, None) is not None:
            self.removals += 1

    def snapshot(self) -> dict[str, int]:
        """The emitted count per Event key, for a checkpoint."""
        return {key: _emitted(entry) for key, entry in self._seen.items()}

    def restore(self, counts: Iterable[tuple[str, int]], *, time_ns: int) -> None:
        """Load counts from a checkpoint; messages are unknown, so only counts gate:
        a relist of an Event with the same count is not emitted again.

        ``time_ns`` is the checkpoint's event-time high-water mark (not the wall
        clock: Event timestamps and our clock may disagree).
        """
        before = len(self._seen)
        for key, count in counts:
            self._seen[key] = pack(count, UNKNOWN_MESSAGE, time_ns)
        if len(self._seen) > before and (self._oldest_ns is None or time_ns < self._oldest_ns):
            self._oldest_ns = time_ns
        self._high_water_ns = max(self._high_water_ns, time_ns)
        self._trim()

    @property
    def high_water_ns(self) -> int:
        """The newest event time seen: ages are measured from it, never from the wall clock."""
        return self._high_water_ns

    def count_of(self, event: KubeEvent) -> int | None:
        """The count already emitted for ``event``, or None."""
        entry = self._seen.get(event.key)
        return _emitted(entry) if entry is not None else None

    def _trim(self) -> None:
        """Drop what aged out and what is over the size cap.

        Cheap on every call: the age sweep (one pass over every entry) runs
        only when some entry may have aged out and the high-water mark moved
        ``ttl_s / 64`` since the last sweep, so an entry lives at most that
        much past its TTL; the size cap evicts the oldest 1/64th of the
        entries at once, so it runs once per ``max_entries / 64`` new Events.
        """
        cutoff = self._high_water_ns - self._ttl_ns
        if (
            self._oldest_ns is not None
            and self._oldest_ns < cutoff
            and (
                self._swept_ns is None
                or self._high_water_ns - self._swept_ns >= self._sweep_every_ns
            )
        ):
            self._sweep(cutoff)
        if len(self._seen) > self._max:
            self._evict(len(self._seen) - self._max + self._max // 64)

    def _sweep(self, cutoff: int) -> None:
        self._swept_ns = self._high_water_ns
        kept = {key: entry for key, entry in self._seen.items() if _time_of(entry) >= cutoff}
        self.removals += len(self._seen) - len(kept)
        self._seen = kept
        self._oldest_ns = min(map(_time_of, kept.values())) if kept else None

    def _evict(self, n: int) -> None:
        evicted = len(evict_oldest(self._seen, n, _time_of))
        self.removals += evicted
        self.evicted += evicted
