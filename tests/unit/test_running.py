"""Runner: probes, and its own logic (seeding, throttling, checkpoints, leadership terms)
driven through a real watch loop over the in-memory API (``tests/fakes/memory_api.py``),
with real Events of the demo recording."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubevents.app import classifier_from, correlator_from
from kubevents.clock import Clock, FakeClock, SystemClock
from kubevents.enrich.classify import Classifier
from kubevents.normalize import normalize
from kubevents.pipeline import Detectors, Pipeline
from kubevents.records import OutputRecord
from kubevents.running import STALL_S, Runner
from kubevents.series import SeriesTracker
from kubevents.settings import DeliverySettings, Settings, load_settings
from kubevents.sinks.base import ExportResult, InMemorySink, Sink
from kubevents.sinks.delivery import DeliverySink
from kubevents.sinks.transport import Sent
from kubevents.source.checkpoint import MemoryCheckpointStore
from kubevents.source.kubeapi import EVENTS_V1
from tests.fakes.memory_api import MemoryEventsApi

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "events.jsonl"
SERIES_UID = "65bf3293-9a8b-47db-a93b-81d0d651a563"
"""An Unhealthy probe Event of the demo that the kubelet updates again and again."""
_NS = 1_000_000_000


def demo_updates() -> list[tuple[str, dict[str, Any]]]:
    """The demo's events.k8s.io/v1 watch updates, in recorded order."""
    rows = [orjson.loads(line) for line in DEMO.read_bytes().splitlines() if line.strip()]
    return [(r["type"], r["object"]) for r in rows if r["object"]["apiVersion"] == EVENTS_V1]


def distinct_events(n: int) -> list[dict[str, Any]]:
    """``n`` demo Events (ADDED), one per uid, spread over the recording (about 37 min)."""
    added: dict[str, dict[str, Any]] = {}
    for watch_type, obj in demo_updates():
        if watch_type == "ADDED":
            added.setdefault(obj["metadata"]["uid"], obj)
    spread = list(added.values())
    return spread[:: len(spread) // n][:n]


def uid(record: OutputRecord) -> Any:
    return record.attributes["k8s.event.uid"]


def settings_with(**overrides: Any) -> Settings:
    base = {
        "watch.empty_watch_s": 0.0,  # the fake's watches end quickly: that is no expiry
        "watch.checkpoint_interval_s": 60.0,
        "correlation.enabled": False,
    }
    return load_settings(None, env={}, overrides={**base, **overrides})


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


class GatedSink(InMemorySink):
    """Holds its first export until ``gate`` is set (the pipeline thread waits in it)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        if not self.records:
            self.waiting.set()
            self.gate.wait(10)
        return super().export(records)


def make_runner(
    settings: Settings,
    api: MemoryEventsApi,
    sink: Sink,
    *,
    store: MemoryCheckpointStore | None = None,
    clock: Clock | None = None,
) -> Runner:
    clock = clock or SystemClock()

    def pipeline(tracker: SeriesTracker) -> Pipeline:
        return Pipeline(
            classifier=Classifier([]), sinks=[sink], clock=clock, tracker=tracker, batch_size=1
        )

    return Runner(
        settings,
        pipeline_factory=pipeline,
        api=api,
        store=store or MemoryCheckpointStore(),
        clock=clock,
        stop=threading.Event(),
    )


@contextlib.contextmanager
def running(runner: Runner) -> Iterator[Runner]:
    """The pipeline thread runs, leading, until the block ends (then a clean shutdown)."""
    thread = threading.Thread(target=runner.run, name="test-runner", daemon=True)
    runner.start_leading()
    thread.start()
    try:
        yield runner
    finally:
        runner.stop.set()
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_healthy_while_the_loop_turns_and_not_once_it_stalls() -> None:
    r = make_runner(settings_with(), MemoryEventsApi(), InMemorySink())
    assert r.healthy() == (True, "starting")
    r._loop_at = time.monotonic()  # what each turn of Runner.run stamps
    assert r.healthy() == (True, "ok")
    r._loop_at = time.monotonic() - STALL_S - 5
    ok, why = r.healthy()
    assert not ok and why.startswith("pipeline thread stalled for 6")


def test_ready_only_when_leading_and_watching_or_on_standby() -> None:
    r = make_runner(settings_with(), MemoryEventsApi(), InMemorySink())
    assert r.ready() == (True, "standby")
    r.start_leading()
    assert r.ready() == (False, "watch not established")


@pytest.mark.parametrize(
    ("initial", "emitted_of_five"),
    [
        ("all", [0, 1, 2, 3, 4]),  # every Event still in the API
        ("none", []),  # only what happens from now on
        ("since=10m", "recent"),  # those of the last ten minutes before "now"
    ],
)
def test_the_first_list_is_emitted_as_watch_initial_says_and_the_rest_only_remembered(
    initial: str, emitted_of_five: Any
) -> None:
    old = distinct_events(6)
    listed, new = old[:5], old[5]
    times = [normalize(o).time_ns for o in listed]
    # "Now" is ten minutes after the third oldest: the two before it are older than that.
    now_ns = sorted(times)[2] + 600 * _NS
    if emitted_of_five == "recent":
        emitted_of_five = [i for i, t in enumerate(times) if t >= now_ns - 600 * _NS]
        assert 0 < len(emitted_of_five) < 5, "the demo's first Events span a few minutes"
    api, sink = MemoryEventsApi(), InMemorySink()
    for obj in listed:
        api.store(obj)
    runner = make_runner(
        settings_with(**{"watch.initial": initial}), api, sink, clock=FakeClock(now_ns)
    )
    with running(runner):
        wait_until(lambda: len(api.watches()) >= 1, "the watch after the list")
        api.send("ADDED", new)
        wait_until(lambda: new["metadata"]["uid"] in map(uid, sink.records), "the watched Event")
    expected = [listed[i]["metadata"]["uid"] for i in emitted_of_five] + [new["metadata"]["uid"]]
    assert [uid(r) for r in sink.records] == expected
    assert runner.stats.seeded == 5 - len(emitted_of_five)


def test_updates_within_watch_throttle_s_are_held_and_leave_merged_with_no_resume_point() -> None:
    series = [obj for _, obj in demo_updates() if obj["metadata"]["uid"] == SERIES_UID][:3]
    api, sink, store = MemoryEventsApi(), InMemorySink(), MemoryCheckpointStore()
    settings = settings_with(**{"watch.throttle_s": 3600.0, "watch.checkpoint_interval_s": 0.05})
    runner = make_runner(settings, api, sink, store=store)
    with running(runner):
        wait_until(lambda: len(api.watches()) >= 1, "the watch")
        for obj in series:
            api.send("MODIFIED", obj)
        wait_until(lambda: runner.throttled == 2, "two updates held")
        # The checkpoint saved once they were processed (and no other since: nothing new).
        wait_until(
            lambda: store.checkpoint is not None and store.checkpoint.resource_versions == {},
            "a checkpoint while they are held",
        )
        assert [uid(r) for r in sink.records] == [SERIES_UID]  # the first, at once
    # At shutdown the held update leaves: the last one, carrying every occurrence.
    assert [uid(r) for r in sink.records] == [SERIES_UID, SERIES_UID]
    assert sink.records[-1].attributes["k8s.event.count"] == normalize(series[-1]).count
    assert store.checkpoint is not None
    assert store.checkpoint.resource_versions == {"*": series[-1]["metadata"]["resourceVersion"]}


def test_at_rest_the_checkpoint_is_not_saved_again_until_something_new_is_settled() -> None:
    """Every interval looks at the progress, but only what changed is saved: a quiet
    watch leaves the store alone (a checkpoint file is not rewritten and synced every
    second), and the next Event is saved at the next checkpoint."""
    api, sink, store = MemoryEventsApi(), InMemorySink(), MemoryCheckpointStore()
    first, second = distinct_events(2)
    api.store(first)
    runner = make_runner(settings_with(**{"watch.checkpoint_interval_s": 0.05}), api, sink,
                         store=store)
    with running(runner):
        wait_until(
            lambda: store.checkpoint is not None and first["metadata"]["uid"] in store.checkpoint.emitted,
            "the listed Event checkpointed",
        )
        time.sleep(0.3)  # the list's follow-up checkpoints
        saves, checks = store.saves, runner.stats.checkpoint_errors
        time.sleep(0.5)  # ten intervals at rest
        assert store.saves == saves
        api.send("ADDED", second)
        wait_until(
            lambda: second["metadata"]["uid"] in (store.checkpoint.emitted if store.checkpoint else {}),
            "the new Event checkpointed",
        )
        assert store.saves > saves and runner.stats.checkpoint_errors == checks
    assert runner.stats.checkpoints == store.saves


def test_records_held_for_a_late_cause_leave_as_soon_as_the_first_list_ends() -> None:
    """Listed Events are older than the clock, so what the correlator held for a late
    cause is due already: it leaves at the checkpoint after the list's own, taken at once
    when the list ends, not a quarter interval (the stream quiet) or a whole one later."""
    settings = settings_with(**{"correlation.enabled": True, "watch.checkpoint_interval_s": 8.0})
    api, clock = MemoryEventsApi(), SystemClock()
    for obj in distinct_events(100):
        api.store(obj)
    held_at_export: list[int] = []

    class HoldSeeingSink(InMemorySink):
        """Notes how many records the pipeline holds at each export (the pipeline thread)."""

        def export(self, records: Sequence[OutputRecord]) -> ExportResult:
            held_at_export.append(runner.pipeline.held if runner.pipeline is not None else 0)
            return super().export(records)

    sink = HoldSeeingSink()

    def pipeline(tracker: SeriesTracker) -> Pipeline:
        detectors = Detectors(correlator=correlator_from(settings))
        return Pipeline(classifier=classifier_from(settings), sinks=[sink], clock=clock,
                        tracker=tracker, batch_size=1, detectors=detectors)

    runner = Runner(settings, pipeline_factory=pipeline, api=api, store=MemoryCheckpointStore(),
                    clock=clock, stop=threading.Event())
    started = time.monotonic()
    with running(runner):
        wait_until(
            lambda: max(held_at_export, default=0) > 0
            and runner.pipeline is not None
            and not runner.pipeline.held,
            "records held, then released",
        )
        elapsed = time.monotonic() - started
    # Waiting for the stream to be quiet would take two quarter intervals (2 s each).
    assert elapsed < 2.0


class CountingTransport:
    """A transport that takes every batch (a real one of the Transport protocol: the
    delivery queue, its batching and its worker are DeliverySink's own)."""

    endpoint = "counting://test"

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        self.records += records
        return Sent(len(records))

    def close(self) -> None:
        pass


def test_the_end_of_a_list_sends_its_last_partial_batch_without_waiting_for_the_batch_timeout() -> None:
    """The list is a snapshot: once it is processed nothing else is coming at once, so
    its last records go to the backend then, not a ``delivery.batch_timeout_s`` later."""
    listed = distinct_events(20)
    api = MemoryEventsApi()
    for obj in listed:
        api.store(obj)
    transport = CountingTransport()
    sink = DeliverySink("test", transport, DeliverySettings(batch_timeout_s=3600.0))
    runner = make_runner(settings_with(), api, sink)
    try:
        with running(runner):
            wait_until(lambda: len(transport.records) == len(listed), "the listed Events delivered")
    finally:
        sink.shutdown(5)
    assert sorted(map(uid, transport.records)) == sorted(o["metadata"]["uid"] for o in listed)


def test_start_watching_lists_before_the_pipeline_is_built_and_run_loses_nothing() -> None:
    """``kubevents run`` begins the first list while it builds the stages: the listed
    Events wait in the queue, and run() builds the pipeline before it takes any."""
    listed = distinct_events(20)
    api, sink = MemoryEventsApi(), InMemorySink()
    for obj in listed:
        api.store(obj)
    watches_when_built: list[int] = []

    def pipeline(tracker: SeriesTracker) -> Pipeline:
        watches_when_built.append(len(api.watches()))
        return Pipeline(classifier=Classifier([]), sinks=[sink], clock=SystemClock(),
                        tracker=tracker, batch_size=1)

    runner = Runner(settings_with(), pipeline_factory=pipeline, api=api,
                    store=MemoryCheckpointStore(), clock=SystemClock(), stop=threading.Event())
    runner.start_watching()
    wait_until(lambda: len(api.watches()) >= 1, "the watch after the list")
    assert runner.pipeline is None and watches_when_built == []
    assert runner.queue_size() == len(listed) + 1  # and the list's progress marker
    thread = threading.Thread(target=runner.run, name="test-runner", daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(sink.records) == len(listed), "every listed Event")
    finally:
        runner.stop.set()
        thread.join(timeout=10)
    assert watches_when_built == [1]
    assert [uid(r) for r in sink.records] == [o["metadata"]["uid"] for o in listed]


def test_a_restart_resumes_the_watch_at_the_checkpoint_and_a_relist_repeats_nothing() -> None:
    first, later = distinct_events(4)[:3], distinct_events(4)[3]
    store = MemoryCheckpointStore()
    api, sink = MemoryEventsApi(), InMemorySink()
    for obj in first:
        api.store(obj)
    with running(make_runner(settings_with(), api, sink, store=store)):
        wait_until(lambda: len(sink.records) == 3, "the first list")
    saved = store.checkpoint
    assert saved is not None
    newest = max((o["metadata"]["resourceVersion"] for o in first), key=int)
    assert saved.resource_versions == {"*": newest}
    assert set(saved.emitted) == {normalize(o).key for o in first}

    # The next start watches from the saved resourceVersion: no list.
    api2, sink2 = MemoryEventsApi(), InMemorySink()
    for obj in first:
        api2.store(obj)
    with running(make_runner(settings_with(), api2, sink2, store=store)):
        wait_until(lambda: len(api2.watches()) >= 1, "the resumed watch")
        api2.send("ADDED", later)
        wait_until(lambda: len(sink2.records) == 1, "the new Event")
    assert (api2.lists(), api2.watches()[0]) == (0, newest)
    assert [uid(r) for r in sink2.records] == [later["metadata"]["uid"]]

    # A resourceVersion that is gone means a relist: the emitted counts keep it from repeating.
    api3, sink3 = MemoryEventsApi(), InMemorySink()
    for obj in [*first, later]:
        api3.store(obj)
    relist = MemoryCheckpointStore(dataclasses.replace(store.checkpoint, resource_versions={}))
    runner3 = make_runner(settings_with(), api3, sink3, store=relist)
    with running(runner3):
        wait_until(lambda: len(api3.watches()) >= 1, "the watch after the relist")
    assert api3.lists() == 1 and sink3.records == []


def test_items_of_a_term_that_ended_are_dropped_and_the_next_term_reads_them_again() -> None:
    events = distinct_events(3)
    api, sink = MemoryEventsApi(), GatedSink()
    runner = make_runner(settings_with(), api, sink)
    with running(runner):
        wait_until(lambda: len(api.watches()) >= 1, "the watch")
        api.send("ADDED", events[0])
        sink.waiting.wait(10)  # the pipeline thread is in the first export
        for obj in events[1:]:
            api.send("ADDED", obj)
        wait_until(lambda: runner.queue_size() == 2, "the other two queued")
        runner.stop_leading()  # deposed while two items of the term wait in the queue
        sink.gate.set()
        wait_until(lambda: runner.queue_size() == 0, "the queue emptied")
        time.sleep(0.5)  # two turns of the loop: nothing of the old term may come out
        assert [uid(r) for r in sink.records] == [events[0]["metadata"]["uid"]]
        runner.start_leading()  # no checkpoint was saved: the new term lists everything
        wait_until(lambda: len(sink.records) == 4, "the new term's list")
    assert [uid(r) for r in sink.records] == [
        events[0]["metadata"]["uid"],
        *(o["metadata"]["uid"] for o in events),
    ]


def test_a_list_waits_at_the_queue_byte_bound_while_the_pipeline_is_busy() -> None:
    listed = distinct_events(40)
    sizes = [len(orjson.dumps(o)) for o in listed]
    bound = 6 * max(sizes)  # room for one or two pages of 5 of these Events, not 8 pages
    api, sink = MemoryEventsApi(), GatedSink()
    for obj in listed:
        api.store(obj)
    settings = settings_with(**{"watch.queue_max_bytes": bound, "watch.page_size": 5})
    runner = make_runner(settings, api, sink)
    with running(runner):
        sink.waiting.wait(10)  # the pipeline thread is in the first export
        # The pipeline took the first page; the watch put what fits behind it, and waits.
        wait_until(lambda: runner.queue_full()["bytes"] >= 1 and runner.queue_size() >= 5,
                   "the watch waiting for room")
        assert runner.queue_size() <= 10  # Events: a page counts as the ones it holds
        assert api.watches() == []  # the list is not done
        assert runner.queue_bytes() <= bound
        assert runner.queue_full()["items"] == 0
        sink.gate.set()
        wait_until(lambda: len(sink.records) == 40, "the whole list, once there was room")
    assert sorted(map(uid, sink.records)) == sorted(o["metadata"]["uid"] for o in listed)
