"""The pipeline holds the record of an Event that may still join an incident.

It leaves with the incident's id when a cause comes late, or as it is once the
settle time has passed; checkpoints never pass a held record. Messages are the
kubelet's own formats (see tests/unit/enrich/test_correlate_late.py).
"""

from __future__ import annotations

import dataclasses
import tracemalloc
from collections.abc import Sequence

import pytest

from kubevents.clock import FakeClock
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import load_correlation_rules
from kubevents.enrich.pattern_rules import PatternRules
from kubevents.enrich.patterns import PatternDetector
from kubevents.model import KubeEvent
from kubevents.pipeline import Detectors, Pipeline
from kubevents.records import OutputRecord
from kubevents.sinks.base import ExportResult
from tests.support import events

S = 1_000_000_000
T0 = 1_795_000_000 * S
SETTLE = 30 * S
MOUNT = (
    'MountVolume.SetUp failed for volume "pvc-91c3" : rpc error: code = DeadlineExceeded'
    " desc = context deadline exceeded"
)
READY = "Readiness probe failed: HTTP probe failed with statuscode: 503"


class SlowSink:
    """A sink that settles (delivers) only as far as the test says."""

    name = "slow"

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []
        self.delivered = 0

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        self.records += records
        return ExportResult.SUCCESS

    def settled(self) -> int:
        return min(self.delivered, len(self.records))

    def force_flush(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, timeout_s: float) -> None:
        pass

    def reasons(self) -> list[tuple[str, str]]:
        return [
            (str(r.attributes.get("k8s.event.reason", r.event_name)),
             str(r.attributes.get("kubevents.incident.id", "")))
            for r in self.records
        ]


def ev(
    t: float, reason: str, name: str, message: str, type_: str = "Warning", count: int = 1
) -> KubeEvent:
    """An Event of namespace payments, reported by node-3's kubelet."""
    return events.ev(
        t, reason, name, ns="payments", node="node-3", message=message, type_=type_, count=count
    )


def pipeline(
    sink: SlowSink, *, ordered: bool = False, clock: FakeClock | None = None
) -> Pipeline:
    return Pipeline(
        classifier=load_classifier(),
        sinks=[sink],
        clock=clock or FakeClock(T0),  # the Events come as they happen
        detectors=Detectors(correlator=Correlator(load_correlation_rules(), settle_ns=SETTLE)),
        batch_size=1,
        ordered=ordered,
    )


PULLED = 'Successfully pulled image "registry.example.com/db:15" in 1.2s'


def test_a_symptom_before_its_cause_leaves_with_the_incident_id() -> None:
    sink = SlowSink()
    p = pipeline(sink)
    p.handle(ev(0, "Unhealthy", "db-0", READY))
    assert p.held == 1 and sink.records == []
    p.handle(ev(5, "Pulled", "web-0", PULLED, "Normal"))  # not held: out at once
    p.handle(ev(10, "FailedMount", "db-0", MOUNT))
    p.flush()
    assert p.held == 0
    events = [(reason, inc) for reason, inc in sink.reasons() if reason in ("Unhealthy", "FailedMount")]
    (mount_id,) = {inc for reason, inc in events if reason == "FailedMount"}
    assert mount_id and events == [("FailedMount", mount_id), ("Unhealthy", mount_id)]
    unhealthy = next(r for r in sink.records if r.attributes.get("k8s.event.reason") == "Unhealthy")
    assert unhealthy.attributes["kubevents.incident.rule"] == "volume-attach-mount"
    assert unhealthy.attributes["kubevents.incident.scope"] == "object"


def test_in_order_every_record_waits_behind_a_held_one() -> None:
    sink = SlowSink()
    p = pipeline(sink, ordered=True)
    p.handle(ev(0, "Unhealthy", "db-0", READY))
    p.handle(ev(5, "Pulled", "web-0", PULLED, "Normal"))
    assert sink.records == [] and p.held == 2
    p.handle(ev(10, "FailedMount", "db-0", MOUNT))
    p.flush()
    reasons = [r for r, _ in sink.reasons() if r in ("Unhealthy", "Pulled", "FailedMount")]
    assert reasons == ["Unhealthy", "Pulled", "FailedMount"]


def test_a_held_record_leaves_as_it_is_when_its_settle_time_passes() -> None:
    sink = SlowSink()
    p = pipeline(sink)
    p.handle(ev(0, "Unhealthy", "db-0", READY))
    p.expire(T0 + SETTLE - S)
    assert p.held == 1  # due at the settle time, not before
    p.expire(T0 + SETTLE)
    p.flush()
    assert p.held == 0 and sink.reasons() == [("Unhealthy", "")]


def test_checkpoints_never_pass_a_held_record() -> None:
    sink = SlowSink()
    p = pipeline(sink)
    p.handle(ev(0, "Pulled", "web-0", PULLED, "Normal"))  # record 1
    p.handle(ev(1, "Unhealthy", "db-0", READY))  # held, floor 1
    p.handle(ev(2, "Pulled", "web-1", PULLED, "Normal"))  # record 2
    p.flush()
    assert p.records_total == 3  # the held record counts as produced
    sink.delivered = 2
    assert p.settled() == 1  # record 2 is delivered, but the held one is not out
    p.expire(T0 + 40 * S)  # the settle time passes: it leaves as record 3
    p.flush()
    assert p.held == 0 and p.settled() == 1  # out, not yet delivered
    sink.delivered = 3
    assert p.settled() == 3


def test_old_events_keep_their_links_across_a_checkpoint() -> None:
    # A relist after a restart: Events recorded an hour before the pipeline's clock. The
    # checkpoint's expire moves the correlator on from the Events' own time, not to the
    # clock, so the mount failure's incident is still open for the Pod's next warning.
    sink = SlowSink()
    clock = FakeClock(T0 + 3600 * S)
    p = pipeline(sink, clock=clock)
    p.handle(ev(0, "FailedMount", "db-0", MOUNT))
    clock.advance(5)
    p.expire(clock.now_ns())
    p.handle(ev(10, "Unhealthy", "db-0", READY))
    p.flush()
    incidents = {inc for reason, inc in sink.reasons() if reason in ("FailedMount", "Unhealthy")}
    assert len(incidents) == 1 and "" not in incidents
    clock.advance(5)
    p.expire(clock.now_ns())  # Events came since the last checkpoint: still their time
    p.flush()
    assert not [r for r in sink.records if r.attributes.get("kubevents.incident.state") == "resolved"]
    # Idle (no Event since the last checkpoint), the clock's time resolves what is quiet.
    p.expire(clock.now_ns())
    p.flush()
    states = [r.attributes.get("kubevents.incident.state") for r in sink.records
              if r.event_name == "kubevents.incident"]
    assert states[-1] == "resolved"


BACKOFF = "Back-off restarting failed container web in pod web-0_payments(3f1c)"


def test_old_events_keep_their_pattern_across_a_checkpoint() -> None:
    # The same relist for the pattern stage: a crash loop recorded an hour before the
    # clock starts a pattern; a checkpoint while Events still come must not resolve it
    # (the clock's time is an hour past its quiet time), an idle one does.
    sink = SlowSink()
    clock = FakeClock(T0 + 3600 * S)
    p = Pipeline(
        classifier=load_classifier(),
        sinks=[sink],
        clock=clock,
        detectors=Detectors(patterns=PatternDetector(PatternRules())),
        batch_size=1,
    )

    def states() -> list[object]:
        p.flush()
        return [r.attributes.get("kubevents.pattern.state") for r in sink.records
                if r.event_name == "kubevents.pattern"]

    def backoff(t: float, count: int) -> KubeEvent:  # one series: the kubelet's count goes up
        return events.ev(t, "BackOff", "web-0", ns="payments", node="node-3",
                         message=BACKOFF, count=count)

    for count, t in enumerate((0, 30, 60), start=1):
        p.handle(backoff(t, count))
    assert states() == ["started"]
    clock.advance(5)
    p.expire(clock.now_ns())
    p.handle(backoff(90, 4))
    clock.advance(5)
    p.expire(clock.now_ns())  # Events came since the last checkpoint: still their time
    assert "resolved" not in states()
    p.expire(clock.now_ns())  # idle: the clock's time, an hour past the quiet time
    assert states()[-1] == "resolved"


class DeliveringSink(SlowSink):
    """Delivers at once and keeps nothing but the count."""

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        self.delivered += len(records)
        return ExportResult.SUCCESS

    def settled(self) -> int:
        return self.delivered


@pytest.mark.parametrize(
    ("checkpointed", "checkpoints"),
    [
        (True, True),  # kubevents run: its checkpoint trims what the sinks have settled
        (False, False),  # a replay: nothing asks, so nothing is kept for it
    ],
)
def test_records_let_out_late_cost_nothing_once_settled(checkpointed: bool, checkpoints: bool) -> None:
    # In order, every record waits behind a held one, and each is let out late: a replay
    # must not keep an entry per record let out (one per line of the input, before).
    sink = DeliveringSink()
    p = Pipeline(
        classifier=load_classifier(),
        sinks=[sink],
        clock=FakeClock(T0),
        detectors=Detectors(correlator=Correlator(load_correlation_rules(), settle_ns=SETTLE)),
        batch_size=1,
        ordered=True,
        checkpointed=checkpointed,
    )
    count = iter(range(1, 1 << 30))

    def pulled(t: float) -> None:  # one Event, its count and last time going up
        update = ev(t, "Pulled", "web-0", PULLED, "Normal", count=next(count))
        p.handle(dataclasses.replace(update, first_time_ns=T0))

    tracemalloc.start()  # before anything the rounds replace is made, so it counts as freed
    try:
        for i in range(3000):
            pulled(i / 1000)
        before = tracemalloc.get_traced_memory()[0]
        p.handle(ev(10, "Unhealthy", "db-0", READY))
        for i in range(9000):
            pulled(10 + i / 1000)
        assert p.held == 9001
        p.expire(T0 + 100 * S)  # the settle time passes: all of them leave
        p.flush()
        if checkpoints:
            p.settled()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert p.held == 0 and sink.delivered == p.stats.records == 12_001
    assert grown < 9000 * 64  # an entry kept per record let out: a tuple of two ints


def test_the_event_counts_series_idle_for_their_ttl_are_evicted_at_a_checkpoint() -> None:
    # kubevents_events_total's series of a namespace gone for an hour leave, and free
    # their label values for others (telemetry/counting.py); the pipeline's checkpoint
    # expiry is what runs that, as it does the other detectors'.
    from kubevents.telemetry.counting import EventCounts

    clock = FakeClock(T0)
    counts = EventCounts(idle_ttl_s=3600.0)
    p = Pipeline(classifier=load_classifier(), sinks=[], clock=clock,
                 detectors=Detectors(counts=counts))
    p.handle(events.ev(0, "BackOff", "web-1", ns="gone"))
    p.expire(clock.now_ns())
    assert len(counts.counter) == 1
    clock.advance(3601.0)
    p.expire(clock.now_ns())  # the watch has been idle: the stages take the clock's time
    assert len(counts.counter) == 0
    assert counts.counter.evicted == 1
