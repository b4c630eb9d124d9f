"""Application events against the real kube-apiserver: `kubevents emit` records a change,
`kubevents run` exports it classified, and a later failure of that workload joins an
incident whose root cause is the change. RBAC errors and idempotency on the real server.

The workload is real objects (a Deployment, its ReplicaSet and Pod with their
ownerReferences), so `kubevents run`'s object cache, not a name, says the Pod is the
Deployment's. No kubelet runs here: the Pod's BackOff Event is posted the way the kubelet's
recorder writes it (core/v1, source kubelet on the node), with the kubelet's message,
``Back-off restarting failed container %s in pod %s`` and the pod as format.Pod prints it,
``name_namespace(uid)`` (kubernetes/kubernetes @ 83f7b41cf66
pkg/kubelet/kuberuntime/kuberuntime_manager.go, pkg/kubelet/util/format/pod.go).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client as k8s

from tests.integration.kube import api_client, create_namespace, now, records, start_kubevents
from tests.integration.servers import (
    ADMIN_TOKEN,
    KUBEVENTS_TOKEN,
    ROOT,
    WEAK_TOKEN,
    WEAK_USER,
    KubeApiServer,
    wait_for,
)

pytestmark = pytest.mark.servers
NS = "appevents"
OTHER_NS = "appevents-cluster-role"
EMITTERS = ROOT / "deploy" / "kubernetes" / "emitters"


@pytest.fixture(scope="module", autouse=True)
def namespaces(apiserver: KubeApiServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    workdir = tmp_path_factory.mktemp("appevents")
    create_namespace(apiserver, workdir, NS)
    create_namespace(apiserver, workdir, OTHER_NS)


def emit(api: KubeApiServer, workdir: Path, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubevents emit` as a CI step runs it: a process, a kubeconfig, an exit code."""
    kubeconfig = api.write_kubeconfig(workdir / f"{token}.kubeconfig", token=token)
    return subprocess.run(
        [sys.executable, "-m", "kubevents.cli", "emit", "--kubeconfig", str(kubeconfig), *args],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def shipped(name: str) -> dict[str, Any]:
    return yaml.safe_load((EMITTERS / name).read_text())


def bind(rbac: k8s.RbacAuthorizationV1Api, namespace: str, role_kind: str) -> None:
    """Bind the shipped emitter role (Role or ClusterRole) to the weak test identity."""
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": f"emitter-{role_kind.lower()}", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                    "name": "kubevents-event-emitter"},
        "subjects": [{"kind": "User", "name": WEAK_USER, "apiGroup": "rbac.authorization.k8s.io"}],
    })  # fmt: skip


def test_rbac_a_403_names_the_rule_and_the_shipped_roles_grant_exactly_it(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    args = ("--regarding", "deployment/api", "--reason", "ConfigChanged", "--note", "LOG_LEVEL=debug")
    # kubevents' own identity reads Events; it may not write them.
    refused = emit(apiserver, tmp_path, KUBEVENTS_TOKEN, *args, "-n", NS)
    assert refused.returncode == 1 and refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    assert line.startswith("kubevents: error: forbidden: ")
    assert 'cannot create resource "events" in API group "events.k8s.io"' in line
    assert line.endswith(
        "the missing RBAC rule is create on events in API group events.k8s.io in namespace "
        f"{NS} (a Role like deploy/kubernetes/emitters, bound to this identity)"
    )
    assert emit(apiserver, tmp_path, WEAK_TOKEN, *args, "-n", NS).returncode == 1

    admin = api_client(apiserver, tmp_path)
    rbac = k8s.RbacAuthorizationV1Api(admin)
    role = shipped("role.yaml")
    role["metadata"]["namespace"] = NS
    rbac.create_namespaced_role(NS, role)
    rbac.create_cluster_role(shipped("clusterrole.yaml"))
    bind(rbac, NS, "Role")
    bind(rbac, OTHER_NS, "ClusterRole")

    def allowed(namespace: str) -> bool:
        return emit(apiserver, tmp_path, WEAK_TOKEN, *args, "-n", namespace).returncode == 0

    wait_for(lambda: allowed(NS), 20, "the Role binding to take effect")
    wait_for(lambda: allowed(OTHER_NS), 20, "the ClusterRole binding to take effect")
    # create only: the emitter cannot read what it wrote, nor write anywhere else
    http = apiserver.session(WEAK_TOKEN)
    assert http.get(f"{apiserver.url}/apis/events.k8s.io/v1/namespaces/{NS}/events", timeout=10).status_code == 403
    assert emit(apiserver, tmp_path, WEAK_TOKEN, *args, "-n", "default").returncode == 1


def workload_objects(apps: k8s.AppsV1Api, core: k8s.CoreV1Api) -> dict[str, Any]:
    """Deployment web -> ReplicaSet web-7d9f8c6b5d -> Pod web-7d9f8c6b5d-x2k4p, as the
    deployment and replica set controllers would have made them."""
    labels = {"app": "web", "pod-template-hash": "7d9f8c6b5d"}
    template = {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.example.com/shop/web:v2.3"}]}}
    deployment = apps.create_namespaced_deployment(NS, {
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    })  # fmt: skip

    def owner(obj: Any, kind: str, api_version: str) -> dict[str, Any]:
        return {"apiVersion": api_version, "kind": kind, "name": obj.metadata.name,
                "uid": obj.metadata.uid, "controller": True, "blockOwnerDeletion": True}  # fmt: skip

    rs = apps.create_namespaced_replica_set(NS, {
        "metadata": {"name": "web-7d9f8c6b5d", "labels": labels,
                     "ownerReferences": [owner(deployment, "Deployment", "apps/v1")]},
        "spec": {"selector": {"matchLabels": labels}, "template": template},
    })  # fmt: skip
    pod = core.create_namespaced_pod(NS, {
        "metadata": {"name": "web-7d9f8c6b5d-x2k4p", "labels": labels,
                     "ownerReferences": [owner(rs, "ReplicaSet", "apps/v1")]},
        "spec": {**template["spec"], "nodeName": "node-1"},
    })  # fmt: skip
    return {"deployment": deployment, "pod": pod}


def kubelet_backoff(pod: Any, count: int) -> dict[str, Any]:
    """A core/v1 Event as the kubelet's recorder writes a crash-loop back-off."""
    stamp = now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": f"{pod.metadata.name}.{time.time_ns():x}", "namespace": NS},
        "involvedObject": {"kind": "Pod", "namespace": NS, "name": pod.metadata.name,
                           "uid": pod.metadata.uid, "apiVersion": "v1",
                           "fieldPath": "spec.containers{app}"},
        "reason": "BackOff",
        "message": f"Back-off restarting failed container app in pod "
                   f"{pod.metadata.name}_{NS}({pod.metadata.uid})",
        "type": "Warning",
        "count": count,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "source": {"component": "kubelet", "host": "node-1"},
        "reportingComponent": "kubelet",
        "reportingInstance": "node-1",
    }  # fmt: skip


def jsonl(path: Path, event_name: str) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    found = []
    for line in path.read_bytes().splitlines():
        if line.endswith(b"}"):
            record = orjson.loads(line)
            if record["event_name"] == event_name:
                found.append(record)
    return found


def test_an_emitted_deploy_is_exported_and_becomes_the_root_cause_of_the_crash_loop(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    admin = api_client(apiserver, tmp_path)
    core, apps, events_v1 = k8s.CoreV1Api(admin), k8s.AppsV1Api(admin), k8s.EventsV1Api(admin)
    objects = workload_objects(apps, core)
    out = tmp_path / "out.jsonl"
    run = start_kubevents(apiserver, tmp_path, KUBEVENTS_TOKEN, "--namespace", NS, checkpoint=False)
    try:
        deploy = ("--regarding", "deployment/web", "-n", NS, "--reason", "DeployStarted",
                  "--note", "v2.3 (pipeline 1234)", "--id", "pipeline-1234",
                  "--reporting-controller", "ci.example.com/deployer")  # fmt: skip
        first = emit(apiserver, tmp_path, ADMIN_TOKEN, *deploy)
        assert first.returncode == 0, first.stderr
        name = first.stdout.split()[2].split("/")[1]
        assert first.stdout == f"recorded Event {NS}/{name} (DeployStarted on Deployment/web)\n"

        # The CI step is retried: the same Event, nothing new.
        again = emit(apiserver, tmp_path, ADMIN_TOKEN, *deploy)
        assert again.returncode == 0, again.stderr
        assert again.stdout.startswith(f"already recorded: Event {NS}/{name} exists")
        stored = events_v1.read_namespaced_event(name, NS)
        assert [e.metadata.name for e in events_v1.list_namespaced_event(NS).items
                if e.reason == "DeployStarted"] == [name]  # fmt: skip

        def exported() -> list[dict[str, Any]]:
            return [r for r in records([out], NS) if r["attributes"]["k8s.event.uid"] == stored.metadata.uid]

        wait_for(lambda: bool(exported()), 30, "the application event to be exported")
        (record,) = exported()
        a = record["attributes"]
        assert a["k8s.event.reason"] == "DeployStarted"
        assert a["k8s.event.reporting_controller"] == "ci.example.com/deployer"
        assert (a["kubevents.category"], a["kubevents.severity"]) == ("Workload", "info")
        assert a["kubevents.rule"] == "app-events.change"
        assert a["kubevents.workload"] == f"{NS}/Deployment/web"
        assert record["body"] == "v2.3 (pipeline 1234)"

        # A minute later in a real cluster; here the next second (the kubelet's times have
        # second precision: the failure must not seem to come before the change).
        time.sleep(1.1)
        pod = objects["pod"]
        backoff = core.create_namespaced_event(NS, kubelet_backoff(pod, count=1))

        def incident() -> list[dict[str, Any]]:
            return [r for r in jsonl(out, "kubevents.incident")
                    if r["attributes"].get("kubevents.incident.root_cause.uid") == stored.metadata.uid]  # fmt: skip

        wait_for(lambda: bool(incident()), 30, "an incident rooted at the deploy")
        started = incident()[0]["attributes"]
        assert started["kubevents.incident.state"] == "started"
        assert started["kubevents.incident.root_cause.reason"] == "DeployStarted"
        assert started["kubevents.incident.root_cause.object"] == f"{NS}/Deployment/web"
        assert f"DeployStarted ({NS}/Deployment/web)" in incident()[0]["body"]
        (failure,) = [r for r in records([out], NS) if r["attributes"]["k8s.event.uid"] == backoff.metadata.uid]
        assert failure["attributes"]["kubevents.incident.id"] == started["kubevents.incident.id"]
        assert failure["attributes"]["kubevents.workload"] == f"{NS}/Deployment/web"
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
