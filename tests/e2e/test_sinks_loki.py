"""Replay -> Loki's push API (JSON+gzip and protobuf+snappy): the jsonl content, mapped as
Loki's OTLP ingestion would map our OTLP output.

The expected entry of a jsonl record is written out here independently of
the encoder: stream labels ``service_name``, ``k8s_cluster_name``,
``k8s_namespace_name``; the body as the line; the occurrence time as the
timestamp; everything else as structured metadata with underscore names and
string values (``scope_name``, ``scope_version``, ``observed_timestamp``,
``severity_number``, ``severity_text``, ``event_name`` included).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubevents import __version__
from tests.e2e.sinks_support import ns_of, read_jsonl, replay_cli
from tests.fakes.loki_receiver import FakeLoki, LokiEntry

LABELS = {"service.name", "k8s.cluster.name", "k8s.namespace.name"}


@pytest.fixture(scope="module")
def demo_now_ns(jsonl_demo_records: list[dict[str, Any]]) -> int:
    """Loki refuses entries older than a week: the fake's clock is pinned a minute
    after the demo recording's last Event, whenever the tests run."""
    return max(ns_of(r["timestamp"]) for r in jsonl_demo_records) + 60 * 1_000_000_000


def text(value: Any) -> str:
    """A value as Loki's AsString writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def expected_entry(record: dict[str, Any]) -> tuple[Any, ...]:
    resource = record["resource"]
    labels = {k.replace(".", "_"): v for k, v in resource.items() if k in LABELS}
    metadata = {k.replace(".", "_"): text(v) for k, v in resource.items() if k not in LABELS}
    metadata |= {"scope_name": "kubevents", "scope_version": __version__}
    metadata |= {k.replace(".", "_"): text(v) for k, v in record["attributes"].items()}
    metadata |= {
        "observed_timestamp": str(ns_of(record["observed_timestamp"])),
        "severity_number": str(record["severity_number"]),
        "severity_text": record["severity_text"],
        "event_name": record["event_name"],
    }
    return (
        tuple(sorted(labels.items())),
        ns_of(record["timestamp"]),
        record["body"],
        tuple(sorted(metadata.items())),
    )


def stored_entry(entry: LokiEntry) -> tuple[Any, ...]:
    # The demo's times are whole seconds; the sink moves same-second, same-line twins of a
    # stream apart by a few nanoseconds (else Loki keeps one), so compare microseconds.
    return (
        tuple(sorted(entry.labels.items())),
        entry.ts_ns // 1000 * 1000,
        entry.line,
        tuple(sorted(entry.structured_metadata.items())),
    )


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_loki_stores_exactly_the_jsonl_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, encoding: str, demo_now_ns: int
) -> None:
    monkeypatch.setenv("KUBEVENTS_LOKI_ENCODING", encoding)
    monkeypatch.setenv("KUBEVENTS_LOKI_TENANT", "team-a")
    out = tmp_path / "records.jsonl"
    with FakeLoki(now_ns=lambda: demo_now_ns) as loki:
        assert replay_cli("--sink", f"jsonl:{out}", "--sink", f"loki:{loki.url}") == 0
        records = read_jsonl(out)
        assert Counter(map(stored_entry, loki.entries())) == Counter(map(expected_entry, records))
        assert set(loki.outcomes()) == {204}
        assert sum(p.duplicates for p in loki.pushes) == 0
        assert {p.tenant for p in loki.pushes} == {"team-a"}
        types = {p.content_type for p in loki.pushes}
        encodings = {p.headers.get("Content-Encoding") for p in loki.pushes}
    if encoding == "json":
        assert (types, encodings) == ({"application/json"}, {"gzip"})
    else:
        assert (types, encodings) == ({"application/x-protobuf"}, {None})


def test_entries_of_each_stream_arrive_in_timestamp_order(demo_now_ns: int) -> None:
    with FakeLoki(now_ns=lambda: demo_now_ns) as loki:
        assert replay_cli("--sink", f"loki:{loki.url}") == 0
        for push in loki.pushes:
            by_stream: dict[Any, list[int]] = {}
            for entry in push.entries:
                by_stream.setdefault(tuple(sorted(entry.labels.items())), []).append(entry.ts_ns)
            assert all(ts == sorted(ts) for ts in by_stream.values())


def test_basic_auth_from_a_password_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_now_ns: int
) -> None:
    secret = tmp_path / "password"
    secret.write_text("hunter2\n")
    monkeypatch.setenv("KUBEVENTS_LOKI_USERNAME", "kubevents")
    monkeypatch.setenv("KUBEVENTS_LOKI_PASSWORD_FILE", str(secret))
    with FakeLoki(now_ns=lambda: demo_now_ns) as loki:
        assert replay_cli("--sink", f"loki:{loki.url}") == 0
        # base64("kubevents:hunter2")
        assert {e.authorization for e in loki.entries()} == {"Basic a3ViZXZlbnRzOmh1bnRlcjI="}
