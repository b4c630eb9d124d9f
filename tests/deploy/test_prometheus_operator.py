"""The prometheus-operator component: ServiceMonitor with a cluster label, PrometheusRule = rules/alerts/."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# the first test may build kustomize/composecheck (tests/deploy/build.sh): minutes on a fresh machine
pytestmark = pytest.mark.timeout(1800)
Render = Callable[[Path], list[dict[str, Any]]]  # the `render` fixture (conftest.py)

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
COMPONENT = KUSTOMIZE / "components" / "prometheus-operator"
ALERTS = ROOT / "rules" / "alerts"

spec = importlib.util.spec_from_file_location("generate_prometheusrule", COMPONENT / "generate.py")
assert spec and spec.loader
generate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(generate)


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def alert_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in sorted(ALERTS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if isinstance(doc, dict) and "groups" in doc:
            groups += doc["groups"]
    return groups


def alert_jobs() -> set[str]:
    text = "".join(p.read_text() for p in sorted(ALERTS.glob("*.yaml")))
    return set(re.findall(r'job\s*=~?\s*"([^"]+)"', text))


def test_rules_alerts_has_rule_files() -> None:
    assert alert_groups(), f"no Prometheus rule file in {ALERTS.relative_to(ROOT)}"


def test_committed_prometheusrule_equals_a_fresh_generation() -> None:
    committed = (COMPONENT / "prometheusrule.yaml").read_text()
    assert committed == generate.render(), "stale: run deploy/kubernetes/components/prometheus-operator/generate.py"


def test_rendered_prometheusrule_groups_equal_the_rule_files(render: Render) -> None:
    objs = render(KUSTOMIZE / "overlays/prometheus-operator")
    (rule,) = of_kind(objs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "kubevents"
    assert rule["spec"]["groups"] == alert_groups()


def test_operator_objects_decode_strictly_into_the_operator_types(
    render: Render, kustomize_command: list[str], crdcheck: Path
) -> None:
    """ServiceMonitor and PrometheusRule against prometheus-operator's own Go types (crdcheck)."""
    rendered = subprocess.run([*kustomize_command, str(KUSTOMIZE / "overlays/prometheus-operator")],
                              capture_output=True, text=True, check=True).stdout
    out = subprocess.run([str(crdcheck)], input=rendered, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split("\n")[:-1]) == ["ok PrometheusRule", "ok ServiceMonitor"]
    broken = rendered.replace("relabelings:", "relabelConfigs:", 1)  # the name Prometheus itself uses, not the CRD's
    out = subprocess.run([str(crdcheck)], input=broken, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and 'unknown field "relabelConfigs"' in out.stderr


def test_prometheusrule_passes_promtool(render: Render, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (make test installs Debian's prometheus package)"
    (rule,) = of_kind(render(KUSTOMIZE / "overlays/prometheus-operator"), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    out = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_servicemonitor_scrapes_the_metrics_service_and_adds_the_cluster_label(render: Render) -> None:
    objs = render(KUSTOMIZE / "overlays/prometheus-operator")
    (monitor,) = of_kind(objs, "ServiceMonitor")
    (service,) = of_kind(objs, "Service")
    (env,) = [o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("kubevents-env")]
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # the Operator names the job after the Service (no jobLabel): the job the alert rules select
    assert "jobLabel" not in monitor["spec"]
    assert alert_jobs() == {service["metadata"]["name"]}
    (relabel,) = endpoint["relabelings"]
    assert relabel == {"action": "replace", "targetLabel": "cluster", "replacement": env["data"]["CLUSTER_NAME"]}


def test_the_component_combines_with_the_ha_overlay(render: Render, tmp_path: Path) -> None:
    overlay = tmp_path / "deploy" / "kubernetes" / "overlays" / "ha-prometheus-operator"
    shutil.copytree(KUSTOMIZE, tmp_path / "deploy" / "kubernetes")
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["../ha"],
        "components": ["../../components/prometheus-operator"],
    }))
    objs = render(overlay)
    (deployment,) = of_kind(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert of_kind(objs, "ServiceMonitor") and of_kind(objs, "PrometheusRule") and of_kind(objs, "PodDisruptionBudget")


def write(path: Path, doc: Any) -> None:
    path.write_text(yaml.safe_dump(doc))


def test_generator_concatenates_groups_in_file_order_and_skips_unit_tests(tmp_path: Path) -> None:
    write(tmp_path / "b.yaml", {"groups": [{"name": "b", "rules": [{"record": "x:y:sum", "expr": "sum(up)"}]}]})
    write(tmp_path / "a.yaml", {"groups": [{"name": "a", "rules": [{"alert": "A", "expr": "up == 0"}]}]})
    write(tmp_path / "a_test.yaml", {"rule_files": ["a.yaml"], "tests": []})
    doc = yaml.safe_load(generate.render(tmp_path))
    assert [g["name"] for g in doc["spec"]["groups"]] == ["a", "b"]
    assert doc["kind"] == "PrometheusRule" and doc["metadata"]["name"] == "kubevents"


def test_generator_refuses_duplicate_group_names_and_empty_input(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="no Prometheus rule file"):
        generate.render(tmp_path)
    write(tmp_path / "a.yaml", {"groups": [{"name": "same", "rules": []}]})
    write(tmp_path / "b.yaml", {"groups": [{"name": "same", "rules": []}]})
    with pytest.raises(SystemExit, match="used twice: same"):
        generate.render(tmp_path)
