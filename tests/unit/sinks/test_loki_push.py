"""The Loki push transport against the fake Loki: auth, tenants, and how Loki's answers are read."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kubevents.errors import ConfigError
from kubevents.records import OutputRecord, ResourceInfo
from kubevents.settings import LokiSettings, Settings
from kubevents.sinks.loki_push import (
    LokiPushTransport,
    build_loki_sink,
    push_url,
    reason_of,
    rejected_entries,
)
from kubevents.sinks.retry import is_retryable
from kubevents.sinks.transport import TransportError
from tests.fakes.loki_receiver import FakeLoki, LokiLimits

NOW_NS = 1_795_255_201_000_000_000
RESOURCE = ResourceInfo(service_version="1.0", instance_id="kv-0", cluster_name="c1")


def record(ts: int = NOW_NS, body: str = "Back-off", namespace: str = "shop") -> OutputRecord:
    return OutputRecord(
        timestamp_ns=ts,
        observed_ns=NOW_NS,
        severity_number=13,
        severity_text="Warning",
        event_name="k8s.event",
        body=body,
        namespace=namespace,
        attributes={"k8s.event.reason": "BackOff"},
    )


@pytest.fixture
def loki() -> FakeLoki:
    with FakeLoki(now_ns=lambda: NOW_NS) as fake:
        yield fake  # type: ignore[misc]


def transport(loki: FakeLoki, **settings: object) -> LokiPushTransport:
    return LokiPushTransport(push_url(loki.url), LokiSettings(**settings), RESOURCE)  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_push_with_tenant_and_bearer_token(loki: FakeLoki, encoding: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken\n")
    push = transport(loki, encoding=encoding, tenant="team-a", bearer_token_file=str(token))
    sent = push.send([record(), record(NOW_NS + 1, namespace="payments")])
    assert sent.rejected == 0
    entries = loki.entries(tenant="team-a")
    assert len(entries) == 2
    assert {e.authorization for e in entries} == {"Bearer t0ken"}
    assert {e.labels["k8s_namespace_name"] for e in entries} == {"shop", "payments"}


def test_rate_limited_is_retried_after_the_servers_delay(loki: FakeLoki) -> None:
    loki.faults.status(429, retry_after=3)
    with pytest.raises(TransportError) as raised:
        transport(loki).send([record()])
    failure = raised.value.failure
    assert (failure.reason, failure.retry_after_s, is_retryable(failure)) == (
        "rate_limited",
        3.0,
        True,
    )


@pytest.mark.parametrize("status", [500, 503])
def test_server_errors_are_retried(loki: FakeLoki, status: int) -> None:
    loki.faults.status(status)
    with pytest.raises(TransportError) as raised:
        transport(loki).send([record()])
    assert raised.value.failure.reason == f"http_{status}"
    assert is_retryable(raised.value.failure)


def test_entries_too_old_are_rejected_the_rest_delivered(loki: FakeLoki) -> None:
    week = 7 * 24 * 3600 * 1_000_000_000
    sent = transport(loki).send([record(NOW_NS - 2 * week), record(), record(NOW_NS + 1)])
    assert (sent.rejected, sent.reason) == (1, "too_old")
    assert len(loki.entries()) == 2


def test_entries_too_far_behind_are_rejected(loki: FakeLoki) -> None:
    push = transport(loki)
    push.send([record(NOW_NS)])
    hour = 3600 * 1_000_000_000
    sent = push.send([record(NOW_NS - 2 * hour, body="late"), record(NOW_NS + 1, body="on time")])
    assert (sent.rejected, sent.reason) == (1, "out_of_order")


def test_a_line_over_the_limit_is_rejected(loki: FakeLoki) -> None:
    loki.limits = dataclasses.replace(LokiLimits(), max_line_size=10)
    sent = transport(loki).send([record(body="x" * 20), record(body="short")])
    assert (sent.rejected, sent.reason) == (1, "line_too_long")


def test_a_request_refused_as_a_whole_is_final(loki: FakeLoki) -> None:
    loki.limits = dataclasses.replace(LokiLimits(), auth_enabled=True)  # no tenant: 401
    with pytest.raises(TransportError) as raised:
        transport(loki).send([record()])
    assert raised.value.failure.reason == "http_401"
    assert not is_retryable(raised.value.failure)


@pytest.mark.parametrize(
    ("text", "total", "rejected"),
    [
        ("user 'fake', total ignored: 3 out of 10 for stream: {a=\"b\"}", 10, 3),
        (
            "entry for stream '{a=\"b\"}' has timestamp too old: x\nentry for stream '{a=\"b\"}' has timestamp too new: y",
            5,
            2,
        ),
        ("Max entry size '10' bytes exceeded for stream '{}' while adding an entry", 5, 1),
        ("error at line 1, col 1: syntax error", 5, 0),
        ("user 'fake', total ignored: 9 out of 9 for stream: {}", 4, 4),
    ],
)
def test_counting_rejected_entries(text: str, total: int, rejected: int) -> None:
    assert rejected_entries(text, total) == rejected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("entry too far behind, entry timestamp is: x", "out_of_order"),
        ("entry for stream has timestamp too old: x", "too_old"),
        ("Ingestion rate limit exceeded", "rate_limited"),
        ("something else", "http_400"),
    ],
)
def test_reasons(text: str, reason: str) -> None:
    assert reason_of(400, text) == reason


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://loki:3100", "http://loki:3100/loki/api/v1/push"),
        ("http://loki:3100/", "http://loki:3100/loki/api/v1/push"),
        ("https://gw/loki/api/v1/push", "https://gw/loki/api/v1/push"),
        ("https://gw/tenant-a", "https://gw/tenant-a/loki/api/v1/push"),
    ],
)
def test_push_url(url: str, expected: str) -> None:
    assert push_url(url) == expected


@pytest.mark.parametrize(
    ("url", "loki", "message"),
    [
        (None, LokiSettings(), "loki needs Loki's URL"),
        ("ftp://loki", LokiSettings(), "expected an http"),
        (
            "http://loki:3100",
            LokiSettings(username="u", password="p", bearer_token="t"),
            "either username/password or bearer_token",
        ),
        (
            "http://loki:3100",
            LokiSettings(password_file="/no/such/file", username="u"),
            "cannot read",
        ),
    ],
)
def test_configuration_errors(url: str | None, loki: LokiSettings, message: str) -> None:
    settings = dataclasses.replace(Settings(), loki=loki)
    with pytest.raises(ConfigError, match=message):
        build_loki_sink(url, settings=settings, resource=RESOURCE)
