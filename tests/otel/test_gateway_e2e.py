"""otel/gateway.yaml end to end: kubevents -> the real Collector -> OTLP -> a real log server,
and the Collector's /metrics.

The demo recording is replayed into a Collector running the gateway config (ports moved to
free loopback ones, the logs exporter pointed at VictoriaLogs' OTLP endpoint, nothing else
changed). VictoriaLogs (tests/servers, Apache-2.0) stands in for Loki, which this project
does not build or run (AGPL): it stores each OTLP record with its Resource as the stream,
so what the gateway did to every record can be read back and compared, record by record,
with what kubevents wrote to a jsonl sink at the same time.

The replay is the compose stack's (deploy/compose/replay-loop.py) with the recording's end
as "now".
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.servers import VictoriaLogs, free_port, server_binary, stream_fields
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "otel" / "gateway.yaml"
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
REPLAY_LOOP = ROOT / "deploy" / "compose" / "replay-loop.py"
RECORDING_END = "2026-11-20T10:37:10Z"  # its last line: everything before it plays at once
CLUSTER = "gateway-e2e"

pytestmark = [pytest.mark.servers, pytest.mark.timeout(3600)]  # the first run may build


def wait_for(check: Callable[[], bool], what: str, log: Path, proc: subprocess.Popen[bytes],
             timeout: float = 60) -> None:
    def ready() -> bool:
        assert proc.poll() is None, f"{what} exited:\n{log.read_text()[-3000:]}"
        return check()

    try:
        wait_until(ready, timeout, what, interval=0.2, ignoring=(requests.RequestException,))
    except AssertionError:
        if proc.poll() is not None:
            raise
        raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}") from None


def start(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env},
                                start_new_session=True)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("gateway")
    ports = {name: free_port() for name in ("grpc", "http", "prom", "telemetry", "health")}
    vl = VictoriaLogs.start(server_binary("victorialogs"), tmp / "victorialogs")
    otelcol = None
    try:
        config = GATEWAY.read_text()
        for listen, port in (("0.0.0.0:4317", "grpc"), ("0.0.0.0:4318", "http"), ("0.0.0.0:8889", "prom"),
                             ("0.0.0.0:13133", "health")):
            assert listen in config
            config = config.replace(listen, f"127.0.0.1:{ports[port]}")
        assert "port: 8888" in config and "host: 0.0.0.0" in config
        config = config.replace("port: 8888", f"port: {ports['telemetry']}").replace("host: 0.0.0.0", "host: 127.0.0.1")
        (tmp / "gateway.yaml").write_text(config)
        otel_log = tmp / "otelcol.log"
        otelcol = start([str(server_binary("otelcol")), f"--config={tmp / 'gateway.yaml'}"], otel_log,
                        {"CLUSTER_NAME": CLUSTER, "LOKI_OTLP_ENDPOINT": vl.otlp_url})
        wait_for(lambda: requests.get(f"http://127.0.0.1:{ports['health']}/", timeout=2).ok,
                 "otelcol", otel_log, otelcol)
        replay = subprocess.run(
            [sys.executable, str(REPLAY_LOOP), str(DEMO), f"--start={RECORDING_END}", "--rounds=1", "--pause=0"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "KUBEVENTS_METRICS_OTLP_INTERVAL_S": "1", "KUBEVENTS_METRICS_PORT": "0",
                 "KUBEVENTS_SINKS": f"otlp:http://127.0.0.1:{ports['grpc']},jsonl:{tmp / 'records.jsonl'}"})
        assert replay.returncode == 0, replay.stderr
        written = [json.loads(line) for line in (tmp / "records.jsonl").read_text().splitlines()]
        deadline = time.monotonic() + 60
        while vl.count() < len(written) and time.monotonic() < deadline:
            time.sleep(0.5)  # the Collector batches for up to 1 s
        yield {**ports, "vl": vl, "written": written}
    finally:
        if otelcol is not None:
            stop(otelcol)
        vl.process.stop()


def ns_of(stamp: str) -> int:
    head, _, frac = stamp.rstrip("Z").partition(".")
    return int(dt.datetime.fromisoformat(head + "+00:00").timestamp()) * 10**9 + int(frac.ljust(9, "0")[:9] or 0)


def same_value(stored: str, value: Any) -> bool:
    if isinstance(value, bool):
        return stored == ("true" if value else "false")
    if isinstance(value, (int, float)):
        return float(stored) == value
    return stored == value


def test_every_record_arrives_once_with_its_resource_and_attributes(stack: dict[str, Any]) -> None:
    vl: VictoriaLogs = stack["vl"]
    written: list[dict[str, Any]] = stack["written"]
    stored = vl.query("*")
    assert len(stored) == len(written)
    by_key: dict[tuple[int, str, str], list[dict[str, str]]] = {}
    for entry in stored:
        by_key.setdefault((ns_of(entry["_time"]), entry["event_name"], entry["_msg"]), []).append(entry)
    namespaces: Counter[str] = Counter()
    for record in written:
        entry = by_key[(ns_of(record["timestamp"]), record["event_name"], record["body"])].pop()
        stream = stream_fields(entry["_stream"])
        resource = record["resource"]
        # the Resource as kubevents sent it, with the cluster resource/cluster inserted
        assert stream == {**resource, "k8s.cluster.name": CLUSTER, "event_name": record["event_name"]}, record
        for key, value in record["attributes"].items():
            assert same_value(entry[key], value), (key, entry.get(key), value)
        assert entry["severity_number"] == str(record["severity_number"])
        assert entry["severity_text"] == record["severity_text"]
        assert (entry["scope.name"], entry["scope.version"]) == ("kubevents", record["resource"]["service.version"])
        namespaces[resource.get("k8s.namespace.name", "")] += 1
    assert not any(by_key.values()), "stored but never written"
    assert {"shop", "payments", "kube-system"} <= set(namespaces)


def test_metrics_reach_the_prometheus_exporter_with_a_cluster_label(stack: dict[str, int]) -> None:
    url = f"http://127.0.0.1:{stack['prom']}/metrics"
    deadline = time.monotonic() + 30
    text = ""
    while time.monotonic() < deadline:
        text = requests.get(url, timeout=5).text
        if "kubevents_events_total" in text:
            break
        time.sleep(0.5)
    series = [line for line in text.splitlines() if line.startswith("kubevents_events_total{")]
    assert series, text[:2000]
    for line in series:
        assert f'cluster="{CLUSTER}"' in line
    values = [float(line.rsplit(" ", 1)[1]) for line in series]
    assert sum(values) > 0
    assert re.search(rf'^target_info\{{.*job="kubevents".*k8s_cluster_name="{CLUSTER}"', text, re.M)
