"""Two kubevents replicas on a real Lease: one exports, a failover loses nothing.

The Lease (coordination.k8s.io/v1, in kubevents' namespace, with deploy/'s Role) carries
both the leadership and the checkpoint, so the replica that takes over continues where
the old leader's last checkpoint was. The leader is killed with -9 in the middle of a
burst of Events; the standby must take over, export everything the API holds, and repeat
at most what the dead leader exported after its last checkpoint.
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from kubevents.source.checkpoint import Checkpoint
from kubevents.source.leader import CHECKPOINT_ANNOTATION
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
from tests.integration.servers import KUBEVENTS_TOKEN, KubeApiServer, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(600)]
NS = "ha"
RATE = 20.0  # API writes per second
LEASE = {  # short, so the test does not wait 15 s for a dead leader's Lease to expire
    "KUBEVENTS_LEADER_LEASE_S": "2",
    "KUBEVENTS_LEADER_RENEW_S": "1.5",
    "KUBEVENTS_LEADER_RETRY_S": "0.2",
}


class Replica:
    def __init__(self, api: KubeApiServer, workdir: Path, name: str) -> None:
        self.api, self.workdir, self.name = api, workdir, name
        self.config = workdir / "kubevents.yaml"
        self.config.write_text(f"watch:\n  namespaces: [{NS}]\n")
        self.proc = self.start()

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = start_kubevents(
            self.api, self.workdir, KUBEVENTS_TOKEN,
            "--config", str(self.config), "--leader-elect", "--lease-namespace", "kubevents",
            name=self.name, checkpoint=False,
            env={**LEASE, "KUBEVENTS_LEADER_IDENTITY": self.name},
        )  # fmt: skip
        return self.proc

    def log(self) -> str:
        return (self.workdir / f"{self.name}.log").read_text()

    def leads(self) -> bool:
        return self.log().count("became the leader") > self.log().count("stopped being")


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    """The replicas a test starts: whatever still runs at its end is killed."""
    started: list[Replica] = []
    yield started
    for replica in started:
        if replica.proc.poll() is None:
            replica.proc.kill()
            replica.proc.wait(timeout=10)


def test_failover_on_a_real_lease_loses_nothing_and_never_exports_twice(
    apiserver: KubeApiServer, tmp_path: Path, replicas: list[Replica]
) -> None:
    admin = create_namespace(apiserver, tmp_path, NS)
    core, events_v1 = k8s.CoreV1Api(admin), k8s.EventsV1Api(admin)
    for i in range(20):
        core.create_namespaced_event(NS, core_event(NS, f"before-{i}", count=i % 3 + 1))
    a = Replica(apiserver, tmp_path, "a")
    replicas.append(a)
    wait_for(a.leads, 60, "replica a to lead")
    b = Replica(apiserver, tmp_path, "b")
    replicas.append(b)
    outputs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    wait_for(lambda: bool(records(outputs[:1])), 60, "the leader to export")

    stop_writing = threading.Event()

    def write() -> None:
        made: list[str] = []
        i = 0
        while not stop_writing.is_set():
            if made and i % 4 == 3:
                bump(core, NS, made[i % len(made)])
            else:
                made.append(f"burst-{i}")
                core.create_namespaced_event(NS, core_event(NS, made[-1], 1, "Unhealthy"))
            i += 1
            time.sleep(1 / RATE)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(4)
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(timeout=10)
        killed = time.monotonic()
        wait_for(b.leads, 30, "replica b to take over")
        takeover_s = time.monotonic() - killed
        a.start()  # back, as the standby
        time.sleep(4)
    finally:
        stop_writing.set()
        writer.join(30)
    want = occurrences(expected(events_v1, NS))
    try:
        wait_for(lambda: want <= set(coverage(*outputs, ns=NS)), 60, "every occurrence exported")
    finally:
        codes = {}
        for replica in (b, a):  # the leader first: the standby takes over, then stops too
            replica.proc.send_signal(signal.SIGTERM)
            codes[replica.name] = replica.proc.wait(timeout=30)
    assert codes == {"a": 0, "b": 0}, (codes, a.log()[-2000:], b.log()[-2000:])

    covered = coverage(*outputs, ns=NS)
    assert set(covered) == want  # nothing lost, nothing that is not in the API
    # Repeated: what a exported after its last checkpoint on the Lease (checkpointed every
    # 0.2 s here), and at the end what b exported after its last one when it handed over.
    repeated = sum(times - 1 for times in covered.values())
    assert repeated <= 2 * RATE, f"{repeated} occurrences repeated over two handovers"
    # Never two exporters at once: a's output before the kill, b's after it (a, back as the
    # standby, exports nothing until b stops at the end).
    in_order = sorted(
        (r["observed_timestamp"], name)
        for name, path in (("a", outputs[0]), ("b", outputs[1]))
        for r in records([path])
    )
    holders = [name for _, name in in_order]
    switches = sum(1 for x, y in itertools.pairwise(holders) if x != y)
    assert holders[0] == "a" and switches <= 2, f"{switches} switches between exporters"
    assert takeover_s < 10, f"took {takeover_s:.1f}s to take over a 2 s Lease"
    # The last leader released the Lease on SIGTERM (a new pod need not wait for it to
    # expire) and left its checkpoint on it.
    lease = k8s.CoordinationV1Api(api_client(apiserver, tmp_path)).read_namespaced_lease(
        "kubevents", "kubevents"
    )
    assert not lease.spec.holder_identity, lease.spec
    text = lease.metadata.annotations[CHECKPOINT_ANNOTATION]
    checkpoint = Checkpoint.from_annotation(text, where="the Lease")
    assert checkpoint.resource_versions and checkpoint.emitted, checkpoint
