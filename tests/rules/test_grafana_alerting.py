"""grafana/provisioning/alerting: Grafana's file-provisioning format, valid queries, parity with the rule files.

The structure follows Grafana's provisioning types (pkg/services/provisioning/
alerting/rules_types.go: AlertRuleGroupV1, AlertRuleV1, QueryV1): a group needs
a name, a folder and an interval; a rule a uid, a title, a condition and data.
PromQL is checked by promtool, LogQL by Grafana's own LogQL grammar.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.rules.rules_support import (
    ALERT_RULES,
    ALERT_TESTS,
    GRAFANA_ALERTING,
    RUNBOOK_BASE,
    RUNBOOKS,
    alerts,
    check_promql,
    grafana_logql,
    grafana_promql,
    grafana_rules,
    load_grafana,
    load_yaml,
    loki_rules,
    run_promtool,
)
from tests.tools.logql.logql import check_logql

DATASOURCES = {"prometheus", "loki", "__expr__"}
DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")
NO_DATA_STATES = {"NoData", "Alerting", "OK", "KeepLast"}
EXEC_ERR_STATES = {"Alerting", "Error", "OK", "KeepLast"}
EXPRESSION_TYPES = {"math", "reduce", "resample", "classic_conditions", "threshold", "sql"}


def structure_problems(document: dict[str, Any]) -> list[str]:
    """What Grafana would refuse (or silently misread) in one provisioning document."""
    problems: list[str] = []
    if document.get("apiVersion") != 1:
        problems.append("apiVersion must be 1")
    groups = document.get("groups") or []
    if not groups:
        problems.append("no groups")
    uids: set[str] = set()
    for group in groups:
        gname = group.get("name", "?")
        for key in ("orgId", "name", "folder", "interval", "rules"):
            if not group.get(key):
                problems.append(f"group {gname}: no {key}")
        if group.get("interval") and not DURATION.match(str(group["interval"])):
            problems.append(f"group {gname}: bad interval {group['interval']!r}")
        for rule in group.get("rules") or []:
            title = rule.get("title", "?")
            for key in ("uid", "title", "condition", "data", "for", "labels", "annotations"):
                if key not in rule or rule[key] in (None, "", []):
                    problems.append(f"{title}: no {key}")
            uid = str(rule.get("uid", ""))
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid):
                problems.append(f"{title}: uid {uid!r} is not 1-40 letters, digits, - or _")
            if uid in uids:
                problems.append(f"{title}: duplicate uid {uid!r}")
            uids.add(uid)
            if "for" in rule and not DURATION.match(str(rule["for"])):
                problems.append(f"{title}: bad for {rule['for']!r}")
            if rule.get("noDataState", "NoData") not in NO_DATA_STATES:
                problems.append(f"{title}: bad noDataState {rule.get('noDataState')!r}")
            if rule.get("execErrState", "Error") not in EXEC_ERR_STATES:
                problems.append(f"{title}: bad execErrState {rule.get('execErrState')!r}")
            # provisioning expands $VAR in labels and titles, ${VAR} in annotations
            for key in ("uid", "title"):
                if "$" in str(rule.get(key, "")):
                    problems.append(
                        f"{title}: '$' in {key} would be read as an environment variable"
                    )
            for name, value in (rule.get("labels") or {}).items():
                if "$" in str(value):
                    problems.append(
                        f"{title}: '$' in label {name} would be read as an environment variable"
                    )
            for name, value in (rule.get("annotations") or {}).items():
                if "${" in str(value):
                    problems.append(
                        f"{title}: '${{' in annotation {name} would be read as an environment variable"
                    )
            refs = [q.get("refId") for q in rule.get("data") or []]
            if len(set(refs)) != len(refs):
                problems.append(f"{title}: duplicate refId")
            if rule.get("condition") not in refs:
                problems.append(
                    f"{title}: condition {rule.get('condition')!r} is not a refId of data"
                )
            for query in rule.get("data") or []:
                ref = query.get("refId")
                ds = query.get("datasourceUid")
                model = query.get("model") or {}
                if ds not in DATASOURCES:
                    problems.append(
                        f"{title}/{ref}: datasourceUid {ds!r} not in {sorted(DATASOURCES)}"
                    )
                if model.get("refId") != ref:
                    problems.append(f"{title}/{ref}: model.refId differs")
                if (model.get("datasource") or {}).get("uid", ds) != ds:
                    problems.append(
                        f"{title}/{ref}: model.datasource.uid differs from datasourceUid"
                    )
                if ds == "__expr__":
                    if model.get("type") not in EXPRESSION_TYPES:
                        problems.append(
                            f"{title}/{ref}: unknown expression type {model.get('type')!r}"
                        )
                    if (
                        model.get("type") in ("reduce", "threshold")
                        and model.get("expression") not in refs
                    ):
                        problems.append(
                            f"{title}/{ref}: expression {model.get('expression')!r} is not a refId"
                        )
                    if model.get("type") == "threshold":
                        for cond in model.get("conditions") or [{}]:
                            evaluator = cond.get("evaluator") or {}
                            if evaluator.get("type") not in (
                                "gt",
                                "lt",
                                "within_range",
                                "outside_range",
                            ):
                                problems.append(
                                    f"{title}/{ref}: bad threshold evaluator {evaluator!r}"
                                )
                else:
                    if not str(model.get("expr", "")).strip():
                        problems.append(f"{title}/{ref}: no expr")
                    rng = query.get("relativeTimeRange") or {}
                    if not (
                        isinstance(rng.get("from"), int) and rng.get("from", 0) > rng.get("to", 0)
                    ):
                        problems.append(f"{title}/{ref}: relativeTimeRange must go back in time")
    return problems


def test_files_exist() -> None:
    assert sorted(GRAFANA_ALERTING.glob("*.yaml")), "no Grafana alert rules"


@pytest.mark.parametrize("path", sorted(GRAFANA_ALERTING.glob("*.yaml")), ids=lambda p: p.name)
def test_structure(path) -> None:  # type: ignore[no-untyped-def]
    assert structure_problems(load_grafana(path)) == []


def test_datasource_uids_come_from_the_environment_with_the_documented_defaults() -> None:
    """Every query names its data source through KUBEVENTS_PROMETHEUS_UID or
    KUBEVENTS_LOKI_UID (or is an expression), so another Grafana's uids are one setting."""
    for path in sorted(GRAFANA_ALERTING.glob("*.yaml")):
        raw = load_yaml(path)
        for group in raw["groups"]:
            for rule in group["rules"]:
                for query in rule["data"]:
                    assert query["datasourceUid"] in (
                        "${KUBEVENTS_PROMETHEUS_UID}", "${KUBEVENTS_LOKI_UID}", "__expr__"
                    ), (rule["title"], query["datasourceUid"])
                    assert query["model"]["datasource"]["uid"] == query["datasourceUid"]
        other = load_grafana(path, {"KUBEVENTS_PROMETHEUS_UID": "P1", "KUBEVENTS_LOKI_UID": "L1"})
        uids = {q["datasourceUid"] for g in other["groups"] for r in g["rules"] for q in r["data"]}
        assert uids == {"P1", "L1", "__expr__"}


def test_key_alerts_are_there() -> None:
    titles = {rule["title"] for _, _, rule in grafana_rules()}
    assert {
        "KubeventsAbsent",
        "KubeventsSinkDroppingRecords",
        "KubeventsWatchStalled",
        "KubeventsCriticalPatternActive",
        "KubeventsIncidentOpenTooLong",
        "KubeventsLokiWarningStorm",
    } <= titles


def test_same_severity_and_runbook_as_the_rule_files() -> None:
    ruled = {a["alert"]: a for a in alerts()}
    ruled |= {r["alert"]: r for _, _, r in loki_rules() if "alert" in r}
    for _, _, rule in grafana_rules():
        title = rule["title"]
        assert title in ruled, f"{title}: no Prometheus or Loki rule of that name"
        assert rule["labels"]["severity"] == ruled[title]["labels"]["severity"], title
        assert rule["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}{title}.md"
        assert (RUNBOOKS / f"{title}.md").is_file()
        assert rule["annotations"]["summary"] == ruled[title]["annotations"]["summary"], title


def test_promql_is_valid() -> None:
    exprs = grafana_promql()
    assert exprs
    proc = check_promql([e for _, e in exprs])
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_logql_is_valid() -> None:
    exprs = grafana_logql()
    assert exprs
    assert check_logql([e for _, e in exprs]) == []


# --- negative ---------------------------------------------------------------------------


def _document() -> dict[str, Any]:
    document: dict[str, Any] = load_grafana(sorted(GRAFANA_ALERTING.glob("*.yaml"))[0])
    return document


def test_structure_check_catches_mistakes() -> None:
    doc = _document()
    rules = doc["groups"][0]["rules"]
    rules[0]["condition"] = "Z"
    rules[1]["uid"] = rules[2]["uid"]
    rules[1]["data"][0]["datasourceUid"] = "P1809F7CD0C75ACF3"
    rules[2]["data"][1]["model"]["expression"] = "Q"
    del doc["groups"][1]["folder"]
    rules[3]["labels"]["team"] = "$TEAM"
    problems = structure_problems(doc)
    text = "\n".join(problems)
    assert "condition 'Z' is not a refId" in text
    assert "duplicate uid" in text
    assert "datasourceUid 'P1809F7CD0C75ACF3'" in text
    assert "expression 'Q' is not a refId" in text
    assert "no folder" in text
    assert "environment variable" in text


def test_promtool_rejects_a_broken_grafana_query() -> None:
    exprs = [e for _, e in grafana_promql()]
    exprs[0] = exprs[0].replace(")", "", 1)
    proc = check_promql(exprs)
    assert proc.returncode != 0


def test_lezer_rejects_a_broken_grafana_query() -> None:
    exprs = [e for _, e in grafana_logql()]
    broken = exprs[0].replace("[10m]", "[10m", 1)
    assert broken != exprs[0]
    assert len(check_logql([broken])) == 1


# --- behaviour: the Grafana copies fire where the Prometheus rules fire -----------------

OPS = {"gt": ">", "lt": "<"}
NOT_COMPARABLE = {"KubeventsAbsent"}
"""Fires on *no data* (noDataState: Alerting), which a PromQL rule expresses with absent()."""


def _as_prometheus_rule(rule: dict[str, Any]) -> str:
    """The PromQL a Grafana rule evaluates: query A, then the threshold of C on its last value."""
    data = {q["refId"]: q for q in rule["data"]}
    condition = data[rule["condition"]]["model"]
    reduce = data[condition["expression"]]["model"]
    assert reduce["type"] == "reduce" and reduce["reducer"] == "last"
    query = data[reduce["expression"]]
    assert query["datasourceUid"] == "prometheus"
    evaluator = condition["conditions"][0]["evaluator"]
    return f"({query['model']['expr'].strip()}) {OPS[evaluator['type']]} {evaluator['params'][0]}"


def test_grafana_prometheus_alerts_pass_the_promtool_unit_tests(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Swap each Prometheus alert for its Grafana copy (expression, threshold and `for`) and
    run the shipped promtool unit tests: same firing, same silence, same labels."""
    document = load_yaml(ALERT_RULES)
    by_title = {
        r["title"]: r
        for _, _, r in grafana_rules()
        if r["data"][0]["datasourceUid"] == "prometheus"
    }
    swapped = set()
    for group in document["groups"]:
        for rule in group["rules"]:
            copy = by_title.get(rule.get("alert", ""))
            if copy is None or rule["alert"] in NOT_COMPARABLE:
                continue
            rule["expr"] = _as_prometheus_rule(copy)
            rule["for"] = copy["for"]
            rule.pop("keep_firing_for", None)
            swapped.add(rule["alert"])
    assert swapped == set(by_title) - NOT_COMPARABLE
    assert len(swapped) >= 5
    (tmp_path / "kubevents.rules.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    tests = tmp_path / "tests"
    tests.mkdir()
    for path in ALERT_TESTS:
        (tests / path.name).write_text(path.read_text())
    check = run_promtool("check", "rules", tmp_path / "kubevents.rules.yaml")
    assert check.returncode == 0, check.stdout + check.stderr
    proc = run_promtool("test", "rules", *(tests / p.name for p in ALERT_TESTS), cwd=tests)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _squeeze(expr: str) -> str:
    """Whitespace-insensitive form of a query (layout differs between the files)."""
    return re.sub(r"\s*([()])\s*", r"\1", " ".join(expr.split()))


def test_grafana_loki_queries_are_the_loki_rules() -> None:
    """The Grafana copies of Loki alerts run the Loki rule's expression with its threshold."""
    loki = {r["alert"]: r for _, _, r in loki_rules() if "alert" in r}
    compared = 0
    for _, _, rule in grafana_rules():
        if rule["data"][0]["datasourceUid"] != "loki":
            continue
        data = {q["refId"]: q for q in rule["data"]}
        condition = data[rule["condition"]]["model"]
        evaluator = condition["conditions"][0]["evaluator"]
        expr = _squeeze(data["A"]["model"]["expr"])
        shipped = _squeeze(loki[rule["title"]]["expr"])
        m = re.fullmatch(r"(.*?)\s*>\s*(\d+(?:\.\d+)?)", shipped)
        if m:
            assert expr == m.group(1), rule["title"]
            assert evaluator == {
                "type": "gt",
                "params": [float(m.group(2)) if "." in m.group(2) else int(m.group(2))],
            }
        else:
            assert expr == shipped, rule["title"]
            assert evaluator == {"type": "gt", "params": [0]}
        assert rule["for"] == loki[rule["title"]].get("for", "0s")
        compared += 1
    assert compared >= 2
