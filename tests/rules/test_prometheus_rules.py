"""rules/alerts: promtool check + unit tests, conventions, and negative cases."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.rules.rules_support import (
    ALERT_RULES,
    ALERT_TESTS,
    ALERTS_DIR,
    RUNBOOK_BASE,
    RUNBOOKS,
    SEVERITIES,
    alerts,
    load_yaml,
    promql_names,
    recording_catalog,
    recordings,
    run_promtool,
    template_labels,
)

ALERT_NAMES = [a["alert"] for a in alerts()]


def test_promtool_check_rules() -> None:
    proc = run_promtool("check", "rules", ALERT_RULES)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout
    n = len(load_yaml(ALERT_RULES)["groups"])
    assert n >= 4


def test_promtool_test_rules() -> None:
    assert ALERT_TESTS, "no promtool unit tests in rules/alerts/tests"
    proc = run_promtool("test", "rules", *ALERT_TESTS, cwd=ALERTS_DIR / "tests")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(ALERT_TESTS), proc.stdout


def _alert_cases() -> dict[str, dict[str, int]]:
    """Alert name -> {'fires': n, 'silent': n} over every promtool unit test."""
    cases: dict[str, dict[str, int]] = {}
    for path in ALERT_TESTS:
        for test in load_yaml(path)["tests"]:
            for case in test.get("alert_rule_test") or []:
                kind = "fires" if case.get("exp_alerts") else "silent"
                counts = cases.setdefault(case["alertname"], {"fires": 0, "silent": 0})
                counts[kind] += 1
    return cases


@pytest.mark.parametrize("alert", ALERT_NAMES)
def test_every_alert_is_tested_firing_and_silent(alert: str) -> None:
    cases = _alert_cases().get(alert, {"fires": 0, "silent": 0})
    assert cases["fires"] >= 1, f"{alert}: no promtool test where it fires"
    assert cases["silent"] >= 1, f"{alert}: no promtool test where it stays silent"


def test_unit_tests_name_only_existing_alerts() -> None:
    assert set(_alert_cases()) <= set(ALERT_NAMES)


@pytest.mark.parametrize("rule", alerts(), ids=ALERT_NAMES)
def test_alert_conventions(rule: dict[str, Any]) -> None:
    name = rule["alert"]
    assert re.fullmatch(r"Kubevents[A-Z][A-Za-z]+", name), name
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert annotations["summary"].strip() and annotations["description"].strip()
    assert annotations["runbook_url"] == f"{RUNBOOK_BASE}{name}.md"
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), f"missing runbook {runbook}"
    text = runbook.read_text()
    assert text.startswith(f"# {name}\n"), f"{runbook} must start with '# {name}'"
    for section in ("## Meaning", "## In Grafana", "## What to do"):
        assert section in text, f"{runbook}: no '{section}' section"


def test_no_runbook_without_alert() -> None:
    documented = {p.stem for p in RUNBOOKS.glob("*.md")}
    loki = set()
    for path in (ALERT_RULES.parents[1] / "loki").rglob("*.yaml"):
        for group in load_yaml(path)["groups"]:
            loki |= {r["alert"] for r in group["rules"] if "alert" in r}
    assert documented <= set(ALERT_NAMES) | loki


def test_alerts_index_lists_every_alert() -> None:
    index = (ALERT_RULES.parents[2] / "docs" / "alerts.md").read_text()
    for name in ALERT_NAMES:
        assert f"[{name}](runbooks/{name}.md)" in index, name


def _aggregations(expr: str) -> list[tuple[str, str, str]]:
    return re.findall(r"\b(sum|max|min|avg|count)\s+(by|without)\s*\(([^)]*)\)", expr)


@pytest.mark.parametrize(
    "rule", alerts() + recordings(), ids=lambda r: r.get("alert") or r["record"]
)
def test_aggregations_keep_cluster(rule: dict[str, Any]) -> None:
    for _, mode, labels in _aggregations(rule["expr"]):
        names = {label.strip() for label in labels.split(",")}
        if mode == "by":
            assert "cluster" in names, f"aggregation drops `cluster`: by ({labels})"
        else:
            assert "cluster" not in names


def test_recording_rule_names() -> None:
    for rule in recordings():
        assert re.fullmatch(r"[a-z_]+:kubevents_[a-z0-9_]+:[a-z0-9_]+", rule["record"]), rule[
            "record"
        ]
        level = rule["record"].split(":")[0]
        # the level names the labels kept (monitoring-mixin convention)
        grouping = promql_names(rule["expr"]).grouping
        static = set(rule.get("labels") or {})
        if grouping:
            assert "cluster" in level.split("_") or level == "storm", rule["record"]
        if level == "storm":
            assert static == {"storm"}


def test_storm_thresholds_exist_for_every_storm() -> None:
    storms = {
        r["labels"]["storm"]
        for r in recordings()
        if r["record"].startswith("cluster_namespace_storm:")
    }
    thresholds = {
        r["labels"]["storm"]
        for r in recordings()
        if r["record"] == "storm:kubevents_storm_threshold:increase10m"
    }
    assert storms == thresholds
    alerted = set()
    for rule in alerts():
        m = re.search(r'storm="([a-z_]+)"', rule["expr"])
        if m:
            alerted.add(m.group(1))
            assert "storm:kubevents_storm_threshold:increase10m" in rule["expr"]
    assert alerted == storms


@pytest.mark.parametrize("rule", alerts(), ids=ALERT_NAMES)
def test_template_labels_exist_in_alert_output(rule: dict[str, Any]) -> None:
    """`$labels.x` in an annotation must be a label the alert keeps (else it renders empty)."""
    names = promql_names(rule["expr"])
    grouping = names.grouping | set(rule.get("labels") or {})
    used = set()
    for text in rule["annotations"].values():
        used |= template_labels(text)
    outer = set()
    for m in re.finditer(r"\b(?:sum|max|min|avg|count)\s+by\s*\(([^)]*)\)", rule["expr"]):
        outer |= {label.strip() for label in m.group(1).split(",")}
    if not outer:
        recorded = recording_catalog(recordings(), {})
        if not all(s.metric in recorded for s in names.selectors):
            return  # raw selectors keep their labels: the unit tests render them
        for s in names.selectors:
            outer |= recorded[s.metric or ""]
    assert used <= outer | grouping, f"{rule['alert']}: annotation uses {sorted(used - outer)}"


# --- negative: promtool catches what it must -------------------------------------------


def _write(tmp: Path, name: str, data: object) -> Path:
    path = tmp / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_promtool_rejects_a_broken_expression(tmp_path: Path) -> None:
    rules = load_yaml(ALERT_RULES)
    rule = next(
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "KubeventsSinkFailing"
    )
    rule["expr"] = "sum by (cluster (rate(kubevents_sink_failed_total[5m])) > 0.05"
    path = _write(tmp_path, "broken.rules.yaml", rules)
    proc = run_promtool("check", "rules", path)
    assert proc.returncode != 0
    assert (
        "KubeventsSinkFailing" in proc.stdout + proc.stderr
        or "parse error" in proc.stdout + proc.stderr
    )


def test_promtool_rejects_a_bad_label_and_duration(tmp_path: Path) -> None:
    bad = {
        "groups": [
            {"name": "g", "rules": [{"alert": "X", "expr": "up == 0", "for": "ten minutes"}]}
        ]
    }
    proc = run_promtool("check", "rules", _write(tmp_path, "bad.rules.yaml", bad))
    assert proc.returncode != 0


def test_promtool_unit_test_fails_when_an_alert_no_longer_fires(tmp_path: Path) -> None:
    """Raise a threshold above the test data: the shipped unit tests must notice."""
    text = ALERT_RULES.read_text()
    assert (
        'cluster_instance_sink:kubevents_sink_failed:ratio_rate5m{job="kubevents"} > 0.05' in text
    )
    (tmp_path / "kubevents.rules.yaml").write_text(
        text.replace(
            'cluster_instance_sink:kubevents_sink_failed:ratio_rate5m{job="kubevents"} > 0.05',
            'cluster_instance_sink:kubevents_sink_failed:ratio_rate5m{job="kubevents"} > 0.5',
        )
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    for path in ALERT_TESTS:
        shutil.copy(path, tests / path.name)
    proc = run_promtool("test", "rules", *(tests / p.name for p in ALERT_TESTS), cwd=tests)
    assert proc.returncode != 0
    assert "KubeventsSinkFailing" in proc.stdout + proc.stderr


def test_promtool_unit_test_fails_when_a_silent_case_fires(tmp_path: Path) -> None:
    """Lower a storm threshold below the 'silent' data: the unit tests must notice."""
    text = ALERT_RULES.read_text()
    old = "        labels: {storm: probe_failure}\n        expr: vector(30)"
    assert old in text
    (tmp_path / "kubevents.rules.yaml").write_text(
        text.replace(old, "        labels: {storm: probe_failure}\n        expr: vector(15)")
    )
    tests = tmp_path / "tests"
    tests.mkdir()
    for path in ALERT_TESTS:
        shutil.copy(path, tests / path.name)
    proc = run_promtool("test", "rules", *(tests / p.name for p in ALERT_TESTS), cwd=tests)
    assert proc.returncode != 0
    assert "KubeventsProbeFailureStorm" in proc.stdout + proc.stderr
