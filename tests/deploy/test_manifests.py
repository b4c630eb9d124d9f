"""deploy/kubernetes: every overlay renders, validates against the Kubernetes schemas and our policy."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubevents.settings import load_settings
from kubevents.source.kubeapi import RESOURCES

ROOT = Path(__file__).resolve().parents[2]
# the first test may build kustomize/composecheck (tests/deploy/build.sh): minutes on a fresh machine
pytestmark = pytest.mark.timeout(1800)
Render = Callable[[Path], list[dict[str, Any]]]  # the `render` fixture (conftest.py)

KUSTOMIZE = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["base", "overlays/ha", "overlays/namespaced", "overlays/prometheus-operator"]
K8S_VERSION = "1.33.0"
READ_VERBS = {"list", "watch"}
LEASE_VERBS = {"get", "create", "update"}  # leader.py: read, create, replace
CRD_GROUPS = ("monitoring.coreos.com/",)  # not in the Kubernetes schemas: test_prometheus_operator.py
EGRESS_PORTS = {(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (4317, "TCP"), (4318, "TCP"),
                (3100, "TCP")}

Objs = list[dict[str, Any]]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, render: Render) -> tuple[str, Objs]:
    return request.param, render(KUSTOMIZE / request.param)


def of_kind(objs: Objs, kind: str) -> Objs:
    return [o for o in objs if o["kind"] == kind]


def named(objs: Objs, kind: str, prefix: str) -> dict[str, Any]:
    (obj,) = [o for o in of_kind(objs, kind) if o["metadata"]["name"].startswith(prefix)]
    return obj


def test_every_object_validates_against_the_kubernetes_schema(rendered: tuple[str, Objs]) -> None:
    _, objs = rendered
    for obj in objs:
        if obj["apiVersion"].startswith(CRD_GROUPS):
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def test_the_schema_validation_rejects_a_wrong_field(render: Render) -> None:
    (deployment,) = of_kind(render(KUSTOMIZE / "base"), "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFileSystem"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_rbac_is_least_privilege(rendered: tuple[str, Objs]) -> None:
    _, objs = rendered
    for role in of_kind(objs, "ClusterRole") + of_kind(objs, "Role"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"]
            assert not rule.get("nonResourceURLs")
            if rule["resources"] == ["leases"]:
                assert set(rule["verbs"]) <= LEASE_VERBS
                assert role["kind"] == "Role" and role["metadata"]["namespace"] == "kubevents"
                if set(rule["verbs"]) & {"get", "update"}:
                    assert rule["resourceNames"] == ["kubevents"]
            else:
                assert set(rule["verbs"]) <= READ_VERBS, f"{role['metadata']['name']}: {rule}"


def test_rbac_grants_exactly_what_the_code_lists_and_watches(rendered: tuple[str, Objs]) -> None:
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


def test_every_binding_names_a_role_and_the_kubevents_service_account(rendered: tuple[str, Objs]) -> None:
    _, objs = rendered
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
             for o in of_kind(objs, "Role") + of_kind(objs, "ClusterRole")}
    bindings = of_kind(objs, "RoleBinding") + of_kind(objs, "ClusterRoleBinding")
    assert bindings
    for binding in bindings:
        ref = binding["roleRef"]
        namespace = binding["metadata"].get("namespace") if ref["kind"] == "Role" else None
        assert (ref["kind"], namespace, ref["name"]) in roles
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kubevents", "namespace": "kubevents"}]


def test_namespaced_overlay_has_no_cluster_scope(render: Render) -> None:
    objs = render(KUSTOMIZE / "overlays/namespaced")
    assert not of_kind(objs, "ClusterRole") and not of_kind(objs, "ClusterRoleBinding")
    config = named(objs, "ConfigMap", "kubevents-config")
    namespaces = yaml.safe_load(config["data"]["kubevents.yaml"])["watch"]["namespaces"]
    role_namespaces = {r["metadata"]["namespace"] for r in of_kind(objs, "Role") if r["metadata"]["name"] == "kubevents-reader"}
    assert role_namespaces == set(namespaces)


def test_pod_meets_the_restricted_pod_security_standard(rendered: tuple[str, Objs]) -> None:
    _, objs = rendered
    (deployment,) = of_kind(objs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["securityContext"]["runAsUser"] != 0
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for volume in pod["volumes"]:  # restricted: only these volume types
        assert set(volume) - {"name"} <= {"configMap", "emptyDir", "projected", "secret", "downwardAPI",
                                          "persistentVolumeClaim", "ephemeral", "csi"}, volume
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert not sc.get("privileged")
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
        assert container["resources"]["requests"]["memory"]
    (namespace,) = of_kind(objs, "Namespace")
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    (sa,) = of_kind(objs, "ServiceAccount")
    assert sa["automountServiceAccountToken"] is False  # mounted only where needed: the pod says so
    assert pod["automountServiceAccountToken"] is True


def test_probes_and_service_use_the_port_kubevents_listens_on(rendered: tuple[str, Objs], tmp_path: Path) -> None:
    _, objs = rendered
    (deployment,) = of_kind(objs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    (port,) = container["ports"]
    config = named(objs, "ConfigMap", "kubevents-config")
    path = tmp_path / "kubevents.yaml"
    path.write_text(config["data"]["kubevents.yaml"])
    assert port["containerPort"] == load_settings(str(path), env={}).metrics.port
    assert container["livenessProbe"]["httpGet"]["port"] == port["name"]
    assert container["readinessProbe"]["httpGet"]["port"] == port["name"]
    (service,) = of_kind(objs, "Service")
    assert [p["targetPort"] for p in service["spec"]["ports"]] == [port["name"]]
    assert service["spec"]["selector"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_ha_runs_two_replicas_with_a_pdb_and_spread(render: Render) -> None:
    objs = render(KUSTOMIZE / "overlays/ha")
    (deployment,) = of_kind(objs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    (pdb,) = of_kind(objs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= deployment["spec"]["template"]["metadata"]["labels"].items()


def test_shipped_config_loads_and_uses_leader_election_and_custom_rules(
    rendered: tuple[str, Objs], tmp_path: Path
) -> None:
    _, objs = rendered
    config = named(objs, "ConfigMap", "kubevents-config")
    path = tmp_path / "kubevents.yaml"
    path.write_text(config["data"]["kubevents.yaml"])
    env = named(objs, "ConfigMap", "kubevents-env")["data"]
    settings = load_settings(str(path), env=env)
    assert settings.cluster_name == env["CLUSTER_NAME"]
    assert settings.leader.enabled  # the Lease also carries the checkpoint
    (deployment,) = of_kind(objs, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    cluster = next(e for e in container["env"] if e["name"] == "CLUSTER_NAME")
    assert cluster["valueFrom"]["configMapKeyRef"]["name"] == named(objs, "ConfigMap", "kubevents-env")["metadata"]["name"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert set(settings.rules.dirs) <= mounts
    assert container["args"][container["args"].index("--config") + 1].startswith(
        next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "config"))
    rules = named(objs, "ConfigMap", "kubevents-rules")
    for name, text in rules["data"].items():
        assert yaml.safe_load(text)["kind"] in ("classification", "correlation", "patterns"), name


def test_a_config_change_renames_the_configmap_and_rolls_the_deployment(render: Render, tmp_path: Path) -> None:
    """kubevents reads its config at start: the hash suffix in the ConfigMap's name, referenced
    by the pod template, makes `kubectl apply -k` roll the pods when the config changes."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(KUSTOMIZE, copy)

    def references() -> tuple[set[str], set[str]]:
        objs = render(copy / "base")
        (deployment,) = of_kind(objs, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        volumes = {v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v}
        env = {e["valueFrom"]["configMapKeyRef"]["name"] for c in pod["containers"] for e in c.get("env", [])
               if "configMapKeyRef" in e.get("valueFrom", {})}
        names = {o["metadata"]["name"] for o in of_kind(objs, "ConfigMap")}
        assert volumes | env == names  # every generated ConfigMap is used, under its hashed name
        return volumes, env

    before = references()
    copy = tmp_path / "changed"  # render() caches by path
    shutil.copytree(KUSTOMIZE, copy)
    config = copy / "base" / "kubevents.yaml"
    config.write_text(config.read_text() + "log_level: debug\n")
    after = references()
    (old,), (new,) = before[0] - after[0], after[0] - before[0]  # only the config's name changed
    assert old.startswith("kubevents-config-") and new.startswith("kubevents-config-")
    assert before[1] == after[1]


def test_network_policy_allows_only_metrics_in_and_known_ports_out(rendered: tuple[str, Objs]) -> None:
    _, objs = rendered
    (policy,) = of_kind(objs, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["metrics"]
    (deployment,) = of_kind(objs, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    for rule in policy["spec"]["egress"]:
        assert rule.get("ports"), "an egress rule without ports allows everything"
    assert {(p["port"], p["protocol"]) for rule in policy["spec"]["egress"] for p in rule["ports"]} == EGRESS_PORTS


def test_every_resource_is_labelled_and_namespaced_in_kubevents(rendered: tuple[str, Objs]) -> None:
    overlay, objs = rendered
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in objs:
        assert obj["metadata"]["labels"]["app.kubernetes.io/name"] == "kubevents", obj["metadata"]["name"]
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in obj["metadata"]
        elif overlay == "overlays/namespaced" and obj["metadata"]["name"] == "kubevents-reader":
            assert obj["metadata"]["namespace"] in ("shop", "payments")
        else:
            assert obj["metadata"]["namespace"] == "kubevents", obj["metadata"]["name"]


def test_the_grace_period_outlasts_kubevents_shutdown(rendered: tuple[str, Objs], tmp_path: Path) -> None:
    from kubevents.running import shutdown_budget_s

    _, objs = rendered
    path = tmp_path / "kubevents.yaml"
    path.write_text(named(objs, "ConfigMap", "kubevents-config")["data"]["kubevents.yaml"])
    settings = load_settings(str(path), env=named(objs, "ConfigMap", "kubevents-env")["data"])
    (deployment,) = of_kind(objs, "Deployment")
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    # The kubelet's SIGKILL must not cut the final flush and checkpoint short.
    assert grace > shutdown_budget_s(settings) + 5, (grace, shutdown_budget_s(settings))


# -- emitters: the optional RBAC of apps and pipelines that record application events ------------


def test_emitter_rbac_is_create_on_events_k8s_io_events_only(render: Render) -> None:
    from kubevents.emitting import EVENTS_GROUP

    objs = render(KUSTOMIZE / "emitters")
    roles = of_kind(objs, "ClusterRole") + of_kind(objs, "Role")
    assert {r["kind"] for r in roles} == {"ClusterRole", "Role"}
    for obj in objs:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
        assert obj["metadata"]["labels"]["app.kubernetes.io/component"] == "event-emitter"
    for role in roles:
        assert role["rules"] == [{"apiGroups": [EVENTS_GROUP], "resources": ["events"], "verbs": ["create"]}]
    (binding,) = of_kind(objs, "RoleBinding")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": "kubevents-event-emitter"}  # fmt: skip
    assert binding["subjects"][0]["kind"] == "ServiceAccount"


def test_no_kubevents_overlay_grants_the_emitter_rule(rendered: tuple[str, Objs]) -> None:
    # kubevents itself only reads: the emitter rule lives in emitters/ alone.
    _, objs = rendered
    for role in of_kind(objs, "ClusterRole") + of_kind(objs, "Role"):
        assert all("create" not in rule["verbs"] or rule["resources"] == ["leases"] for rule in role["rules"])
