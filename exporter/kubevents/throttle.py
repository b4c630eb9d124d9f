"""Throttling noisy series: at most one record per Event per interval.

A crash-looping pod's BackOff Event may be updated every few seconds. With
``watch.throttle_s`` set, an update that comes within the interval after the
last emitted one is *held*, not dropped: the newest held update replaces an
older one, and it is released when the interval has passed. Its record then
carries all the occurrences since the last one (``kubevents.occurrences``),
so counts and metrics stay exact; only the number of records shrinks.
Held updates are released on shutdown too. This is the idea of the
Collector receiver's ``dedup_interval``, without its losses.
"""

from __future__ import annotations

from collections import OrderedDict

from kubevents.model import KubeEvent


class SeriesThrottle:
    """Holds updates of an Event that come too soon after its last emitted record."""

    def __init__(self, interval_s: float, *, max_keys: int = 100_000) -> None:
        self.interval_s = interval_s
        self._max = max_keys
        self._last: OrderedDict[str, float] = OrderedDict()
        self._held: dict[str, KubeEvent] = {}
        self.throttled = 0
        """Updates held back (each is emitted later, merged into a newer one)."""

    def __len__(self) -> int:
        return len(self._held)

    def offer(self, event: KubeEvent, now_s: float) -> KubeEvent | None:
        """The event to emit now, or None when it is held for later."""
        if self.interval_s <= 0:
            return event
        key = event.key
        last = self._last.get(key)
        if last is not None and now_s - last < self.interval_s:
            self._held[key] = event
            self.throttled += 1
            return None
        self._emitted(key, now_s)
        self._held.pop(key, None)
        return event

    def due(self, now_s: float) -> list[KubeEvent]:
        """Held updates whose interval has passed, to emit now."""
        ready = [k for k in self._held if now_s - self._last.get(k, 0.0) >= self.interval_s]
        out = [self._held.pop(k) for k in ready]
        for key in ready:
            self._emitted(key, now_s)
        return out

    def drain(self) -> list[KubeEvent]:
        """Every held update (on shutdown)."""
        out = list(self._held.values())
        self._held.clear()
        return out

    def _emitted(self, key: str, now_s: float) -> None:
        self._last[key] = now_s
        self._last.move_to_end(key)
        while len(self._last) > self._max:
            oldest, _ = self._last.popitem(last=False)
            held = self._held.pop(oldest, None)
            if held is not None:  # never lose a held update to the size cap
                self._held[oldest] = held
