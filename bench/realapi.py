"""kubevents against the real kube-apiserver, and side by side with the Collector's receiver.

The servers are the integration suite's (``tests/integration/servers.py``):
etcd and kube-apiserver built from their pinned Go modules by
``tests/servers/build.sh`` (``make servers``), RBAC from deploy/ applied as
is, and kubevents connecting with the least-privilege token those roles bind.
Without the binaries the sections are left out with one line.

* :func:`list_then_watch` (section ``apiserver``): the distinct Events of the
  first lines of the bench mix (each in its final state, their times moved to
  now) are written into the apiserver first, as fast as it takes them; then
  ``kubevents run`` (default settings, OTLP/gRPC to the bench receiver, on the
  measured core) starts, lists them all in pages and watches. Timed from its
  start (``READY``, settings loaded) and from its first record to the last
  occurrence at the receiver. The replay of the same Events (as ADDED lines)
  runs in the same section for the ratio.
* :func:`side_by_side` (section ``peer``): ``kubevents run`` compiled and in
  pure Python and the Collector's ``k8s_events`` receiver (its configuration
  of the comparison, ``tests/servers/configs/otelcol-k8s-events.yaml``:
  ``file_storage``, the file exporter) watch one namespace at once, each
  writing to a file (kubevents' ``jsonl`` sink against the file exporter);
  the bench then writes a burst of the mix's Events into it through the API
  (creates, and merge patches of ``count`` for the series updates) from
  several threads, as fast as the apiserver takes them. CPU seconds of each
  process from before the burst until it has written every occurrence, per
  10,000 Events, and its peak RSS (``VmHWM``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.procs import PYTHON, ROOT, helper_cpus, measured_cpu, pin

WRITERS = 8
"""Client threads writing into the apiserver."""


def binaries() -> dict[str, Path] | None:
    """etcd, kube-apiserver and otelcol as ``make servers`` built them, or None."""
    found = {}
    for name in ("etcd", "kube-apiserver", "otelcol"):
        try:
            out = subprocess.run([str(ROOT / "tests" / "servers" / "build.sh"), "--path", name],
                                 capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None
        path = Path(out.splitlines()[-1]) if out else None
        if path is None or not path.is_file():
            return None
        found[name] = path
    return found


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


@contextmanager
def pinned(cpus: set[int]) -> Iterator[None]:
    """Run the block (and what it starts) on ``cpus``, then back on the measured core."""
    pin(cpus)
    try:
        yield
    finally:
        pin({measured_cpu()})


class Cluster:
    """etcd + kube-apiserver of the integration suite, with deploy/'s RBAC, on the helper cores."""

    def __init__(self, paths: dict[str, Path]) -> None:
        from tests.integration.kube import api_client, apply_rbac
        from tests.integration.servers import Etcd, KubeApiServer

        self._dir = tempfile.TemporaryDirectory(prefix="kubevents-bench-api-")
        self.workdir = Path(self._dir.name)
        with pinned(helper_cpus()):
            self.etcd = Etcd.start(paths["etcd"], self.workdir / "etcd")
            self.api = KubeApiServer.start(paths["kube-apiserver"], self.etcd, self.workdir / "api")
        from kubernetes import client as k8s

        self.admin = api_client(self.api, self.workdir)
        self.core = k8s.CoreV1Api(self.admin)
        self.core.create_namespace({"metadata": {"name": "kubevents"}})
        apply_rbac(self.admin)
        self._local = threading.local()

    def kubeconfig(self) -> Path:
        from tests.integration.servers import KUBEVENTS_TOKEN

        return self.api.write_kubeconfig(self.workdir / "kubevents.kubeconfig", token=KUBEVENTS_TOKEN)

    def namespace(self, name: str) -> None:
        self.core.create_namespace({"metadata": {"name": name}})

    def _session(self) -> Any:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = self.api.session()
        return http

    def create(self, obj: dict[str, Any]) -> None:
        ns = obj["metadata"]["namespace"]
        answer = self._session().post(f"{self.api.url}/api/v1/namespaces/{ns}/events", data=orjson.dumps(obj),
                                      headers={"Content-Type": "application/json"}, timeout=60)
        if answer.status_code != 201:
            raise RuntimeError(f"create Event {ns}/{obj['metadata']['name']}: {answer.status_code} {answer.text[:300]}")

    def bump(self, obj: dict[str, Any]) -> None:
        """A series update, as one merge patch of its count, last time and message."""
        meta = obj["metadata"]
        patch = {"count": obj["count"], "lastTimestamp": obj["lastTimestamp"], "message": obj["message"]}
        answer = self._session().patch(
            f"{self.api.url}/api/v1/namespaces/{meta['namespace']}/events/{meta['name']}", data=orjson.dumps(patch),
            headers={"Content-Type": "application/merge-patch+json"}, timeout=60)
        if answer.status_code != 200:
            raise RuntimeError(f"patch Event {meta['namespace']}/{meta['name']}: {answer.status_code} {answer.text[:300]}")

    def close(self) -> None:
        self.api.process.stop()
        self.etcd.process.stop()
        self._dir.cleanup()

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _for_api(obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """The Event as a client creates it: no uid, resourceVersion or creation time; a Node's
    Event in ``default`` (as the kubelet records it)."""
    meta = {"name": obj["metadata"]["name"], "namespace": namespace or obj["metadata"]["namespace"] or "default"}
    out = {**obj, "metadata": meta}
    out.pop("eventTime", None)
    if namespace and out["involvedObject"].get("namespace"):
        out["involvedObject"] = {**out["involvedObject"], "namespace": namespace}
    return out


def final_states(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each distinct Event of the watch lines once, in its last state, in first-seen order."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for line in events:
        meta = line["object"]["metadata"]
        last[(meta["namespace"], meta["name"])] = line["object"]
    return list(last.values())


def write_all(cluster: Cluster, objects: list[dict[str, Any]]) -> float:
    """Create ``objects`` from WRITERS threads; returns the writes a second the apiserver took."""
    chunks = [objects[i::WRITERS] for i in range(WRITERS)]
    start = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        for _ in pool.map(lambda chunk: [cluster.create(o) for o in chunk], chunks):
            pass
    return len(objects) / (time.monotonic() - start)


@dataclass
class ListRun:
    seconds_from_spawn: float
    """From the process's spawn: Python's start and kubevents' imports included."""
    seconds_from_start: float
    """From the command's start (``KubeventsRun.ready_at``): what a replay in the bench
    process is timed from."""
    seconds_from_first: float
    cpu_s: float
    peak_rss_mib: float
    occurrences: int


def list_then_watch(cluster: Cluster, kubeconfig: Path, receiver: Any, expected: int,
                    env: dict[str, str] | None = None) -> ListRun:
    """``kubevents run`` lists everything the apiserver holds, then watches; until every
    occurrence arrived at ``receiver`` (a bench.procs.Receiver, reset before)."""
    from bench.watch import KubeventsRun

    receiver.reset()
    overrides = {"watch.kubeconfig": str(kubeconfig), "sinks": [f"otlp:{receiver.endpoint}"], "metrics.otlp": False,
                 "metrics.port": 0, "cluster_name": "bench", "instance_id": "bench-0",
                 "delivery.batch_timeout_s": 0.25}
    t0 = time.monotonic()
    run = KubeventsRun(overrides, env=env)
    first = 0.0
    deadline = time.monotonic() + max(120.0, expected / 500)
    try:
        while True:
            got = receiver.counts()[3]
            now = time.monotonic()
            if got and not first:
                first = now
            if got >= expected or now > deadline:
                break
            time.sleep(0.02)
        t1 = time.monotonic()
        cpu = cpu_s(run.proc.pid)
    finally:
        _, hwm = run.stop()
    if got < expected:
        raise RuntimeError(f"list then watch: {got} of {expected} occurrences arrived")
    return ListRun(t1 - t0, t1 - run.ready_at, t1 - first, cpu, hwm / 1024, got)


# -- side by side with the receiver ----------------------------------------------------------


def _occurrences_in(path: Path) -> int:
    """kubevents' jsonl output: the occurrences its k8s.event records add up to."""
    if not path.exists():
        return 0
    total = 0
    for line in path.read_bytes().splitlines():
        if line.endswith(b"}") and b'"k8s.event"' in line:
            record = orjson.loads(line)
            if record.get("event_name") == "k8s.event":
                total += record["attributes"].get("kubevents.occurrences", 0)
    return total


def _records_in(path: Path) -> int:
    """The Collector's file exporter's output: its log records (one per watch update)."""
    if not path.exists():
        return 0
    return path.read_bytes().count(b'"key":"k8s.event.uid"')


@dataclass
class Side:
    name: str
    pid: int
    done: Callable[[], int]
    """What it has written so far: occurrences (kubevents), records (the receiver)."""
    stop: Callable[[], None]
    per_burst: int = 0
    """What a burst adds to ``done``."""


def side_by_side(cluster: Cluster, events: list[dict[str, Any]], *, namespace: str, runs: int,
                 pure_env: dict[str, str], log: Callable[[str], None]) -> dict[str, Any]:
    """kubevents (compiled, pure Python) and the receiver on the same bursts; per side the
    median CPU seconds per 10,000 Events and the largest peak RSS."""
    from kubevents.settings import Settings
    from tests.integration.kube import start_kubevents
    from tests.integration.servers import CONFIGS, KUBEVENTS_TOKEN, Otelcol, server_binary

    cluster.namespace(namespace)
    events = [e for e in events if e["object"]["involvedObject"].get("namespace")]  # see _burst
    work = cluster.workdir / "peer"
    sides: list[Side] = []
    checkpoint = str(Settings().watch.checkpoint_interval_s)
    with pinned({measured_cpu()}):
        for name, env in (("kubevents", {}), ("kubevents (pure Python)", pure_env)):
            workdir = work / name.replace(" ", "-").strip("()")
            workdir.mkdir(parents=True)
            (workdir / "kubevents.yaml").write_text(f"watch:\n  namespaces: [{namespace}]\n")
            proc = start_kubevents(cluster.api, workdir, KUBEVENTS_TOKEN, "--config", str(workdir / "kubevents.yaml"),
                                   env={**env, "KUBEVENTS_WATCH_CHECKPOINT_INTERVAL_S": checkpoint})
            out = workdir / "out.jsonl"
            sides.append(Side(name, proc.pid, lambda out=out: _occurrences_in(out),  # type: ignore[misc]
                              lambda proc=proc: (proc.terminate(), proc.wait(30))))  # type: ignore[misc]
        kubeconfig = cluster.api.write_kubeconfig(work / "collector.kubeconfig", token=KUBEVENTS_TOKEN)
        col = Otelcol.start(server_binary("otelcol"), CONFIGS / "otelcol-k8s-events.yaml", work / "otelcol",
                            env={"KUBECONFIG": str(kubeconfig), "K8S_EVENTS_NAMESPACE": namespace,
                                 "OTELCOL_STORAGE": str(work / "otelcol" / "storage")})
        assert col.process.popen is not None
        sides.append(Side("k8s_events receiver", col.process.popen.pid,
                          lambda: _records_in(col.out), col.process.stop))
    occurrences = sum(obj.get("count") or 1 for obj in final_states(events))
    for s in sides:
        # kubevents counts occurrences (a new Event with count c adds c), the receiver a
        # record per watch update
        s.per_burst = len(events) if s.name.startswith("k8s_events") else occurrences
    results: dict[str, list[tuple[float, float]]] = {s.name: [] for s in sides}
    rates = []
    try:
        # Both watch once each side reports one warm-up Event.
        warm = events[0]["object"]
        n = 0
        deadline = time.monotonic() + 60
        while not all(s.done() for s in sides):
            if time.monotonic() > deadline:
                raise RuntimeError("peer: not every side started watching")
            cluster.create(_for_api({**warm, "metadata": {**warm["metadata"], "name": f"warmup-{n}"},
                                     "firstTimestamp": _stamp(time.time()), "lastTimestamp": _stamp(time.time())},
                                    namespace))
            n += 1
            time.sleep(0.5)
        time.sleep(2.0)
        for i in range(runs):
            log(f"side by side with the receiver: burst of {len(events):,} writes, run {i + 1}")
            before = {s.name: (s.done(), cpu_s(s.pid)) for s in sides}
            rates.append(_burst(cluster, events, namespace, prefix=f"r{i}-"))
            deadline = time.monotonic() + 300
            for s in sides:
                while s.done() - before[s.name][0] < s.per_burst:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"peer: {s.name} wrote {s.done() - before[s.name][0]} of {s.per_burst}")
                    time.sleep(0.5)
            for s in sides:
                results[s.name].append((cpu_s(s.pid) - before[s.name][1], status_kib(s.pid, "VmHWM") / 1024))
    finally:
        for s in sides:
            s.stop()


    return {
        "writes": len(events),
        "namespace": namespace,
        "write_rate_per_s": statistics.median(rates),
        "sides": {
            name: {
                "cpu_s_per_10k": statistics.median(cpu for cpu, _ in rs) / len(events) * 10_000,
                "runs_cpu_s": [cpu for cpu, _ in rs],
                "peak_rss_mib": max(rss for _, rss in rs),
            }
            for name, rs in results.items()
        },
    }


def _burst(cluster: Cluster, events: list[dict[str, Any]], namespace: str, *, prefix: str) -> float:
    """The watch lines as API writes into ``namespace``, their times now: a create for
    ADDED, a merge patch for MODIFIED (a series update of an Event created before). Each
    writer thread takes the Events whose name hashes to it, so an update follows its create."""
    queues: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(WRITERS)]
    for line in events:
        obj = line["object"]
        if not obj["involvedObject"].get("namespace"):
            continue  # a Node's Event: the apiserver keeps it in "default" only
        name = prefix + obj["metadata"]["name"]
        queues[hash(name) % WRITERS].append(
            (line["type"], _for_api({**obj, "metadata": {**obj["metadata"], "name": name}}, namespace)))

    def writer(items: list[tuple[str, dict[str, Any]]]) -> None:
        for kind, item in items:
            now = _stamp(time.time())
            item["lastTimestamp"] = now
            if kind == "ADDED":
                item["firstTimestamp"] = now
                cluster.create(item)
            else:
                cluster.bump(item)

    start = time.monotonic()
    with ThreadPoolExecutor(WRITERS) as pool:
        for _ in pool.map(writer, queues):
            pass
    return len(events) / (time.monotonic() - start)


def pure_python_env() -> dict[str, str]:
    """The environment of a ``kubevents`` process on the pure Python install: PYTHONPATH
    without the compiled build's directory."""
    keep = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and "compiled" not in p]
    return {"PYTHONPATH": os.pathsep.join(keep)}


def is_compiled(env: dict[str, str]) -> bool:
    code = "import kubevents.enrich.correlate as m; print(m.__file__.endswith('.so'))"
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env={**os.environ, **env}, check=True)
    return out.stdout.strip() == "True"
