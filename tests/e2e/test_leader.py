"""Lease election against the fake apiserver: one leader, expiry on our own clock, checkpoint hand-over."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from kubevents.source.checkpoint import Checkpoint
from kubevents.source.kubeclient import KubeClient, load_client
from kubevents.source.leader import CHECKPOINT_ANNOTATION, LeaseElector
from tests.fakes.apiserver import FakeApiServer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(bookmark_interval=0.1) as server:
        yield server


def client_for(fake: FakeApiServer) -> KubeClient:
    """kubevents' own client for the fake, from a kubeconfig as a user would give it."""
    return load_client(kubeconfig=str(fake.write_kubeconfig(Path(tempfile.mkdtemp()) / "kubeconfig")))


def elector(fake: FakeApiServer, identity: str, clock: Clock, log: list[str]) -> LeaseElector:
    return LeaseElector(
        api_client=client_for(fake), namespace="kubevents", name="kubevents",
        identity=identity, stop=threading.Event(), on_started=lambda: log.append(f"{identity} started"),
        on_stopped=lambda: log.append(f"{identity} stopped"), lease_s=15, renew_s=10, retry_s=2, monotonic=clock,
    )


def test_only_one_replica_leads_and_the_other_waits_for_expiry_on_its_own_clock(fake: FakeApiServer) -> None:
    log: list[str] = []
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(fake, "a", clock_a, log), elector(fake, "b", clock_b, log)
    a.step()
    b.step()
    assert (a.is_leader(), b.is_leader(), log) == (True, False, ["a started"])
    clock_b.now += 14.9  # a has not renewed for 14.9 s as seen by b: not expired yet
    b.step()
    assert not b.is_leader()
    clock_b.now += 0.2
    b.step()  # 15.1 s without a change of the Lease record: b takes over
    assert b.is_leader()
    clock_a.now += 10.0  # a could not renew for its renew deadline: it deposes itself
    a.step()
    assert log == ["a started", "b started", "a stopped"]
    lease = k8s.CoordinationV1Api(k8s.ApiClient(fake.kube_config())).read_namespaced_lease("kubevents", "kubevents")
    assert lease.spec.holder_identity == "b" and lease.spec.lease_transitions == 1


def test_renewals_keep_the_lease_and_a_failing_apiserver_deposes_the_leader(fake: FakeApiServer) -> None:
    log: list[str] = []
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(fake, "a", clock_a, log), elector(fake, "b", clock_b, log)
    a.step()
    for _ in range(10):  # a renews every 2 s; b sees the record change each time
        clock_a.now += 2
        clock_b.now += 2
        a.step()
        b.step()
    assert a.is_leader() and not b.is_leader()
    fake.faults.status(500, times=None)
    for _ in range(5):
        clock_a.now += 2
        a.step()
    assert not a.is_leader()
    assert log == ["a started", "a stopped"]


def test_a_write_race_is_a_409_and_the_loser_stays_standby(fake: FakeApiServer) -> None:
    log: list[str] = []
    a = elector(fake, "a", Clock(), log)
    clock_b = Clock()
    b = elector(fake, "b", clock_b, log)
    a.step()
    b.step()
    clock_b.now += 16  # b sees the Lease expire and tries to take it...
    conflict = fake.faults.where(method="PUT").status(409, times=1)  # ...but a wrote first
    b.step()
    assert conflict.fired == 1
    assert a.is_leader() and not b.is_leader() and log == ["a started"]


def test_the_checkpoint_rides_on_the_lease_to_the_next_leader(fake: FakeApiServer) -> None:
    log: list[str] = []
    clock_a, clock_b = Clock(), Clock()
    a, b = elector(fake, "a", clock_a, log), elector(fake, "b", clock_b, log)
    a.step()
    checkpoint = Checkpoint("events.k8s.io/v1", {"*": "42"}, {"uid-1": 3}, saved_ns=1, event_time_ns=2)
    a.set_checkpoint(checkpoint)
    clock_a.now += 2
    a.step()  # the renewal writes the annotation
    lease = fake.store.get("kubevents", namespace="kubevents", resource="leases")
    assert CHECKPOINT_ANNOTATION in lease["metadata"]["annotations"]
    b.step()
    clock_b.now += 16
    b.step()
    assert b.is_leader() and b.loaded == checkpoint


def test_a_silent_apiserver_does_not_hold_the_elector_past_its_deadline(fake: FakeApiServer) -> None:
    # The Lease GET gets no answer at all: the attempt gives up after half the renew
    # deadline and fails, and the next one (answered) wins the Lease.
    fake.faults.where(path=r"/leases").stall(seconds=5, times=1)
    log: list[str] = []
    candidate = LeaseElector(
        api_client=client_for(fake), namespace="kubevents", name="kubevents", identity="a",
        stop=threading.Event(), on_started=lambda: log.append("started"), on_stopped=lambda: log.append("stopped"),
        lease_s=1.0, renew_s=0.6, retry_s=0.1,
    )
    started = time.monotonic()
    candidate.step()
    assert time.monotonic() - started < 0.9 and not candidate.is_leader()
    candidate.step()
    assert candidate.is_leader() and log == ["started"]
