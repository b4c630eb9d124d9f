"""A real Prometheus scrapes kubevents' /metrics during a replay and serves kubevents_events_total.

Prometheus (Debian's ``prometheus`` package, installed by ``make test``) runs
on 127.0.0.1 with a temporary config and data directory; its web port is
whatever the kernel gave it for ``127.0.0.1:0``, read back from /proc. The
replay holds its endpoint open (``replay.hold_s``, as ``--hold``) until the
test has its answer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.sinks_support import ReplayThread, read_jsonl, settings_for
from tests.support.waiting import wait_until

PROMETHEUS = shutil.which("prometheus")
EVENT_LABELS = {
    "k8s_namespace_name",
    "k8s_object_kind",
    "k8s_event_reason",
    "k8s_event_type",
    "kubevents_category",
    "kubevents_severity",
}

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="needs Debian's prometheus package (make test installs it)"
)


def listening_ports(pid: int) -> list[int]:
    """TCP ports ``pid`` listens on (IPv4), from /proc: no fixed port is ever chosen."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state, inode = fields[1], fields[3], fields[9]
        if state == "0A" and inode in inodes:  # 0A: LISTEN
            ports.append(int(local.split(":")[1], 16))
    return ports


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """A function that starts Prometheus scraping ``target`` (host:port); stopped at teardown."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: kubevents\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        log = (tmp_path / "prometheus.log").open("wb")
        assert PROMETHEUS is not None
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                "--web.listen-address=127.0.0.1:0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        procs.append(proc)
        ports: list[int] = []

        def listening() -> bool:
            assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-2000:]
            ports[:] = listening_ports(proc.pid)
            return bool(ports)

        wait_until(listening, timeout=30, what="Prometheus to listen")
        base = f"http://127.0.0.1:{ports[0]}"
        wait_until(lambda: ready(base), timeout=30, what="Prometheus to be ready")
        return base

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def ready(base: str) -> bool:
    """Prometheus answers 503 until its TSDB is open."""
    try:
        return requests.get(f"{base}/-/ready", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


def test_prometheus_scrapes_kubevents_events_total(tmp_path: Path, prometheus: Any) -> None:
    out = tmp_path / "records.jsonl"
    settings = settings_for(
        [f"jsonl:{out}"], **{"metrics.host": "127.0.0.1", "replay.hold_s": 120.0}
    )
    run = ReplayThread(settings, metrics=True)
    base = prometheus(run.metrics_url.removeprefix("http://"))
    series: list[dict[str, Any]] = []

    def scraped() -> bool:
        series[:] = query(base, "kubevents_events_total")
        return bool(series) and bool(query(base, "kubevents_pipeline_records_total > 500"))

    wait_until(scraped, timeout=60, what="Prometheus to scrape kubevents_events_total")
    series = query(base, "kubevents_events_total")
    total = query(base, "sum(kubevents_events_total)")
    up = query(base, 'up{job="kubevents"}')
    run.join()

    for s in series:
        labels = set(s["metric"]) - {"__name__", "job", "instance"}
        assert labels == EVENT_LABELS, s["metric"]
    records = read_jsonl(out)
    occurrences = sum(
        r["attributes"]["kubevents.occurrences"] for r in records if r["event_name"] == "k8s.event"
    )
    assert float(total[0]["value"][1]) == occurrences
    assert up[0]["value"][1] == "1"
    reasons = {s["metric"]["k8s_event_reason"] for s in series}
    assert "BackOff" in reasons
