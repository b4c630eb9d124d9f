"""The retry policy is a pure function of (failure, attempt): one table, no sockets, no clock."""

from __future__ import annotations

import pytest

from kubevents.sinks.retry import (
    RETRY_AFTER_MAX_S,
    Action,
    Failure,
    RetryPolicy,
    backoff_s,
    decide,
    is_retryable,
    parse_retry_after,
)

POLICY = RetryPolicy(base_s=1.0, cap_s=30.0)


@pytest.mark.parametrize(
    ("failure", "retryable"),
    [
        # OTLP/gRPC, the specification's table.
        (Failure("grpc", "UNAVAILABLE"), True),
        (Failure("grpc", "CANCELLED"), True),
        (Failure("grpc", "DEADLINE_EXCEEDED"), True),
        (Failure("grpc", "ABORTED"), True),
        (Failure("grpc", "OUT_OF_RANGE"), True),
        (Failure("grpc", "DATA_LOSS"), True),
        (Failure("grpc", "RESOURCE_EXHAUSTED"), False),
        (Failure("grpc", "RESOURCE_EXHAUSTED", retry_after_s=2.0), True),
        (Failure("grpc", "INVALID_ARGUMENT"), False),
        (Failure("grpc", "UNKNOWN"), False),
        (Failure("grpc", "UNAUTHENTICATED"), False),
        (Failure("grpc", "PERMISSION_DENIED"), False),
        (Failure("grpc", "INTERNAL"), False),
        (Failure("grpc", "UNIMPLEMENTED"), False),
        # OTLP/HTTP: 429, 502, 503, 504 only.
        (Failure("http", "429"), True),
        (Failure("http", "502"), True),
        (Failure("http", "503"), True),
        (Failure("http", "504"), True),
        (Failure("http", "500"), False),
        (Failure("http", "400"), False),
        (Failure("http", "401"), False),
        (Failure("http", "404"), False),
        (Failure("http", "413"), False),
        # Loki: 429 and any 5xx, as Promtail and Alloy do.
        (Failure("loki", "429"), True),
        (Failure("loki", "500"), True),
        (Failure("loki", "503"), True),
        (Failure("loki", "400", kind="too_old"), False),
        (Failure("loki", "401"), False),
        # No answer at all.
        (Failure("connection", "ConnectionError"), True),
        (Failure("connection", "ReadTimeout", kind="timeout"), True),
    ],
    ids=lambda v: v.reason if isinstance(v, Failure) else str(v),
)
def test_retryable_per_specification(failure: Failure, retryable: bool) -> None:
    assert is_retryable(failure) is retryable
    expected = Action.RETRY if retryable else Action.DROP
    assert decide(failure, 1, policy=POLICY).action is expected


@pytest.mark.parametrize(
    ("attempt", "jitter", "delay"),
    [
        (1, 0.0, 1.0),
        (2, 0.0, 2.0),
        (3, 0.0, 4.0),
        (5, 0.0, 16.0),
        (6, 0.0, 30.0),  # capped
        (60, 0.0, 30.0),  # no overflow for huge attempts
        (1, 1.0, 1.2),  # +20%
        (1, -1.0, 0.8),  # -20%
        (6, 1.0, 36.0),  # jitter applies after the cap
    ],
)
def test_backoff_formula(attempt: int, jitter: float, delay: float) -> None:
    assert backoff_s(attempt, POLICY, jitter) == pytest.approx(delay)
    decision = decide(Failure("grpc", "UNAVAILABLE"), attempt, policy=POLICY, jitter=jitter)
    assert decision.action is Action.RETRY
    assert decision.delay_s == pytest.approx(delay)


@pytest.mark.parametrize(
    ("failure", "delay"),
    [
        (Failure("grpc", "UNAVAILABLE", retry_after_s=7.5), 7.5),
        (Failure("grpc", "RESOURCE_EXHAUSTED", retry_after_s=0.0), 0.0),
        (Failure("http", "503", retry_after_s=12.0), 12.0),
        (Failure("loki", "429", retry_after_s=3.0), 3.0),
        (Failure("http", "429", retry_after_s=10_000.0), RETRY_AFTER_MAX_S),
    ],
)
def test_server_delay_replaces_the_backoff(failure: Failure, delay: float) -> None:
    decision = decide(failure, 4, policy=POLICY, jitter=1.0)
    assert (decision.action, decision.delay_s) == (Action.RETRY, delay)


def test_server_delay_on_a_final_failure_is_ignored() -> None:
    decision = decide(Failure("http", "400", retry_after_s=1.0), 1, policy=POLICY)
    assert decision.action is Action.DROP


@pytest.mark.parametrize(
    ("elapsed", "action"),
    [(0.0, Action.RETRY), (8.0, Action.RETRY), (9.5, Action.DROP)],
)
def test_deadline_drops_when_the_next_wait_would_pass_it(elapsed: float, action: Action) -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=30.0, max_elapsed_s=10.0)
    # attempt 2 waits 2 s: 8 + 2 = 10 is still within, 9.5 + 2 is not.
    decision = decide(Failure("grpc", "UNAVAILABLE"), 2, policy=policy, elapsed_s=elapsed)
    assert decision.action is action


def test_no_deadline_retries_forever() -> None:
    decision = decide(
        Failure("connection", "ConnectionError"), 10_000, policy=POLICY, elapsed_s=1e9
    )
    assert (decision.action, decision.delay_s) == (Action.RETRY, 30.0)


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (Failure("grpc", "UNAVAILABLE"), "unavailable"),
        (Failure("http", "503"), "http_503"),
        (Failure("loki", "400", kind="too_old"), "too_old"),
        (Failure("connection", "ConnectTimeout", kind="timeout"), "timeout"),
        (Failure("connection", "ConnectionError"), "connection"),
    ],
)
def test_reason_labels(failure: Failure, reason: str) -> None:
    assert failure.reason == reason


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        ("0.5", 0.5),
        (" 120 ", 120.0),
        ("-1", None),
        ("soon", None),
        ("inf", None),
        ("nan", None),
        ("Wed, 21 Oct 2026 07:28:10 GMT", 10.0),  # 10 s after now_s below
        ("Wed, 21 Oct 2026 07:27:00 GMT", 0.0),  # in the past: at once
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    now_s = 1_792_567_680.0  # Wed, 21 Oct 2026 07:28:00 GMT
    assert parse_retry_after(header, now_s=now_s) == seconds


def test_retry_after_date_needs_a_clock() -> None:
    assert parse_retry_after("Wed, 21 Oct 2026 07:28:10 GMT") is None
