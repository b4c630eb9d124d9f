"""rules/loki: ruler layout and schema, LogQL parsed by Grafana's grammar, real label names."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.rules.rules_support import (
    LOKI_RULES_DIR,
    RUNBOOK_BASE,
    RUNBOOKS,
    SEVERITIES,
    load_yaml,
    loki_rule_files,
    loki_rules,
    template_labels,
)
from tests.tools.logql.logql import check_logql

STREAM_LABELS = {"service_name", "k8s_cluster_name", "k8s_namespace_name"}
"""What the Loki sink indexes by default, and Loki's OTLP ingestion of kubevents' Resource."""

FIELD_METADATA = {
    "severity_text",
    "severity_number",
    "event_name",
    "observed_timestamp",
    "detected_level",
}
"""Structured metadata Loki (or the sink) writes from LogRecord fields, not attributes."""

DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")

RULES = loki_rules()
IDS = [r.get("alert") or r["record"] for _, _, r in RULES]


def test_layout_is_tenant_slash_namespace() -> None:
    files = loki_rule_files()
    assert files, "no Loki rule files"
    for path in files:
        rel = path.relative_to(LOKI_RULES_DIR)
        assert len(rel.parts) == 2, rel
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", rel.parts[0]), rel
    assert (LOKI_RULES_DIR / "fake" / "kubevents.yaml") in files
    assert set(LOKI_RULES_DIR.rglob("*.y*ml")) == set(files), (
        "rule files outside <tenant>/<namespace>.yaml"
    )


def test_group_names_unique_per_file() -> None:
    for path in loki_rule_files():
        names = [g["name"] for g in load_yaml(path)["groups"]]
        assert len(names) == len(set(names)), path


@pytest.mark.parametrize(("rule"), [r for _, _, r in RULES], ids=IDS)
def test_rule_schema(rule: dict[str, Any]) -> None:
    assert ("alert" in rule) != ("record" in rule)
    assert set(rule) <= {
        "alert",
        "record",
        "expr",
        "for",
        "keep_firing_for",
        "labels",
        "annotations",
    }
    assert rule["expr"].strip()
    if "for" in rule:
        assert DURATION.match(str(rule["for"]))
    if "record" in rule:
        assert re.fullmatch(r"[a-z0-9_]+:kubevents_loki_[a-z0-9_]+:[a-z0-9_]+", rule["record"])
        assert "annotations" not in rule
        return
    name = rule["alert"]
    assert re.fullmatch(r"KubeventsLoki[A-Z][A-Za-z]+", name)
    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}
    assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}{name}.md"
    runbook = RUNBOOKS / f"{name}.md"
    assert runbook.is_file(), runbook
    text = runbook.read_text()
    assert text.startswith(f"# {name}\n")
    for section in ("## Meaning", "## In Grafana", "## What to do"):
        assert section in text, f"{runbook}: no {section}"


def test_logql_parses_with_grafana_grammar() -> None:
    exprs = [r["expr"] for _, _, r in RULES]
    assert check_logql(exprs) == []


@pytest.mark.parametrize(
    "broken",
    [
        'sum by (k8s_namespace_name) (count_over_time({service_name="kubevents"} | severity_text="Warning" [10m]) > 200',
        'sum by (k8s_namespace_name) (count_over_time({service_name="kubevents"} | severity_text= [10m])) > 200',
        'count_over_time({service_name="kubevents"} | severity_text="Warning" 10m)',
        '{service_name="kubevents" | k8s_event_reason="BackOff"',
    ],
)
def test_grammar_rejects_broken_logql(broken: str) -> None:
    assert len(check_logql([broken])) == 1


# --- label names ------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')
_SELECTOR = re.compile(r"\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)")
_FILTER = re.compile(r"\|\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|==|=|>=|<=|>|<)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_UNWRAP = re.compile(r"\bunwrap\s+(?:\w+\()?([A-Za-z_][A-Za-z0-9_]*)")


def logql_labels(expr: str) -> tuple[set[str], set[str]]:
    """(stream selector labels, every other label name) of a LogQL expression.

    Run on expressions the grammar accepted: strings are blanked first, so a
    regex inside a value cannot look like a label.
    """
    blank = _STRING.sub('""', expr)
    stream: set[str] = set()
    for m in _SELECTOR.finditer(blank):
        stream |= set(_MATCHER.findall(m.group(1)))
    outside = _SELECTOR.sub("{}", blank)
    other = set(_FILTER.findall(outside)) | set(_UNWRAP.findall(outside))
    for m in _GROUPING.finditer(outside):
        other |= {label.strip() for label in m.group(1).split(",") if label.strip()}
    return stream, other


def _written_labels(records: list[dict[str, Any]]) -> set[str]:
    """Label and structured-metadata names Loki gets for these records (dots as underscores)."""
    names = set(FIELD_METADATA)
    for record in records:
        names |= {k.replace(".", "_") for k in record.get("resource", {})}
        names |= {k.replace(".", "_") for k in record.get("attributes", {})}
    return names


def test_label_extraction() -> None:
    stream, other = logql_labels(
        'sum by (a, b) (count_over_time({service_name="x", k8s_namespace_name=~"p|q"} '
        '| c="{d=1}" | e!="" | unwrap duration(f) [5m])) unless on (g) sum by (g) (rate({h="i"}[1m]))'
    )
    assert stream == {"service_name", "k8s_namespace_name", "h"}
    assert other == {"a", "b", "c", "e", "f", "g"}


def test_rules_select_kubevents_streams_by_index_labels_only() -> None:
    for _, _, rule in RULES:
        stream, _ = logql_labels(rule["expr"])
        assert stream <= STREAM_LABELS, rule.get("alert") or rule["record"]
        assert 'service_name="kubevents"' in rule["expr"]


def test_rules_use_only_labels_kubevents_writes(jsonl_demo_records: list[dict[str, Any]]) -> None:
    """Every label a rule filters or groups on is on a real record of a demo replay."""
    written = _written_labels(jsonl_demo_records)
    assert {"k8s_event_reason", "kubevents_incident_state", "kubevents_workload"} <= written
    problems = []
    for _, _, rule in RULES:
        stream, other = logql_labels(rule["expr"])
        used = stream | other
        for text in (rule.get("annotations") or {}).values():
            used |= template_labels(text)
        for label in sorted(used - written):
            problems.append(
                f"{rule.get('alert') or rule['record']}: {label!r} is not written by kubevents"
            )
    assert problems == [], "\n".join(problems)


def test_unknown_label_is_reported(jsonl_demo_records: list[dict[str, Any]]) -> None:
    written = _written_labels(jsonl_demo_records)
    _, other = logql_labels(
        'sum by (k8s_pod_uid) (count_over_time({service_name="kubevents"} | reason="BackOff" [5m]))'
    )
    assert other - written == {"k8s_pod_uid", "reason"}
