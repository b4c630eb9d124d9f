"""Every dashboard and panel follows the dashboard rules (dashboard-linter's, as pytest checks)."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
from dashboard_queries import (
    EXPECTED_UIDS,
    ROOT,
    Query,
    datasource_errors,
    identity_errors,
    link_errors,
    logql_interval_errors,
    panel_errors,
    panels,
    queries,
    selector_errors,
    variable_errors,
    variable_reference_errors,
)

NAMES = sorted(EXPECTED_UIDS)


@pytest.fixture(params=NAMES)
def named(
    request: pytest.FixtureRequest, dashboards: dict[str, dict[str, Any]]
) -> tuple[str, dict[str, Any]]:
    assert request.param in dashboards, f"grafana/dashboards/{request.param} is missing"
    return request.param, dashboards[request.param]


def _panel(d: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in panels(d) if p.get("title") == title)


def test_the_four_dashboards_exist_with_distinct_uids(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    assert sorted(dashboards) == NAMES
    uids = [d["uid"] for d in dashboards.values()]
    assert len(set(uids)) == len(uids)


def test_fixed_uid_null_id_title_description_tag(named: tuple[str, dict[str, Any]]) -> None:
    name, d = named
    assert identity_errors(name, d) == []


def test_datasource_cluster_and_namespace_variables(named: tuple[str, dict[str, Any]]) -> None:
    assert variable_errors(named[1]) == []


def test_every_panel_has_title_description_unit_targets_and_place(
    named: tuple[str, dict[str, Any]],
) -> None:
    assert panel_errors(named[1]) == []


def test_no_hard_coded_datasource(named: tuple[str, dict[str, Any]]) -> None:
    assert datasource_errors(named[1]) == []


def test_rate_interval_in_every_promql_rate(named: tuple[str, dict[str, Any]]) -> None:
    from dashboard_queries import promql_interval_errors

    qs = queries(named[1])
    assert any(q.kind == "prometheus" for q in qs)
    assert promql_interval_errors(qs) == []


def test_auto_in_every_logql_range(named: tuple[str, dict[str, Any]]) -> None:
    assert logql_interval_errors(queries(named[1])) == []


def test_every_query_selects_the_cluster(named: tuple[str, dict[str, Any]]) -> None:
    assert selector_errors(queries(named[1])) == []


def test_links_to_the_other_dashboards(
    named: tuple[str, dict[str, Any]], dashboards: dict[str, dict[str, Any]]
) -> None:
    assert link_errors(named[1], {d["uid"] for d in dashboards.values()}) == []


def test_every_variable_used_is_defined(named: tuple[str, dict[str, Any]]) -> None:
    assert variable_reference_errors(named[1]) == []


def test_loki_panels_exist_where_required(dashboards: dict[str, dict[str, Any]]) -> None:
    overview = dashboards["kubevents-overview.json"]
    logs = [p for p in panels(overview) if p["type"] == "logs"]
    assert logs and 'kubevents_severity=~"warning|error|critical"' in logs[0]["targets"][0]["expr"]
    incidents = dashboards["kubevents-incidents.json"]
    drill = _panel(incidents, "Events of incident $incident")
    assert 'kubevents_incident_id="$incident"' in drill["targets"][0]["expr"]
    open_table = _panel(incidents, "Open incidents: root cause")
    expr = open_table["targets"][0]["expr"]
    assert "kubevents_incident_state" in expr and "kubevents_incident_root_cause_reason" in expr
    links = open_table["fieldConfig"]["overrides"][0]["properties"][0]["value"]
    assert any("var-incident=${__value.raw}" in link["url"] for link in links)
    explorer = dashboards["kubevents-explorer.json"]
    search = _panel(explorer, "Matching Events")["targets"][0]["expr"]
    for var in (
        "namespace",
        "workload",
        "node",
        "reason",
        "category",
        "severity",
        "incident",
        "pattern",
    ):
        assert f"${var}" in search, var


def test_every_kind_of_metric_is_shown_somewhere(all_queries: list[Query]) -> None:
    text = " ".join(q.expr for q in all_queries)
    for metric in (
        "kubevents_events_total",
        "kubevents_incidents_open",
        "kubevents_patterns_active",
        "kubevents_anomalies_active",
        "kubevents_watch_streams",
        "kubevents_watch_lag_seconds",
        "kubevents_watch_relists_total",
        "kubevents_watch_api_errors_total",
        "kubevents_leader",
        "kubevents_pipeline_queue_size",
        "kubevents_sink_queue_size",
        "kubevents_sink_failed_total",
        "kubevents_sink_retried_total",
        "kubevents_sink_dropped_total",
        "kubevents_sink_export_duration_seconds_bucket",
        "kubevents_checkpoint_last_success_timestamp_seconds",
    ):
        assert metric in text, metric


# --- the checks catch what they are meant to catch -------------------------------------------


def _broken(d: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(d)


def test_checks_catch_identity_and_variable_mistakes(dashboards: dict[str, dict[str, Any]]) -> None:
    d = _broken(dashboards["kubevents-health.json"])
    d["id"] = 7
    d["uid"] = "x"
    errors = identity_errors("kubevents-health.json", d)
    assert any("id must be null" in e for e in errors) and any("uid" in e for e in errors)
    d["templating"]["list"] = [v for v in d["templating"]["list"] if v["name"] != "loki_datasource"]
    ns = next(v for v in d["templating"]["list"] if v["name"] == "namespace")
    ns["refresh"] = 1
    errors = variable_errors(d)
    assert any("no loki_datasource variable" in e for e in errors)
    assert any("namespace must refresh" in e for e in errors)


def test_checks_catch_panel_and_datasource_mistakes(dashboards: dict[str, dict[str, Any]]) -> None:
    d = _broken(dashboards["kubevents-overview.json"])
    p = _panel(d, "Occurrences/s by category")
    del p["description"]
    del p["fieldConfig"]["defaults"]["unit"]
    p["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    p["targets"][0]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    errors = panel_errors(d)
    assert any("'Occurrences/s by category': no description" in e for e in errors)
    assert any("'Occurrences/s by category': no unit" in e for e in errors)
    errors = datasource_errors(d)
    assert any("hard-coded datasource uid 'P1809F7CD0C75ACF3'" in e for e in errors)
    p["gridPos"] = dict(_panel(d, "Occurrences/s by severity")["gridPos"])
    assert any("overlap" in e for e in panel_errors(d))


def test_checks_catch_fixed_ranges_and_missing_selectors() -> None:
    bad = [
        Query("t", "p", "prometheus", 'sum(rate(kubevents_events_total{cluster=~"$cluster"}[5m]))'),
        Query(
            "t", "p", "prometheus", "sum(increase(kubevents_sink_dropped_total[$__rate_interval]))"
        ),
        Query(
            "t",
            "p",
            "loki",
            'sum(count_over_time({$stream, k8s_cluster_name=~"$cluster"} [1h]))',
        ),
        Query("t", "p", "loki", 'sum(count_over_time({service_name="kubevents"} [$__auto]))'),
    ]
    from dashboard_queries import promql_interval_errors

    assert len(promql_interval_errors(bad)) == 2  # rate()[5m]: no macro, and a fixed range
    assert len(logql_interval_errors(bad)) == 2
    errors = selector_errors(bad)
    assert any("kubevents_sink_dropped_total without cluster" in e for e in errors)
    assert any("is not kubevents' in $cluster" in e for e in errors)
    good = [
        Query(
            "t",
            "p",
            "prometheus",
            'sum(rate(kubevents_events_total{cluster=~"$cluster"}[$__rate_interval]))',
        ),
        Query(
            "t",
            "p",
            "loki",
            'sum(count_over_time({$stream, k8s_cluster_name=~"$cluster"} [$__auto]))',
        ),
    ]
    assert (
        promql_interval_errors(good) == []
        and logql_interval_errors(good) == []
        and selector_errors(good) == []
    )


def test_checks_catch_broken_links_and_undefined_variables(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    d = _broken(dashboards["kubevents-incidents.json"])
    d["links"] = []
    d["panels"][0]["targets"][0]["expr"] += " * $nowhere"
    d["panels"][0]["links"] = [{"title": "x", "url": "/d/not-a-dashboard?x=1"}]
    errors = link_errors(d, {x["uid"] for x in dashboards.values()})
    assert any("no dashboards link" in e for e in errors)
    assert any("unknown dashboard uid 'not-a-dashboard'" in e for e in errors)
    assert variable_reference_errors(d) == ["kubevents-incidents: $nowhere is used but not defined"]


def runbook_panel_errors(
    text: str, titles: dict[str, set[str]], name: str = "runbook"
) -> list[str]:
    """Panels a runbook names after a dashboard (`(uid `x`): *Panel*, *Other*`) exist there."""
    errors = []
    for m in re.finditer(r"\(uid `([\w-]+)`\)(.*?)(?=\*\*|\n\n|$)", text, re.S):
        uid = m.group(1)
        if uid not in titles:
            errors.append(f"{name}: unknown dashboard uid {uid}")
            continue
        for ref in re.findall(r"(?<!\*)\*([^*\n]+)\*(?!\*)", m.group(2)):
            if not any(ref in title for title in titles[uid]):
                errors.append(f"{name}: no panel {ref!r} on {uid}")
    return errors


def test_runbooks_name_existing_panels(dashboards: dict[str, dict[str, Any]]) -> None:
    titles = {d["uid"]: {p["title"] for p in panels(d)} for d in dashboards.values()}
    runbooks = sorted((ROOT / "docs" / "runbooks").glob("*.md"))
    errors = [
        e for path in runbooks for e in runbook_panel_errors(path.read_text(), titles, path.name)
    ]
    assert errors == []
    broken = (
        "The **kubevents / Health** dashboard (uid `kubevents-health`): *Watch lag*, *Queue depth*."
    )
    assert runbook_panel_errors(broken, titles) == [
        "runbook: no panel 'Queue depth' on kubevents-health"
    ]
    assert runbook_panel_errors("(uid `nope`): *Watch lag*", titles) == [
        "runbook: unknown dashboard uid nope"
    ]


def test_application_events_are_annotations_and_the_incident_view_names_the_change(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    from kubevents.emitting import VOCABULARY

    for name in ("kubevents-overview.json", "kubevents-incidents.json"):
        (annotation,) = [a for a in dashboards[name]["annotations"]["list"] if a["name"] == "Application events"]
        assert annotation["datasource"] == {"type": "loki", "uid": "${loki_datasource}"}
        assert annotation["enable"] and '| kubevents_rule=~"app-events[.].+"' in annotation["expr"]
        assert annotation["titleFormat"] == "{{k8s_event_reason}} {{kubevents_workload}}"
    titles = {p.get("title"): p for p in panels(dashboards["kubevents-incidents.json"])}
    rooted = titles["Incidents rooted at an application change"]["targets"][0]["expr"]
    changes = {r for r, entry in VOCABULARY.items() if entry.change}
    listed = set(rooted.split('kubevents_incident_root_cause_reason=~"')[1].split('"')[0].split("|"))
    assert listed == changes
    assert "Application events" in titles
