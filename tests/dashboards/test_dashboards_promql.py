"""Every PromQL expression of the dashboards passes promtool, and uses only documented metrics and labels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from dashboard_queries import (
    METRICS_DOC,
    Query,
    documented_metrics,
    metric_errors,
    promql_for_promtool,
    promql_metric_names,
)


def promtool_errors(exprs: list[str], tmp_path: Path) -> tuple[int, str]:
    """`promtool check rules` on a rule file with one recording rule per expression."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: apt-get install prometheus (make test does)"
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:expr_{i}:check", "expr": e} for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.rules.yaml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False))
    proc = subprocess.run(
        [promtool, "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_macros_are_substituted_as_grafana_would() -> None:
    assert (
        promql_for_promtool(
            'sum(rate(m{cluster=~"$cluster", ns=~"${namespace:regex}"}[$__rate_interval]))'
        )
        == 'sum(rate(m{cluster=~".*", ns=~".*"}[5m]))'
    )


def test_every_promql_expression_passes_promtool(all_queries: list[Query], tmp_path: Path) -> None:
    exprs = [promql_for_promtool(q.expr) for q in all_queries if q.kind == "prometheus"]
    assert len(exprs) >= 40
    code, out = promtool_errors(exprs, tmp_path)
    assert code == 0, out
    assert f"SUCCESS: {len(exprs)} rules found" in out


@pytest.mark.parametrize(
    "bad",
    [
        'sum(rate(kubevents_events_total{cluster=~".*"}[5m])',
        "sum by (k8s_event_reason (rate(kubevents_events_total[5m]))",
        "rate(kubevents_events_total[5 minutes])",
        "histogram_quantile(0.99, sum by (le) (rate(kubevents_sink_export_duration_seconds_bucket)))",
    ],
)
def test_promtool_rejects_a_broken_expression(tmp_path: Path, bad: str) -> None:
    code, out = promtool_errors(['sum(kubevents_leader{cluster=~".*"})', bad], tmp_path)
    assert code != 0
    assert "dashboard:expr_1:check" in out or "parse error" in out


def test_metric_names_are_extracted() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (sink, le) (rate(kubevents_sink_export_duration_seconds_bucket"
        '{cluster=~"$cluster", sink="otlp"}[$__rate_interval]))) / on (sink) group_left (x) '
        "kubevents_sink_queue_capacity + time() - max(kubevents_leader offset 5m) > bool 0"
    )
    assert promql_metric_names(expr) == {
        "kubevents_sink_export_duration_seconds_bucket",
        "kubevents_sink_queue_capacity",
        "kubevents_leader",
    }


def test_documented_metrics_are_read_from_docs_metrics_md() -> None:
    documented = documented_metrics(METRICS_DOC.read_text())
    assert "kubevents_k8s_event_reason" not in documented
    assert {"k8s_namespace_name", "k8s_event_reason", "kubevents_category"} <= documented[
        "kubevents_events_total"
    ]
    assert {"sink", "result", "le"} <= documented["kubevents_sink_export_duration_seconds_bucket"]
    assert "kubevents_sink_export_duration_seconds_count" in documented


def test_every_metric_and_label_a_dashboard_queries_is_documented(all_queries: list[Query]) -> None:
    documented = documented_metrics(METRICS_DOC.read_text())
    errors = metric_errors(all_queries, documented)
    missing = sorted(
        {e.split("metric ")[1].split(" ")[0] for e in errors if "is not in docs/metrics.md" in e}
    )
    assert errors == [], f"metrics not in docs/metrics.md: {missing}\n" + "\n".join(errors)


def test_cross_check_rejects_unknown_metrics_and_labels() -> None:
    documented = documented_metrics(METRICS_DOC.read_text())
    bad = [
        Query(
            "t",
            "p1",
            "prometheus",
            'sum(rate(kubevents_event_total{cluster=~"$cluster"}[$__rate_interval]))',
        ),
        Query(
            "t",
            "p2",
            "prometheus",
            'sum by (reason) (kubevents_events_total{cluster=~"$cluster", pod="x"})',
        ),
        Query(
            "t",
            "p3",
            "prometheus",
            'sum(rate(kubevents_events_total{cluster=~"$cluster"}[$__rate_interval]))',
        ),
    ]
    errors = metric_errors(bad, documented)
    assert errors == [
        "t p1: metric kubevents_event_total is not in docs/metrics.md",
        "t p2: kubevents_events_total has no label pod in docs/metrics.md",
        "t p2: grouping label reason is on none of ['kubevents_events_total']",
    ]
