"""rules/alerts in a real Prometheus that scrapes a real kubevents: every rule evaluates
without error, and the recording rules give series with the `cluster` label of the scrape.

Prometheus 2.42 (Debian's package, as promtool) loads rules/alerts/kubevents.rules.yaml,
scrapes a replay of the demo recording every second with `cluster: demo` added, and
evaluates every second.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from tests.e2e.sinks_support import ReplayThread, settings_for
from tests.fakes.loki_receiver import FakeLoki
from tests.rules.rules_support import ALERT_RULES, alerts, recordings
from tests.support.waiting import wait_until

pytestmark = pytest.mark.servers


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _query(base: str, promql: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{base}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert answer["status"] == "success", answer
    result: list[dict[str, Any]] = answer["data"]["result"]
    return result


@pytest.fixture(scope="module")
def evaluated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """(Prometheus URL, its rule groups) once the rules have run on a scrape of the demo replay."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "Debian's prometheus package is needed (make test installs it)"
    tmp = tmp_path_factory.mktemp("prometheus-rules")
    with FakeLoki() as loki:
        loki.faults.status(503, times=2)  # two failed pushes, retried: failed and exported
        settings = settings_for(
            [f"loki:{loki.url}"], **{"metrics.host": "127.0.0.1", "replay.hold_s": 120.0}
        )
        run = ReplayThread(settings, metrics=True)
        target = run.metrics_url.removeprefix("http://")
        config = tmp / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(ALERT_RULES)],
                    "scrape_configs": [
                        {
                            "job_name": "kubevents",
                            "static_configs": [
                                {"targets": [target], "labels": {"cluster": "demo"}}
                            ],
                        }
                    ],
                }
            )
        )
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        with (tmp / "prometheus.log").open("wb") as log:
            proc = subprocess.Popen(
                [
                    prometheus,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:

            def ready() -> bool:
                assert proc.poll() is None, (tmp / "prometheus.log").read_text()[-2000:]
                try:
                    return requests.get(f"{base}/-/ready", timeout=2).status_code == 200
                except requests.ConnectionError:
                    return False

            wait_until(ready, timeout=60, what="Prometheus to be ready")

            def rules_ran() -> bool:
                # two scrapes for rate(), then one more evaluation of every group
                if len(_query(base, 'count_over_time(up{job="kubevents"}[1m])')) == 0:
                    return False
                samples = _query(base, 'count_over_time(up{job="kubevents"}[1m])')[0]["value"][1]
                return int(samples) >= 4 and bool(
                    _query(base, "cluster_namespace:kubevents_events:rate5m")
                )

            wait_until(rules_ran, timeout=90, what="the rules to run on two scrapes")
            time.sleep(2)
            groups = requests.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
            yield base, groups
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            run.join()


def test_every_rule_is_loaded_and_healthy(evaluated: tuple[str, list[dict[str, Any]]]) -> None:
    _, groups = evaluated
    loaded = {r["name"]: r for g in groups for r in g["rules"]}
    expected = {a["alert"] for a in alerts()} | {r["record"] for r in recordings()}
    assert set(loaded) == expected
    unhealthy = {
        name: rule.get("lastError")
        for name, rule in loaded.items()
        if rule["health"] != "ok" or rule.get("lastError")
    }
    assert unhealthy == {}
    for group in groups:
        assert group["lastEvaluation"] > "2000", group["name"]


def test_recordings_carry_the_scrape_cluster_label(
    evaluated: tuple[str, list[dict[str, Any]]],
) -> None:
    base, _ = evaluated
    for record in (
        "cluster_namespace:kubevents_events:rate5m",
        "cluster_namespace_category_severity:kubevents_events:rate5m",
        "cluster_namespace_reason_type:kubevents_events:rate5m",
        "cluster:kubevents_events_warning:ratio_rate5m",
        "cluster_instance_sink:kubevents_sink_exported:rate5m",
        "cluster_instance_sink:kubevents_sink_failed:rate5m",
        "cluster_instance_sink:kubevents_sink_queue_utilization:ratio",
    ):
        series = _query(base, record)
        assert series, f"{record}: no series on a real scrape"
        assert {s["metric"].get("cluster") for s in series} == {"demo"}, record
    namespaces = {
        s["metric"].get("k8s_namespace_name")
        for s in _query(base, "cluster_namespace:kubevents_events:rate5m")
    }
    assert {"shop", "payments"} <= namespaces
    sinks = _query(base, "cluster_instance_sink:kubevents_sink_queue_utilization:ratio")
    assert {s["metric"]["sink"] for s in sinks} == {"loki"}
    assert {s["metric"]["job"] for s in sinks} == {"kubevents"}


def test_storm_recordings_join_their_thresholds(
    evaluated: tuple[str, list[dict[str, Any]]],
) -> None:
    """The storm alerts' join (`> on (storm) group_left ()`) matches real recorded series."""
    base, _ = evaluated
    storms = _query(base, "cluster_namespace_storm:kubevents_events:increase10m")
    assert {"probe_failure", "crash_loop"} <= {s["metric"]["storm"] for s in storms}
    joined = _query(
        base,
        "cluster_namespace_storm:kubevents_events:increase10m"
        " >= bool on (storm) group_left () storm:kubevents_storm_threshold:increase10m",
    )
    assert len(joined) == len(storms)
