"""Writes events.jsonl: a deterministic recording of a busy cluster (watch JSON Lines).

Run: .venv/bin/python tests/data/demo/generate.py
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
rng = random.Random(20261120)
lines: list[dict] = []
rv = 1000
live: dict[str, dict] = {}


def ts(seconds: float, micro: bool = False) -> str:
    t = BASE + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


def next_rv() -> str:
    global rv
    rv += 1
    return str(rv)


def event(at: float, ns: str, kind: str, name: str, reason: str, message: str, *, type_: str = "Warning",
          component: str = "kubelet", host: str = "", v1: bool = False, field_path: str = "") -> str:
    """Record an ADDED Event; returns its key for repeats."""
    uid = f"{rng.getrandbits(128):032x}"
    uid = f"{uid[:8]}-{uid[8:12]}-{uid[12:16]}-{uid[16:20]}-{uid[20:]}"
    obj_ns = "" if kind == "Node" else ns
    meta = {"name": f"{name}.{rng.getrandbits(64):016x}", "namespace": ns or "default", "uid": uid,
            "resourceVersion": next_rv(), "creationTimestamp": ts(at)}
    ref = {"kind": kind, "namespace": obj_ns, "name": name, "uid": f"obj-{name}", "apiVersion": "v1"}
    if field_path:
        ref["fieldPath"] = field_path
    if v1:
        obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta, "regarding": ref, "note": message,
               "reason": reason, "type": type_, "action": reason, "reportingController": component,
               "reportingInstance": host or component, "eventTime": ts(at, micro=True)}
    else:
        obj = {"apiVersion": "v1", "kind": "Event", "metadata": meta, "involvedObject": ref, "message": message,
               "reason": reason, "type": type_, "source": {"component": component, **({"host": host} if host else {})},
               "count": 1, "firstTimestamp": ts(at), "lastTimestamp": ts(at), "eventTime": None,
               "reportingComponent": component, "reportingInstance": host}
    lines.append({"type": "ADDED", "object": obj, "_at": at})
    live[uid] = obj
    return uid


def repeat(uid: str, at: float) -> None:
    """One more occurrence: a MODIFIED with count + 1."""
    obj = json.loads(json.dumps(live[uid]))
    obj["metadata"]["resourceVersion"] = next_rv()
    if obj["apiVersion"] == "v1":
        obj["count"] += 1
        obj["lastTimestamp"] = ts(at)
    else:
        count = (obj.get("series") or {}).get("count", 1) + 1
        obj["series"] = {"count": count, "lastObservedTime": ts(at, micro=True)}
    live[uid] = obj
    lines.append({"type": "MODIFIED", "object": obj, "_at": at})


def noise(start: float, end: float) -> None:
    """Ordinary lifecycle of pods across namespaces."""
    apps = [("shop", "cart-6b8d7c9f4d"), ("payments", "ledger-5f6c8d7b9c"), ("monitoring", "grafana-7c9d8f6b5d"),
            ("default", "nginx-8f7d6c5b4c"), ("batch", "report-29412360")]
    t = start
    while t < end:
        ns, rs = rng.choice(apps)
        pod = f"{rs}-{''.join(rng.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))}"
        node = f"node-{rng.randint(1, 6)}"
        v1 = rng.random() < 0.5
        event(t, ns, "ReplicaSet", rs, "SuccessfulCreate", f"Created pod: {pod}", type_="Normal",
              component="replicaset-controller", v1=v1)
        event(t + 0.1, ns, "Pod", pod, "Scheduled", f"Successfully assigned {ns}/{pod} to {node}", type_="Normal",
              component="default-scheduler", v1=v1)
        image = f"registry.example.com/{ns}/{rs.split('-')[0]}:1.{rng.randint(0, 9)}"
        event(t + 1, ns, "Pod", pod, "Pulling", f'Pulling image "{image}"', type_="Normal", host=node, v1=v1,
              field_path="spec.containers{app}")
        event(t + 2.5, ns, "Pod", pod, "Pulled", f'Successfully pulled image "{image}" in 1.2s (1.2s including waiting). Image size: 52428800 bytes.',
              type_="Normal", host=node, v1=v1, field_path="spec.containers{app}")
        event(t + 2.6, ns, "Pod", pod, "Created", "Created container: app", type_="Normal", host=node, v1=v1)
        event(t + 2.8, ns, "Pod", pod, "Started", "Started container app", type_="Normal", host=node, v1=v1)
        t += rng.uniform(20, 50)


def image_pull_storm(t: float) -> None:
    event(t, "shop", "Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-7d9f8c6b5d from 0 to 3",
          type_="Normal", component="deployment-controller")
    image = "registry.example.com/shop/web:v2.3.1"
    for i, pod in enumerate(["web-7d9f8c6b5d-x2k4p", "web-7d9f8c6b5d-q8r7m", "web-7d9f8c6b5d-z5n2w"]):
        at, node = t + 2 + i, f"node-{i + 1}"
        event(at, "shop", "ReplicaSet", "web-7d9f8c6b5d", "SuccessfulCreate", f"Created pod: {pod}", type_="Normal",
              component="replicaset-controller")
        event(at + 1, "shop", "Pod", pod, "Pulling", f'Pulling image "{image}"', type_="Normal", host=node)
        failed = event(at + 3, "shop", "Pod", pod, "Failed",
                       f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image "{image}": failed to resolve reference "{image}": {image}: not found',
                       host=node)
        err = event(at + 3.1, "shop", "Pod", pod, "Failed", "Error: ErrImagePull", host=node)
        back = event(at + 4, "shop", "Pod", pod, "BackOff", f'Back-off pulling image "{image}"', host=node)
        ipb = event(at + 4.1, "shop", "Pod", pod, "Failed", "Error: ImagePullBackOff", host=node)
        for k in range(1, 12):
            repeat(back, at + 4 + 20 * k)
            repeat(ipb, at + 4.1 + 20 * k)
            if k % 3 == 0:
                repeat(failed, at + 3 + 20 * k)
                repeat(err, at + 3.1 + 20 * k)


def storage_slowdown(t: float) -> None:
    node = "node-3"
    for pod, ns, pvc in [("db-0", "payments", "pvc-4b1e2c0a-7d3f-4e21-9a0b-1c2d3e4f5a6b"),
                         ("api-6c9b8d7f5c-k4m2p", "shop", "pvc-9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")]:
        att = event(t, ns, "Pod", pod, "FailedAttachVolume",
                    f'AttachVolume.Attach failed for volume "{pvc}" : timed out waiting for external-attacher of ebs.csi.aws.com CSI driver to attach volume vol-0a1b2c3d4e5f',
                    component="attachdetach-controller", v1=True)
        mnt = event(t + 60, ns, "Pod", pod, "FailedMount",
                    "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data kube-api-access-x7k2p]: timed out waiting for the condition",
                    host=node)
        for k in range(1, 5):
            repeat(att, t + 30 * k)
            repeat(mnt, t + 60 + 120 * k)
        t += 15
    for pod, ns, container in [("db-0", "payments", "postgres"), ("api-6c9b8d7f5c-k4m2p", "shop", "api"),
                               ("worker-5d4c3b2a19-t7v8x", "shop", "worker")]:
        at = t + 420
        unh = event(at, ns, "Pod", pod, "Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503",
                    host=node)
        back = event(at + 30, ns, "Pod", pod, "BackOff",
                     f"Back-off restarting failed container {container} in pod {pod}_{ns}(obj-{pod})", host=node)
        for k in range(1, 6):
            repeat(unh, at + 15 * k)
            repeat(back, at + 30 + 40 * k)


def node_disk_pressure(t: float) -> None:
    node = "node-5"
    event(t, "", "Node", node, "NodeHasDiskPressure", f"Node {node} status is now: NodeHasDiskPressure",
          type_="Normal", host=node)
    thr = event(t + 5, "", "Node", node, "EvictionThresholdMet", "Attempting to reclaim ephemeral-storage", host=node)
    event(t + 10, "", "Node", node, "FreeDiskSpaceFailed",
          "Failed to garbage collect required amount of images. Attempted to free 4523188633 bytes, but only found 0 bytes eligible to free.",
          host=node)
    for k in range(1, 4):
        repeat(thr, t + 5 + 60 * k)
    for i, (ns, pod) in enumerate([("shop", "cart-6b8d7c9f4d-h2j3k"), ("monitoring", "grafana-7c9d8f6b5d-p9q8r"),
                                   ("default", "nginx-8f7d6c5b4c-s4t5v")]):
        at = t + 30 + 10 * i
        event(at, ns, "Pod", pod, "Evicted",
              "The node was low on resource: ephemeral-storage. Threshold quantity: 4281515097, available: 3975508Ki. Container app was using 10485760Ki, request is 0, has larger consumption of ephemeral-storage.",
              host=node)
        event(at + 1, ns, "Pod", pod, "Killing", "Stopping container app", type_="Normal", host=node)
        replacement = pod[:-5] + "zz" + pod[-3:]
        fs = event(at + 3, ns, "Pod", replacement, "FailedScheduling",
                   "0/6 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }, 5 Insufficient cpu. preemption: 0/6 nodes are available: 1 Preemption is not helpful for scheduling, 5 No preemption victims found for incoming pod.",
                   component="default-scheduler")
        repeat(fs, at + 63)
        event(at + 5, ns, "Pod", replacement, "TriggeredScaleUp",
              "pod triggered scale-up: [{eks-general-ng 6->7 (max: 10)}]", type_="Normal", component="cluster-autoscaler")


def probe_loop(t: float) -> None:
    pod, node = "checkout-5c7d9b8f6d-m3n4p", "node-2"
    unh = event(t, "shop", "Pod", pod, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 503",
                host=node, v1=True)
    kill = event(t + 30, "shop", "Pod", pod, "Killing", "Container checkout failed liveness probe, will be restarted",
                 type_="Normal", host=node, v1=True)
    back = event(t + 45, "shop", "Pod", pod, "BackOff",
                 f"Back-off restarting failed container checkout in pod {pod}_shop(obj-{pod})", host=node, v1=True)
    for k in range(1, 16):
        repeat(unh, t + 80 * k)
        repeat(kill, t + 30 + 80 * k)
        repeat(back, t + 45 + 80 * k)


def oom(t: float) -> None:
    node, pod = "node-4", "ledger-5f6c8d7b9c-b6c7d"
    event(t, "", "Node", node, "OOMKilling",
          "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:2097152kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4567kB oom_score_adj:936",
          component="kernel-monitor", host=node)
    event(t + 1, "", "Node", node, "SystemOOM", "System OOM encountered, victim process: java, pid: 4242", host=node)
    back = event(t + 20, "payments", "Pod", pod, "BackOff",
                 f"Back-off restarting failed container ledger in pod {pod}_payments(obj-{pod})", host=node)
    for k in range(1, 5):
        repeat(back, t + 20 + 60 * k)


def odd(t: float) -> None:
    event(t, "widgets", "Widget", "gizmo", "CustomOperatorHiccup", "reconcile failed: \x1b[31mred\x1b[0m ünïcødé ✓",
          component="widget-operator")
    event(t + 1, "shop", "Pod", "big-1", "FailedPostStartHook", "hook output: " + "x" * 10_000, host="node-1")


def main() -> None:
    noise(0, 1800)
    image_pull_storm(120)
    storage_slowdown(300)
    node_disk_pressure(900)
    probe_loop(200)
    oom(1300)
    odd(1500)
    ordered = sorted(lines, key=lambda line: int(line["object"]["metadata"]["resourceVersion"]))
    out = Path(__file__).with_name("events.jsonl")
    with out.open("w") as f:
        for line in ordered:
            line.pop("_at")
            f.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
