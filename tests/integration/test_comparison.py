"""Side by side with the peer: kubevents and the Collector's ``k8s_events`` receiver.

Both watch the same real apiserver, with the same least-privilege token, through the same
scenario: a burst of core/v1 Events (new ones and repeats of earlier ones, as the
kubelet's recorder counts them) during which each is restarted, with SIGTERM or kill -9,
and is down for a few seconds. Each side is then scored the same way, from what it wrote:

* delivered: per Event, the highest count any of its records reported (what a backend
  learned of the Event: "it happened c times"), summed and capped at the API's count;
* lost: the API's occurrences minus those delivered;
* repeated records: records that report a count the same side had already reported.

kubevents must lose nothing in every scenario (checked exactly, occurrence by occurrence,
from its ``kubevents.occurrences`` attribute). The Collector's figures are measured, not
asserted: they are what its receiver does by design (it ignores Events whose time is
before its own start, so what happens while it is down is not read on restart).

``UPDATE_DOCS=1`` writes the measured table into docs/comparison.md.
"""

from __future__ import annotations

import os
import random
import re
import signal
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
RATE = 20.0  # API writes per second: a new Event, or every fourth a repeat of one
BURST_S = 24.0
RESTART_AT_S = 8.0
DOWN_S = 3.0  # as long as a rescheduled pod takes to come back, at least


@dataclass(frozen=True)
class Scenario:
    title: str
    stop: signal.Signals | None  # how each side is stopped mid-burst (None: not at all)


SCENARIOS = {
    "steady": Scenario("steady burst, no restart", None),
    "sigterm": Scenario(f"restart mid-burst (SIGTERM, down {DOWN_S:g} s)", signal.SIGTERM),
    "kill-9": Scenario(f"restart mid-burst (kill -9, down {DOWN_S:g} s)", signal.SIGKILL),
}


@dataclass
class Score:
    occurrences: int
    delivered: int
    repeated: int

    @property
    def lost(self) -> int:
        return self.occurrences - self.delivered


def score(reports: Iterable[tuple[str, int]], want: dict[str, int]) -> Score:
    """Score (Event uid, reported count) records against the API's counts."""
    highest: dict[str, int] = {}
    repeated = 0
    for uid, count in reports:
        if uid not in want:
            continue  # the warm-up Events
        if count <= highest.get(uid, 0):
            repeated += 1
        else:
            highest[uid] = count
    delivered = sum(min(highest.get(uid, 0), count) for uid, count in want.items())
    return Score(sum(want.values()), delivered, repeated)


@dataclass
class Results:
    rows: dict[str, tuple[Score, Score]] = field(default_factory=dict)


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
    def __init__(self, api: KubeApiServer, workdir: Path, ns: str) -> None:
        self.api, self.workdir, self.ns = api, workdir, ns
        (workdir / "kubevents.yaml").write_text(f"watch:\n  namespaces: [{ns}]\n")
        self.start()

    def start(self) -> None:
        config = ("--config", str(self.workdir / "kubevents.yaml"))
        self.proc = start_kubevents(self.api, self.workdir, KUBEVENTS_TOKEN, *config)

    def stop(self, how: signal.Signals) -> None:
        self.proc.send_signal(how)
        code = self.proc.wait(timeout=20)
        assert code == (0 if how == signal.SIGTERM else -how), self.log()

    def reports(self) -> list[tuple[str, int]]:
        return [
            (r["attributes"]["k8s.event.uid"], r["attributes"]["k8s.event.count"])
            for r in records([self.workdir / "out.jsonl"])
        ]

    def log(self) -> str:
        return (self.workdir / "run.log").read_text()[-3000:]


class Collector:
    def __init__(self, api: KubeApiServer, workdir: Path, ns: str) -> None:
        kubeconfig = api.write_kubeconfig(workdir / "collector.kubeconfig", token=KUBEVENTS_TOKEN)
        self.workdir = workdir
        self.env = {"KUBECONFIG": str(kubeconfig), "K8S_EVENTS_NAMESPACE": ns}
        self.start()

    def start(self) -> None:
        self.col = Otelcol.start(server_binary("otelcol"), CONFIG, self.workdir, env=self.env)

    def stop(self, how: signal.Signals) -> None:
        popen = self.col.process.popen
        assert popen is not None
        popen.send_signal(how)
        popen.wait(timeout=20)

    def reports(self) -> list[tuple[str, int]]:
        return [
            (r["attrs"]["k8s.event.uid"], int(r["attrs"].get("k8s.event.count", 1)))
            for r in self.col.log_records()
            if "k8s.event.uid" in r["attrs"]
        ]


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


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_side_by_side_with_the_collectors_k8s_events_receiver(
    apiserver: KubeApiServer,
    tmp_path: Path,
    name: str,
    results: Results,
    stoppers: list[Callable[[], None]],
) -> None:
    scenario = SCENARIOS[name]
    ns = f"compare-{name}"
    admin = create_namespace(apiserver, tmp_path, ns)
    core, events_v1 = k8s.CoreV1Api(admin), k8s.EventsV1Api(admin)
    ours = Kubevents(apiserver, tmp_path, ns)
    # Whatever still runs at the end (after a failure) is stopped: kubevents, and any
    # Collector started (one that failed to start included).
    stoppers.append(lambda: ours.proc.kill())
    stoppers.append(lambda: [p.stop() for p in list(RUNNING) if p.name == "otelcol"])
    theirs = Collector(apiserver, tmp_path, ns)
    restarts: list[BaseException] = []

    def restart_both() -> None:
        assert scenario.stop is not None
        try:
            for side in (ours, theirs):
                side.stop(scenario.stop)
            time.sleep(DOWN_S)
            for side in (ours, theirs):
                side.start()
        except BaseException as e:  # reported by the test, not lost in the thread
            restarts.append(e)

    try:
        warm_up(core, ns, (ours, theirs))
        burst(core, ns, restart_both if scenario.stop else None)
        want = {
            uid: count
            for uid, count in expected(events_v1, ns).items()
            if uid not in warm_up_uids(events_v1, ns)
        }
        wait_for(lambda: occurrences(want) <= set(coverage(tmp_path / "out.jsonl", ns=ns)), 60,
                 "kubevents to export every occurrence")  # fmt: skip
        settle(theirs)
    finally:
        ours.proc.send_signal(signal.SIGTERM)
        ours.proc.wait(timeout=20)
        theirs.col.process.stop()
    assert not restarts, restarts

    mine, peer = score(ours.reports(), want), score(theirs.reports(), want)
    results.rows[name] = (mine, peer)
    if os.environ.get("UPDATE_DOCS") and len(results.rows) == len(SCENARIOS):
        write_table(results)  # before the test below reads it
    print(f"\n{scenario.title}: kubevents {mine}, k8s_events {peer}")
    # kubevents, exactly: every occurrence exported, and repeated only across a kill -9
    # (what it exported after its last checkpoint, 0.2 s here).
    covered = coverage(tmp_path / "out.jsonl", ns=ns)
    assert occurrences(want) <= set(covered)
    assert mine.lost == 0
    repeated = sum(times - 1 for key, times in covered.items() if key[0] in want)
    if scenario.stop == signal.SIGKILL:
        assert repeated <= RATE, f"{repeated} occurrences repeated after one kill -9"
    else:
        assert repeated == 0 and mine.repeated == 0
    # The scenario really exercised the peer: it delivered the steady burst in full, and
    # it is scored from records it really wrote.
    if scenario.stop is None:
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
        f"Measured with {versions()}.",
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
