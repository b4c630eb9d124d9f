"""Writes events.jsonl: 40 minutes of a busy cluster's Events, as a watch stream (JSON Lines).

Run: .venv/bin/python tests/data/demo/generate.py

Every line is one watch notification, ``{"type": "ADDED"|"MODIFIED"|"DELETED",
"object": <Event>}``, as ``kubectl get events -A --watch --output-watch-events
-o json`` or the raw watch API gives them; some Events are served as core/v1,
others as events.k8s.io/v1 (as if two watches were merged). The first lines
are the initial list: Events created before 10:00 that expire (DELETED, the
1 h TTL) a few minutes into the recording. The cluster: nodes node-1..node-6
(node-7 joins at 10:23 after a scale-up), namespaces default, kube-system,
shop, payments, monitoring, batch, widgets. ``eventkit`` explains the shapes.

The story (times are minutes after 10:00; the README has the expected incidents):

* background: healthy rollouts of default/nginx and kube-system/coredns,
  the batch CronJobs report (every 10 minutes) and cleanup (every 5),
  rolling updates of the monitoring/prometheus StatefulSet and the
  monitoring/node-agent DaemonSet, an HPA scale-up and scale-down of
  shop/cart, node-7 joining with its node-agent Pod, leader elections;
* a) 05-12  image-pull storm: shop/web rolls out web-7d9f8c6b5d, whose image
  tag v2.3.1 does not exist; its 3 Pods fail to pull and back off;
* b) 06-20  storage slowdown on node-3: volumes of payments/db-0 and shop/api
  attach late, mounts time out; minutes later db-0, api and shop/worker on
  node-3 fail their probes and crash-loop;
* c) 20-28  disk pressure on node-5: eviction threshold, image GC failure,
  3 Pods evicted, their replacements pending on the disk-pressure taint,
  the cluster-autoscaler adds node-7 (one replacement still cannot fit);
* d) 03-28  probe-failure loop of shop/checkout on node-2: liveness fails,
  the container is killed and backs off, round after round;
* e) 31-38  OOM kills on node-4: the kernel kills payments/ledger's JVM
  twice, the Pod crash-loops;
* odd input at 25: an unknown reason of a CRD with ANSI escapes and Unicode,
  missing optional fields, and a 10 KiB message.
"""

from __future__ import annotations

import sys
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
    msg_pull_not_found,
    msg_scale_up,
    schedule_pod,
    scheduled_minute,
    start_pod,
    template_hash,
)

OUT = Path(__file__).with_name("events.jsonl")
EXPECTED_OUT = Path(__file__).with_name("expected.yaml")
REGISTRY = "registry.example.com"
NODE_GROUP = "eks-general-ng-5c8d2e71"

rec = Recording("kubevents demo 2026-11-20")
INCIDENTS: dict[str, Expected] = {}  # problem -> what a correct correlation engine concludes


def incident(name: str, story: str) -> Expected:
    INCIDENTS[name] = Expected(story)
    return INCIDENTS[name]


def rs_name(deployment: str, version: str) -> str:
    """A ReplicaSet name with a real-looking pod-template-hash for one version of a Deployment."""
    return f"{deployment}-{template_hash(deployment + ':' + version)}"


def pod_of(namespace: str, replicaset: str) -> tuple[str, Ref]:
    name = f"{replicaset}-{rec.suffix()}"
    return name, rec.pod(namespace, name)


def any_node() -> str:
    return f"node-{rec.rng.randint(1, 6)}"


# -- background -----------------------------------------------------------------------------


def initial_list() -> None:
    """Events from before 10:00 that the watch lists first; their TTL runs out during the recording."""
    lease = rec.ref("Lease", "kube-controller-manager", "kube-system")
    old = [rec.event(-3420, lease, "LeaderElection", f"cp-1_{rec.uid()} became leader",
                     controller("kube-controller-manager"))]
    node, k = rec.node("node-6"), kubelet("node-6")
    old.append(rec.event(-3300, node, "Starting", "Starting kubelet.", k))
    for condition in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"):
        old.append(rec.event(-3299, node, condition, f"Node node-6 status is now: {condition}", k))
    old.append(rec.event(-3290, rec.node_by_controller("node-6"), "RegisteredNode",
                         "Node node-6 event: Registered Node node-6 in Controller", controller("node-controller")))
    old.append(rec.event(-3280, node, "NodeReady", "Node node-6 status is now: NodeReady", k))
    for event in old:
        rec.expire(event)


def rolling_update(t: float, namespace: str, deployment: str, versions: tuple[str, str], image: str,
                   container: str, old_nodes: tuple[str, str], new_nodes: tuple[str, str]) -> None:
    """A healthy rolling update of a 2-replica Deployment (maxSurge 1, maxUnavailable 0)."""
    deploy = rec.ref("Deployment", deployment, namespace)
    old, new = rs_name(deployment, versions[0]), rs_name(deployment, versions[1])
    dc, rc = controller("deployment-controller"), controller("replicaset-controller")
    old_pods = [f"{old}-{rec.suffix()}" for _ in range(2)]
    for i in range(2):
        at = t + 40 * i
        rec.event(at, deploy, "ScalingReplicaSet",
                  f"Scaled up replica set {new} to 1" if i == 0 else f"Scaled up replica set {new} to 2 from 1", dc)
        name, pod = pod_of(namespace, new)
        create_pod(rec, at + 0.1, rec.ref("ReplicaSet", new, namespace), name)
        started = start_pod(rec, at + 0.2, pod, new_nodes[i], image, container, cached=i > 0)
        rec.event(started + 12, deploy, "ScalingReplicaSet", f"Scaled down replica set {old} to {1 - i} from {2 - i}",
                  dc)
        rec.event(started + 12.1, rec.ref("ReplicaSet", old, namespace), "SuccessfulDelete",
                  f"Deleted pod: {old_pods[i]}", rc)
        rec.event(started + 12.3, rec.pod(namespace, old_pods[i]).container(container), "Killing",
                  f"Stopping container {container}", kubelet(old_nodes[i]))


def daemonset_update(t: float) -> None:
    """A rolling update of the monitoring/node-agent DaemonSet, one node at a time (maxUnavailable 1)."""
    ds = rec.ref("DaemonSet", "node-agent", "monitoring")
    dsc = controller("daemonset-controller")
    for n in range(1, 7):
        node = f"node-{n}"
        old, new = f"node-agent-{rec.suffix()}", f"node-agent-{rec.suffix()}"
        rec.event(t, ds, "SuccessfulDelete", f"Deleted pod: {old}", dsc, view="events")
        rec.event(t + 0.3, rec.pod("monitoring", old).container("agent"), "Killing", "Stopping container agent",
                  kubelet(node), view="events")
        create_pod(rec, t + 31, ds, new, view="events")
        t = start_pod(rec, t + 31.2, rec.pod("monitoring", new), node, f"{REGISTRY}/monitoring/node-agent:2.9.1",
                      "agent", view="events") + rec.rng.uniform(8, 20)


def cronjob_run(t: float, cronjob: str, image: str, every_min: int, runtime: tuple[int, int]) -> None:
    """One run of a batch CronJob; it keeps 3 finished Jobs, so the run of 3 schedules ago is deleted."""
    cron = rec.ref("CronJob", cronjob, "batch")
    cc = controller("cronjob-controller")
    job_name = f"{cronjob}-{scheduled_minute(t)}"
    job = rec.ref("Job", job_name, "batch")
    rec.event(t, cron, "SuccessfulCreate", f"Created job {job_name}", cc, view="events")
    name = f"{job_name}-{rec.suffix()}"
    create_pod(rec, t + 0.2, job, name, view="events")
    done = start_pod(rec, t + 0.3, rec.pod("batch", name), any_node(), image, cronjob, cached=t > 0, view="events")
    done += rec.rng.randint(*runtime)
    rec.event(done, job, "Completed", "Job completed", controller("job-controller"), view="events")
    rec.event(done + 1, cron, "SawCompletedJob", f"Saw completed job: {job_name}, status: Complete", cc, view="events")
    rec.event(done + 1.1, cron, "SuccessfulDelete", f"Deleted job {cronjob}-{scheduled_minute(t) - 3 * every_min}",
              cc, view="events")


def prometheus_restart(t: float) -> None:
    """A rolling update of the monitoring/prometheus StatefulSet, highest ordinal first."""
    sts = rec.ref("StatefulSet", "prometheus", "monitoring")
    sc = controller("statefulset-controller")
    for ordinal, node in ((1, "node-4"), (0, "node-6")):
        name = f"prometheus-{ordinal}"
        pod = rec.pod("monitoring", name)
        rec.event(t, sts, "SuccessfulDelete", f"delete Pod {name} in StatefulSet prometheus successful", sc)
        rec.event(t + 0.2, pod.container("prometheus"), "Killing", "Stopping container prometheus", kubelet(node))
        create_pod(rec, t + 31, sts, name)
        t = start_pod(rec, t + 31.2, pod, node, "quay.io/prometheus/prometheus:v3.1.0", "prometheus") + 45


def hpa_cart(t_up: float, t_down: float) -> list[str]:
    """shop/cart scales 3 -> 5 on CPU, and back to 3. Returns the names of its Pods started here."""
    hpa, deploy = rec.ref("HorizontalPodAutoscaler", "cart", "shop"), rec.ref("Deployment", "cart", "shop")
    rs = rs_name("cart", "3.4.1")
    rs_ref = rec.ref("ReplicaSet", rs, "shop")
    rec.event(t_up, hpa, "SuccessfulRescale",
              "New size: 5; reason: cpu resource utilization (percentage of request) above target",
              controller("horizontal-pod-autoscaler"), view="events")
    rec.event(t_up + 0.2, deploy, "ScalingReplicaSet", f"Scaled up replica set {rs} to 5 from 3",
              controller("deployment-controller"), view="events")
    names = []
    for i in range(2):
        name, pod = pod_of("shop", rs)
        names.append(name)
        create_pod(rec, t_up + 0.3 + i * 0.1, rs_ref, name, view="events")
        start_pod(rec, t_up + 0.5 + i * 0.2, pod, f"node-{5 + i}" if i == 0 else "node-1",
                  f"{REGISTRY}/shop/cart:3.4.1", "cart", cached=i == 1, view="events")
    rec.event(t_down, hpa, "SuccessfulRescale", "New size: 3; reason: All metrics below target",
              controller("horizontal-pod-autoscaler"), view="events")
    rec.event(t_down + 0.2, deploy, "ScalingReplicaSet", f"Scaled down replica set {rs} to 3 from 5",
              controller("deployment-controller"), view="events")
    for i, name in enumerate([*names[1:], f"{rs}-{rec.suffix()}"]):
        rec.event(t_down + 0.3 + i * 0.1, rs_ref, "SuccessfulDelete", f"Deleted pod: {name}",
                  controller("replicaset-controller"), view="events")
        rec.event(t_down + 0.6 + i * 1.3, rec.pod("shop", name).container("cart"), "Killing",
                  "Stopping container cart", kubelet(["node-1", "node-2"][i]), view="events")
    return names


def node_joins(t: float, name: str) -> None:
    """A new node registers and becomes Ready; the node-agent DaemonSet starts its Pod there."""
    node, k = rec.node(name), kubelet(name)
    rec.event(t, node, "Starting", "Starting kubelet.", k)
    for condition in ("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID"):
        rec.event(t + 0.5, node, condition, f"Node {name} status is now: {condition}", k)
    rec.event(t + 1, node, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods", k)
    rec.event(t + 4, rec.node_by_controller(name), "RegisteredNode",
              f"Node {name} event: Registered Node {name} in Controller", controller("node-controller"))
    rec.event(t + 22, node, "NodeReady", f"Node {name} status is now: NodeReady", k)
    pod = "node-agent-7xk2p"
    create_pod(rec, t + 23, rec.ref("DaemonSet", "node-agent", "monitoring"), pod)
    start_pod(rec, t + 23.2, rec.pod("monitoring", pod), name, f"{REGISTRY}/monitoring/node-agent:2.9.1", "agent")


def leader_change(t: float) -> None:
    rec.event(t, rec.ref("Lease", "kube-scheduler", "kube-system"), "LeaderElection",
              f"cp-2_{rec.uid()} became leader", controller("default-scheduler"))


# -- a) image-pull storm after a bad rollout --------------------------------------------------


def image_pull_storm(t: float) -> None:
    want = incident("image-pull-storm", "shop/web rolls out web-7d9f8c6b5d with an image tag that does not exist:"
                    " its 3 Pods on node-1..node-3 fail to pull and back off.")
    deploy = rec.ref("Deployment", "web", "shop")
    old, new = rs_name("web", "v2.3.0"), "web-7d9f8c6b5d"
    image = f"{REGISTRY}/shop/web:v2.3.1"
    dc = controller("deployment-controller")
    # 6 replicas, 25 % surge (2) and unavailable (1): the new ReplicaSet gets 3 Pods, then the rollout stalls.
    steps = [(0, f"Scaled up replica set {new} to 2"), (0.1, f"Scaled down replica set {old} to 5 from 6"),
             (0.3, f"Scaled up replica set {new} to 3 from 2")]
    scaled = [rec.event(t + dt, deploy, "ScalingReplicaSet", message, dc) for dt, message in steps]
    want.root = scaled[0]
    rs_ref = rec.ref("ReplicaSet", new, "shop")
    for i, name in enumerate(["web-7d9f8c6b5d-x2k4p", "web-7d9f8c6b5d-q8r7m", "web-7d9f8c6b5d-z5n2w"]):
        at, node = t + 0.2 + 2.3 * i, f"node-{i + 1}"
        pod = rec.pod("shop", name)
        ref, k = pod.container("web"), kubelet(node)
        create_pod(rec, at, rs_ref, name)
        schedule_pod(rec, at + 0.1, pod, node)
        rec.event(at + 1, ref, "Pulling", f'Pulling image "{image}"', k)
        failed = rec.event(at + 2, ref, "Failed", msg_pull_not_found(image), k, warning=True)
        err = rec.event(at + 2, ref, "Failed", "Error: ErrImagePull", k, warning=True)
        back = rec.event(at + 3, ref, "BackOff", f'Back-off pulling image "{image}"', k, warning=True)
        ipb = rec.event(at + 3, ref, "Failed", "Error: ImagePullBackOff", k, warning=True)
        # The kubelet retries the pull with a doubling back-off (10 s .. 5 min) and reports
        # the back-off at every pod sync in between.
        pulls = [at + 2 + d for d in (15, 40, 85, 170, 330)]
        rec.again(failed, *pulls)
        rec.again(err, *pulls)
        rec.every(back, at + 33, 30, 11)
        rec.every(ipb, at + 33, 30, 11)
        want.symptoms += [failed, err, back, ipb]


# -- b) storage slowdown on node-3 ------------------------------------------------------------


def storage_slowdown(t: float) -> None:
    want = incident("storage-node-3", "Volumes of payments/db-0 and shop/api attach late and their mounts time out"
                    " on node-3; minutes later db-0, api and shop/worker on node-3 fail probes and crash-loop.")
    node = "node-3"
    k = kubelet(node)
    ad = controller("attachdetach-controller")
    db, api = rec.pod("payments", "db-0"), rec.pod("shop", f"{rs_name('api', '5.0.2')}-k4m2p")
    worker = rec.pod("shop", f"{rs_name('worker', '5.0.2')}-{rec.suffix()}")
    volumes = [
        (db, "data", "pvc-4b1e2c0a-7d3f-4e21-9a0b-1c2d3e4f5a6b", "vol-0a1b2c3d4e5f67890"),
        (api, "cache", "pvc-9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b", "vol-0f9e8d7c6b5a43210"),
    ]
    # The Pods land on node-3 (db-0 recreated by its StatefulSet, api by its ReplicaSet).
    create_pod(rec, t - 20, rec.ref("StatefulSet", "db", "payments"), "db-0")
    schedule_pod(rec, t - 19.8, db, node)
    create_pod(rec, t - 5, rec.ref("ReplicaSet", api.name.rsplit("-", 1)[0], "shop"), api.name)
    schedule_pod(rec, t - 4.8, api, node)
    for i, (pod, volume, pvc, vol) in enumerate(volumes):
        at = t + 15 * i
        attach = rec.event(at, pod, "FailedAttachVolume",
                           f'AttachVolume.Attach failed for volume "{pvc}" : timed out waiting for external-attacher'
                           f" of ebs.csi.aws.com CSI driver to attach volume {vol}", ad, warning=True, view="events")
        rec.every(attach, at + 125, 125, 2)
        mount = rec.event(at + 110, pod, "FailedMount",
                          f"Unable to attach or mount volumes: unmounted volumes=[{volume}], unattached volumes="
                          f"[{volume} kube-api-access-{rec.suffix()}]: timed out waiting for the condition", k,
                          warning=True)
        rec.every(mount, at + 110 + 125, 125, 2)
        rec.event(at + 330, pod, "SuccessfulAttachVolume", f'AttachVolume.Attach succeeded for volume "{pvc}" ', ad,
                  view="events")
        if want.root is None:
            want.root = attach
        else:
            want.symptoms.append(attach)
        want.symptoms.append(mount)
    device = rec.event(t + 365, api, "FailedMount",
                       f'MountVolume.MountDevice failed for volume "{volumes[1][2]}" : rpc error: code ='
                       " DeadlineExceeded desc = context deadline exceeded", k, warning=True)
    rec.again(device, t + 430)
    want.symptoms.append(device)
    start_pod(rec, t + 400, db, node, f"{REGISTRY}/payments/postgres:16.4", "postgres", cached=True,
              scheduled=False)
    start_pod(rec, t + 470, api, node, f"{REGISTRY}/shop/api:5.0.2", "api", cached=True, scheduled=False)
    # Minutes later: the slow disk makes the database miss its probes; what depends on it follows.
    t += 480
    pg = db.container("postgres")
    ready = rec.event(t, pg, "Unhealthy", 'Readiness probe failed: command "pg_isready -U postgres" timed out', k,
                      warning=True, view="events")
    rec.every(ready, t + 10, 10, 8)
    live = rec.event(t + 35, pg, "Unhealthy", 'Liveness probe failed: command "pg_isready -U postgres" timed out',
                     k, warning=True, view="events")
    rec.again(live, t + 45, t + 55)
    killing = rec.event(t + 56, pg, "Killing", "Container postgres failed liveness probe, will be restarted", k,
                        view="events")
    back = rec.event(t + 70, pg, "BackOff", msg_backoff_restart(db, "postgres"), k, warning=True, view="events")
    rec.every(back, t + 100, 40, 6)
    want.symptoms += [ready, live, killing, back]
    api_ready = rec.event(t + 20, api.container("api"), "Unhealthy",
                          'Readiness probe failed: Get "http://10.244.3.21:8080/ready": context deadline exceeded'
                          " (Client.Timeout exceeded while awaiting headers)", k, warning=True, view="events")
    rec.every(api_ready, t + 35, 15, 6)
    api_back = rec.event(t + 90, api.container("api"), "BackOff", msg_backoff_restart(api, "api"), k, warning=True,
                         view="events")
    rec.every(api_back, t + 130, 45, 5)
    worker_back = rec.event(t + 50, worker.container("worker"), "BackOff", msg_backoff_restart(worker, "worker"), k,
                            warning=True, view="events")
    rec.every(worker_back, t + 80, 60, 5)
    want.symptoms += [api_ready, api_back, worker_back]


# -- c) disk pressure on node-5 ---------------------------------------------------------------


def node_disk_pressure(t: float, cart_pod: str) -> None:
    want = incident("disk-pressure-node-5", "node-5 runs short of ephemeral storage: image GC fails, 3 Pods are"
                    " evicted, their replacements wait on the disk-pressure taint and the cluster-autoscaler adds"
                    " node-7 (grafana's replacement still fits nowhere).")
    name = "node-5"
    node, k = rec.node(name), kubelet(name)
    want.root = rec.event(t, node, "NodeHasDiskPressure", f"Node {name} status is now: NodeHasDiskPressure", k)
    threshold = rec.event(t + 1, node, "EvictionThresholdMet", "Attempting to reclaim ephemeral-storage", k,
                          warning=True)
    rec.every(threshold, t + 61, 60, 3)
    free = rec.event(t + 2, node, "FreeDiskSpaceFailed",
              "Failed to garbage collect required amount of images. Attempted to free 8316240691 bytes, but only"
              " found 0 bytes eligible to free.", k, warning=True)
    gc = rec.event(t + 30, node, "ImageGCFailed",
                   "Failed to garbage collect required amount of images. Attempted to free 8126853939 bytes, but only"
                   " found 0 bytes eligible to free.", k, warning=True)
    rec.again(gc, t + 330)
    want.symptoms += [threshold, free, gc]
    # cart's Pod started on node-5 by the HPA scale-up, and two Pods that were there before 10:00.
    victims = [("shop", cart_pod, "cart", "9876543Ki"),
               ("monitoring", f"{rs_name('grafana', '11.3.0')}-{rec.suffix()}", "grafana", "6291456Ki"),
               ("default", f"{rs_name('echo', '0.9.1')}-{rec.suffix()}", "echo", "4718592Ki")]
    for i, (ns, victim_name, container, usage) in enumerate(victims):
        at = t + 10 + 12 * i
        rs = victim_name.rsplit("-", 1)[0]
        victim = rec.pod(ns, victim_name)
        evicted = rec.event(at, victim, "Evicted",
                            msg_evicted("ephemeral-storage", "4281515097", "3975508Ki", container, usage), k,
                            warning=True)
        killing = rec.event(at + 0.5, victim.container(container), "Killing", f"Stopping container {container}", k)
        replacement = f"{rs}-{rec.suffix()}"
        create_pod(rec, at + 1, rec.ref("ReplicaSet", rs, ns), replacement)
        pending = rec.pod(ns, replacement)
        fs = rec.event(at + 1.2, pending, "FailedScheduling",
                       "0/6 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/disk-pressure: },"
                       " 5 Insufficient cpu. preemption: 0/6 nodes are available: 1 Preemption is not helpful for"
                       " scheduling, 5 No preemption victims found for incoming pod.", SCHEDULER, warning=True,
                       action="Scheduling", view="events")
        ca = controller("cluster-autoscaler")
        if container == "grafana":  # pinned to the monitoring node group, which is at its maximum
            rec.every(fs, at + 61.2, 60, 6)
            no = rec.event(at + 11, pending, "NotTriggerScaleUp",
                           "pod didn't trigger scale-up: 1 node(s) didn't match Pod's node affinity/selector,"
                           " 1 max node group size reached", ca)
            rec.every(no, at + 71, 60, 5)
        else:
            rec.every(fs, at + 61.2, 60, 2)
            no = rec.event(at + 11, pending, "TriggeredScaleUp", msg_scale_up(NODE_GROUP, 6, 7, 10), ca)
            schedule_pod(rec, t + 215 + i, pending, "node-7")
        want.symptoms += [evicted, killing, fs, no]
    rec.event(t + 480, node, "NodeHasNoDiskPressure", f"Node {name} status is now: NodeHasNoDiskPressure", k)


# -- d) probe-failure loop ------------------------------------------------------------------


def probe_loop(t: float) -> None:
    want = incident("probe-loop-checkout", "shop/checkout on node-2 fails its liveness probe with 503, is killed"
                    " and backs off, round after round for 25 minutes.")
    node = "node-2"
    pod = rec.pod("shop", f"{rs_name('checkout', '1.9.4')}-{rec.suffix()}")
    ref, k = pod.container("checkout"), kubelet(node)
    unhealthy = killing = backoff = None
    # Liveness period 10 s, failureThreshold 3; the restart back-off doubles up to 5 minutes.
    for gap in (0, 70, 90, 120, 160, 200, 240, 300, 300):
        t += gap
        probes = (t, t + 10, t + 20)
        if unhealthy is None:
            unhealthy = rec.event(t, ref, "Unhealthy", "Liveness probe failed: HTTP probe failed with statuscode: 503",
                                  k, warning=True, view="events")
            rec.again(unhealthy, *probes[1:])
            killing = rec.event(t + 20.5, ref, "Killing", "Container checkout failed liveness probe, will be restarted",
                                k, view="events")
            backoff = rec.event(t + 31, ref, "BackOff", msg_backoff_restart(pod, "checkout"), k, warning=True,
                                view="events")
        else:
            assert killing is not None and backoff is not None
            rec.again(unhealthy, *probes)
            rec.again(killing, t + 20.5)
            rec.every(backoff, t + 31, 60, max(1, gap // 120))
    assert unhealthy is not None and killing is not None and backoff is not None
    want.root, want.symptoms = unhealthy, [killing, backoff]


# -- e) OOM kills -----------------------------------------------------------------------------


def oom(t: float) -> None:
    want = incident("oom-node-4", "The kernel OOM killer on node-4 kills payments/ledger's JVM twice; the Pod"
                    " crash-loops.")
    name = "node-4"
    node = rec.node(name)
    pod = rec.pod("payments", f"{rs_name('ledger', '2.14.0')}-{rec.suffix()}")
    k = kubelet(name)
    for at, pid in ((t, 4242), (t + 240, 4388)):
        killed = rec.event(at, node, "OOMKilling",
                  f"Memory cgroup out of memory: Killed process {pid} (java) total-vm:8123456kB, anon-rss:2097152kB,"
                  f" file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:4567kB oom_score_adj:936",
                  kernel_monitor(name), warning=True)
        system = rec.event(at + 1, node, "SystemOOM", f"System OOM encountered, victim process: java, pid: {pid}", k,
                           warning=True)
        if want.root is None:
            want.root = killed
        else:
            want.symptoms.append(killed)
        want.symptoms.append(system)
    back = rec.event(t + 25, pod.container("ledger"), "BackOff", msg_backoff_restart(pod, "ledger"), k, warning=True)
    rec.every(back, t + 55, 45, 8)
    want.symptoms.append(back)


# -- odd but valid input ----------------------------------------------------------------------


def odd(t: float) -> list[EventState]:
    """Odd but valid Events, each a lone warning that belongs to no incident."""
    widget = rec.ref("Widget", "gizmo", "widgets")
    # A hand-rolled operator: no count, no reportingInstance, no eventTime, no action.
    hiccup = rec.event(t, widget, "CustomOperatorHiccup",
              "reconcile failed: \x1b[31mupstream timeout\x1b[0m\tretrying ⟳ ünïcødé 日本語 🚀\r\n"
              "second line \u200b(zero-width space) \x07bell",
              controller("widget-operator"), warning=True, drop=("count", "reportingInstance", "eventTime"))
    name = f"{rs_name('importer', '0.7.0')}-{rec.suffix()}"
    pod = rec.pod("shop", name)
    output = "".join(f"warmup: loading catalog shard {n:03d}/120 ... cache miss, fetched 512 items in 0.08s\\n"
                     for n in range(1, 61))
    hook = rec.event(t + 10, pod.container("importer"), "FailedPostStartHook",
              f"Exec lifecycle hook ([/bin/sh -c /opt/warmup.sh]) for Container \"importer\" in Pod"
              f' "{name}_shop({pod.uid})" failed - error: command \'/bin/sh -c /opt/warmup.sh\' exited with 1: '
              f'{output}, message: "{output}"', kubelet("node-1"), warning=True)
    return [hiccup, hook]


def write_expected(lone: list[EventState]) -> None:
    """expected.yaml: per problem, the root cause and symptoms; unrelated are the other problems' roots and lone Events."""
    out = ["# The demo's problems as a correct correlation engine sees them: written by generate.py (do not edit).",
           "# Same shape as tests/data/scenarios/*.expected.yaml, one entry per problem.", "incidents:"]
    for name, want in INCIDENTS.items():
        want.unrelated = [e for other, o in INCIDENTS.items() if other != name for e in [o.root] if e] + lone
        lines = want.yaml_lines(rec, indent="    ")
        out += [f"  - name: {name}", *lines]
    EXPECTED_OUT.write_text("\n".join(out) + "\n")


def main() -> None:
    initial_list()
    rolling_update(60, "default", "nginx", ("1.27.2", "1.27.3"), "docker.io/library/nginx:1.27.3", "nginx",
                   ("node-4", "node-3"), ("node-1", "node-2"))
    rolling_update(2150, "kube-system", "coredns", ("v1.11.3", "v1.11.3-restart"),
                   "registry.k8s.io/coredns/coredns:v1.11.3", "coredns", ("node-1", "node-6"), ("node-2", "node-6"))
    daemonset_update(560)
    for t in range(0, 2400, 600):
        cronjob_run(t, "report", f"{REGISTRY}/batch/report:4.1.0", 10, (40, 75))
    for t in range(120, 2400, 300):
        cronjob_run(t, "cleanup", f"{REGISTRY}/batch/cleanup:1.2.0", 5, (4, 12))
    prometheus_restart(1000)
    cart = hpa_cart(700, 2000)
    node_joins(1388, "node-7")  # after the DaemonSet update: its Pod runs the new version
    leader_change(1550)
    image_pull_storm(300)
    storage_slowdown(400)
    node_disk_pressure(1200, cart[0])
    probe_loop(200)
    oom(1860)
    lone = odd(1500)
    lines = rec.write_jsonl(OUT)
    write_expected(lone)
    check_watch_lines(lines)
    check_no_twins(lines)
    print(f"{OUT}: {len(lines)} lines")


if __name__ == "__main__":
    main()
