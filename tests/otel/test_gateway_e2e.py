"""otel/gateway.yaml end to end: kubevents -> the real Collector -> the real Loki and /metrics.

The demo recording is replayed into a Collector running the gateway config (ports moved to
free loopback ones, nothing else changed) in front of a Loki built from its Go module
(tests/servers). Loki must then hold the records with the stream labels the dashboards
select on, and the Collector's Prometheus endpoint must carry the cluster label.

The replay is the compose stack's (deploy/compose/replay-loop.py) with the recording's end
as "now": every Event is stamped within the last two hours, the window Loki's queriers
read from its ingesters, as a live cluster's would be.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.servers import free_port, server_binary

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "otel" / "gateway.yaml"
LOKI_CONFIG = ROOT / "tests" / "servers" / "configs" / "loki.yaml"
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
REPLAY_LOOP = ROOT / "deploy" / "compose" / "replay-loop.py"
RECORDING_END = "2026-11-20T10:37:10Z"  # its last line: everything before it plays at once
CLUSTER = "gateway-e2e"

pytestmark = pytest.mark.timeout(3600)  # the first run may build the servers


def wait_for(check: Callable[[], bool], what: str, log: Path, proc: subprocess.Popen[bytes],
             timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{what} exited:\n{log.read_text()[-3000:]}"
        try:
            if check():
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


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
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    tmp = tmp_path_factory.mktemp("gateway")
    ports = {name: free_port() for name in ("loki_http", "loki_grpc", "grpc", "http", "prom", "telemetry",
                                             "health")}
    loki_log = tmp / "loki.log"
    loki = start([str(server_binary("loki")), f"-config.file={LOKI_CONFIG}", "-config.expand-env=true"], loki_log,
                 {"LOKI_DIR": str(tmp / "loki"), "LOKI_HTTP_PORT": str(ports["loki_http"]),
                  "LOKI_GRPC_PORT": str(ports["loki_grpc"])})
    otelcol = None
    try:
        wait_for(lambda: requests.get(f"http://127.0.0.1:{ports['loki_http']}/ready", timeout=2).ok,
                 "loki", loki_log, loki, timeout=120)
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
                        {"CLUSTER_NAME": CLUSTER,
                         "LOKI_OTLP_ENDPOINT": f"http://127.0.0.1:{ports['loki_http']}/otlp"})
        wait_for(lambda: requests.get(f"http://127.0.0.1:{ports['health']}/", timeout=2).ok,
                 "otelcol", otel_log, otelcol)
        replay = subprocess.run(
            [sys.executable, str(REPLAY_LOOP), str(DEMO), f"--start={RECORDING_END}", "--rounds=1", "--pause=0"],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "KUBEVENTS_METRICS_OTLP_INTERVAL_S": "1", "KUBEVENTS_METRICS_PORT": "0",
                 "KUBEVENTS_SINKS": f"otlp:http://127.0.0.1:{ports['grpc']},jsonl:{tmp / 'records.jsonl'}"})
        assert replay.returncode == 0, replay.stderr
        yield {**ports, "records": len((tmp / "records.jsonl").read_bytes().splitlines())}
        (tmp / "records.jsonl").unlink()
    finally:
        if otelcol is not None:
            stop(otelcol)
        stop(loki)


def loki_query(port: int, query: str) -> list[dict]:
    answer = requests.get(f"http://127.0.0.1:{port}/loki/api/v1/query_range", timeout=30, params={
        "query": query, "since": "3h", "limit": 5000, "direction": "forward"})
    answer.raise_for_status()
    return answer.json()["data"]["result"]


def loki_entries(stack: dict[str, int], minimum: int) -> list[dict]:
    deadline = time.monotonic() + 60
    while True:  # the Collector batches for up to 1 s; Loki answers from its ingester at once
        streams = loki_query(stack["loki_http"], '{service_name="kubevents"}')
        if sum(len(s["values"]) for s in streams) >= minimum or time.monotonic() > deadline:
            return streams
        time.sleep(0.5)


def loki_series(port: int, selector: str) -> list[dict[str, str]]:
    """The streams (index labels only: no structured metadata) matching ``selector``."""
    answer = requests.get(f"http://127.0.0.1:{port}/loki/api/v1/series", timeout=30,
                          params={"match[]": selector, "since": "3h"})
    answer.raise_for_status()
    return list(answer.json()["data"])


def test_every_record_reaches_loki_with_the_cluster_and_namespace_as_stream_labels(stack: dict[str, int]) -> None:
    streams = loki_entries(stack, stack["records"])
    labels = loki_series(stack["loki_http"], '{service_name="kubevents"}')
    assert labels and {lb["k8s_cluster_name"] for lb in labels} == {CLUSTER}  # inserted by resource/cluster
    namespaces = Counter(lb.get("k8s_namespace_name", "") for lb in labels)
    assert {"shop", "payments", "kube-system"} <= set(namespaces)
    for lb in labels:  # per-record detail is structured metadata, never a stream label
        assert set(lb) <= {"service_name", "service_instance_id", "k8s_cluster_name", "k8s_namespace_name"}, lb
    total = sum(len(s["values"]) for s in streams)
    assert total == stack["records"]


def test_records_keep_their_attributes_as_structured_metadata(stack: dict[str, int]) -> None:
    streams = loki_query(stack["loki_http"],
                         '{service_name="kubevents", k8s_namespace_name="shop"} | k8s_event_reason="Failed"')
    assert streams
    for s in streams:
        assert s["stream"]["kubevents_category"] and s["stream"]["kubevents_severity"]


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
