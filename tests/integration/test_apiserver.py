"""`kubevents run` against a real kube-apiserver (and etcd), with the RBAC that deploy/ grants.

The fake apiserver (tests/fakes) stays for faults on demand; this suite checks that what
the fake taught us holds for the real thing: both Events APIs over one store, series
updates, a kill -9 and a resume, a resume after etcd compaction, the object cache on
real ownerReferences, the least-privilege ClusterRole of deploy/kubernetes/base, and the
one-line error for a token RBAC knows nothing of. Restarts in the middle of a burst are in
test_comparison.py, leader failover on a real Lease in test_lease_failover.py.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from kubernetes import client as k8s

from tests.integration.kube import (
    api_client,
    core_event,
    coverage,
    create_namespace,
    events_v1_event,
    expected,
    records,
    start_kubevents,
)
from tests.integration.servers import (
    KUBEVENTS_TOKEN,
    WEAK_TOKEN,
    KubeApiServer,
    free_port,
    wait_for,
)

pytestmark = pytest.mark.servers
NS = "shop"


@pytest.fixture(scope="module", autouse=True)
def shop(apiserver: KubeApiServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    create_namespace(apiserver, tmp_path_factory.mktemp("shop"), NS)


def start_run(
    api: KubeApiServer, workdir: Path, token: str, *extra: str
) -> subprocess.Popen[bytes]:
    return start_kubevents(api, workdir, token, *extra)


def test_every_occurrence_once_across_both_apis_series_and_a_kill_9(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    admin = api_client(apiserver, tmp_path)
    core, events_v1 = k8s.CoreV1Api(admin), k8s.EventsV1Api(admin)
    for i in range(5):
        core.create_namespaced_event(NS, core_event(NS, f"core-{i}", count=i + 1))
        events_v1.create_namespaced_event(
            NS, events_v1_event(NS, f"new-{i}", series_count=i + 2 if i else None)
        )
    run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN)
    out = tmp_path / "out.jsonl"

    def complete() -> bool:
        covered = coverage(out, ns=NS)
        return all(
            covered[(uid, n)] for uid, c in expected(events_v1, NS).items() for n in range(1, c + 1)
        )

    try:
        wait_for(complete, 60, "the first list to be exported")
        time.sleep(1.0)  # five checkpoint intervals: what was exported is checkpointed
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        # While kubevents is down: series grow (both APIs) and new Events arrive.
        for i in range(5):
            event = core.read_namespaced_event(f"core-{i}", NS)
            event.count += 2
            core.replace_namespaced_event(f"core-{i}", NS, event)
            core.create_namespaced_event(NS, core_event(NS, f"late-{i}", count=1))
        time.sleep(0.5)
        run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN)
        wait_for(complete, 60, "the updates made during the outage to be exported")
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    covered = coverage(out, ns=NS)
    want = {(uid, n) for uid, c in expected(events_v1, NS).items() for n in range(1, c + 1)}
    assert set(covered) == want  # nothing lost, nothing that is not in the API server
    # Killed after a checkpoint: the restart resumes from it (killed before the first one,
    # all 34 occurrences of the first list would come again).
    repeated = sum(times - 1 for times in covered.values())
    assert repeated <= 5, f"{repeated} occurrences repeated after one kill -9"


def test_a_token_without_rbac_gets_one_line_naming_what_to_grant(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    run = start_run(apiserver, tmp_path, WEAK_TOKEN)
    log = tmp_path / "run.log"
    try:
        wait_for(lambda: b"403" in log.read_bytes(), 60, "the RBAC error")
        time.sleep(2)  # a few retries: the error is logged once, not once per retry
    finally:
        run.send_signal(signal.SIGTERM)
        run.wait(timeout=20)
    lines = [ln for ln in log.read_text().splitlines() if "403 Forbidden" in ln]
    wanted = 'RBAC must allow list and watch on resource "events" in API group events.k8s.io'
    events = [ln for ln in lines if wanted in ln]
    assert len(events) == 1, lines  # one line, whatever the retries
    # The object cache's watches say the same for what they read (and correlation goes on
    # with naming conventions meanwhile).
    assert any('resource "pods"' in ln for ln in lines), lines


def test_resume_after_etcd_compaction_relists_without_loss_or_repeats(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    admin = api_client(apiserver, tmp_path)
    core, events_v1 = k8s.CoreV1Api(admin), k8s.EventsV1Api(admin)
    out = tmp_path / "out.jsonl"

    def complete() -> bool:
        covered = coverage(out, ns=NS)
        return all(
            covered[(uid, n)] for uid, c in expected(events_v1, NS).items() for n in range(1, c + 1)
        )

    run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN)
    try:
        core.create_namespaced_event(NS, core_event(NS, "before-compaction", count=2))
        wait_for(complete, 60, "the Events to be exported")
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    checkpoint = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    # While stopped: more Events, then etcd forgets the history the checkpoint points into.
    for i in range(3):
        core.create_namespaced_event(NS, core_event(NS, f"during-{i}", count=i + 1))
    apiserver.etcd.compact()
    mark = len((tmp_path / "run.log").read_text())
    run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN, "--log-level", "debug")
    try:
        wait_for(complete, 60, "the Events made while stopped to be exported")
        time.sleep(1.0)  # anything repeated would have arrived by now
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    covered = coverage(out, ns=NS)
    want = {(uid, n) for uid, c in expected(events_v1, NS).items() for n in range(1, c + 1)}
    assert set(covered) == want
    assert sum(times - 1 for times in covered.values()) == 0, "a relist repeated occurrences"
    assert checkpoint["resource_versions"], "the first run checkpointed where it was"
    log = (tmp_path / "run.log").read_text()[mark:]
    assert "resuming from checkpoint" in log
    assert "relisting" in log, "the resumed watch did not find its resourceVersion compacted"
    assert "Traceback" not in log


def test_the_object_cache_resolves_real_owner_references(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    """Pods, ReplicaSets and Jobs made through the API, with real ownerReferences (and
    names that prove nothing): the Events about them join their workload and node."""
    ns = "owners"
    admin = create_namespace(apiserver, tmp_path, ns)
    core, apps, batch = k8s.CoreV1Api(admin), k8s.AppsV1Api(admin), k8s.BatchV1Api(admin)
    template = {
        "metadata": {"labels": {"app": "api"}},
        "spec": {"containers": [{"name": "app", "image": "shop/api:v1"}]},
    }
    deployment = apps.create_namespaced_deployment(ns, {
        "metadata": {"name": "api"},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": template},
    })  # fmt: skip
    replica_set = apps.create_namespaced_replica_set(ns, {
        "metadata": {"name": "api-main", "labels": {"app": "api"},
                     "ownerReferences": [owner(deployment, "apps/v1", "Deployment")]},
        "spec": {"selector": {"matchLabels": {"app": "api"}}, "template": template},
    })  # fmt: skip
    cron_job = batch.create_namespaced_cron_job(ns, {
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {
            "spec": {**template["spec"], "restartPolicy": "Never"}}}}},
    })  # fmt: skip
    job = batch.create_namespaced_job(ns, {
        "metadata": {"name": "nightly-manual",
                     "ownerReferences": [owner(cron_job, "batch/v1", "CronJob")]},
        "spec": {"template": {"spec": {**template["spec"], "restartPolicy": "Never"}}},
    })  # fmt: skip
    for name, parent, api_version, kind, node in (
        ("api-x2k4p", replica_set, "apps/v1", "ReplicaSet", "node-7"),
        ("backup", job, "batch/v1", "Job", "node-8"),
    ):
        core.create_namespaced_pod(ns, {
            "metadata": {"name": name, "ownerReferences": [owner(parent, api_version, kind)]},
            "spec": {**template["spec"], "nodeName": node},
        })  # fmt: skip
    port = free_port()
    run = start_kubevents(apiserver, tmp_path, KUBEVENTS_TOKEN, "--metrics-port", str(port))
    try:

        def cache_listed() -> bool:
            text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            return all(
                re.search(
                    rf'kubevents_watch_lists_total\{{[^}}]*resource="{r}"[^}}]*\}} [1-9]', text
                )
                for r in ("pods", "replicasets", "jobs")
            )

        wait_for(cache_listed, 60, "the object cache to list Pods, ReplicaSets and Jobs")
        for pod, reason in (("api-x2k4p", "FailedScheduling"), ("backup", "FailedMount")):
            event = core_event(ns, f"{pod}-event", 1, reason)
            event["involvedObject"]["name"] = pod
            event["source"] = {"component": "default-scheduler"}  # no host: not the node
            core.create_namespaced_event(ns, event)
        out = tmp_path / "out.jsonl"
        wait_for(
            lambda: (
                {"api-x2k4p", "backup"}
                <= {r["attributes"].get("k8s.pod.name") for r in records([out])}
            ),
            60,
            "the Events to be exported",
        )
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    by_pod = {r["attributes"].get("k8s.pod.name"): r["attributes"] for r in records([out])}
    api, backup = by_pod["api-x2k4p"], by_pod["backup"]
    assert api["kubevents.workload"] == f"{ns}/Deployment/api"
    assert (api["k8s.replicaset.name"], api["k8s.deployment.name"]) == ("api-main", "api")
    assert api["k8s.node.name"] == "node-7"
    assert backup["kubevents.workload"] == f"{ns}/CronJob/nightly"
    assert (backup["k8s.job.name"], backup["k8s.cronjob.name"]) == ("nightly-manual", "nightly")
    assert backup["k8s.node.name"] == "node-8"


def owner(parent: Any, api_version: str, kind: str) -> dict[str, Any]:
    """A controller ownerReference to ``parent`` (a model the client returned)."""
    meta = parent.metadata
    return {"apiVersion": api_version, "kind": kind, "name": meta.name, "uid": meta.uid,
            "controller": True}  # fmt: skip
