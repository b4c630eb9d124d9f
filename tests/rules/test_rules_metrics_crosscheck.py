"""Every metric and label the alert rules use is one kubevents exposes (docs/metrics.md).

docs/metrics.md is what a real scrape after a replay is tested against
(tests/e2e/test_sinks_metrics.py), so a name that passes here exists on
/metrics. Covered: rules/alerts (recording and alerting rules) and the PromQL
of grafana/provisioning/alerting. rules/loki is LogQL over logs and names no
metric (its label names are checked in test_loki_rules.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.rules.rules_support import (
    ALERT_RULES,
    METRICS_DOC,
    SCRAPER_METRICS,
    Catalog,
    check_promql,
    documented_metrics,
    grafana_promql,
    prometheus_rules,
    promql_names,
    recording_catalog,
    recordings,
    template_labels,
    unknown_names,
)

EXPOSED = {**documented_metrics(), **SCRAPER_METRICS}
RECORDED = recording_catalog(recordings(), EXPOSED)
CATALOG = Catalog({**EXPOSED, **RECORDED})


def _rule_exprs() -> list[tuple[str, str]]:
    out = []
    for rule in recordings() + [r for r in _all_rules() if "alert" in r]:
        out.append((rule.get("alert") or rule["record"], rule["expr"]))
    return out


def _all_rules() -> list[dict[str, Any]]:
    return prometheus_rules(ALERT_RULES)


def test_docs_metrics_table_is_parsed() -> None:
    assert "kubevents_events_total" in EXPOSED
    assert "kubevents_sink_export_duration_seconds_bucket" in EXPOSED
    assert "le" in EXPOSED["kubevents_sink_export_duration_seconds_bucket"]
    assert {"sink", "reason"} <= EXPOSED["kubevents_sink_dropped_total"]


def test_rule_files_use_only_exposed_metrics_and_labels() -> None:
    problems = []
    for where, expr in _rule_exprs():
        problems += unknown_names(expr, CATALOG, where)
    assert problems == [], "\n".join(problems)


def test_grafana_alerting_uses_only_exposed_metrics_and_labels() -> None:
    exprs = grafana_promql()
    assert exprs, "no PromQL in grafana/provisioning/alerting"
    problems = []
    for where, expr in exprs:
        problems += unknown_names(expr, CATALOG, where)
    assert problems == [], "\n".join(problems)


def test_every_raw_metric_of_the_rules_is_a_kubevents_metric() -> None:
    """The metrics read straight from /metrics (not recordings): listed for the report."""
    raw = set()
    for _, expr in _rule_exprs():
        raw |= {m for m in promql_names(expr).metrics if m not in RECORDED}
    assert raw - set(SCRAPER_METRICS), "the rules read no kubevents metric"
    assert all(m.startswith("kubevents_") for m in raw - set(SCRAPER_METRICS)), raw


def test_annotation_labels_are_known_labels() -> None:
    problems = []
    for rule in _all_rules():
        for key, text in (rule.get("annotations") or {}).items():
            for label in sorted(template_labels(text) - CATALOG.all_labels - {"storm"}):
                problems.append(
                    f"{rule.get('alert')}: annotation {key} uses unknown label {label!r}"
                )
    assert problems == [], "\n".join(problems)


# --- negative: the cross-check reports what it must ------------------------------------


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (
            "sum by (cluster) (rate(kubevents_events_dropped_total[5m])) > 0",
            "unknown metric 'kubevents_events_dropped_total'",
        ),
        (
            'kubevents_sink_dropped_total{sinc="loki"} > 0',
            "metric 'kubevents_sink_dropped_total' has no label 'sinc'",
        ),
        (
            "sum by (cluster, k8s_pod_name) (kubevents_events_total)",
            "grouping label 'k8s_pod_name' is on none of the metrics used",
        ),
        (
            "kubevents_sink_export_duration_seconds > 1",
            "unknown metric 'kubevents_sink_export_duration_seconds'",
        ),
        ('{__name__=~"kubevents_.*"}', "selector without a fixed metric name cannot be checked"),
        (
            "cluster_namespace:kubevents_events:rate1h > 0",
            "unknown metric 'cluster_namespace:kubevents_events:rate1h'",
        ),
    ],
)
def test_crosscheck_reports_unknown_names(expr: str, message: str) -> None:
    problems = unknown_names(expr, CATALOG, "test")
    assert problems == [f"test: {message}"]


def test_crosscheck_accepts_histogram_series_and_scraper_labels() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (cluster, sink, le) "
        '(rate(kubevents_sink_export_duration_seconds_bucket{job="kubevents", result="success"}[5m])))'
    )
    assert unknown_names(expr, CATALOG, "test") == []


def test_a_metric_missing_from_the_docs_is_reported() -> None:
    """Drop one row of docs/metrics.md: the rules that read it must be reported."""
    text = "\n".join(
        line
        for line in METRICS_DOC.read_text().splitlines()
        if "`kubevents_sink_queue_capacity`" not in line
    )
    exposed = {**documented_metrics(text), **SCRAPER_METRICS}
    catalog = Catalog({**exposed, **recording_catalog(recordings(), exposed)})
    problems = [p for where, expr in _rule_exprs() for p in unknown_names(expr, catalog, where)]
    assert any("unknown metric 'kubevents_sink_queue_capacity'" in p for p in problems), problems


# --- the scanner itself -----------------------------------------------------------------


TRICKY = (
    'sum without (instance) (rate(kubevents_events_total{k8s_event_reason=~"rate|sum", '
    'k8s_namespace_name!="kube-system"}[5m] offset 1h))'
    " / on (cluster) group_left (k8s_cluster_name) max by (cluster) (target_info)"
    ' > bool 0.5 and absent(up{job="kubevents"} == 1) or vector(1e3)'
)
SUBQUERY = 'max_over_time(rate({__name__="kubevents_sink_failed_total", sink="loki"}[5m])[30m:1m])'


def test_scanner_inputs_are_valid_promql() -> None:
    proc = check_promql([TRICKY, SUBQUERY])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_scanner_on_tricky_expressions() -> None:
    names = promql_names(TRICKY)
    assert names.metrics == {"kubevents_events_total", "target_info", "up"}
    sel = {s.metric: s.labels for s in names.selectors}
    assert sel["kubevents_events_total"] == {"k8s_event_reason", "k8s_namespace_name"}
    assert sel["up"] == {"job"}
    assert names.grouping == {"instance", "cluster", "k8s_cluster_name"}


def test_scanner_subqueries_and_name_matcher() -> None:
    names = promql_names(SUBQUERY)
    assert [(s.metric, s.labels) for s in names.selectors] == [
        ("kubevents_sink_failed_total", frozenset({"sink"}))
    ]


def test_scanner_rejects_unknown_functions() -> None:
    with pytest.raises(ValueError, match="unknown PromQL function"):
        promql_names("ratee(kubevents_events_total[5m])")
