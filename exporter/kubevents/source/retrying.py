"""What to do after a failed API call: a pure function of (error, attempt).

The watch loop carries the decision out; the decision itself has no I/O and
is tested with a table. Delays grow ``base * 2**attempt`` up to a cap with
±20% jitter; a server's ``Retry-After`` wins over the formula. 410 Gone is
not a failure: the resourceVersion expired and a relist resumes the stream.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from kubevents.errors import ApiError, SourceError

_RNG = random.Random()


class Action(enum.Enum):
    RETRY = "retry"
    """Retry the same request (watch from the same resourceVersion) after the delay."""
    RELIST = "relist"
    """Forget the resourceVersion and list again after the delay."""


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay_s: float
    reason: str
    """A bounded label for metrics and logs (``expired``, ``http_429``, ``connection``...)."""


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    cap_s: float,
    jitter: float = 0.2,
    rng: random.Random | None = None,
) -> float:
    """``base * 2**attempt`` capped, with ±``jitter`` relative noise."""
    delay = min(cap_s, base_s * (2 ** min(attempt, 30)))
    if jitter:
        delay *= (rng or _RNG).uniform(1 - jitter, 1 + jitter)
    return float(delay)


def decide(
    error: SourceError,
    attempt: int,
    *,
    base_s: float = 0.5,
    cap_s: float = 30.0,
    rng: random.Random | None = None,
) -> Decision:
    """Decide how the watch loop reacts to ``error`` on its ``attempt``-th retry (0-based)."""
    delay = backoff_delay(attempt, base_s=base_s, cap_s=cap_s, rng=rng)
    if isinstance(error, ApiError):
        if error.status == 410:
            return Decision(Action.RELIST, 0.0, "expired")
        if error.retry_after is not None and error.status in (429, 503):
            return Decision(Action.RETRY, min(error.retry_after, cap_s * 4), f"http_{error.status}")
        return Decision(
            Action.RETRY, delay, f"http_{error.status}" if error.status else "http_error"
        )
    return Decision(Action.RETRY, delay, "connection")
