"""The retry decision is a pure function of (error, attempt): a table."""

from __future__ import annotations

import random

import pytest

from kubevents.errors import ApiError
from kubevents.source.kubeclient import ConnectionLost
from kubevents.source.retrying import Action, backoff_delay, decide


@pytest.mark.parametrize(
    ("error", "attempt", "action", "delay", "reason"),
    [
        (ApiError(410, "Expired", "too old resource version"), 5, Action.RELIST, 0.0, "expired"),
        (ApiError(429, "TooManyRequests", retry_after=7), 0, Action.RETRY, 7.0, "http_429"),
        (ApiError(503, "ServiceUnavailable", retry_after=3), 4, Action.RETRY, 3.0, "http_503"),
        (ApiError(429, "TooManyRequests", retry_after=9999), 0, Action.RETRY, 120.0, "http_429"),
        (ApiError(429, "TooManyRequests"), 2, Action.RETRY, 2.0, "http_429"),
        (ApiError(500, "InternalError"), 0, Action.RETRY, 0.5, "http_500"),
        (ApiError(403, "Forbidden"), 3, Action.RETRY, 4.0, "http_403"),
        (ConnectionLost("watch stream cut"), 1, Action.RETRY, 1.0, "connection"),
        (ConnectionLost("refused"), 10, Action.RETRY, 30.0, "connection"),
    ],
)
def test_decisions(error: Exception, attempt: int, action: Action, delay: float, reason: str) -> None:
    decision = decide(error, attempt, base_s=0.5, cap_s=30.0, rng=_NoJitter())  # type: ignore[arg-type]
    assert (decision.action, decision.delay_s, decision.reason) == (action, delay, reason)


class _NoJitter(random.Random):
    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def test_jitter_stays_within_twenty_percent() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(3, base_s=1.0, cap_s=100.0, rng=rng) for _ in range(200)]
    assert min(delays) >= 6.4 and max(delays) <= 9.6
    assert len(set(delays)) > 100
