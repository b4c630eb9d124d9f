"""Every PromQL query of the dashboards runs on a real Prometheus scraping a replay of the demo.

Prometheus (Debian's package, 2.42) scrapes `kubevents replay --metrics-port --hold` and
adds `cluster="demo"` by relabeling, the label the dashboards' `cluster` variable reads.
Each query is sent as Grafana would send it (variables at their defaults, All = `.*`,
`$__rate_interval` = four scrape intervals): every one must evaluate without error, and
the ones about what a replay produces (Events, patterns, incidents, the pipeline) must
return series.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from dashboard_queries import ROOT, load_all, panels, queries

from tests.integration.servers import free_port, wait_for

DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"

#: Metrics only `kubevents run` has, or only a network sink (a replay to jsonl has none), and
#: kubevents_anomaly_score, which has no series while nothing is anomalous (the demo's end).
MAY_BE_EMPTY = re.compile(
    r"kubevents_(watch_|leader\b|checkpoint_|pipeline_queue_|sink_|anomaly_score\b)"
)


def _get(base: str, path: str, **params: str) -> Any:
    answer = requests.get(f"{base}{path}", params=params, timeout=10)
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "success", f"{params}: {body}"
    return body["data"]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    assert shutil.which("prometheus"), (
        "prometheus is missing: apt-get install prometheus (make test does)"
    )
    work = tmp_path_factory.mktemp("prometheus")
    metrics_port, web_port = free_port(), free_port()
    replay = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from kubevents.cli import main; sys.exit(main(sys.argv[1:]))",
            "replay",
            str(DEMO),
            "--sink",
            f"jsonl:{work / 'records.jsonl'}",
            "--no-summary",
            "--cluster-name",
            "demo",
            "--metrics-port",
            str(metrics_port),
            "--hold",
            "120",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=(work / "replay.log").open("wb"),
    )
    config = work / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: kubevents\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{metrics_port}']}}]\n"
        # external_labels would not do: Prometheus adds them only to what leaves it
        # (remote write, federation, alerts), never to the series it queries itself.
        "    relabel_configs: [{target_label: cluster, replacement: demo}]\n"
    )
    prom = subprocess.Popen(
        [
            shutil.which("prometheus") or "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("wb"),
    )
    base = f"http://127.0.0.1:{web_port}"
    try:

        def scraped() -> bool:
            assert prom.poll() is None, (work / "prometheus.log").read_text()[-2000:]
            data = _get(base, "/api/v1/query", query="kubevents_pipeline_records_total > 500")
            return bool(data["result"])

        wait_for(scraped, 90, "Prometheus to scrape the replay's metrics", interval=0.5)
        time.sleep(5)  # a few more scrapes: rate() over four intervals has samples
        yield base
    finally:
        for proc in (replay, prom):
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _interpolate(expr: str) -> str:
    values = {"cluster": "demo", "__rate_interval": "4s", "__range": "1h", "__interval": "1s"}

    def sub(m: re.Match[str]) -> str:
        return values.get(m.group(1) or m.group(2), ".*")

    return re.sub(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)", sub, expr)


def test_every_dashboard_promql_query_runs_on_prometheus(prometheus: str) -> None:
    results = {}
    for d in load_all().values():
        for p in panels(d):
            for t in p.get("targets", []):
                if t.get("datasource", {}).get("type") != "prometheus":
                    continue
                data = _get(prometheus, "/api/v1/query", query=_interpolate(t["expr"]))
                results[(d["uid"], p["title"], t["refId"], t["expr"])] = data["result"]
    assert len(results) >= 40
    expected_data = {k: v for k, v in results.items() if not MAY_BE_EMPTY.search(k[3])}
    empty = sorted(k[:3] for k, v in expected_data.items() if not v)
    assert empty == [], f"queries without a result after a replay: {empty}"


def test_cluster_and_namespace_variables_list_the_replay(prometheus: str) -> None:
    for d in load_all().values():
        for q in queries(d):
            if not q.where.startswith("variable"):
                continue
            name = q.where.split("'")[1]
            label = {
                "cluster": "cluster",
                "namespace": "k8s_namespace_name",
                "reason": "k8s_event_reason",
            }[name]
            data = _get(
                prometheus, f"/api/v1/label/{label}/values", **{"match[]": _interpolate(q.expr)}
            )
            assert data, f"{d['uid']}: variable {name} would be empty"
            if name == "cluster":
                assert data == ["demo"]
            if name == "namespace":
                assert {"shop", "kube-system"} <= set(data)


def test_events_rates_follow_the_cluster_variable(prometheus: str) -> None:
    expr = 'sum(kubevents_events_total{cluster=~"$cluster", k8s_namespace_name=~"$namespace"})'
    assert _get(prometheus, "/api/v1/query", query=_interpolate(expr))["result"]
    other = expr.replace("$cluster", "another")
    assert _get(prometheus, "/api/v1/query", query=_interpolate(other))["result"] == []
