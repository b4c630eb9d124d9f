"""What the apiserver tests share: clients, Events, a `kubevents run` process, and the
accounting of occurrences (what the API holds against what was exported).

The tests build the cluster's state with the official ``kubernetes`` client as an admin;
kubevents itself runs as a separate process with the token deploy/'s RBAC binds.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson
import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.integration.servers import ROOT, KubeApiServer

RBAC = ROOT / "deploy" / "kubernetes" / "base"

Occurrence = tuple[str, int]
"""(Event uid, n): the n-th occurrence of one Event."""


# -- the cluster ----------------------------------------------------------------------------


def api_client(api: KubeApiServer, workdir: Path) -> k8s.ApiClient:
    """The official client, as an admin."""
    return k8s_config.new_client_from_config(
        str(api.write_kubeconfig(workdir / "admin.kubeconfig"))
    )


def create_namespace(api: KubeApiServer, workdir: Path, name: str) -> k8s.ApiClient:
    """Create namespace ``name``; return an admin client."""
    admin = api_client(api, workdir)
    k8s.CoreV1Api(admin).create_namespace({"metadata": {"name": name}})
    return admin


def apply_rbac(admin: k8s.ApiClient) -> None:
    """deploy/'s ClusterRole and binding, and the Lease Role in kubevents' namespace."""
    rbac = k8s.RbacAuthorizationV1Api(admin)
    for doc in yaml.safe_load_all((RBAC / "rbac-cluster.yaml").read_text()):
        if doc["kind"] == "ClusterRole":
            rbac.create_cluster_role(doc)
        else:
            rbac.create_cluster_role_binding(doc)
    for doc in yaml.safe_load_all((RBAC / "rbac-lease.yaml").read_text()):
        if doc["kind"] == "Role":
            rbac.create_namespaced_role("kubevents", doc)
        else:
            rbac.create_namespaced_role_binding("kubevents", doc)


# -- Events ---------------------------------------------------------------------------------


def now(offset_s: float = 0) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=offset_s)


def core_event(ns: str, name: str, count: int, reason: str = "BackOff") -> dict[str, Any]:
    """A core/v1 Event as the kubelet's recorder writes it (second-precision times)."""
    return {
        "metadata": {"name": name, "namespace": ns},
        "involvedObject": {
            "kind": "Pod",
            "namespace": ns,
            "name": f"web-{name}",
            "apiVersion": "v1",
        },
        "reason": reason,
        "message": "Back-off restarting failed container app",
        "type": "Warning",
        "count": count,
        "firstTimestamp": now(-60).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "lastTimestamp": now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"component": "kubelet", "host": "node-1"},
    }


def events_v1_event(ns: str, name: str, series_count: int | None) -> dict[str, Any]:
    """An events.k8s.io/v1 Event, with a series when ``series_count`` is given."""
    body: dict[str, Any] = {
        "metadata": {"name": name, "namespace": ns},
        "eventTime": now(-30).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": "kubelet",
        "reportingInstance": "node-2",
        "action": "Pulling",
        "reason": "Failed",
        "note": 'Failed to pull image "shop/web:v2": not found',
        "type": "Warning",
        "regarding": {"kind": "Pod", "namespace": ns, "name": f"api-{name}", "apiVersion": "v1"},
    }
    if series_count is not None:
        body["series"] = {
            "count": series_count,
            "lastObservedTime": now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
    return body


def bump(core: k8s.CoreV1Api, ns: str, name: str, by: int = 1) -> None:
    """One more occurrence of a core/v1 Event, as the kubelet's recorder counts a repeat."""
    event = core.read_namespaced_event(name, ns)
    event.count += by
    event.last_timestamp = now().replace(microsecond=0)
    core.replace_namespaced_event(name, ns, event)


def expected(events_v1: k8s.EventsV1Api, ns: str) -> dict[str, int]:
    """Occurrences of every Event in ``ns`` now, read back from the API: the series count,
    else the deprecated count (a core/v1 Event's ``count``), else 1. Read as raw JSON: the
    client's model refuses the null eventTime of Events made through core/v1."""
    answer = events_v1.list_namespaced_event(ns, _preload_content=False)
    return {
        e["metadata"]["uid"]: (e.get("series") or {}).get("count") or e.get("deprecatedCount") or 1
        for e in orjson.loads(answer.data)["items"]
    }


def occurrences(want: dict[str, int]) -> set[Occurrence]:
    return {(uid, n) for uid, count in want.items() for n in range(1, count + 1)}


# -- kubevents ------------------------------------------------------------------------------


def records(paths: Iterable[Path], ns: str | None = None) -> list[dict[str, Any]]:
    """The k8s.event records of kubevents' jsonl output files, in file order (those of
    Events in namespace ``ns`` only, when given)."""
    found = []
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_bytes().splitlines():
            if line.endswith(b"}"):  # a line being written is skipped
                record = orjson.loads(line)
                if record["event_name"] != "k8s.event":
                    continue
                if ns is None or record["resource"].get("k8s.namespace.name") == ns:
                    found.append(record)
    return found


def coverage(*paths: Path, ns: str | None = None) -> Counter[Occurrence]:
    """How many records cover each occurrence: count c with k new covers c-k+1..c."""
    covered: Counter[Occurrence] = Counter()
    for record in records(paths, ns):
        a = record["attributes"]
        count, new = a["k8s.event.count"], a["kubevents.occurrences"]
        for n in range(count - new + 1, count + 1):
            covered[(a["k8s.event.uid"], n)] += 1
    return covered


def start_kubevents(
    api: KubeApiServer,
    workdir: Path,
    token: str,
    *extra: str,
    name: str = "run",
    checkpoint: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`kubevents run` with ``token``, exporting to ``<name>.jsonl`` (``out.jsonl`` for the
    default name) and logging to ``<name>.log``, checkpointing to a file unless told not to."""
    kubeconfig = api.write_kubeconfig(workdir / f"{token}.kubeconfig", token=token)
    out = workdir / ("out.jsonl" if name == "run" else f"{name}.jsonl")
    argv = [
        sys.executable, "-m", "kubevents.cli", "run",
        "--kubeconfig", str(kubeconfig),
        "--sink", f"jsonl:{out}",
        "--metrics-port", "0",
        *(["--checkpoint", str(workdir / "checkpoint.json")] if checkpoint else []),
        *extra,
    ]  # fmt: skip
    variables = {**os.environ, "KUBEVENTS_WATCH_CHECKPOINT_INTERVAL_S": "0.2", **(env or {})}
    log = (workdir / f"{name}.log").open("ab")
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=variables)
