"""Writes the recorded correlation scenarios: ``<name>.jsonl`` and ``<name>.expected.yaml``.

Run: .venv/bin/python tests/data/scenarios/generate.py

Each scenario is a short watch stream (``eventkit``: both API versions, real
message texts) of one problem and, in the same minutes, 2-5 Events of other
namespaces or nodes that have nothing to do with it. The sidecar states, as
plain data, what a correct correlation engine must conclude:

``root_cause``  the Event that explains the rest: ``reason``, ``object``
                (``namespace/Kind/name``, ``Kind/name`` when cluster-scoped)
                and its ``uid``;
``symptoms``    Event uids that must share the root cause's incident;
``unrelated``   Event uids that must not join it;
``story``       one line.

Routine Events (Scheduled, Pulled, Started, ...) are in neither list: an
engine may leave them out of every incident. Each scenario draws from its
own seed, so changing one leaves the others byte for byte the same.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventkit import (
    SCHEDULER,
    EventState,
    Expected,
    Recording,
    Ref,
    check_no_twins,
    check_watch_lines,
    controller,
    create_pod,
    kernel_monitor,
    kubelet,
    msg_backoff_restart,
    msg_evicted,
    msg_pull_denied,
    msg_scale_up,
    schedule_pod,
    start_pod,
    template_hash,
)

HERE = Path(__file__).parent
REGISTRY = "registry.example.com"


class Scenario(Recording):
    """A recording with its expected conclusion (``root``, ``symptoms``, ``unrelated``)."""

    def __init__(self, name: str, story: str) -> None:
        super().__init__(f"kubevents scenario {name}", first_rv=72_000_000)
        self.name = name
        self.expected = Expected(story)
        self.symptoms, self.unrelated = self.expected.symptoms, self.expected.unrelated

    @property
    def root(self) -> EventState | None:
        return self.expected.root

    @root.setter
    def root(self, event: EventState) -> None:
        self.expected.root = event

    def workload_pod(self, namespace: str, deployment: str, version: str = "1") -> Ref:
        """A Pod of a Deployment, named as Kubernetes names it (pod-template-hash, random suffix)."""
        return self.pod(namespace, f"{deployment}-{template_hash(deployment + ':' + version)}-{self.suffix()}")

    def write(self) -> None:
        lines = self.write_jsonl(HERE / f"{self.name}.jsonl")
        check_watch_lines(lines)
        check_no_twins(lines)
        assert 10 <= len(lines) <= 60, f"{self.name}: {len(lines)} lines"
        assert 2 <= len(self.unrelated) <= 8, self.name
        out = [f"# {self.name}: written by generate.py (do not edit); uids are commented with",
               "# <involved object>/<reason> of their Event.", *self.expected.yaml_lines(self)]
        (HERE / f"{self.name}.expected.yaml").write_text("\n".join(out) + "\n")
        print(f"{self.name}: {len(lines)} lines, {len(self.symptoms)} symptoms, {len(self.unrelated)} unrelated")


SCENARIOS: list[Callable[[], Scenario]] = []


def scenario(make: Callable[[], Scenario]) -> Callable[[], Scenario]:
    SCENARIOS.append(make)
    return make


# -- shared noise -----------------------------------------------------------------------------


def crash_loop(s: Scenario, at: float, pod: Ref, node: str, container: str, times: int) -> EventState:
    """A container of ``pod`` crash-looping on ``node`` for its own reasons."""
    back = s.event(at, pod.container(container), "BackOff", msg_backoff_restart(pod, container), kubelet(node),
                   warning=True)
    s.every(back, at + 40, 40, times)
    return back


def readiness_blip(s: Scenario, at: float, pod: Ref, node: str, port: int, times: int) -> EventState:
    """A readiness probe refused a few times while the app restarts: nobody else's problem."""
    ip = f"10.244.{node.rsplit('-', 1)[1]}.{s.rng.randint(2, 250)}"
    blip = s.event(at, pod.container("app"), "Unhealthy",
                   f'Readiness probe failed: Get "http://{ip}:{port}/ready": dial tcp {ip}:{port}: connect:'
                   " connection refused", kubelet(node), warning=True)
    s.every(blip, at + 10, 10, times)
    return blip


# -- the scenarios ------------------------------------------------------------------------------


@scenario
def volume_attach_timeout() -> Scenario:
    s = Scenario("volume-attach-timeout",
                 "The CSI attacher of node-8 times out attaching the disk of streaming/kafka-0; the Pod waits for"
                 " its volume, starts late, fails its startup probe and restarts. A search indexer's disk on the"
                 " same node times out too: nothing says the two volumes share a cause, so it is a story of its"
                 " own; a crash loop on node-2 and a missing ConfigMap in monitoring are other problems.")
    node, k = "node-8", kubelet("node-8")
    ad = controller("attachdetach-controller")
    kafka = s.pod("streaming", "kafka-0")
    indexer = s.workload_pod("search", "indexer", "7.2")
    create_pod(s, 0, s.ref("StatefulSet", "kafka", "streaming"), "kafka-0")
    schedule_pod(s, 0.2, kafka, node, view="events")
    create_pod(s, 4, s.ref("ReplicaSet", indexer.name.rsplit("-", 1)[0], "search"), indexer.name)
    schedule_pod(s, 4.2, indexer, node, view="events")
    for i, (pod, volume, pvc) in enumerate([(kafka, "data", "pvc-2f6b9c1e-8a4d-4c3b-9e7f-5d1a2b3c4d5e"),
                                            (indexer, "index", "pvc-7c1d2e3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f")]):
        at = 20 + 7 * i
        attach = s.event(at, pod, "FailedAttachVolume",
                         f'AttachVolume.Attach failed for volume "{pvc}" : timed out waiting for external-attacher of'
                         f" pd.csi.storage.gke.io CSI driver to attach volume projects/prod-42/zones/europe-west1-b/"
                         f"disks/{pvc}", ad, warning=True, view="events")
        s.every(attach, at + 125, 125, 2)
        mount = s.event(at + 100, pod, "FailedMount",
                        f"Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes="
                        f"[{volume} kube-api-access-{s.suffix()}]: timed out waiting for the condition", k,
                        warning=True)
        s.again(mount, at + 225)
        s.event(at + 300, pod, "SuccessfulAttachVolume", f'AttachVolume.Attach succeeded for volume "{pvc}" ', ad,
                view="events")
        if i == 0:
            s.root = attach
            s.symptoms.append(mount)
        else:
            s.unrelated += [attach, mount]
    start_pod(s, 340, kafka, node, f"{REGISTRY}/streaming/kafka:3.8.1", "kafka", cached=True, scheduled=False)
    start_pod(s, 345, indexer, node, f"{REGISTRY}/search/indexer:7.2", "indexer", cached=True, scheduled=False)
    startup = s.event(400, kafka.container("kafka"), "Unhealthy",
                      "Startup probe failed: dial tcp 10.244.8.14:9092: connect: connection refused", k, warning=True)
    s.every(startup, 410, 10, 5)
    killing = s.event(461, kafka.container("kafka"), "Killing", "Container kafka failed startup probe, will be restarted",
                      k)
    backoff = s.event(480, kafka.container("kafka"), "BackOff", msg_backoff_restart(kafka, "kafka"), k, warning=True)
    s.every(backoff, 520, 40, 3)
    indexer_backoff = s.event(430, indexer.container("indexer"), "BackOff", msg_backoff_restart(indexer, "indexer"),
                              k, warning=True)
    s.every(indexer_backoff, 470, 45, 3)
    s.symptoms += [startup, killing, backoff]
    s.unrelated.append(indexer_backoff)
    other = s.workload_pod("payments", "billing", "2.0")
    s.unrelated.append(crash_loop(s, 200, other, "node-2", "billing", 4))
    am = s.pod("monitoring", "alertmanager-main-0")
    missing = s.event(150, am, "FailedMount",
                      'MountVolume.SetUp failed for volume "config-volume" : configmap "alertmanager-main-config" not'
                      " found", kubelet("node-1"), warning=True)
    s.every(missing, 152, 4, 3)
    s.unrelated.append(missing)
    s.unrelated.append(readiness_blip(s, 300, s.workload_pod("default", "echo", "0.9"), "node-3", 8080, 3))
    return s


@scenario
def node_lost() -> Scenario:
    s = Scenario("node-lost",
                 "node-9 stops posting status: the node controller marks it and its Pods NotReady, the taint-eviction"
                 " controller deletes its Pods after the 5-minute toleration, and the replacement of shop/cart cannot"
                 " be scheduled; a GPU job that fits nowhere and a readiness blip on node-2 are unrelated.")
    node = "node-9"
    pods = [(s.workload_pod("shop", "cart", "3.4"), "cart"), (s.workload_pod("payments", "billing", "2.0"), "billing"),
            (s.pod("monitoring", "node-exporter-q7w2x"), "node-exporter")]
    for i, (pod, container) in enumerate(pods):
        start_pod(s, 10 + 3 * i, pod, node, f"{REGISTRY}/{pod.namespace}/{container}:1.{i}", container, cached=True)
    s.root = s.event(300, s.node_by_controller(node), "NodeNotReady", f"Node {node} status is now: NodeNotReady",
                     controller("node-controller"))
    for i, (pod, _) in enumerate(pods):
        s.symptoms.append(s.event(301 + i, pod, "NodeNotReady", "Node is not ready", controller("node-controller"),
                                  warning=True))
    for i, (pod, _) in enumerate(pods[:2]):  # the DaemonSet's Pod tolerates the unreachable taint
        s.symptoms.append(s.event(602 + i, s.pod_by_taint_manager(pod.namespace, pod.name), "TaintManagerEviction",
                                  f"Marking for deletion Pod {pod.namespace}/{pod.name}",
                                  controller("taint-eviction-controller"), view="events"))
    cart_rs = pods[0][0].name.rsplit("-", 1)[0]
    replacement = s.pod("shop", f"{cart_rs}-{s.suffix()}")
    create_pod(s, 604, s.ref("ReplicaSet", cart_rs, "shop"), replacement.name)
    pending = s.event(604.2, replacement, "FailedScheduling",
                      "0/5 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/unreachable: },"
                      " 4 Insufficient memory. preemption: 0/5 nodes are available: 1 Preemption is not helpful for"
                      " scheduling, 4 No preemption victims found for incoming pod.", SCHEDULER, warning=True,
                      action="Scheduling", view="events")
    s.every(pending, 664, 60, 2)
    s.symptoms.append(pending)
    billing_rs = pods[1][0].name.rsplit("-", 1)[0]
    new_billing = s.pod("payments", f"{billing_rs}-{s.suffix()}")
    create_pod(s, 605, s.ref("ReplicaSet", billing_rs, "payments"), new_billing.name)
    start_pod(s, 605.2, new_billing, "node-2", f"{REGISTRY}/payments/billing:1.1", "billing", cached=True)
    gpu = s.event(320, s.pod("ml", "trainer-0"), "FailedScheduling",
                  "0/5 nodes are available: 5 Insufficient nvidia.com/gpu. preemption: 0/5 nodes are available: 5 No"
                  " preemption victims found for incoming pod.", SCHEDULER, warning=True, action="Scheduling")
    s.every(gpu, 380, 60, 3)
    s.unrelated += [gpu, readiness_blip(s, 500, s.workload_pod("monitoring", "grafana", "11.3"), "node-2", 3000, 3)]
    return s


@scenario
def oom_crashloop() -> Scenario:
    s = Scenario("oom-crashloop",
                 "The kernel OOM killer on node-6 kills the JVM of analytics/reporting-api; the Pod restarts, fails"
                 " its liveness probe while warming up, is killed and backs off. An OOM kill on node-1 and crash"
                 " loops on other nodes at the same time are separate problems.")
    node = "node-6"
    pod = s.workload_pod("analytics", "reporting-api", "4.0")
    k = kubelet(node)
    start_pod(s, 0, pod, node, f"{REGISTRY}/analytics/reporting-api:4.0", "reporting-api", cached=True)
    s.root = s.event(100, s.node(node), "OOMKilling",
                     "Memory cgroup out of memory: Killed process 31337 (java) total-vm:12345678kB,"
                     " anon-rss:4194304kB, file-rss:0kB, shmem-rss:0kB, UID:1001 pgtables:9876kB oom_score_adj:985",
                     kernel_monitor(node), warning=True)
    system = s.event(101, s.node(node), "SystemOOM", "System OOM encountered, victim process: java, pid: 31337", k,
                     warning=True)
    ref = pod.container("reporting-api")
    backoff = s.event(115, ref, "BackOff", msg_backoff_restart(pod, "reporting-api"), k, warning=True)
    s.again(backoff, 125)
    live = s.event(160, ref, "Unhealthy", 'Liveness probe failed: Get "http://10.244.6.23:8080/healthz": dial tcp'
                   " 10.244.6.23:8080: connect: connection refused", k, warning=True, view="events")
    s.again(live, 170, 180)
    killing = s.event(181, ref, "Killing", "Container reporting-api failed liveness probe, will be restarted", k,
                      view="events")
    s.again(backoff, 200, 240, 280)
    s.symptoms += [system, backoff, live, killing]
    other_node = "node-1"
    other_oom = s.event(150, s.node(other_node), "OOMKilling",
                        "Memory cgroup out of memory: Killed process 8812 (python3) total-vm:2345678kB,"
                        " anon-rss:1048576kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:2100kB oom_score_adj:999",
                        kernel_monitor(other_node), warning=True)
    s.unrelated += [other_oom,
                    crash_loop(s, 130, s.workload_pod("shop", "cart", "3.4"), "node-2", "cart", 3),
                    readiness_blip(s, 190, s.workload_pod("default", "echo", "0.9"), "node-3", 8080, 2)]
    return s


@scenario
def scale_up_pending() -> Scenario:
    s = Scenario("scale-up-pending",
                 "The HPA scales orders/order-processor from 4 to 8; 3 new Pods fit on no node and the"
                 " cluster-autoscaler adds two nodes for them. A GPU Pod in ml that no node group can take is a"
                 " separate problem.")
    hpa = s.ref("HorizontalPodAutoscaler", "order-processor", "orders")
    s.event(0, hpa, "SuccessfulRescale",
            "New size: 8; reason: cpu resource utilization (percentage of request) above target",
            controller("horizontal-pod-autoscaler"), view="events")
    rs = f"order-processor-{template_hash('order-processor:2.7')}"
    s.event(0.3, s.ref("Deployment", "order-processor", "orders"), "ScalingReplicaSet",
            f"Scaled up replica set {rs} to 8 from 4", controller("deployment-controller"))
    pods = [s.pod("orders", f"{rs}-{s.suffix()}") for _ in range(4)]
    for i, pod in enumerate(pods):
        create_pod(s, 0.5 + 0.1 * i, s.ref("ReplicaSet", rs, "orders"), pod.name)
    start_pod(s, 1, pods[0], "node-2", f"{REGISTRY}/orders/order-processor:2.7", "processor", cached=True)
    ca = controller("cluster-autoscaler")
    for i, pod in enumerate(pods[1:]):
        pending = s.event(2 + 1.5 * i, pod, "FailedScheduling",
                          "0/4 nodes are available: 4 Insufficient cpu. preemption: 0/4 nodes are available: 4 No"
                          " preemption victims found for incoming pod.", SCHEDULER, warning=True, action="Scheduling",
                          view="events")
        s.every(pending, 62 + 1.5 * i, 60, 2)
        up = s.event(12 + 1.5 * i, pod, "TriggeredScaleUp", msg_scale_up("eks-compute-ng-3f9a21c4", 4, 6, 12), ca)
        if i == 0:
            s.root = pending
        else:
            s.symptoms.append(pending)
        s.symptoms.append(up)
    for n, node in enumerate(("node-5", "node-6")):
        s.event(150 + 4 * n, s.node_by_controller(node), "RegisteredNode",
                f"Node {node} event: Registered Node {node} in Controller", controller("node-controller"))
    for i, pod in enumerate(pods[1:]):
        start_pod(s, 175 + 2 * i, pod, ("node-5", "node-6")[i % 2], f"{REGISTRY}/orders/order-processor:2.7",
                  "processor")
    trainer = s.pod("ml", "trainer-0")
    gpu = s.event(30, trainer, "FailedScheduling",
                  "0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available: 4 No"
                  " preemption victims found for incoming pod.", SCHEDULER, warning=True, action="Scheduling",
                  view="events")
    s.every(gpu, 90, 60, 3)
    no = s.event(41, trainer, "NotTriggerScaleUp",
                 "pod didn't trigger scale-up: 2 node(s) didn't match Pod's node affinity/selector, 1 max node group"
                 " size reached", ca)
    s.every(no, 101, 60, 3)
    s.unrelated += [gpu, no, readiness_blip(s, 60, s.workload_pod("monitoring", "grafana", "11.3"), "node-1", 3000, 2)]
    return s


@scenario
def image_rollout() -> Scenario:
    s = Scenario("image-rollout",
                 "A rollout of payments/gateway points at an image the nodes may not pull (the registry denies"
                 " access): both Pods of the new ReplicaSet fail to pull and back off. A healthy rollout of"
                 " shop/cart and a crash loop in default at the same time are unrelated.")
    new = f"gateway-{template_hash('gateway:v1.8.0')}"
    old = f"gateway-{template_hash('gateway:v1.7.4')}"
    image = f"{REGISTRY}/payments/gateway:v1.8.0"
    deploy = s.ref("Deployment", "gateway", "payments")
    dc = controller("deployment-controller")
    s.root = s.event(0, deploy, "ScalingReplicaSet", f"Scaled up replica set {new} to 1", dc, view="events")
    for i, node in enumerate(("node-1", "node-3")):
        at = 0.2 + 27 * i
        if i:  # maxUnavailable 1 lets one old Pod go before the first new one is ready
            s.event(at - 0.2, deploy, "ScalingReplicaSet", f"Scaled down replica set {old} to 3 from 4", dc,
                    view="events")
            s.event(at - 0.1, deploy, "ScalingReplicaSet", f"Scaled up replica set {new} to 2 from 1", dc,
                    view="events")
        pod = s.pod("payments", f"{new}-{s.suffix()}")
        ref, k = pod.container("gateway"), kubelet(node)
        create_pod(s, at, s.ref("ReplicaSet", new, "payments"), pod.name)
        schedule_pod(s, at + 0.1, pod, node)
        s.event(at + 0.6, ref, "Pulling", f'Pulling image "{image}"', k)
        failed = s.event(at + 1.5, ref, "Failed", msg_pull_denied(image), k, warning=True)
        err = s.event(at + 1.5, ref, "Failed", "Error: ErrImagePull", k, warning=True)
        back = s.event(at + 2.5, ref, "BackOff", f'Back-off pulling image "{image}"', k, warning=True)
        ipb = s.event(at + 2.5, ref, "Failed", "Error: ImagePullBackOff", k, warning=True)
        s.again(failed, at + 16.5, at + 41.5)
        s.again(err, at + 16.5, at + 41.5)
        s.every(back, at + 32.5, 30, 2)
        s.every(ipb, at + 32.5, 30, 2)
        s.symptoms += [failed, err, back, ipb]
    old_pod = s.pod("payments", f"{old}-{s.suffix()}")
    s.event(26.9, s.ref("ReplicaSet", old, "payments"), "SuccessfulDelete", f"Deleted pod: {old_pod.name}",
            controller("replicaset-controller"))
    s.event(27.4, old_pod.container("gateway"), "Killing", "Stopping container gateway", kubelet("node-2"))
    cart = s.ref("Deployment", "cart", "shop")
    cart_rs = f"cart-{template_hash('cart:3.5.0')}"
    healthy = s.event(10, cart, "ScalingReplicaSet", f"Scaled up replica set {cart_rs} to 1", dc, view="events")
    cart_pod = s.pod("shop", f"{cart_rs}-{s.suffix()}")
    create_pod(s, 10.1, s.ref("ReplicaSet", cart_rs, "shop"), cart_pod.name)
    start_pod(s, 10.3, cart_pod, "node-2", f"{REGISTRY}/shop/cart:3.5.0", "cart")
    s.unrelated += [healthy, crash_loop(s, 40, s.workload_pod("default", "echo", "0.9"), "node-1", "echo", 2),
                    readiness_blip(s, 20, s.workload_pod("monitoring", "grafana", "11.3"), "node-3", 3000, 2)]
    return s


@scenario
def cni_sandbox() -> Scenario:
    s = Scenario("cni-sandbox",
                 "Calico cannot reach the API server from node-6: every Pod scheduled there, whatever its namespace,"
                 " fails to get a network sandbox. A sandbox failure on node-2 with another cause and a crash loop"
                 " on node-3 are unrelated.")
    node = "node-6"
    pods = [s.workload_pod("shop", "web", "v2.3.0"), s.workload_pod("payments", "ledger", "2.14"),
            s.pod("batch", f"report-29919480-{s.suffix()}")]
    for i, pod in enumerate(pods):
        at = 12 * i
        schedule_pod(s, at, pod, node, view="events")
        sandbox = "".join(s.rng.choice("0123456789abcdef") for _ in range(64))
        failed = s.event(at + 1.5, pod, "FailedCreatePodSandBox",
                         "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for"
                         f' sandbox "{sandbox}": plugin type="calico" failed (add): error getting ClusterInformation:'
                         ' Get "https://10.96.0.1:443/apis/crd.projectcalico.org/v1/clusterinformations/default":'
                         " dial tcp 10.96.0.1:443: i/o timeout", kubelet(node), warning=True)
        s.every(failed, at + 46.5, 45, 3)
        if i == 0:
            s.root = failed
        else:
            s.symptoms.append(failed)
    api = s.workload_pod("shop", "api", "5.0.2")
    schedule_pod(s, 20, api, "node-2", view="events")
    other = s.event(21.5, api, "FailedCreatePodSandBox",
                    'Failed to create pod sandbox: rpc error: code = Unknown desc = failed to reserve sandbox name'
                    f' "{api.name}_shop_{api.uid}_0": name "{api.name}_shop_{api.uid}_0" is reserved for'
                    f' "{"".join(s.rng.choice("0123456789abcdef") for _ in range(64))}"', kubelet("node-2"),
                    warning=True)
    s.unrelated += [other, crash_loop(s, 60, s.workload_pod("monitoring", "grafana", "11.3"), "node-3", "grafana", 2)]
    return s


@scenario
def config_missing() -> Scenario:
    s = Scenario("config-missing",
                 "shop/orders is deployed before its configuration: its Pods cannot mount the ConfigMap app-config"
                 " and, once it is created, cannot start because the Secret db-creds is missing too. A missing"
                 " Secret of alertmanager and a crash loop in payments are separate problems.")
    rs = f"orders-{template_hash('orders:1.0.0')}"
    image = f"{REGISTRY}/shop/orders:1.0.0"
    pods = [(s.pod("shop", f"{rs}-{s.suffix()}"), "node-1"), (s.pod("shop", f"{rs}-{s.suffix()}"), "node-2")]
    mounts = []
    for i, (pod, node) in enumerate(pods):
        at = 0.5 * i
        create_pod(s, at, s.ref("ReplicaSet", rs, "shop"), pod.name)
        schedule_pod(s, at + 0.2, pod, node)
        mount = s.event(at + 1.2 + i, pod, "FailedMount",
                        'MountVolume.SetUp failed for volume "config" : configmap "app-config" not found',
                        kubelet(node), warning=True)
        s.again(mount, *(at + 1.2 + i + 2 ** n for n in range(1, 7)))
        mounts.append(mount)
    s.root = mounts[0]
    s.symptoms.append(mounts[1])
    timeout = s.event(121, pods[0][0], "FailedMount",
                      f"Unable to attach or mount volumes: unmounted volumes=[config], unattached volumes=[config"
                      f" kube-api-access-{s.suffix()}]: timed out waiting for the condition", kubelet("node-1"),
                      warning=True)
    s.symptoms.append(timeout)
    # app-config is created at 10:02:10 (no Event); the next sync mounts it and meets the missing Secret.
    for i, (pod, node) in enumerate(pods):
        ref, k = pod.container("orders"), kubelet(node)
        at = 140 + 3 * i
        pulled = s.event(at, ref, "Pulled", f'Container image "{image}" already present on machine', k)
        failed = s.event(at + 0.1, ref, "Failed", 'Error: secret "db-creds" not found', k, warning=True)
        retries = [at + d for d in (12, 26, 50)]
        s.again(pulled, *retries)
        s.again(failed, *(r + 0.1 for r in retries))
        s.symptoms.append(failed)
    am = s.pod("monitoring", "alertmanager-main-1")
    secret = s.event(60, am, "FailedMount",
                     'MountVolume.SetUp failed for volume "config-volume" : secret "alertmanager-main-generated" not'
                     " found", kubelet("node-3"), warning=True)
    s.every(secret, 62, 8, 3)
    s.unrelated += [secret, crash_loop(s, 90, s.workload_pod("payments", "ledger", "2.14"), "node-3", "ledger", 3)]
    return s


@scenario
def disk_pressure_eviction() -> Scenario:
    s = Scenario("disk-pressure-eviction",
                 "node-5 runs out of ephemeral storage: the kubelet reports DiskPressure, fails to free images and"
                 " evicts two Pods; their replacements cannot go anywhere and ask the cluster-autoscaler for a"
                 " node. Memory-pressure evictions on node-2 are a separate incident.")
    name = "node-5"
    node, k = s.node(name), kubelet(name)
    s.root = s.event(0, node, "NodeHasDiskPressure", f"Node {name} status is now: NodeHasDiskPressure", k)
    threshold = s.event(1, node, "EvictionThresholdMet", "Attempting to reclaim ephemeral-storage", k, warning=True)
    s.every(threshold, 61, 60, 2)
    gc = s.event(2, node, "FreeDiskSpaceFailed",
                 "Failed to garbage collect required amount of images. Attempted to free 8316240691 bytes, but only"
                 " found 0 bytes eligible to free.", k, warning=True)
    s.symptoms += [threshold, gc]
    ca = controller("cluster-autoscaler")
    for i, (ns, deployment, usage) in enumerate((("shop", "cart", "9876543Ki"), ("default", "echo", "4718592Ki"))):
        victim = s.workload_pod(ns, deployment, "1")
        at = 10 + 12 * i
        evicted = s.event(at, victim, "Evicted",
                          msg_evicted("ephemeral-storage", "4281515097", "3975508Ki", deployment, usage), k,
                          warning=True)
        killing = s.event(at + 0.5, victim.container(deployment), "Killing", f"Stopping container {deployment}", k)
        rs = victim.name.rsplit("-", 1)[0]
        replacement = s.pod(ns, f"{rs}-{s.suffix()}")
        create_pod(s, at + 1, s.ref("ReplicaSet", rs, ns), replacement.name)
        pending = s.event(at + 1.2, replacement, "FailedScheduling",
                          "0/6 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure:"
                          " }, 5 Insufficient cpu. preemption: 0/6 nodes are available: 1 Preemption is not helpful"
                          " for scheduling, 5 No preemption victims found for incoming pod.", SCHEDULER,
                          warning=True, action="Scheduling", view="events")
        s.every(pending, at + 61.2, 60, 2)
        up = s.event(at + 11, replacement, "TriggeredScaleUp", msg_scale_up("eks-general-ng-5c8d2e71", 6, 7, 10), ca)
        s.symptoms += [evicted, killing, pending, up]
    other = s.workload_pod("monitoring", "loki", "3.3")
    s.event(40, s.node("node-2"), "NodeHasInsufficientMemory", "Node node-2 status is now: NodeHasInsufficientMemory",
            kubelet("node-2"))
    memory = s.event(45, other, "Evicted",
                     "The node was low on resource: memory. Threshold quantity: 100Mi, available: 91236Ki. Container"
                     " loki was using 3254176Ki, request is 1Gi, has larger consumption of memory. ", kubelet("node-2"),
                     warning=True)
    gpu = s.event(30, s.pod("ml", "trainer-0"), "FailedScheduling",
                  "0/6 nodes are available: 6 Insufficient nvidia.com/gpu. preemption: 0/6 nodes are available: 6 No"
                  " preemption victims found for incoming pod.", SCHEDULER, warning=True, action="Scheduling")
    s.unrelated += [memory, gpu, crash_loop(s, 50, s.workload_pod("payments", "ledger", "2.14"), "node-1", "ledger", 2)]
    return s


def main() -> None:
    for path in HERE.glob("*.jsonl"):  # a renamed scenario must not leave its old files behind
        path.unlink()
        path.with_name(path.name.removesuffix(".jsonl") + ".expected.yaml").unlink(missing_ok=True)
    for make in SCENARIOS:
        make().write()


if __name__ == "__main__":
    main()
