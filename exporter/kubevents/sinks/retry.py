"""Retry policy for network sinks: a constant set plus one formula, as a pure function.

Every transport (OTLP/gRPC, OTLP/HTTP, Loki push) reports a failed request as
a :class:`Failure`: the plain facts (protocol, code, what the server asked
for) and nothing else. :func:`decide` turns ``(failure, attempt)`` into a
:class:`Decision`: retry after so many seconds, or drop the batch. It does no
I/O and reads no clock, so the whole policy is one table-driven test.

What is retryable comes from the specifications, not from taste:

* OTLP/gRPC (opentelemetry-specification ``protocol/otlp.md``, "Failures"):
  CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE and
  DATA_LOSS are retryable; RESOURCE_EXHAUSTED only when the server sent a
  ``RetryInfo`` (it says recovery is possible); everything else is not.
* OTLP/HTTP (same page): 429, 502, 503 and 504 are retryable, "all other 4xx
  or 5xx response status codes MUST NOT be retried"; ``Retry-After`` on a
  throttling answer is honoured.
* Loki push: as Loki's own clients (Promtail, Alloy) do, 429 and every 5xx are
  retried; a 4xx is final (Loki answers 400 for an entry too old, too far
  behind or too long, and retrying would fail the same way forever).
* A connection that could not be made, or broke, is always retryable.

The delay is ``base * 2**(attempt-1)`` capped at ``cap``, with ±20% jitter so
that many replicas do not retry in lockstep; a server's ``Retry-After`` or
``RetryInfo`` replaces it (bounded by :data:`RETRY_AFTER_MAX_S`). When a
``max_elapsed_s`` deadline is set and the next wait would pass it, the batch
is dropped instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final, Literal

Protocol = Literal["grpc", "http", "loki", "connection"]

GRPC_RETRYABLE: Final[frozenset[str]] = frozenset(
    {"CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE", "DATA_LOSS"}
)
"""gRPC status code names the OTLP specification says to retry."""
GRPC_RETRYABLE_WITH_RETRY_INFO: Final[frozenset[str]] = frozenset({"RESOURCE_EXHAUSTED"})
"""Retryable only when the server attached a RetryInfo (recovery is possible)."""
HTTP_RETRYABLE: Final[frozenset[int]] = frozenset({429, 502, 503, 504})
"""OTLP/HTTP statuses to retry; every other 4xx/5xx is final."""
LOKI_RETRYABLE_4XX: Final[frozenset[int]] = frozenset({429})
"""Loki: 429 (rate limited) and every 5xx are retried, other 4xx are final."""

JITTER: Final = 0.2
"""Relative jitter on computed delays: ±20%."""
RETRY_AFTER_MAX_S: Final = 300.0
"""A server's Retry-After/RetryInfo is honoured up to this many seconds."""


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed request, as the transport saw it."""

    protocol: Protocol
    code: str
    """gRPC status code name (``UNAVAILABLE``), HTTP status (``"503"``), or the
    exception class name for a connection failure."""
    kind: str = ""
    """The ``reason`` label for metrics and logs; default derived from protocol and code."""
    retry_after_s: float | None = None
    """What the server asked for (Retry-After, RetryInfo), if anything."""
    detail: str = ""
    """Human-readable cause, already clipped; never contains credentials."""

    @property
    def reason(self) -> str:
        """Low-cardinality reason: ``unavailable``, ``http_503``, ``too_old``, ``connection``..."""
        if self.kind:
            return self.kind
        if self.protocol == "grpc":
            return self.code.lower()
        if self.protocol == "connection":
            return "connection"
        return f"http_{self.code}"


class Action(enum.Enum):
    RETRY = "retry"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay_s: float = 0.0
    why: str = ""
    """For the log line: ``retryable`` / ``not retryable`` / ``deadline``."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The numbers of the formula; :class:`~kubevents.settings.DeliverySettings` provides them."""

    base_s: float = 1.0
    cap_s: float = 30.0
    max_elapsed_s: float = 0.0
    """Give up on a batch after retrying this long; 0 retries until delivered or shutdown."""


def is_retryable(failure: Failure) -> bool:
    """Whether the specifications allow retrying the same request."""
    if failure.protocol == "connection":
        return True
    if failure.protocol == "grpc":
        if failure.code in GRPC_RETRYABLE:
            return True
        return failure.code in GRPC_RETRYABLE_WITH_RETRY_INFO and failure.retry_after_s is not None
    try:
        status = int(failure.code)
    except ValueError:
        return False
    if failure.protocol == "loki":
        return status >= 500 or status in LOKI_RETRYABLE_4XX
    return status in HTTP_RETRYABLE


def backoff_s(attempt: int, policy: RetryPolicy, jitter: float = 0.0) -> float:
    """The computed wait before retry number ``attempt`` (1-based).

    ``jitter`` in [-1, 1] scales the ±20% band: 0 gives the plain formula.
    """
    exponent = min(max(attempt - 1, 0), 32)  # 2**32 * base is past any cap
    delay = min(policy.base_s * 2.0**exponent, policy.cap_s)
    return max(0.0, delay * (1.0 + JITTER * jitter))


def decide(
    failure: Failure,
    attempt: int,
    *,
    policy: RetryPolicy,
    jitter: float = 0.0,
    elapsed_s: float = 0.0,
) -> Decision:
    """Retry or drop after ``failure`` of attempt number ``attempt`` (1-based).

    Args:
        failure: what went wrong.
        attempt: how many attempts have failed so far, this one included.
        policy: base, cap and deadline.
        jitter: a number in [-1, 1] (random in production, fixed in tests).
        elapsed_s: time spent on this batch so far (first attempt to now).
    """
    if not is_retryable(failure):
        return Decision(Action.DROP, why="not retryable")
    if failure.retry_after_s is not None:
        delay = min(max(failure.retry_after_s, 0.0), RETRY_AFTER_MAX_S)
    else:
        delay = backoff_s(attempt, policy, jitter)
    if policy.max_elapsed_s > 0 and elapsed_s + delay > policy.max_elapsed_s:
        return Decision(Action.DROP, why="retry deadline passed")
    return Decision(Action.RETRY, delay_s=delay, why="retryable")


def parse_retry_after(value: str | None, *, now_s: float | None = None) -> float | None:
    """Seconds from an HTTP ``Retry-After`` header (delay-seconds or HTTP-date).

    ``now_s`` (epoch seconds) is needed only for the date form; without it a
    date is ignored. An unparseable value is ignored (the backoff applies).
    """
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds if seconds >= 0 and seconds == seconds and seconds != float("inf") else None
    if now_s is None:
        return None
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now_s)
