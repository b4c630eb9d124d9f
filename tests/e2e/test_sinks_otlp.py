"""Replay -> OTLP over gRPC and HTTP: exactly what the jsonl sink writes, grouped per namespace.

One replay of the demo recording writes jsonl and sends to the fake OTLP
receiver over both transports at once, so the three outputs hold the same
records (same observed timestamps). The decoded OTLP must equal the jsonl
content: count, resource, scope, timestamps, severity, event name, body and
typed attributes; and each request must carry one ResourceLogs per namespace.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.sinks_support import SCOPE, ns_of, read_jsonl, replay_cli
from tests.fakes.otlp_receiver import OtlpReceiver, ReceivedLog, Transport, attributes


def from_jsonl(record: dict[str, Any]) -> tuple[Any, ...]:
    """A jsonl record as a comparable, hashable tuple."""
    return (
        tuple(sorted(record["resource"].items())),
        ns_of(record["timestamp"]),
        ns_of(record["observed_timestamp"]),
        record["severity_number"],
        record["severity_text"],
        record["event_name"],
        record["body"],
        tuple(sorted((k, repr(v)) for k, v in record["attributes"].items())),
    )


def from_otlp(log: ReceivedLog) -> tuple[Any, ...]:
    r = log.record
    return (
        tuple(sorted(log.resource.items())),
        r.time_unix_nano,
        r.observed_time_unix_nano,
        r.severity_number,
        r.severity_text,
        r.event_name,
        log.body,
        tuple(sorted((k, repr(v)) for k, v in log.attributes.items())),
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], OtlpReceiver]:
    """One replay to jsonl + otlp (gRPC) + otlp+http (gzip) and what the receiver got."""
    out: Path = tmp_path_factory.mktemp("otlp") / "records.jsonl"
    with OtlpReceiver() as receiver:
        code = replay_cli(
            "--sink",
            f"jsonl:{out}",
            "--sink",
            f"otlp:http://{receiver.grpc_endpoint}",
            "--sink",
            f"otlp+http:{receiver.http_url}",
        )
        assert code == 0
    return read_jsonl(out), receiver


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_receiver_gets_exactly_the_jsonl_records(demo_run: Any, transport: Transport) -> None:
    records, receiver = demo_run
    logs = [
        log
        for export in receiver.exports
        if export.transport == transport and export.signal == "logs"
        for log in _logs(export.request)
    ]
    assert len(records) > 500
    assert Counter(map(from_otlp, logs)) == Counter(map(from_jsonl, records))
    assert {(log.scope.name, log.scope.version) for log in logs} == {SCOPE}


@pytest.mark.parametrize("transport", ["grpc", "http"])
def test_one_resource_logs_per_namespace_in_every_request(
    demo_run: Any, transport: Transport
) -> None:
    _, receiver = demo_run
    requests = [
        e.request for e in receiver.exports if e.transport == transport and e.signal == "logs"
    ]
    assert requests and all(e.outcome == "ok" for e in receiver.exports)
    for request in requests:
        namespaces = [
            attributes(rl.resource.attributes).get("k8s.namespace.name")
            for rl in request.resource_logs
        ]
        assert len(namespaces) == len(set(namespaces))  # one ResourceLogs per namespace
        for rl in request.resource_logs:
            resource = attributes(rl.resource.attributes)
            assert resource["service.name"] == "kubevents"
            assert resource["k8s.cluster.name"] == "demo"
            assert [len(rl.scope_logs)] == [1]


def test_standard_otel_variables_set_compression_and_headers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_HEADERS", "x-token=s3cret%21")
    out = tmp_path / "r.jsonl"
    with OtlpReceiver() as receiver:
        code = replay_cli("--sink", f"otlp+http:{receiver.http_url}", "--sink", f"jsonl:{out}")
    assert code == 0
    exports = [e for e in receiver.exports if e.signal == "logs"]
    assert exports
    assert {e.headers.get("Content-Encoding") for e in exports} == {"gzip"}
    assert {e.headers.get("Content-Type") for e in exports} == {"application/x-protobuf"}
    assert {e.headers.get("x-token") for e in exports} == {"s3cret!"}
    assert sum(len(_logs(e.request)) for e in exports) == len(read_jsonl(out))


def _logs(request: Any) -> list[ReceivedLog]:
    return [
        ReceivedLog(attributes(rl.resource.attributes), sl.scope, record)
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]
