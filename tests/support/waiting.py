"""Waiting for a condition in tests: poll it, fail with what was awaited."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(
    check: Callable[[], object],
    timeout: float = 20.0,
    what: str = "condition",
    *,
    interval: float = 0.02,
    ignoring: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll ``check`` until it holds; AssertionError naming ``what`` after ``timeout`` s.

    ``ignoring``: exceptions that mean "not yet" (a server still starting up). The wait
    is on an Event, not a sleep, so it wakes at once when the interval has passed.
    """
    tick = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except ignoring:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        tick.wait(interval)
