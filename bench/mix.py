"""A realistic Event mix, as a busy cluster's watch stream would carry it.

The stream is a list of watch lines (``{"type": ..., "object": Event}``),
core/v1 Events as the apiserver serves them:

* **objects**: Pods of Deployments (``web-7d9f8c6b5d-x2k4p``, so owner
  inference by name works), StatefulSets (``db-0``) and CronJobs
  (``report-29412360-x2k4p``), plus their ReplicaSets, Deployments, Jobs,
  HPAs, PVCs and 300 Nodes; about ``objects`` distinct involved objects in all
  (default 100,000), introduced as the stream goes on;
* **namespaces**: 120, Zipf-skewed (a few busy ones hold most of the traffic);
* **reasons**: the pod lifecycle (Scheduled, Pulling, Pulled, Created,
  Started, Killing) dominates; warnings (BackOff, Unhealthy, FailedMount,
  FailedScheduling, Failed, Evicted, OOMKilling...) are about a quarter of new
  Events; controller Events (SuccessfulCreate ``Created pod: ...``,
  ScalingReplicaSet) teach owners; Node conditions open incidents;
* **series updates**: about 30% of lines are MODIFIED updates of a recent
  warning Event (count + 1, newer lastTimestamp), as the kubelet's
  aggregation produces them in a crash-loop;
* **long messages**: 1% of new Events carry a 2-12 KiB message (probe output,
  a stack trace).

Event time advances at ``rate`` Events/s (default 2,000: a storm). The
stream is deterministic for a seed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

RANDOM_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
HASH_ALPHABET = "456789bcdf"
BASE_TIME = 1_795_000_000  # 2026-11-18

# (reason, type, weight, message template, component)
POD_LIFECYCLE = [
    ("Scheduled", "Normal", 14, "Successfully assigned {ns}/{pod} to {node}", "default-scheduler"),
    ("Pulling", "Normal", 8, 'Pulling image "registry.example.com/{ns}/{app}:1.{v}"', "kubelet"),
    ("Pulled", "Normal", 12, 'Container image "registry.example.com/{ns}/{app}:1.{v}" already present on machine', "kubelet"),
    ("Created", "Normal", 14, "Created container: {app}", "kubelet"),
    ("Started", "Normal", 14, "Started container {app}", "kubelet"),
    ("Killing", "Normal", 6, "Stopping container {app}", "kubelet"),
]
POD_WARNINGS = [
    ("BackOff", "Warning", 10, "Back-off restarting failed container {app} in pod {pod}_{ns}({uid})", "kubelet"),
    ("Unhealthy", "Warning", 8, "Readiness probe failed: HTTP probe failed with statuscode: 503", "kubelet"),
    ("Unhealthy", "Warning", 3, 'Liveness probe failed: Get "http://10.{v}.3.7:8080/healthz": context deadline exceeded', "kubelet"),
    ("FailedScheduling", "Warning", 4, "0/300 nodes are available: 300 Insufficient cpu. preemption: 0/300 nodes are available: 300 No preemption victims found for incoming pod.", "default-scheduler"),
    ("FailedMount", "Warning", 3, 'MountVolume.SetUp failed for volume "config" : configmap "{app}-config-{v}" not found', "kubelet"),
    ("FailedAttachVolume", "Warning", 1, 'AttachVolume.Attach failed for volume "pvc-{uid}" : rpc error: code = DeadlineExceeded', "attachdetach-controller"),
    ("Failed", "Warning", 3, 'Failed to pull image "registry.example.com/{ns}/{app}:2.{v}": rpc error: code = NotFound desc = failed to pull and unpack image', "kubelet"),
    ("Failed", "Warning", 2, "Error: ImagePullBackOff", "kubelet"),
    ("Evicted", "Warning", 1, "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91328Ki.", "kubelet"),
    ("FailedCreatePodSandBox", "Warning", 1, 'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox "{uid}": plugin type="calico" failed (add)', "kubelet"),
    ("OOMKilling", "Warning", 1, "Memory cgroup out of memory: Killed process {v}123 ({app})", "kernel-monitor"),
    ("SandboxChanged", "Normal", 1, "Pod sandbox changed, it will be killed and re-created.", "kubelet"),
]
NODE_EVENTS = [
    ("NodeNotReady", "Normal", 3, "Node {node} status is now: NodeNotReady", "node-controller"),
    ("NodeHasDiskPressure", "Normal", 1, "Node {node} status is now: NodeHasDiskPressure", "kubelet"),
    ("NodeReady", "Normal", 3, "Node {node} status is now: NodeReady", "kubelet"),
    ("Rebooted", "Warning", 1, "Node {node} has been rebooted, boot id: {uid}", "kubelet"),
    ("ContainerGCFailed", "Warning", 1, "rpc error: code = DeadlineExceeded desc = context deadline exceeded", "kubelet"),
]
WEIGHTS = {"lifecycle": 0.62, "warning": 0.22, "controller": 0.10, "node": 0.02, "other": 0.04}
SERIES_SHARE = 0.30
LONG_SHARE = 0.01


def _pick(rng: random.Random, table: list[tuple[str, str, int, str, str]]) -> tuple[str, str, int, str, str]:
    return rng.choices(table, [row[2] for row in table])[0]


def _stamp(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass
class _Workload:
    ns: str
    app: str
    kind: str  # Deployment, StatefulSet, CronJob
    rs: str  # ReplicaSet name (Deployment), Job name (CronJob), "" (StatefulSet)
    pods: list[str] = field(default_factory=list)


class EventMix:
    """Generates the stream; see the module docstring."""

    def __init__(self, *, objects: int = 100_000, lines: int = 200_000, rate: float = 2_000.0, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.objects = objects
        self.lines = lines
        self.rate = rate
        ranks = [1 / (k + 1) ** 1.1 for k in range(120)]
        self.namespaces = [f"team-{k:03d}" for k in range(120)]
        self.ns_weights = ranks
        self.nodes = [f"ip-10-0-{k // 250}-{k % 250}.ec2.internal" for k in range(300)]
        self.workloads: list[_Workload] = []
        # New involved objects per line: about `objects` over the whole stream.
        self.new_pod_p = min(1.0, 0.8 * objects / max(lines * 0.62 * 0.7, 1))
        self.distinct: set[int] = set()
        """Hashes of the involved objects so far (counts them; small)."""
        self.live_warnings: list[dict[str, Any]] = []
        self.seq = 0
        self.now = float(BASE_TIME)

    # -- names ------------------------------------------------------------------------

    def _rand(self, alphabet: str, n: int) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(n))

    def _workload(self) -> _Workload:
        rng = self.rng
        if self.workloads and (len(self.workloads) > 3000 or rng.random() < 0.9):
            return self.workloads[min(int(rng.expovariate(1 / 300)), len(self.workloads) - 1)]
        ns = rng.choices(self.namespaces, self.ns_weights)[0]
        app = f"{rng.choice(['api', 'web', 'worker', 'cart', 'search', 'auth', 'billing', 'feed'])}-{len(self.workloads)}"
        r = rng.random()
        if r < 0.8:
            w = _Workload(ns, app, "Deployment", f"{app}-{self._rand(HASH_ALPHABET, rng.randint(8, 10))}")
        elif r < 0.9:
            w = _Workload(ns, app, "StatefulSet", "")
        else:
            w = _Workload(ns, app, "CronJob", f"{app}-{29_412_360 + rng.randrange(10_000)}")
        self.workloads.append(w)
        return w

    def _pod(self, w: _Workload, new: bool) -> str:
        if w.pods and not new:
            return self.rng.choice(w.pods[-20:])
        if w.kind == "StatefulSet":
            name = f"{w.app}-{len(w.pods)}"
        else:
            name = f"{w.rs}-{self._rand(RANDOM_ALPHABET, 5)}"
        w.pods.append(name)
        if len(w.pods) > 200:
            del w.pods[:100]
        return name

    # -- events -----------------------------------------------------------------------

    def _event(self, ns: str, kind: str, name: str, row: tuple[str, str, int, str, str], api: str = "v1",
               **fmt: str) -> dict[str, Any]:
        rng = self.rng
        reason, type_, _, template, component = row
        self.seq += 1
        uid = f"{self.seq:08x}-7c1e-4a4b-9a3b-{rng.getrandbits(48):012x}"
        message = template.format(ns=ns, pod=name, node=fmt.get("node", ""), app=fmt.get("app", name),
                                  uid=uid, v=rng.randrange(40))
        if rng.random() < LONG_SHARE:
            message += "\n" + "\n".join(
                f"  at com.example.{fmt.get('app', 'app')}.Handler.method{k}(Handler.java:{k * 7})"
                for k in range(rng.randint(40, 240))
            )
        stamp = _stamp(self.now)
        host = fmt.get("node", "") if component == "kubelet" else ""
        self.distinct.add(hash((ns, kind, name)))
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{name}.{rng.getrandbits(64):016x}",
                "namespace": ns or "default",
                "uid": uid,
                "resourceVersion": "0",
                "creationTimestamp": stamp,
            },
            "involvedObject": {
                "kind": kind,
                "namespace": ns,
                "name": name,
                "uid": f"{rng.getrandbits(32):08x}-obj",
                "apiVersion": api,
                **({"fieldPath": f"spec.containers{{{fmt.get('app', 'app')}}}"} if component == "kubelet" and kind == "Pod" else {}),
            },
            "reason": reason,
            "message": message,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
            "type": type_,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": host,
        }

    def _new_event(self) -> dict[str, Any]:
        rng = self.rng
        part = rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0]
        node = rng.choice(self.nodes)
        if part in ("lifecycle", "warning"):
            w = self._workload()
            pod = self._pod(w, new=rng.random() < self.new_pod_p or not w.pods)
            row = _pick(rng, POD_LIFECYCLE if part == "lifecycle" else POD_WARNINGS)
            if row[0] == "FailedScheduling":
                node = ""
            return self._event(w.ns, "Pod", pod, row, node=node, app=w.app)
        if part == "controller":
            w = self._workload()
            r = rng.random()
            if w.kind == "Deployment" and r < 0.3:
                return self._event(w.ns, "Deployment", w.app, ("ScalingReplicaSet", "Normal", 1,
                                   f"Scaled up replica set {w.rs} to {rng.randint(2, 9)} from 1", "deployment-controller"),
                                   api="apps/v1")
            pod = self._pod(w, new=True)
            if w.kind == "StatefulSet":
                return self._event(w.ns, "StatefulSet", w.app, ("SuccessfulCreate", "Normal", 1,
                                   f"create Pod {pod} in StatefulSet {w.app} successful", "statefulset-controller"),
                                   api="apps/v1")
            if w.kind == "CronJob":
                return self._event(w.ns, "Job", w.rs, ("SuccessfulCreate", "Normal", 1, f"Created pod: {pod}",
                                   "job-controller"), api="batch/v1")
            return self._event(w.ns, "ReplicaSet", w.rs, ("SuccessfulCreate", "Normal", 1, f"Created pod: {pod}",
                               "replicaset-controller"), api="apps/v1")
        if part == "node":
            return self._event("", "Node", node, _pick(rng, NODE_EVENTS), node=node)
        w = self._workload()
        r = rng.random()
        if r < 0.5:
            return self._event(w.ns, "HorizontalPodAutoscaler", w.app, ("SuccessfulRescale", "Normal", 1,
                               f"New size: {rng.randint(2, 30)}; reason: cpu resource utilization (percentage of request) above target",
                               "horizontal-pod-autoscaler"), api="autoscaling/v2")
        if r < 0.8:
            pvc = f"data-{w.app}-{rng.randrange(5)}"
            return self._event(w.ns, "PersistentVolumeClaim", pvc, ("ProvisioningSucceeded", "Normal", 1,
                               f"Successfully provisioned volume pvc-{rng.getrandbits(64):016x}", "ebs.csi.aws.com"))
        return self._event(w.ns, "Service", w.app, ("EnsuredLoadBalancer", "Normal", 1, "Ensured load balancer",
                           "service-controller"))

    def generate(self) -> list[dict[str, Any]]:
        """The watch events, in order (resourceVersion = position + 1)."""
        return list(self.generate_iter())

    def generate_iter(self) -> Iterator[dict[str, Any]]:
        """The watch events one by one (the generator keeps only recent state)."""
        rng = self.rng
        step = 1.0 / self.rate
        for i in range(self.lines):
            self.now += step
            if self.live_warnings and rng.random() < SERIES_SHARE:
                # Recent warnings repeat most: a crash-loop goes on for a while.
                idx = len(self.live_warnings) - 1 - min(int(rng.expovariate(1 / 300)), len(self.live_warnings) - 1)
                old = self.live_warnings[idx]
                obj = {**old, "metadata": dict(old["metadata"]), "count": old["count"] + 1,
                       "lastTimestamp": _stamp(self.now)}
                self.live_warnings[idx] = obj
                kind = "MODIFIED"
            else:
                obj = self._new_event()
                if obj["type"] == "Warning" or obj["reason"] in ("NodeNotReady",):
                    self.live_warnings.append(obj)
                    if len(self.live_warnings) > 2000:
                        del self.live_warnings[:500]
                kind = "ADDED"
            obj["metadata"]["resourceVersion"] = str(i + 1)
            yield {"type": kind, "object": obj}


def watch_lines(events: list[dict[str, Any]]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


def describe(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Shape of the mix, for the report."""
    from collections import Counter

    kinds = Counter(e["object"]["involvedObject"]["kind"] for e in events)
    reasons = Counter(e["object"]["reason"] for e in events)
    namespaces = Counter(e["object"]["involvedObject"]["namespace"] for e in events)
    objects = {(o["involvedObject"]["namespace"], o["involvedObject"]["kind"], o["involvedObject"]["name"])
               for o in (e["object"] for e in events)}
    n = len(events)
    long_ = sum(1 for e in events if len(e["object"]["message"]) > 2048)
    top_ns = namespaces.most_common(5)
    return {
        "lines": n,
        "series_updates": sum(1 for e in events if e["type"] == "MODIFIED") / n,
        "warnings": sum(1 for e in events if e["object"]["type"] == "Warning") / n,
        "long_messages": long_ / n,
        "distinct_objects": len(objects),
        "namespaces": len(namespaces),
        "top5_namespaces_share": sum(c for _, c in top_ns) / n,
        "kinds": {k: round(v / n, 4) for k, v in kinds.most_common()},
        "top_reasons": {k: round(v / n, 4) for k, v in reasons.most_common(12)},
    }


if __name__ == "__main__":
    import json
    import sys

    t0 = time.perf_counter()
    ev = EventMix(lines=int(sys.argv[1]) if len(sys.argv) > 1 else 200_000).generate()
    print(f"generated in {time.perf_counter() - t0:.1f}s")
    print(json.dumps(describe(ev), indent=2))
