"""Every LogQL expression of the dashboards parses with Grafana's own grammar (@grafana/lezer-logql)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dashboard_queries import ROOT, Query, panels

from grafana.common import STREAM_MATCHERS
from tests.tools.logql.logql import DIR, check_logql, interpolate, parse_results


def test_pinned_grammar_is_installed_from_the_lock_file() -> None:
    package = json.loads((DIR / "package.json").read_text())
    lock = json.loads((DIR / "package-lock.json").read_text())
    pinned = package["dependencies"]["@grafana/lezer-logql"]
    assert pinned[0].isdigit(), "pin @grafana/lezer-logql to an exact version"
    assert lock["packages"]["node_modules/@grafana/lezer-logql"]["version"] == pinned
    check_logql(['{service_name="kubevents"}'])  # installs on first use
    installed = json.loads(
        (DIR / "node_modules" / "@grafana" / "lezer-logql" / "package.json").read_text()
    )
    assert installed["version"] == pinned
    assert "node_modules/" in (DIR / ".gitignore").read_text().split()


def test_checker_accepts_valid_and_rejects_invalid_logql() -> None:
    valid = [
        '{service_name="kubevents"} | kubevents_severity=~"warning|error" |~ "(?i)back-off"',
        'sum by (k8s_event_reason) (count_over_time({service_name="kubevents"} | event_name="k8s.event" [5m]))',
        'sum(sum_over_time({service_name="kubevents"} | unwrap kubevents_occurrences | __error__="" [5m]))',
        'max by (a) (max_over_time({x="y"} | unwrap n [5m])) unless on (a) count by (a) (count_over_time({x="y"} [5m]))',
    ]
    assert check_logql(valid) == []
    invalid = [
        'sum(count_over_time({service_name="kubevents"}[5m])',  # unbalanced parenthesis
        '{service_name="kubevents"} | kubevents_severity=~"warning" [5m]',  # range without aggregation
        'count_over_time({service_name="kubevents"} [5 minutes])',  # not a duration
        'sum by (k8s_event_reason count_over_time({a="b"}[5m]))',  # unclosed grouping
        "",
    ]
    errors = check_logql(valid[:1] + invalid)
    assert len(errors) == len(invalid)
    for expr, error in zip(invalid, errors, strict=True):
        assert repr(expr) in error and "line 1 column" in error


def test_errors_carry_positions() -> None:
    [result] = parse_results(['sum(rate({a="b"}[5m]'])
    assert not result["ok"]
    assert result["errors"][0]["column"] == 21 and result["errors"][0]["line"] == 1


def test_grafana_variables_are_interpolated_as_grafana_does() -> None:
    expr = 'count_over_time({a=~"$cluster", b=~"${namespace:regex}"} |~ "[[search]]" [$__auto])'
    assert interpolate(expr) == (
        'count_over_time({a=~"__V_cluster__V__", b=~"__V_namespace__V__"} |~ "__V_search__V__" [5m])'
    )
    assert check_logql([expr]) == []
    assert check_logql(['topk($n, count_over_time({a="b"}[$__auto]))']) != []
    assert check_logql(['topk($n, count_over_time({a="b"}[$__auto]))'], {"n": "10"}) == []


@pytest.mark.parametrize("profile", list(STREAM_MATCHERS))
def test_every_dashboard_logql_expression_parses(all_queries: list[Query], profile: str) -> None:
    """With the `stream` variable at either label profile's matcher (Grafana puts a custom
    variable's value in as it is)."""
    logql = [q for q in all_queries if q.kind == "loki"]
    assert len(logql) >= 15
    errors = check_logql([q.expr for q in logql], {"stream": STREAM_MATCHERS[profile]})
    assert errors == [], "\n".join(errors)


@pytest.mark.parametrize(
    ("mutation", "description"),
    [
        (lambda e: e.replace(")", "", 1) if ")" in e else e + " |", "drop a parenthesis"),
        (
            lambda e: (
                e.replace("[$__auto]", "[$__auto") if "[$__auto]" in e else e.replace("}", "", 1)
            ),
            "unclosed range",
        ),
        (lambda e: e.replace("|", "| |", 1), "empty pipeline stage"),
    ],
)
def test_a_broken_dashboard_expression_is_reported(
    dashboards: dict[str, dict[str, Any]], mutation: Any, description: str
) -> None:
    exprs = [
        t["expr"]
        for d in dashboards.values()
        for p in panels(d)
        for t in p.get("targets", [])
        if t.get("datasource", {}).get("type") == "loki"
    ]
    broken = [mutation(e) for e in exprs]
    changed = [b for b, e in zip(broken, exprs, strict=True) if b != e]
    assert changed, description
    errors = check_logql(changed, {"stream": STREAM_MATCHERS["kubevents"]})
    assert len(errors) == len(changed), description


def test_helper_runs_from_the_command_line() -> None:
    import subprocess
    import sys

    ok = subprocess.run(
        [sys.executable, str(DIR / "logql.py"), '{service_name="kubevents"}'],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert ok.returncode == 0 and "ok: 1" in ok.stdout
    bad = subprocess.run(
        [sys.executable, str(DIR / "logql.py"), '{service_name="kubevents"'],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert bad.returncode == 1 and "LogQL syntax error" in bad.stdout
