"""Grafana provisioning files: data sources with fixed uids, the dashboard file provider."""

from __future__ import annotations

from typing import Any

import yaml
from dashboard_queries import ROOT, panels, variables

from grafana import common
from kubevents.conventions import Category, Severity
from tests.rules.rules_support import GRAFANA_UIDS, load_grafana

PROVISIONING = ROOT / "grafana" / "provisioning"


def _yaml(path: str) -> Any:
    return load_grafana(PROVISIONING / path)


def test_datasource_uids_are_the_environments_with_the_documented_defaults() -> None:
    raw = yaml.safe_load((PROVISIONING / "datasources" / "kubevents.yaml").read_text())
    assert {ds["uid"] for ds in raw["datasources"]} == {
        "${KUBEVENTS_PROMETHEUS_UID}",
        "${KUBEVENTS_LOKI_UID}",
    }
    compose = yaml.safe_load((ROOT / "deploy" / "compose" / "compose.yaml").read_text())
    env = compose["services"]["grafana"]["environment"]
    assert env["KUBEVENTS_PROMETHEUS_UID"] == "${KUBEVENTS_PROMETHEUS_UID:-prometheus}"
    assert env["KUBEVENTS_LOKI_UID"] == "${KUBEVENTS_LOKI_UID:-loki}"
    assert GRAFANA_UIDS == {"KUBEVENTS_PROMETHEUS_UID": "prometheus", "KUBEVENTS_LOKI_UID": "loki"}


def test_datasources_have_fixed_uids_and_compose_urls() -> None:
    data = _yaml("datasources/kubevents.yaml")
    assert data["apiVersion"] == 1
    by_uid = {ds["uid"]: ds for ds in data["datasources"]}
    assert set(by_uid) == {"prometheus", "loki"}
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["prometheus"]["url"] == "http://prometheus:9090"
    assert by_uid["prometheus"]["isDefault"] is True
    assert by_uid["loki"]["type"] == "loki"
    assert by_uid["loki"]["url"] == "http://loki:3100"
    for ds in data["datasources"]:
        assert ds["access"] == "proxy" and ds["name"]
    assert sum(1 for ds in data["datasources"] if ds.get("isDefault")) == 1


def test_dashboard_provider_reads_the_mounted_directory() -> None:
    data = _yaml("dashboards/kubevents.yaml")
    assert data["apiVersion"] == 1
    [provider] = data["providers"]
    assert provider["type"] == "file"
    assert provider["name"] == "kubevents" and provider["folder"] == "kubevents"
    path = provider["options"]["path"]
    assert path.startswith("/")
    text = (PROVISIONING / "dashboards" / "kubevents.yaml").read_text()
    assert f"./grafana/dashboards:{path}" in text, "the mount that provides the path is documented"
    readme = (ROOT / "grafana" / "README.md").read_text()
    assert path in readme


def test_dashboard_datasource_variables_match_the_provisioned_types(
    dashboards: dict[str, dict[str, Any]],
) -> None:
    types = {ds["type"] for ds in _yaml("datasources/kubevents.yaml")["datasources"]}
    for d in dashboards.values():
        vs = variables(d)
        assert {vs["datasource"]["query"], vs["loki_datasource"]["query"]} == types
        used = {p["datasource"]["type"] for p in panels(d) if p.get("type") != "row"}
        assert used <= types


def test_closed_sets_match_the_exporter() -> None:
    assert [c.value for c in Category] == common.CATEGORIES
    assert [s.value for s in Severity] == common.SEVERITIES
    assert set(common.WARNING_OR_WORSE.split("|")) == {"warning", "error", "critical"}
