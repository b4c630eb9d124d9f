"""Side by side with the peer: kubevents and the Collector's ``k8s_events`` receiver.

Both watch the same real apiserver, with the same least-privilege token, through the same
scenario: a burst of core/v1 Events (new ones and repeats of earlier ones, as the
kubelet's recorder counts them) during which each is restarted, with SIGTERM or kill -9,
and is down for a few seconds; or runs as two replicas on a Lease whose leader is killed;
or takes a burst as fast as this apiserver sustains. The receiver is configured as a
careful user would (tests/servers/configs/otelcol-k8s-events*.yaml): it checkpoints to
``file_storage``, and its HA replicas elect a leader with ``k8s_leader_elector``. Each
side is then scored the same way, from what it wrote:

* delivered: per Event, the highest count any of its records reported (what a backend
  learned of the Event: "it happened c times"), summed and capped at the API's count;
* lost: the API's occurrences minus those delivered;
* repeated records: records that report a count the same side had already reported.

kubevents must lose nothing in every scenario (checked exactly, occurrence by occurrence,
from its ``kubevents.occurrences`` attribute). The Collector's figures are measured, not
asserted: they are what its receiver does by design (it ignores Events whose time is
before its own start, so what happens while it is down is not read on restart, storage or
not). For the bursts without a restart, the CPU time and peak RSS of each side's process
are measured too (from /proc: user+system time over the burst, and VmHWM).

``UPDATE_DOCS=1`` writes the measured table into docs/comparison.md.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from kubernetes import client as k8s

import kubevents
from tests.integration.kube import (
    api_client,
    bump,
    core_event,
    coverage,
    create_namespace,
    expected,
    occurrences,
    records,
    start_kubevents,
)
from tests.integration.servers import (
    CONFIGS,
    KUBEVENTS_TOKEN,
    KUBEVENTS_USER,
    ROOT,
    RUNNING,
    KubeApiServer,
    Otelcol,
    server_binary,
    server_version,
    wait_for,
)

pytestmark = [pytest.mark.servers, pytest.mark.timeout(900)]

DOC = ROOT / "docs" / "comparison.md"
CONFIG = CONFIGS / "otelcol-k8s-events.yaml"
CONFIG_HA = CONFIGS / "otelcol-k8s-events-ha.yaml"
RATE = 20.0  # API writes per second: a new Event, or every fourth a repeat of one
BURST_S = 24.0
RESTART_AT_S = 8.0
DOWN_S = 3.0  # as long as a rescheduled pod takes to come back, at least
FAST_WRITES = 2400  # the fast burst: this many writes, as fast as the apiserver takes them
FAST_WRITERS = 4  # client threads
# The Lease timings of both sides' replicas, the same on each (short, so the test does not
# wait for a dead leader's 15 s Lease; both default to 15 s / 10 s / 2 s).
LEASE_S, RENEW_S, RETRY_S = 2.0, 1.5, 0.2
LEASE_ENV = {
    "KUBEVENTS_LEADER_LEASE_S": str(LEASE_S),
    "KUBEVENTS_LEADER_RENEW_S": str(RENEW_S),
    "KUBEVENTS_LEADER_RETRY_S": str(RETRY_S),
}


@dataclass(frozen=True)
class Scenario:
    title: str
    stop: signal.Signals | None = None  # how each side is stopped mid-burst (None: not at all)
    replicas: int = 1  # 2: on a Lease, and ``stop`` is sent to the leader
    fast: bool = False  # as fast as the apiserver takes writes, instead of RATE


SCENARIOS = {
    "steady": Scenario(f"steady burst ({RATE:g} writes/s), no restart"),
    "sigterm": Scenario(f"restart mid-burst (SIGTERM, down {DOWN_S:g} s)", signal.SIGTERM),
    "kill-9": Scenario(f"restart mid-burst (kill -9, down {DOWN_S:g} s)", signal.SIGKILL),
    "failover": Scenario(
        f"leader failover: 2 replicas, leader killed (-9), {LEASE_S:g} s Lease",
        signal.SIGKILL,
        replicas=2,
    ),
    "fast": Scenario(f"fast burst ({FAST_WRITES} writes, {FAST_WRITERS} writers), no restart", fast=True),
}


@dataclass
class Score:
    occurrences: int
    delivered: int
    repeated: int

    @property
    def lost(self) -> int:
        return self.occurrences - self.delivered


def score(reports: Iterable[tuple[int, str, int]], want: dict[str, int]) -> Score:
    """Score (observed time, Event uid, reported count) records against the API's counts,
    in the order the side observed them (across its replicas)."""
    highest: dict[str, int] = {}
    repeated = 0
    for _, uid, count in sorted(reports):
        if uid not in want:
            continue  # the warm-up Events
        if count <= highest.get(uid, 0):
            repeated += 1
        else:
            highest[uid] = count
    delivered = sum(min(highest.get(uid, 0), count) for uid, count in want.items())
    return Score(sum(want.values()), delivered, repeated)


@dataclass(frozen=True)
class Usage:
    """What one side's processes used over a burst."""

    cpu_s: float  # user + system CPU time
    peak_rss_mib: float  # the largest VmHWM of its processes


@dataclass
class Results:
    rows: dict[str, tuple[Score, Score]] = field(default_factory=dict)
    usage: dict[str, tuple[Usage, Usage]] = field(default_factory=dict)
    fast_rate: float = 0.0  # writes a second the apiserver took in the fast burst


TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for {pid}")


@pytest.fixture
def stoppers() -> Iterator[list[Callable[[], None]]]:
    """What a test registers to stop at its end, pass or fail (processes it started)."""
    registered: list[Callable[[], None]] = []
    yield registered
    for stop in registered:
        stop()


@pytest.fixture(scope="module")
def results() -> Results:
    return Results()


# -- the two sides --------------------------------------------------------------------------


class Kubevents:
    def __init__(self, api: KubeApiServer, workdir: Path, ns: str, replicas: int = 1) -> None:
        self.api, self.workdir, self.ns = api, workdir, ns
        (workdir / "kubevents.yaml").write_text(f"watch:\n  namespaces: [{ns}]\n")
        self.names = ["run"] if replicas == 1 else [f"kubevents-{i}" for i in range(replicas)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        for name in self.names:
            self.start(name)

    def start(self, name: str = "run") -> None:
        config = ("--config", str(self.workdir / "kubevents.yaml"))
        if name == "run":
            self.procs[name] = start_kubevents(self.api, self.workdir, KUBEVENTS_TOKEN, *config)
            return
        self.procs[name] = start_kubevents(
            self.api, self.workdir, KUBEVENTS_TOKEN, *config,
            "--leader-elect", "--lease-namespace", "kubevents",
            name=name, checkpoint=False, env={**LEASE_ENV, "KUBEVENTS_LEADER_IDENTITY": name},
        )  # fmt: skip

    def leader(self) -> str | None:
        for name in self.names:
            log = self.log(name, whole=True)
            if self.procs[name].poll() is None and log.count("became the leader") > log.count(
                "stopped being"
            ):
                return name
        return None

    def stop(self, how: signal.Signals, name: str = "run") -> None:
        proc = self.procs[name]
        proc.send_signal(how)
        code = proc.wait(timeout=20)
        assert code == (0 if how == signal.SIGTERM else -how), self.log(name)

    def outputs(self) -> list[Path]:
        return [self.workdir / ("out.jsonl" if n == "run" else f"{n}.jsonl") for n in self.names]

    def reports(self) -> list[tuple[int, str, int]]:
        return [
            (
                r["observed_timestamp"],
                r["attributes"]["k8s.event.uid"],
                r["attributes"]["k8s.event.count"],
            )
            for r in records(self.outputs())
        ]

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.poll() is None]

    def log(self, name: str = "run", whole: bool = False) -> str:
        text = (self.workdir / f"{name}.log").read_text()
        return text if whole else text[-3000:]

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)


class Collector:
    def __init__(self, api: KubeApiServer, workdir: Path, ns: str, replicas: int = 1) -> None:
        kubeconfig = api.write_kubeconfig(workdir / "collector.kubeconfig", token=KUBEVENTS_TOKEN)
        self.workdir = workdir
        self.config = CONFIG if replicas == 1 else CONFIG_HA
        self.names = [f"otelcol-{i}" for i in range(replicas)]
        self.cols: dict[str, Otelcol] = {}
        self.env = {"KUBECONFIG": str(kubeconfig), "K8S_EVENTS_NAMESPACE": ns,
                    "LEASE_DURATION": f"{LEASE_S}s", "RENEW_DEADLINE": f"{RENEW_S}s",
                    "RETRY_PERIOD": f"{RETRY_S}s"}  # fmt: skip
        for name in self.names:
            self.start(name)

    def start(self, name: str = "otelcol-0") -> None:
        # Each replica has a volume of its own: its storage and its output file.
        workdir = self.workdir / name
        env = {**self.env, "OTELCOL_STORAGE": str(workdir / "storage")}
        self.cols[name] = Otelcol.start(server_binary("otelcol"), self.config, workdir, env=env)

    def leader(self) -> str | None:
        for name, col in self.cols.items():
            if col.process.alive() and "Events Receiver started as leader" in col.process.log.read_text():
                log = col.process.log.read_text()
                if log.count("Events Receiver started as leader") > log.count("no longer leader"):
                    return name
        return None

    def stop(self, how: signal.Signals, name: str = "otelcol-0") -> None:
        popen = self.cols[name].process.popen
        assert popen is not None
        popen.send_signal(how)
        popen.wait(timeout=20)

    def reports(self) -> list[tuple[int, str, int]]:
        return [
            (
                int(r.get("observedTimeUnixNano", 0)),
                r["attrs"]["k8s.event.uid"],
                int(r["attrs"].get("k8s.event.count", 1)),
            )
            for col in self.cols.values()
            for r in col.log_records()
            if "k8s.event.uid" in r["attrs"]
        ]

    def pids(self) -> list[int]:
        return [c.process.popen.pid for c in self.cols.values() if c.process.popen and c.process.alive()]

    def stop_all(self) -> None:
        for col in self.cols.values():
            col.process.stop()


# -- the scenario ---------------------------------------------------------------------------


def warm_up(core: k8s.CoreV1Api, ns: str, sides: tuple[Kubevents, Collector]) -> None:
    """Write warm-up Events until both sides report one: both watches are established."""
    made: list[str] = []

    def both_see_one() -> bool:
        made.append(f"warmup-{len(made)}")
        core.create_namespaced_event(ns, core_event(ns, made[-1], count=1))
        time.sleep(0.5)
        return all(side.reports() for side in sides)

    wait_for(both_see_one, 60, "both sides to watch")


def fast_burst(core: k8s.CoreV1Api, ns: str) -> float:
    """FAST_WRITES writes from FAST_WRITERS threads, each as fast as the apiserver answers;
    returns the writes a second it took."""
    reasons = ("BackOff", "Unhealthy", "FailedMount", "Pulled", "Created", "Started")

    def writer(w: int) -> None:
        made: list[str] = []
        for i in range(w, FAST_WRITES, FAST_WRITERS):
            if made and i % 4 == 3:
                bump(core, ns, made[(i * 7) % len(made)])
            else:
                made.append(f"fast-{i}")
                core.create_namespaced_event(ns, core_event(ns, made[-1], 1, reasons[i % 6]))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(FAST_WRITERS)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    return FAST_WRITES / (time.monotonic() - start)


def burst(core: k8s.CoreV1Api, ns: str, restart: Callable[[], None] | None) -> None:
    """RATE writes a second for BURST_S; ``restart`` runs in a thread at RESTART_AT_S."""
    rng = random.Random(7)
    reasons = ("BackOff", "Unhealthy", "FailedMount", "Pulled", "Created", "Started")
    made: list[str] = []
    restarter = threading.Thread(target=restart) if restart else None
    start = time.monotonic()
    for i in range(int(RATE * BURST_S)):
        time.sleep(max(0.0, start + i / RATE - time.monotonic()))
        if restarter and restarter.ident is None and time.monotonic() - start >= RESTART_AT_S:
            restarter.start()
        if made and i % 4 == 3:
            bump(core, ns, rng.choice(made))
        else:
            made.append(f"ev-{i}")
            core.create_namespaced_event(ns, core_event(ns, made[-1], 1, reasons[i % 6]))
    if restarter:
        restarter.join(90)


@pytest.fixture(scope="module")
def collector_lease_rbac(apiserver: KubeApiServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The receiver's replicas elect their leader on a Lease of their own in the kubevents
    namespace, with the same identity as the rest of the test (deploy/'s RBAC grants only
    the Lease named "kubevents")."""
    rbac = k8s.RbacAuthorizationV1Api(api_client(apiserver, tmp_path_factory.mktemp("rbac")))
    rule = {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
            "verbs": ["get", "list", "watch", "create", "update"]}  # fmt: skip
    rbac.create_namespaced_role(
        "kubevents", {"metadata": {"name": "otelcol-lease"}, "rules": [rule]}
    )
    rbac.create_namespaced_role_binding(
        "kubevents",
        {
            "metadata": {"name": "otelcol-lease"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "otelcol-lease"},
            "subjects": [{"kind": "User", "name": KUBEVENTS_USER}],
        },
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_side_by_side_with_the_collectors_k8s_events_receiver(
    apiserver: KubeApiServer,
    tmp_path: Path,
    name: str,
    results: Results,
    stoppers: list[Callable[[], None]],
    collector_lease_rbac: None,
) -> None:
    scenario = SCENARIOS[name]
    ns = f"compare-{name}"
    admin = create_namespace(apiserver, tmp_path, ns)
    core, events_v1 = k8s.CoreV1Api(admin), k8s.EventsV1Api(admin)
    ours = Kubevents(apiserver, tmp_path, ns, scenario.replicas)
    # Whatever still runs at the end (after a failure) is stopped: kubevents, and any
    # Collector started (one that failed to start included).
    stoppers.append(lambda: [p.kill() for p in ours.procs.values() if p.poll() is None])
    stoppers.append(lambda: [p.stop() for p in list(RUNNING) if p.name == "otelcol"])
    theirs = Collector(apiserver, tmp_path, ns, scenario.replicas)
    restarts: list[BaseException] = []
    takeover: dict[str, float] = {}

    def restart_both() -> None:
        assert scenario.stop is not None
        try:
            if scenario.replicas == 1:
                for side in (ours, theirs):
                    side.stop(scenario.stop, side.names[0])
                time.sleep(DOWN_S)
                for side in (ours, theirs):
                    side.start(side.names[0])
                return
            leaders = {"ours": ours.leader(), "theirs": theirs.leader()}
            assert None not in leaders.values(), leaders
            killed = time.monotonic()
            ours.stop(scenario.stop, leaders["ours"])
            theirs.stop(scenario.stop, leaders["theirs"])
            for key, side in (("ours", ours), ("theirs", theirs)):
                old = leaders[key]
                wait_for(lambda s=side, o=old: s.leader() not in (None, o), 30,  # type: ignore[misc]
                         f"the {key} standby to take over")  # fmt: skip
                takeover[key] = time.monotonic() - killed
            time.sleep(DOWN_S)
            ours.start(leaders["ours"])  # back, as standbys
            theirs.start(leaders["theirs"])
        except BaseException as e:  # reported by the test, not lost in the thread
            restarts.append(e)

    try:
        if scenario.replicas > 1:
            wait_for(lambda: ours.leader() is not None and theirs.leader() is not None, 60,
                     "both sides to elect a leader")  # fmt: skip
        warm_up(core, ns, (ours, theirs))
        cpu_before = [{pid: cpu_seconds(pid) for pid in side.pids()} for side in (ours, theirs)]
        if scenario.fast:
            results.fast_rate = fast_burst(core, ns)
        else:
            burst(core, ns, restart_both if scenario.stop else None)
        warm = warm_up_uids(events_v1, ns)
        want = {uid: count for uid, count in expected(events_v1, ns).items() if uid not in warm}
        wait_for(lambda: occurrences(want) <= set(coverage(*ours.outputs(), ns=ns)), 120,
                 "kubevents to export every occurrence")  # fmt: skip
        settle(theirs)
        if scenario.stop is None:  # the same processes ran the whole burst
            usage = []
            for side, start_cpu in zip((ours, theirs), cpu_before, strict=True):
                pids = side.pids()
                assert set(pids) == set(start_cpu), "a process exited during the burst"
                usage.append(Usage(sum(cpu_seconds(p) - start_cpu[p] for p in pids),
                                   max(peak_rss_mib(p) for p in pids)))  # fmt: skip
            results.usage[name] = (usage[0], usage[1])
    finally:
        ours.stop_all()
        theirs.stop_all()
    assert not restarts, restarts

    mine, peer = score(ours.reports(), want), score(theirs.reports(), want)
    results.rows[name] = (mine, peer)
    if os.environ.get("UPDATE_DOCS") and len(results.rows) == len(SCENARIOS):
        write_table(results)  # before the test below reads it
    print(f"\n{scenario.title}: kubevents {mine}, k8s_events {peer}, takeover {takeover}, "
          f"usage {results.usage.get(name)}, fast rate {results.fast_rate:.0f}/s")  # fmt: skip
    # kubevents, exactly: every occurrence exported, and repeated only across a kill -9
    # (what it exported after its last checkpoint, 0.2 s here).
    covered = coverage(*ours.outputs(), ns=ns)
    assert occurrences(want) <= set(covered)
    assert mine.lost == 0
    repeated = sum(times - 1 for key, times in covered.items() if key[0] in want)
    if scenario.stop == signal.SIGKILL:
        assert repeated <= 2 * RATE, f"{repeated} occurrences repeated after one kill -9"
    else:
        assert repeated == 0 and mine.repeated == 0
    if scenario.replicas > 1:
        assert takeover["ours"] < 10, takeover
    # The scenario really exercised the peer: it delivered the steady burst in full, and
    # it is scored from records it really wrote.
    if name == "steady":
        assert peer.lost == 0, peer
    assert peer.delivered > 0


def warm_up_uids(events_v1: k8s.EventsV1Api, ns: str) -> set[str]:
    answer = events_v1.list_namespaced_event(ns, _preload_content=False)
    return {
        e["metadata"]["uid"]
        for e in orjson.loads(answer.data)["items"]
        if e["metadata"]["name"].startswith("warmup-")
    }


def settle(side: Collector) -> None:
    """Wait until the Collector has written nothing new for 3 s (its file flushes at 0.1 s)."""
    last, quiet_since = -1, time.monotonic()
    while time.monotonic() - quiet_since < 3:
        now = len(side.reports())
        if now != last:
            last, quiet_since = now, time.monotonic()
        time.sleep(0.2)


# -- the table ------------------------------------------------------------------------------

BEGIN, END = "<!-- comparison:begin -->", "<!-- comparison:end -->"


def versions() -> str:
    return (
        f"kubevents {kubevents.__version__}, OpenTelemetry Collector "
        f"{server_version('otelcol')} (`k8s_events` receiver), kube-apiserver "
        f"{server_version('kube-apiserver')}"
    )


def write_table(found: Results) -> None:
    lines = [
        BEGIN,
        f"Measured with {versions()}, in one run.",
        "",
        "| scenario | occurrences | kubevents delivered | kubevents lost | kubevents repeated "
        "| k8s_events delivered | k8s_events lost | k8s_events repeated |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, (mine, peer) in found.rows.items():
        lines.append(
            f"| {SCENARIOS[name].title} | {mine.occurrences} | {mine.delivered} | {mine.lost} "
            f"| {mine.repeated} | {peer.delivered} | {peer.lost} | {peer.repeated} |"
        )
    lines += [
        "",
        f"The fast burst ran at {found.fast_rate:.0f} API writes a second. What each side's "
        "process used over the burst (user + system CPU, and peak RSS):",
        "",
        "| burst | kubevents CPU s | kubevents peak RSS MiB | k8s_events CPU s | k8s_events peak RSS MiB |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, (mine_use, peer_use) in found.usage.items():
        lines.append(
            f"| {SCENARIOS[name].title} | {mine_use.cpu_s:.2f} | {mine_use.peak_rss_mib:.0f} "
            f"| {peer_use.cpu_s:.2f} | {peer_use.peak_rss_mib:.0f} |"
        )
    lines.append(END)
    text = DOC.read_text()
    DOC.write_text(re.sub(f"{BEGIN}.*?{END}", "\n".join(lines), text, flags=re.S))


def test_the_documented_table_is_for_the_pinned_versions() -> None:
    """docs/comparison.md's table names the Collector and apiserver pinned now: a new pin
    means a rerun with UPDATE_DOCS=1."""
    text = DOC.read_text()
    table = text[text.index(BEGIN) : text.index(END)]
    for name in ("otelcol", "kube-apiserver"):
        assert server_version(name) in table, f"rerun the comparison for the new {name} pin"
    assert all(scenario.title in table for scenario in SCENARIOS.values())
