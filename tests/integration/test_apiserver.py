"""`kubevents run` against a real kube-apiserver (and etcd), with the RBAC that deploy/ grants.

The fake apiserver (tests/fakes) stays for faults on demand; this suite checks that what
the fake taught us holds for the real thing: both Events APIs over one store, series
updates, a kill -9 and a resume, the least-privilege ClusterRole of
deploy/kubernetes/base, and the one-line error for a token RBAC knows nothing of.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.integration.servers import (
    KUBEVENTS_TOKEN,
    ROOT,
    WEAK_TOKEN,
    Etcd,
    KubeApiServer,
    server_binary,
    wait_for,
)

pytestmark = pytest.mark.servers
NS = "shop"


@pytest.fixture(scope="module")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    etcd = Etcd.start(server_binary("etcd"), workdir / "etcd")
    api = KubeApiServer.start(server_binary("kube-apiserver"), etcd, workdir / "api")
    try:
        admin = api_client(api, workdir)
        core = k8s.CoreV1Api(admin)
        for name in ("kubevents", NS):
            core.create_namespace({"metadata": {"name": name}})
        rbac = k8s.RbacAuthorizationV1Api(admin)
        for doc in yaml.safe_load_all(
            (ROOT / "deploy/kubernetes/base/rbac-cluster.yaml").read_text()
        ):
            if doc["kind"] == "ClusterRole":
                rbac.create_cluster_role(doc)
            else:
                rbac.create_cluster_role_binding(doc)
        yield api
    finally:
        api.process.stop()
        etcd.process.stop()


def api_client(api: KubeApiServer, workdir: Path) -> k8s.ApiClient:
    return k8s_config.new_client_from_config(
        str(api.write_kubeconfig(workdir / "admin.kubeconfig"))
    )


def now(offset_s: float = 0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)


def core_event(name: str, count: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS},
        "involvedObject": {
            "kind": "Pod",
            "namespace": NS,
            "name": f"web-{name}",
            "apiVersion": "v1",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container app",
        "type": "Warning",
        "count": count,
        "firstTimestamp": now(-60).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"component": "kubelet", "host": "node-1"},
    }


def events_v1_event(name: str, series_count: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": NS},
        "eventTime": now(-30).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": "kubelet",
        "reportingInstance": "node-2",
        "action": "Pulling",
        "reason": "Failed",
        "note": 'Failed to pull image "shop/web:v2": not found',
        "type": "Warning",
        "regarding": {"kind": "Pod", "namespace": NS, "name": f"api-{name}", "apiVersion": "v1"},
    }
    if series_count is not None:
        body["series"] = {
            "count": series_count,
            "lastObservedTime": now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    return body


def start_run(
    api: KubeApiServer, workdir: Path, token: str, *extra: str
) -> subprocess.Popen[bytes]:
    kubeconfig = api.write_kubeconfig(workdir / f"{token}.kubeconfig", token=token)
    argv = [
        sys.executable, "-m", "kubevents.cli", "run",
        "--kubeconfig", str(kubeconfig),
        "--sink", f"jsonl:{workdir / 'out.jsonl'}",
        "--checkpoint", str(workdir / "checkpoint.json"),
        "--metrics-port", "0",
        *extra,
    ]  # fmt: skip
    env = {**os.environ, "KUBEVENTS_WATCH_CHECKPOINT_INTERVAL_S": "0.2"}
    log = (workdir / "run.log").open("ab")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def coverage(path: Path) -> Counter[tuple[str, int]]:
    """How many records cover each occurrence (uid, n): count c, k new -> c-k+1..c."""
    covered: Counter[tuple[str, int]] = Counter()
    if not path.exists():
        return covered
    for line in path.read_bytes().splitlines():
        if not line.endswith(b"}"):
            continue
        record = orjson.loads(line)
        if record["event_name"] != "k8s.event":
            continue
        a = record["attributes"]
        count, new = a["k8s.event.count"], a["kubevents.occurrences"]
        for n in range(count - new + 1, count + 1):
            covered[(a["k8s.event.uid"], n)] += 1
    return covered


def expected(events_v1: k8s.EventsV1Api) -> dict[str, int]:
    """Occurrences of every Event in the namespace now, read back from the API: the series
    count, else the deprecated count (a core/v1 Event's ``count``), else 1. Read as raw
    JSON: the client's model refuses the null eventTime of Events made through core/v1."""
    answer = events_v1.list_namespaced_event(NS, _preload_content=False)
    return {
        e["metadata"]["uid"]: (e.get("series") or {}).get("count") or e.get("deprecatedCount") or 1
        for e in orjson.loads(answer.data)["items"]
    }


def test_every_occurrence_once_across_both_apis_series_and_a_kill_9(
    apiserver: KubeApiServer, tmp_path: Path
) -> None:
    admin = api_client(apiserver, tmp_path)
    core, events_v1 = k8s.CoreV1Api(admin), k8s.EventsV1Api(admin)
    for i in range(5):
        core.create_namespaced_event(NS, core_event(f"core-{i}", count=i + 1))
        events_v1.create_namespaced_event(
            NS, events_v1_event(f"new-{i}", series_count=i + 2 if i else None)
        )
    run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN)
    out = tmp_path / "out.jsonl"

    def complete() -> bool:
        covered = coverage(out)
        return all(
            covered[(uid, n)] for uid, c in expected(events_v1).items() for n in range(1, c + 1)
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
            core.create_namespaced_event(NS, core_event(f"late-{i}", count=1))
        time.sleep(0.5)
        run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN)
        wait_for(complete, 60, "the updates made during the outage to be exported")
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    covered = coverage(out)
    want = {(uid, n) for uid, c in expected(events_v1).items() for n in range(1, c + 1)}
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
        covered = coverage(out)
        return all(
            covered[(uid, n)] for uid, c in expected(events_v1).items() for n in range(1, c + 1)
        )

    run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN)
    try:
        core.create_namespaced_event(NS, core_event("before-compaction", count=2))
        wait_for(complete, 60, "the Events to be exported")
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    checkpoint = orjson.loads((tmp_path / "checkpoint.json").read_bytes())
    # While stopped: more Events, then etcd forgets the history the checkpoint points into.
    for i in range(3):
        core.create_namespaced_event(NS, core_event(f"during-{i}", count=i + 1))
    apiserver.etcd.compact()
    mark = len((tmp_path / "run.log").read_text())
    run = start_run(apiserver, tmp_path, KUBEVENTS_TOKEN, "--log-level", "debug")
    try:
        wait_for(complete, 60, "the Events made while stopped to be exported")
        time.sleep(1.0)  # anything repeated would have arrived by now
    finally:
        run.send_signal(signal.SIGTERM)
        assert run.wait(timeout=20) == 0, (tmp_path / "run.log").read_text()[-3000:]
    covered = coverage(out)
    want = {(uid, n) for uid, c in expected(events_v1).items() for n in range(1, c + 1)}
    assert set(covered) == want
    assert sum(times - 1 for times in covered.values()) == 0, "a relist repeated occurrences"
    assert checkpoint["resource_versions"], "the first run checkpointed where it was"
    log = (tmp_path / "run.log").read_text()[mark:]
    assert "resuming from checkpoint" in log
    assert "relisting" in log, "the resumed watch did not find its resourceVersion compacted"
    assert "Traceback" not in log
