"""Time as a dependency.

The core never reads the wall clock: event time comes from the events, and the
few places that need "now" (observed timestamps, pattern resolution) take a
:class:`Clock`. Tests pass a :class:`FakeClock` and assert exact times.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Anything that tells the current time in nanoseconds since the epoch."""

    def now_ns(self) -> int:
        """Return the current time in nanoseconds since the Unix epoch."""
        ...


class SystemClock:
    """The real wall clock."""

    now_ns = staticmethod(time.time_ns)
    """``time.time_ns`` itself, not a method that calls it: the pipeline asks once per
    Event, and a Python frame around the builtin cost more than the builtin."""


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns

    def now_ns(self) -> int:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self._now += int(seconds * 1e9)

    def set(self, now_ns: int) -> None:
        """Jump to an absolute time."""
        self._now = now_ns
