"""Writes the correlation scenarios: recorded-style watch streams with their expected incidents.

Each scenario is ``<name>.jsonl`` (watch events, both API versions, real
message texts) and ``<name>.expected.yaml``: the root cause (reason and
``namespace/Kind/name``), the uids of its symptoms (which must share its
incident id), the uids of unrelated Events (which must not), and the story.

Run: .venv/bin/python tests/data/correlation/generate.py
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
BASE = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
UIDS = uuid.UUID("6f2b1d0e-3c4a-4b5d-8e9f-0a1b2c3d4e5f")


def ts(seconds: float, micro: bool = False) -> str:
    t = BASE + timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if micro else t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Scenario:
    """One recording: Events added in any order, written in time order."""

    def __init__(self, name: str, story: str) -> None:
        self.name, self.story = name, story
        self.items: list[tuple[float, int, dict[str, Any], str]] = []
        self.live: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}
        self.expected: dict[str, Any] = {}

    def uid(self, label: str) -> str:
        return str(uuid.uuid5(UIDS, f"{self.name}/{label}"))

    def event(self, label: str, at: float, ns: str, kind: str, name: str, reason: str, message: str, *,
              type_: str = "Warning", component: str = "kubelet", host: str = "", v1: bool = False) -> str:
        uid = self.uid(label)
        self.labels[uid] = label
        meta = {"name": f"{name}.{uid[:16].replace('-', '')}", "namespace": ns or "default", "uid": uid,
                "creationTimestamp": ts(at)}
        ref = {"kind": kind, "name": name, "uid": str(uuid.uuid5(UIDS, f"{self.name}/{kind}/{name}")),
               "apiVersion": {"Pod": "v1", "Node": "v1", "PersistentVolumeClaim": "v1",
                              "Deployment": "apps/v1", "ReplicaSet": "apps/v1",
                              "StatefulSet": "apps/v1"}.get(kind, "v1")}
        if kind != "Node":
            ref["namespace"] = ns
        if v1:
            obj = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": meta, "regarding": ref,
                   "note": message, "reason": reason, "type": type_, "action": reason,
                   "reportingController": component, "reportingInstance": host or f"{component}-7f9c",
                   "eventTime": ts(at, micro=True)}
        else:
            obj = {"apiVersion": "v1", "kind": "Event", "metadata": meta, "involvedObject": ref,
                   "message": message, "reason": reason, "type": type_,
                   "source": {"component": component, **({"host": host} if host else {})},
                   "count": 1, "firstTimestamp": ts(at), "lastTimestamp": ts(at), "eventTime": None,
                   "reportingComponent": component, "reportingInstance": host}
        self._add(at, "ADDED", obj)
        return uid

    def repeat(self, uid: str, *times: float) -> None:
        """More occurrences of an Event: MODIFIED updates with a growing count."""
        for at in times:
            obj = json.loads(json.dumps(self.live[uid]))
            if obj["apiVersion"] == "v1":
                obj["count"] += 1
                obj["lastTimestamp"] = ts(at)
            else:
                count = (obj.get("series") or {}).get("count", 1) + 1
                obj["series"] = {"count": count, "lastObservedTime": ts(at, micro=True)}
            self._add(at, "MODIFIED", obj)

    def _add(self, at: float, kind: str, obj: dict[str, Any]) -> None:
        self.live[obj["metadata"]["uid"]] = obj
        self.items.append((at, len(self.items), {"type": kind, "object": obj}, obj["metadata"]["uid"]))

    def pod_started(self, at: float, ns: str, pod: str, node: str, image: str) -> None:
        """The ordinary start of a Pod: Scheduled, Pulled, Created, Started."""
        self.event(f"{pod}/scheduled", at, ns, "Pod", pod, "Scheduled",
                   f"Successfully assigned {ns}/{pod} to {node}", type_="Normal", component="default-scheduler",
                   v1=True)
        self.event(f"{pod}/pulled", at + 1, ns, "Pod", pod, "Pulled",
                   f'Container image "{image}" already present on machine', type_="Normal", host=node)
        self.event(f"{pod}/created", at + 1.2, ns, "Pod", pod, "Created", "Created container: app",
                   type_="Normal", host=node)
        self.event(f"{pod}/started", at + 1.4, ns, "Pod", pod, "Started", "Started container app",
                   type_="Normal", host=node)

    def expect(self, *, reason: str, obj: str, symptoms: list[str], unrelated: list[str]) -> None:
        self.expected = {"root_cause": {"reason": reason, "object": obj}, "symptoms": symptoms,
                         "unrelated": unrelated}

    def write(self) -> None:
        lines = []
        for rv, (_, _, item, _) in enumerate(sorted(self.items, key=lambda i: (i[0], i[1])), start=5000):
            item["object"]["metadata"]["resourceVersion"] = str(rv)
            lines.append(json.dumps(item, separators=(",", ":")) + "\n")
        (HERE / f"{self.name}.jsonl").write_text("".join(lines))
        out = [f"# {self.name}: generated by generate.py; uids are commented with their labels.",
               "story: >-", *(f"  {line}" for line in self.story.split("\n")),
               "root_cause:",
               f"  reason: {self.expected['root_cause']['reason']}",
               f"  object: {self.expected['root_cause']['object']}"]
        for key in ("symptoms", "unrelated"):
            out.append(f"{key}:")
            out += [f"  - {uid}  # {self.labels[uid]}" for uid in self.expected[key]]
        (HERE / f"{self.name}.expected.yaml").write_text("\n".join(out) + "\n")


def ebs_attach_timeout() -> Scenario:
    s = Scenario("ebs-attach-timeout", "EBS volumes of node-3 time out attaching; the database cannot mount its\n"
                 "volume. The API's own volume fails the same way (its own incident: nothing says the two\n"
                 "volumes share a cause), a worker on the same node crash-loops for reasons of its own, and a\n"
                 "crash loop on node-1 is unrelated: a volume is not the node's problem.")
    pods = [("payments", "db-0", "pvc-4b1e2c0a-7d3f-4e21-9a0b-1c2d3e4f5a6b"),
            ("shop", "api-6c9b8d7f5c-k4m2p", "pvc-9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b")]
    for i, (ns, pod, _) in enumerate(pods):
        s.event(f"{pod}/scheduled", 10 + i, ns, "Pod", pod, "Scheduled",
                f"Successfully assigned {ns}/{pod} to node-3", type_="Normal", component="default-scheduler", v1=True)
    s.pod_started(12, "shop", "worker-7b9c8d6f54-t7v8x", "node-3", "registry.example.com/shop/worker:3.1")
    s.pod_started(14, "shop", "web-7d9f8c6b5d-x2k4p", "node-1", "registry.example.com/shop/web:2.3")
    symptoms: list[str] = []
    others: list[str] = []
    for i, (ns, pod, pvc) in enumerate(pods):
        attach = s.event(f"{pod}/FailedAttachVolume", 60 + 15 * i, ns, "Pod", pod, "FailedAttachVolume",
                         f'AttachVolume.Attach failed for volume "{pvc}" : rpc error: code = DeadlineExceeded '
                         "desc = context deadline exceeded", component="attachdetach-controller", v1=True)
        s.repeat(attach, *(60 + 15 * i + 30 * k for k in range(1, 7)))
        mount = s.event(f"{pod}/FailedMount", 180 + 15 * i, ns, "Pod", pod, "FailedMount",
                        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[data "
                        "kube-api-access-x7k2p]: timed out waiting for the condition", host="node-3")
        s.repeat(mount, *(180 + 15 * i + 120 * k for k in range(1, 4)))
        (others if i else symptoms).extend([attach, mount] if i else [mount])
    worker = "worker-7b9c8d6f54-t7v8x"
    unhealthy = s.event(f"{worker}/Unhealthy", 420, "shop", "Pod", worker, "Unhealthy",
                        'Readiness probe failed: Get "http://10.244.3.17:8080/ready": context deadline exceeded '
                        "(Client.Timeout exceeded while awaiting headers)", host="node-3")
    s.repeat(unhealthy, 435, 450, 465)
    backoff = s.event(f"{worker}/BackOff", 480, "shop", "Pod", worker, "BackOff",
                      f"Back-off restarting failed container worker in pod {worker}_shop(3f1c9a2e)", host="node-3")
    s.repeat(backoff, 520, 600)
    api_backoff = s.event("api/BackOff", 500, "shop", "Pod", "api-6c9b8d7f5c-k4m2p", "BackOff",
                          "Back-off restarting failed container api in pod api-6c9b8d7f5c-k4m2p_shop(9e8d7c6b)",
                          host="node-3")
    others += [unhealthy, backoff, api_backoff]
    web = "web-7d9f8c6b5d-x2k4p"
    other = s.event(f"{web}/BackOff", 430, "shop", "Pod", web, "BackOff",
                    f"Back-off restarting failed container web in pod {web}_shop(1a2b3c4d)", host="node-1")
    s.repeat(other, 470, 550)
    s.expect(reason="FailedAttachVolume", obj="payments/Pod/db-0", symptoms=symptoms,
             unrelated=[other, *others, s.uid(f"{worker}/started"), s.uid(f"{web}/started")])
    return s


def node_not_ready() -> Scenario:
    s = Scenario("node-not-ready", "node-7 stops reporting: the node controller marks it NotReady and its Pods\n"
                 "not ready, the taint manager evicts them after the 5-minute toleration, and the replacement\n"
                 "of cart waits for a node and triggers a scale-up. A GPU job that fits nowhere is unrelated.")
    pods = [("shop", "cart-6b8d7c9f4d-h2j4k"), ("monitoring", "prometheus-0")]
    for i, (ns, pod) in enumerate(pods):
        s.pod_started(5 + i, ns, pod, "node-7", f"registry.example.com/{ns}/app:1.{i}")
    s.event("node-7/NodeNotReady", 300, "", "Node", "node-7", "NodeNotReady",
                   "Node node-7 status is now: NodeNotReady", type_="Normal", component="node-controller")
    symptoms = []
    for i, (ns, pod) in enumerate(pods):
        symptoms.append(s.event(f"{pod}/NodeNotReady", 301 + i, ns, "Pod", pod, "NodeNotReady",
                                "Node is not ready", component="node-controller"))
        symptoms.append(s.event(f"{pod}/TaintManagerEviction", 600 + i, ns, "Pod", pod, "TaintManagerEviction",
                                f"Marking for deletion Pod {ns}/{pod}", type_="Normal",
                                component="taint-eviction-controller", v1=True))
    replacement = "cart-6b8d7c9f4d-q8r7m"
    s.event("cart/SuccessfulCreate", 603, "shop", "ReplicaSet", "cart-6b8d7c9f4d", "SuccessfulCreate",
            f"Created pod: {replacement}", type_="Normal", component="replicaset-controller")
    scheduling = s.event(f"{replacement}/FailedScheduling", 604, "shop", "Pod", replacement, "FailedScheduling",
                         "0/4 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: "
                         "}, 3 Insufficient cpu. preemption: 0/4 nodes are available: 1 Preemption is not helpful "
                         "for scheduling, 3 No preemption victims found for incoming pod.",
                         component="default-scheduler", v1=True)
    s.repeat(scheduling, 664, 724)
    scale_up = s.event(f"{replacement}/TriggeredScaleUp", 610, "shop", "Pod", replacement, "TriggeredScaleUp",
                       "pod triggered scale-up: [{eks-general-ng 4->5 (max: 10)}]", type_="Normal",
                       component="cluster-autoscaler")
    symptoms += [scheduling, scale_up]
    gpu = s.event("trainer-0/FailedScheduling", 620, "ml", "Pod", "trainer-0", "FailedScheduling",
                  "0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available: "
                  "4 No preemption victims found for incoming pod.", component="default-scheduler", v1=True)
    s.repeat(gpu, 680)
    s.expect(reason="NodeNotReady", obj="Node/node-7", symptoms=symptoms, unrelated=[gpu])
    return s


def oom_kill() -> Scenario:
    s = Scenario("oom-kill", "The kernel OOM killer runs on node-4 and kills the ledger's JVM; the ledger\n"
                 "crash-loops there. A crash loop on node-2 in the same namespace is unrelated.")
    ledger, other = "ledger-5f6c8d7b9c-b6c7d", "billing-7c8d9f6b54-m4n5p"
    s.pod_started(5, "payments", ledger, "node-4", "registry.example.com/payments/ledger:4.2")
    s.pod_started(6, "payments", other, "node-2", "registry.example.com/payments/billing:1.9")
    s.event("node-4/OOMKilling", 100, "", "Node", "node-4", "OOMKilling",
            "Memory cgroup out of memory: Killed process 4242 (java) total-vm:8123456kB, anon-rss:2097152kB, "
            "file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4567kB oom_score_adj:936",
            component="kernel-monitor", host="node-4")
    system = s.event("node-4/SystemOOM", 101, "", "Node", "node-4", "SystemOOM",
                     "System OOM encountered, victim process: java, pid: 4242", host="node-4")
    backoff = s.event(f"{ledger}/BackOff", 120, "payments", "Pod", ledger, "BackOff",
                      f"Back-off restarting failed container ledger in pod {ledger}_payments(5e6f7a8b)",
                      host="node-4", v1=True)
    s.repeat(backoff, 180, 240, 300)
    unrelated = s.event(f"{other}/BackOff", 130, "payments", "Pod", other, "BackOff",
                        f"Back-off restarting failed container billing in pod {other}_payments(0c1d2e3f)",
                        host="node-2")
    s.repeat(unrelated, 190, 250)
    s.expect(reason="OOMKilling", obj="Node/node-4", symptoms=[system, backoff], unrelated=[unrelated])
    return s


def bad_rollout() -> Scenario:
    s = Scenario("bad-rollout", "A rollout of shop/web points at an image tag that was never pushed: the new\n"
                 "ReplicaSet's Pods fail to pull it and back off. A healthy rollout of cart at the same time,\n"
                 "and one readiness blip of grafana, are unrelated.")
    image = "registry.example.com/shop/web:v2.4.0"
    s.event("web/ScalingReplicaSet", 60, "shop", "Deployment", "web", "ScalingReplicaSet",
            "Scaled up replica set web-6b7d9c8f45 to 1", type_="Normal", component="deployment-controller", v1=True)
    symptoms = []
    for i, (pod, node) in enumerate([("web-6b7d9c8f45-x2k4p", "node-1"), ("web-6b7d9c8f45-q8r7m", "node-2")]):
        at = 61 + 40 * i
        if i:
            s.event("web/ScalingReplicaSet-2", at - 1, "shop", "Deployment", "web", "ScalingReplicaSet",
                    "Scaled up replica set web-6b7d9c8f45 to 2 from 1", type_="Normal",
                    component="deployment-controller", v1=True)
        s.event(f"{pod}/SuccessfulCreate", at, "shop", "ReplicaSet", "web-6b7d9c8f45", "SuccessfulCreate",
                f"Created pod: {pod}", type_="Normal", component="replicaset-controller")
        s.event(f"{pod}/scheduled", at + 0.1, "shop", "Pod", pod, "Scheduled",
                f"Successfully assigned shop/{pod} to {node}", type_="Normal", component="default-scheduler", v1=True)
        s.event(f"{pod}/Pulling", at + 1, "shop", "Pod", pod, "Pulling", f'Pulling image "{image}"',
                type_="Normal", host=node)
        failed = s.event(f"{pod}/Failed", at + 2, "shop", "Pod", pod, "Failed",
                         f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                         f'unpack image "{image}": failed to resolve reference "{image}": {image}: not found',
                         host=node)
        err = s.event(f"{pod}/ErrImagePull", at + 2.1, "shop", "Pod", pod, "Failed", "Error: ErrImagePull",
                      host=node)
        back = s.event(f"{pod}/BackOff", at + 3, "shop", "Pod", pod, "BackOff", f'Back-off pulling image "{image}"',
                       host=node)
        ipb = s.event(f"{pod}/ImagePullBackOff", at + 3.1, "shop", "Pod", pod, "Failed", "Error: ImagePullBackOff",
                      host=node)
        s.repeat(back, *(at + 3 + 20 * k for k in range(1, 6)))
        s.repeat(ipb, *(at + 3.1 + 20 * k for k in range(1, 6)))
        s.repeat(failed, at + 62)
        symptoms += [failed, err, back, ipb]
    healthy = []
    s.event("cart/ScalingReplicaSet", 70, "shop", "Deployment", "cart", "ScalingReplicaSet",
            "Scaled up replica set cart-5f8d9c7b46 to 1", type_="Normal", component="deployment-controller", v1=True)
    s.pod_started(71, "shop", "cart-5f8d9c7b46-h2j4k", "node-3", "registry.example.com/shop/cart:3.0")
    healthy.append(s.event("cart/ScaledDown", 90, "shop", "Deployment", "cart", "ScalingReplicaSet",
                           "Scaled down replica set cart-7c9d8f6b5d to 2 from 3", type_="Normal",
                           component="deployment-controller", v1=True))
    healthy.append(s.event("cart-old/Killing", 91, "shop", "Pod", "cart-7c9d8f6b5d-m4n5p", "Killing",
                           "Stopping container cart", type_="Normal", host="node-3"))
    healthy.append(s.uid("cart-5f8d9c7b46-h2j4k/started"))
    healthy.append(s.event("grafana/Unhealthy", 95, "monitoring", "Pod", "grafana-7c9d8f6b5d-p9q8r", "Unhealthy",
                           'Readiness probe failed: Get "http://10.244.2.9:3000/api/health": dial tcp '
                           "10.244.2.9:3000: connect: connection refused", host="node-2"))
    s.expect(reason="ScalingReplicaSet", obj="shop/Deployment/web", symptoms=symptoms, unrelated=healthy)
    return s


def cni_calico() -> Scenario:
    s = Scenario("cni-calico", "calico-node is not running on node-2: every Pod scheduled there, whatever its\n"
                 "namespace, fails to get a network sandbox. A sandbox timeout on node-5 is unrelated.")
    message = ('Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox '
               '"{sandbox}": plugin type="calico" failed (add): stat /var/lib/calico/nodename: no such file or '
               "directory: check that the calico/node container is running and has mounted /var/lib/calico/")
    pods = [("shop", "web-7d9f8c6b5d-z5n2w"), ("payments", "ledger-5f6c8d7b9c-q8r7m"),
            ("monitoring", "node-exporter-x2k4p")]
    symptoms = []
    for i, (ns, pod) in enumerate(pods):
        s.event(f"{pod}/scheduled", 10 * i, ns, "Pod", pod, "Scheduled",
                f"Successfully assigned {ns}/{pod} to node-2", type_="Normal", component="default-scheduler", v1=True)
        uid = s.event(f"{pod}/FailedCreatePodSandBox", 10 * i + 2, ns, "Pod", pod, "FailedCreatePodSandBox",
                      message.format(sandbox=f"{i}f3a9c2e1b7d" * 5), host="node-2")
        s.repeat(uid, *(10 * i + 2 + 15 * k for k in range(1, 8)))
        symptoms.append(uid)
    symptoms.pop(0)  # the first is the root cause
    other = s.event("api/FailedCreatePodSandBox", 40, "shop", "Pod", "api-6c9b8d7f5c-k4m2p",
                    "FailedCreatePodSandBox",
                    "Failed to create pod sandbox: rpc error: code = DeadlineExceeded desc = context deadline exceeded",
                    host="node-5")
    s.expect(reason="FailedCreatePodSandBox", obj="shop/Pod/web-7d9f8c6b5d-z5n2w", symptoms=symptoms,
             unrelated=[other])
    return s


def missing_secret() -> Scenario:
    s = Scenario("missing-secret", "A new version of shop/api mounts the Secret db-credentials, which nobody\n"
                 "created: its Pods cannot mount it, and a sidecar that reads it as env fails its config. grafana's\n"
                 "readiness failures at the same time are unrelated.")
    symptoms = []
    for i, (pod, node) in enumerate([("api-6c9b8d7f5c-k4m2p", "node-1"), ("api-6c9b8d7f5c-p8x2w", "node-2")]):
        s.event(f"{pod}/scheduled", 5 * i, "shop", "Pod", pod, "Scheduled",
                f"Successfully assigned shop/{pod} to {node}", type_="Normal", component="default-scheduler", v1=True)
        mount = s.event(f"{pod}/FailedMount", 5 * i + 1, "shop", "Pod", pod, "FailedMount",
                        'MountVolume.SetUp failed for volume "db-credentials" : secret "db-credentials" not found',
                        host=node)
        s.repeat(mount, *(5 * i + 1 + 2 ** k for k in range(1, 7)))
        symptoms.append(mount)
    env = s.event("api-sidecar/Failed", 30, "shop", "Pod", "api-6c9b8d7f5c-w7x8z", "Failed",
                  'Error: secret "db-credentials" not found', host="node-3")
    s.repeat(env, 45, 60, 90)
    symptoms.append(env)
    symptoms.pop(0)  # the first is the root cause
    grafana = "grafana-7c9d8f6b5d-p9q8r"
    unrelated = s.event(f"{grafana}/Unhealthy", 20, "monitoring", "Pod", grafana, "Unhealthy",
                        "Readiness probe failed: HTTP probe failed with statuscode: 503", host="node-1")
    s.repeat(unrelated, 30, 40, 50)
    s.expect(reason="FailedMount", obj="shop/Pod/api-6c9b8d7f5c-k4m2p", symptoms=symptoms, unrelated=[unrelated])
    return s


def pvc_provisioning() -> Scenario:
    s = Scenario("pvc-provisioning", "The StatefulSet data/db asks for a claim of StorageClass fast-ssd, which does\n"
                 "not exist: the claim is never provisioned and db-0 waits for it. A Pod of another namespace\n"
                 "that no node fits is unrelated.")
    s.event("db/claim", 0, "data", "StatefulSet", "db", "SuccessfulCreate",
            "create Claim data-db-0 Pod db-0 in StatefulSet db success", type_="Normal",
            component="statefulset-controller")
    s.event("db/pod", 0.1, "data", "StatefulSet", "db", "SuccessfulCreate",
            "create Pod db-0 in StatefulSet db successful", type_="Normal", component="statefulset-controller")
    s.event("data-db-0/ProvisioningFailed", 1, "data", "PersistentVolumeClaim", "data-db-0", "ProvisioningFailed",
            'storageclass.storage.k8s.io "fast-ssd" not found', component="persistentvolume-controller")
    scheduling = s.event("db-0/FailedScheduling", 2, "data", "Pod", "db-0", "FailedScheduling",
                         "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: "
                         "0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
                         component="default-scheduler", v1=True)
    s.repeat(s.uid("data-db-0/ProvisioningFailed"), *(1 + 15 * k for k in range(1, 10)))
    s.repeat(scheduling, *(2 + 60 * k for k in range(1, 4)))
    other = s.event("batch/FailedScheduling", 30, "batch", "Pod", "report-29412360-x2k4p", "FailedScheduling",
                    "0/3 nodes are available: 3 Insufficient memory. preemption: 0/3 nodes are available: "
                    "3 No preemption victims found for incoming pod.", component="default-scheduler", v1=True)
    s.expect(reason="ProvisioningFailed", obj="data/PersistentVolumeClaim/data-db-0", symptoms=[scheduling],
             unrelated=[other])
    return s


def main() -> None:
    for make in (ebs_attach_timeout, node_not_ready, oom_kill, bad_rollout, cni_calico, missing_secret,
                 pvc_provisioning):
        make().write()


if __name__ == "__main__":
    main()
