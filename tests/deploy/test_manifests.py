"""deploy/: every overlay renders, validates against the Kubernetes schemas and our policy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubevents.config import load_settings
from kubevents.source.kubeapi import RESOURCES

ROOT = Path(__file__).resolve().parents[2]
KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/ha", "overlays/namespaced"]
K8S_VERSION = "1.33.0"
READ_VERBS = {"list", "watch"}
LEASE_VERBS = {"get", "create", "update"}


def render(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of one overlay, as objects."""
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the manifests (Debian/Kubernetes package 'kubectl')"
    out = subprocess.run([kubectl, "kustomize", str(KUSTOMIZE / overlay)], check=True, capture_output=True,
                         text=True).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def of_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def test_every_object_validates_against_the_kubernetes_schema(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = rendered
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_rbac_is_least_privilege(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = rendered
    for role in of_kind(objs, "ClusterRole") + of_kind(objs, "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"]
            if rule["resources"] == ["leases"]:
                assert set(rule["verbs"]) <= LEASE_VERBS
                assert role["kind"] == "Role" and role["metadata"]["namespace"] == "kubevents"
            else:
                assert set(rule["verbs"]) <= READ_VERBS, f"{role['metadata']['name']}: {rule}"


def test_rbac_grants_exactly_what_the_code_lists_and_watches(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    overlay, objs = rendered
    roles = of_kind(objs, "Role" if overlay == "overlays/namespaced" else "ClusterRole")
    granted = {
        (group, resource)
        for role in roles
        for rule in role["rules"]
        if set(rule["verbs"]) == READ_VERBS
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    needed = {(version.rpartition("/")[0], resource) for version, resource in RESOURCES}
    assert granted == needed


def test_namespaced_overlay_has_no_cluster_scope() -> None:
    objs = render("overlays/namespaced")
    assert not of_kind(objs, "ClusterRole") and not of_kind(objs, "ClusterRoleBinding")
    config = next(o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("kubevents-config"))
    namespaces = yaml.safe_load(config["data"]["kubevents.yaml"])["watch"]["namespaces"]
    role_namespaces = {r["metadata"]["namespace"] for r in of_kind(objs, "Role") if r["metadata"]["name"] == "kubevents-reader"}
    assert role_namespaces == set(namespaces)


def test_pod_meets_the_restricted_pod_security_standard(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = rendered
    (deployment,) = of_kind(objs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
    (namespace,) = of_kind(objs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (sa,) = of_kind(objs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False  # mounted only where needed: the pod says so


def test_ha_runs_two_replicas_with_a_pdb_and_spread(tmp_path: Path) -> None:
    objs = render("overlays/ha")
    (deployment,) = of_kind(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (pdb,) = of_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_shipped_config_loads_and_uses_leader_election_and_custom_rules(
    rendered: tuple[str, list[dict[str, Any]]], tmp_path: Path
) -> None:
    _, objs = rendered
    config = next(o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("kubevents-config"))
    path = tmp_path / "kubevents.yaml"
    path.write_text(config["data"]["kubevents.yaml"])
    settings = load_settings(str(path), env={"CLUSTER_NAME": "prod"})
    assert settings.cluster_name == "prod"
    assert settings.leader.enabled  # the Lease also carries the checkpoint
    (deployment,) = of_kind(objs, "Deployment")
    mounts = {m["mountPath"] for m in deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert set(settings.rules.dirs) <= mounts
    rules = next(o for o in of_kind(objs, "ConfigMap") if o["metadata"]["name"].startswith("kubevents-rules"))
    for name, text in rules["data"].items():
        assert yaml.safe_load(text)["kind"] in ("classification", "correlation", "patterns"), name


def test_network_policy_allows_only_metrics_in(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objs = rendered
    (policy,) = of_kind(objs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["metrics"]
