"""``kubevents run``: watch threads -> bounded queue -> the pipeline thread.

Threads (one ``stop`` Event ends them all):

* one watch loop per scope (cluster or namespace), in ``source/watching.py``;
  they put raw watch items on a bounded queue and WAIT when it is full
  (backpressure: the apiserver keeps what we have not read);
* the pipeline, in the thread that calls :meth:`Runner.run`: it normalizes,
  filters and processes items, and saves a checkpoint every interval with
  only what every sink has settled (at rest, when something new was settled:
  it waits for items until the next checkpoint is due, not on a short poll);
* with leader election, the elector; watches run only while leading.

Shutdown (SIGTERM/SIGINT or ``stop``): the watches stop, the queue is
drained into the pipeline, sinks are flushed, a final checkpoint is saved.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubevents.clock import Clock
from kubevents.errors import SourceError
from kubevents.filters import EventFilter
from kubevents.model import KubeEvent
from kubevents.normalize import NotAnEvent, normalize
from kubevents.pipeline import Pipeline, RepairLog
from kubevents.series import SeriesTracker
from kubevents.settings import Settings, parse_initial
from kubevents.source.checkpoint import CheckpointStore, SettledProgress
from kubevents.source.handoff import WatchQueue
from kubevents.source.kubeapi import CORE_V1, EVENTS_V1, ListWatch
from kubevents.source.watching import EventWatcher, Watched, WatchOptions, WatchStats
from kubevents.throttle import SeriesThrottle

logger = logging.getLogger(__name__)
_NS = 1_000_000_000
WATCH_STOP_S = 5.0
"""Longest the end of a term waits for its watch threads (they stop at their next line
or within a second of a quiet stream; a request stuck in connect is left behind)."""

SINK_STOP_S = 1.0  # delivery.WORKER_STOP_S
"""Longest a sink's worker is waited for after the flush timeout (``delivery.py``)."""

LEASE_RELEASE_MARGIN_S = 5.0
"""Longest the Lease release is waited for beyond ``leader.renew_s`` (``app.py``)."""


def shutdown_budget_s(settings: Settings) -> float:
    """The longest ``kubevents run`` takes from SIGTERM to exit: the watch stops, the
    last Events go through and are checkpointed, every sink flushes at once (at most
    ``delivery.flush_timeout_s``, the final OTLP metrics export included), then the Lease
    is released. A Pod's ``terminationGracePeriodSeconds`` must exceed it (tests/deploy
    checks the manifests). The pipeline thread sees the SIGTERM within :data:`IDLE_WAIT_S`."""
    budget = IDLE_WAIT_S + WATCH_STOP_S + settings.delivery.flush_timeout_s + SINK_STOP_S
    if settings.leader.enabled:
        budget += settings.leader.renew_s + LEASE_RELEASE_MARGIN_S
    return budget


SWITCH_INTERVAL_S = 0.0005
"""How long a thread keeps the GIL while another waits for it (``sys.setswitchinterval``;
Python's default is 5 ms). A watch thread gives the GIL up for every read from its socket,
about 140 TLS records for a list page of 500 Events, and each time it waits for the
pipeline thread's interval to take it back: with 5 ms the list of the real apiserver
bench paced the pipeline (1.7 s alone, 2.8 s beside a busy thread, 2.3 s at 0.5 ms)."""

STALL_S = 60.0
"""Seconds without a turn of the pipeline loop after which /healthz fails."""

IDLE_WAIT_S = 1.0
"""Longest the pipeline thread waits for an item before it looks at the clock again.

At rest it waits until its next checkpoint is due (every ``watch.checkpoint_interval_s``),
at most this long, so ``stop`` is seen within it. Each wake-up of a waiting thread costs
100-200 µs of CPU here (the timer, the switch and the interpreter's lock: measured on the
bench machine), whatever the loop then does: at the former fixed 0.2 s that was most of
the cost at rest (docs/performance.md, "At rest")."""

CHECKPOINT_REFRESH_S = 60.0
"""An unchanged checkpoint is saved again after this long: nothing new has been settled
since the last save, so the store keeps what it has (a file is not rewritten and synced
every second, nor the Lease annotation compressed again), and the checkpoint's age
(``kubevents_checkpoint_last_success_timestamp_seconds``) still shows a store that
takes writes, far under the stale alert's 5 minutes."""


@dataclass(frozen=True, slots=True)
class _Item:
    """One item of the watch queue: the objects of a list page, those of one read of a
    watch, or (neither) a progress marker."""

    scope: str
    term: int
    """The leadership term the item was read in; items of an old term are dropped."""
    resource_version: str = ""
    """A progress marker's: the stream is known good up to it."""
    page: list[dict[str, Any]] | None = None
    """The objects of one list page, each ADDED: one item for all of them."""
    watched: list[Watched] | None = None
    """The objects one read of the watch brought: one item for all of them."""


THROTTLE_CHECK_S = 0.2
"""While updates are held by ``watch.throttle_s``, the loop looks for due ones this often."""

_WAKE = _Item("", 0)
"""Put on the queue to end the pipeline thread's wait at once (a change of leadership);
of no term (terms count from 1), so nothing processes it."""


def _send_now(pipeline: Pipeline) -> None:
    """What the pipeline has batched to its sinks, and the sinks' partial batches sent
    without waiting for ``delivery.batch_timeout_s``: at the checkpoints that end a list,
    whose snapshot is complete (the records it let out, the held ones it released)."""
    pipeline.flush()
    for sink in pipeline.sinks:
        send_now = getattr(sink, "send_now", None)
        if send_now is not None:
            send_now()


class _QueueHandler:
    """Puts what a watch sees on the queue, waiting while it is full."""

    def __init__(self, q: WatchQueue[_Item], stop: threading.Event, term: int) -> None:
        self._q, self._stop, self._term = q, stop, term

    def _put(self, item: _Item, nbytes: int, count: int = 1) -> None:
        while not self._stop.is_set():
            if self._q.put(item, nbytes, timeout=0.2, count=count):
                return

    def on_watched(self, events: list[Watched], *, scope: str, nbytes: int) -> None:
        self._put(_Item(scope, self._term, watched=events), nbytes, len(events))

    def on_listed(self, objs: list[dict[str, Any]], *, scope: str, nbytes: int) -> None:
        self._put(_Item(scope, self._term, page=objs), nbytes, len(objs))

    def on_progress(self, *, scope: str, resource_version: str) -> None:
        self._put(_Item(scope, self._term, resource_version), 0)


@dataclass
class RunStats:
    """What ``run`` did beyond the pipeline, for metrics and /readyz."""

    invalid: int = 0
    """Watch objects that were not Events."""
    filtered: int = 0
    """Events dropped by the client-side filters."""
    seeded: int = 0
    """Events of the first list not emitted because of ``watch.initial``."""
    checkpoints: int = 0
    checkpoint_errors: int = 0
    last_checkpoint_ns: int = 0
    last_event_time_ns: int = 0
    """Occurrence time of the newest Event processed (lag = now - this)."""
    leader: bool = False
    watch_stats: list[WatchStats] = field(default_factory=list)


def detect_api(make_api: Callable[[str], ListWatch], preference: str) -> ListWatch:
    """events.k8s.io/v1 unless configured otherwise or the server does not serve it."""
    if preference != "auto":
        return make_api(preference)
    api = make_api(EVENTS_V1)
    try:
        api.list_page(namespace="", field_selector="", limit=1, continue_token="")
    except SourceError as e:
        if getattr(e, "status", None) == 404:
            logger.warning("events.k8s.io/v1 is not served: falling back to core v1 Events")
            return make_api(CORE_V1)
    return api


class Runner:
    """Runs the watch, the pipeline and checkpoints until ``stop`` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        pipeline_factory: Callable[[SeriesTracker], Pipeline],
        api: ListWatch,
        store: CheckpointStore,
        clock: Clock,
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = store
        self.clock = clock
        self.stop = stop
        self.stats = RunStats()
        self._repairs = RepairLog()
        self.flush_s = 0.0
        """How long the sinks took to flush at shutdown (the metrics export gets the rest)."""
        self._pipeline_factory = pipeline_factory
        self._filter = EventFilter.from_settings(settings.watch.filters)
        self._queue: WatchQueue[_Item] = WatchQueue(
            settings.watch.queue_size, settings.watch.queue_max_bytes
        )
        self._lookback_s = parse_initial(settings.watch.initial) or 0.0
        self._term = 0
        self._term_stop = threading.Event()
        self._watch_threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.pipeline: Pipeline | None = None
        self._progress: SettledProgress | None = None
        self._pruned_at = -1
        """The tracker's ``removals`` when the emitted counts were last pruned."""
        self._seeding: set[str] = set()
        """Scopes whose first list is still being seeded (``watch.initial`` other than all)."""
        self._pending_start = False
        self._pending_stop = False
        self._throttle = SeriesThrottle(settings.watch.throttle_s)
        self._loop_at = 0.0
        """When the pipeline thread last went round its loop (monotonic; 0 before)."""
        self._listing: set[str] = set()
        """Scopes whose list items are coming (until their list's progress marker)."""
        self._eager = 0
        """Checkpoints still to take as soon as the queue is idle: a list just ended."""
        self._unbuilt: SeriesTracker | None = None
        """The tracker of a term :meth:`start_watching` began, whose pipeline is not built."""
        self._saved: tuple[int, bool, int] | None = None
        """What the last checkpoint saved in this term was made of (``SettledProgress.changes``,
        updates held, the tracker's newest time): the same again is not saved again."""
        self._saved_at = 0.0

    # -- leadership (called from the elector thread, or directly without HA) --

    def start_leading(self) -> None:
        """Begin a term: the pipeline thread will load the checkpoint and start watching."""
        with self._lock:
            self._pending_start = True
            self.stats.leader = True
        self._wake()

    def start_watching(self) -> None:
        """Lead (without leader election) and begin the term now, on the calling thread,
        before :meth:`run`: the watches list while the caller builds what the pipeline
        factory needs (rules, sinks, detectors: a few tenths of a second), and ``run``
        builds the pipeline before it takes the first item."""
        with self._lock:
            self.stats.leader = True
        self._begin_term(build=False)

    def stop_leading(self) -> None:
        """End the term at once: watches stop, queued items of the term are dropped."""
        with self._lock:
            self._pending_stop = True
            self.stats.leader = False
        self._term_stop.set()
        self._wake()

    def _wake(self) -> None:
        """End the pipeline thread's wait for an item (a full queue ends it anyway)."""
        self._queue.put(_WAKE, 0, timeout=0.0)

    # -- the pipeline thread --

    def run(self) -> None:
        """Process items until ``stop``; then drain, flush and checkpoint."""
        interval = self.settings.watch.checkpoint_interval_s
        # Save every interval under load, and as soon as the queue goes idle after progress
        # (at most every quarter interval), so a burst is covered without waiting.
        idle_spacing = interval / 4
        last_save = time.monotonic()
        dirty = False
        follow_up = False  # the last checkpoint came after progress and left records held
        if self._unbuilt is not None:  # start_watching() began the term
            self.pipeline, self._unbuilt = self._pipeline_factory(self._unbuilt), None
        while not self.stop.is_set():
            self._loop_at = time.monotonic()
            self._apply_leadership_changes()
            try:
                item = self._queue.get(timeout=self._wait_s(last_save, dirty or follow_up))
            except queue.Empty:
                item = None
            if item is not None and item is not _WAKE:
                self._process(item)
                dirty = True
            for held in self._throttle.due(time.monotonic()):
                self._handle(held)
            idle = self._queue.empty()
            if self.pipeline is not None and idle:
                self.pipeline.flush()  # idle: hand what is batched to the sinks now (latency)
            now = time.monotonic()
            eager = idle and self._eager > 0
            quiet = (dirty or follow_up) and idle and (eager or now - last_save >= idle_spacing)
            if now - last_save >= interval or quiet:
                # The stages take the clock's time only at a checkpoint with no Event since
                # the previous one (Pipeline.expire): after a burst (the first list, a
                # relist) that is the one after next, where the records held for a late
                # cause whose time has passed leave. With records held, it comes as soon
                # as the stream stayed quiet, not a whole interval after the burst; at
                # the end of a list (a snapshot: nothing older is coming), at once.
                pipeline = self.pipeline
                if pipeline is not None:
                    pipeline.expire(self.clock.now_ns())  # resolve patterns gone quiet
                self._checkpoint()
                follow_up = dirty and pipeline is not None and pipeline.held > 0
                last_save, dirty = now, False
                if eager:
                    self._eager = self._eager - 1 if follow_up else 0
                    if pipeline is not None:
                        _send_now(pipeline)
        self._shutdown()

    def _wait_s(self, last_save: float, progressed: bool) -> float:
        """How long the loop may wait for an item: until the next checkpoint is due (the
        quiet one after progress, else the interval's), a held update is due, or at most
        :data:`IDLE_WAIT_S`; not at all while a list's checkpoints are waiting."""
        if self._eager:
            return 0.0
        interval = self.settings.watch.checkpoint_interval_s
        due = last_save + (interval / 4 if progressed else interval)
        wait = min(due - time.monotonic(), IDLE_WAIT_S)
        if len(self._throttle):
            wait = min(wait, THROTTLE_CHECK_S)
        return max(wait, 0.0)

    def _apply_leadership_changes(self) -> None:
        with self._lock:
            start, stop = self._pending_start, self._pending_stop
            self._pending_start = self._pending_stop = False
        if stop:
            self._end_term(final_checkpoint=False)
        if start:
            self._begin_term()

    def _begin_term(self, *, build: bool = True) -> None:
        self._term += 1
        self._term_stop = threading.Event()
        self._saved = None  # a new term's progress: its first checkpoint is saved
        checkpoint = None
        try:
            checkpoint = self.store.load()
        except SourceError as e:
            logger.error("%s; starting without a checkpoint", e)
        tracker = SeriesTracker(
            ttl_s=self.settings.pipeline.series_ttl_s,
            max_entries=self.settings.pipeline.series_max_entries,
        )
        if checkpoint is not None and checkpoint.api_version == self.api.api_version:
            tracker.restore(checkpoint.emitted.items(), time_ns=checkpoint.event_time_ns)
            self._progress = SettledProgress.resume(checkpoint)
            self._pruned_at = -1
            versions = checkpoint.resource_versions
            self._seeding = set()
            logger.info(
                "resuming from checkpoint: %d scopes, %d Events already emitted",
                len(versions),
                len(checkpoint.emitted),
            )
        else:
            self._progress = SettledProgress(self.api.api_version)
            self._pruned_at = -1
            versions = {}
        if build:
            self.pipeline = self._pipeline_factory(tracker)
        else:
            self.pipeline, self._unbuilt = None, tracker  # run() builds it, before any item
        scopes = list(self.settings.watch.namespaces) or [""]
        if checkpoint is None and self._lookback_s != float("inf"):
            self._seeding = {namespace or "*" for namespace in scopes}
        self.stats.watch_stats = []
        self._watch_threads = []
        for namespace in scopes:
            watcher = EventWatcher(
                api=self.api,
                handler=_QueueHandler(self._queue, self._term_stop, self._term),
                stop=self._term_stop,
                options=WatchOptions.from_settings(self.settings.watch),
                namespace=namespace,
                resource_version=versions.get(namespace or "*", ""),
            )
            self.stats.watch_stats.append(watcher.stats)
            thread = threading.Thread(
                target=watcher.run, name=f"watch-{watcher.scope}", daemon=True
            )
            self._watch_threads.append(thread)
            thread.start()

    def _process(self, item: _Item) -> None:
        pipeline, progress = self.pipeline, self._progress
        if item.term != self._term or pipeline is None or progress is None:
            return  # read under a previous leadership term: the next leader owns it
        if item.watched is not None:
            for watch_type, obj, resource_version in item.watched:
                self._event(
                    pipeline, progress, watch_type, obj, item.scope, resource_version, False
                )
            return
        if item.page is not None:
            self._listing.add(item.scope)
            for obj in item.page:
                self._event(pipeline, progress, "ADDED", obj, item.scope, "", True)
            return
        self._seeding.discard(item.scope)  # the first list is complete: from here on, emit
        if item.scope in self._listing:
            self._listing.discard(item.scope)
            self._eager = 2  # its checkpoint, then the one that takes the clock's time
        progress.processed(
            records_after=pipeline.records_total,
            scope=item.scope,
            resource_version=item.resource_version,
        )

    def _event(
        self,
        pipeline: Pipeline,
        progress: SettledProgress,
        watch_type: str,
        obj: dict[str, Any],
        scope: str,
        resource_version: str,
        listed: bool,
    ) -> None:
        try:
            event = normalize(obj)
        except NotAnEvent as e:
            self.stats.invalid += 1
            logger.warning(
                "watch %s: skipped object at resourceVersion %s: %s",
                scope,
                resource_version,
                e,
            )
            progress.processed(
                records_after=pipeline.records_total,
                scope=scope,
                resource_version=resource_version,
            )
            return
        if event.repairs:
            self._repairs(event, f"watch {scope} at resourceVersion {resource_version}")
        held = False
        if watch_type == "DELETED":
            pipeline.delete(event)
            progress.forget(event.key)
        elif not self._filter.keeps(event):
            self.stats.filtered += 1
        elif listed and scope in self._seeding and not self._recent(event.time_ns):
            pipeline.tracker.observe(event)  # remembered as seen, not emitted
            self.stats.seeded += 1
        elif listed:
            held = self._handle(event)
        elif (released := self._throttle.offer(event, time.monotonic())) is not None:
            held = self._handle(released)
        progress.processed(
            records_after=pipeline.records_total,
            scope=scope,
            resource_version=resource_version,
            key=event.key,
            count=pipeline.tracker.count_of(event) or 0,
            exported_after=pipeline.exported,
            held=held,
        )

    def _handle(self, event: KubeEvent) -> bool:
        """Process ``event``; whether its record is held for a late cause."""
        assert self.pipeline is not None
        self.pipeline.handle(event)
        self.stats.last_event_time_ns = max(self.stats.last_event_time_ns, event.time_ns)
        return self.pipeline.held_last

    def _recent(self, time_ns: int) -> bool:
        return time_ns >= self.clock.now_ns() - self._lookback_s * _NS

    def _checkpoint(self, *, force: bool = False) -> None:
        """Save the settled progress, unless it is what the store holds already (see
        :data:`CHECKPOINT_REFRESH_S`) and ``force`` is not set."""
        pipeline, progress = self.pipeline, self._progress
        if pipeline is None or progress is None:
            return
        pipeline.flush()
        progress.settle(pipeline.settled(), pipeline.delivered())
        tracker = pipeline.tracker
        # The emitted counts follow the tracker: what it forgot (age, size, deletion) is
        # dropped. Only when it has forgotten something since the last time: checking
        # 175,000 keys every second cost about 0.1 s. (A key settled after the tracker
        # dropped it stays until the next removal: one count kept a little longer.)
        keep = tracker if tracker.removals != self._pruned_at else None
        self._pruned_at = tracker.removals
        checkpoint = progress.checkpoint(
            self.clock.now_ns(), keep=keep, event_time_ns=tracker.high_water_ns
        )
        throttled = len(self._throttle) > 0
        if throttled:
            # Held updates are behind the resourceVersions: a restart must relist to see them
            # again (the emitted counts keep the relist from repeating anything).
            checkpoint = dataclasses.replace(checkpoint, resource_versions={})
        state = (progress.changes, throttled, tracker.high_water_ns)
        now = time.monotonic()
        if not force and state == self._saved and now - self._saved_at < CHECKPOINT_REFRESH_S:
            return  # nothing settled since the last save: the store holds this already
        try:
            self.store.save(checkpoint)
        except SourceError as e:
            self.stats.checkpoint_errors += 1
            logger.error("%s", e)
            return
        self._saved, self._saved_at = state, now
        self.stats.checkpoints += 1
        self.stats.last_checkpoint_ns = checkpoint.saved_ns

    def _end_term(self, *, final_checkpoint: bool) -> None:
        self._term_stop.set()
        for thread in self._watch_threads:
            thread.join(timeout=WATCH_STOP_S)
        if final_checkpoint:
            while True:
                try:
                    self._process(self._queue.get_nowait())
                except queue.Empty:
                    break
            for held in self._throttle.drain():
                self._handle(held)
            self._checkpoint(force=True)
        else:
            # Deposed: emit nothing more of this term; the next leader resumes from the checkpoint.
            while True:
                try:
                    self._queue.get_nowait()
                except queue.Empty:
                    break
            self._throttle.drain()
            if self.pipeline is not None:
                self.pipeline.discard_pending()
            self._progress = None  # a deposed replica never writes a checkpoint
        self._watch_threads = []

    def _shutdown(self) -> None:
        if self.pipeline is not None and self.stats.leader:
            self._end_term(final_checkpoint=True)
        else:
            self._term_stop.set()
        if self.pipeline is not None:
            started = time.monotonic()
            self.pipeline.close(self.settings.delivery.flush_timeout_s)
            self.flush_s = time.monotonic() - started

    @property
    def throttled(self) -> int:
        """Event updates held back by ``watch.throttle_s`` (merged into a later record)."""
        return self._throttle.throttled

    def queue_size(self) -> int:
        """Watch items waiting for the pipeline thread."""
        return self._queue.qsize()

    @property
    def queue_capacity(self) -> int:
        return self.settings.watch.queue_size

    def queue_bytes(self) -> int:
        """Bytes (as JSON) of the watch items waiting for the pipeline thread."""
        return self._queue.bytes

    @property
    def queue_max_bytes(self) -> int:
        return self.settings.watch.queue_max_bytes

    def queue_full(self) -> dict[str, int]:
        """Puts that found the queue full and waited, by the bound that held them."""
        return {"items": self._queue.full_items, "bytes": self._queue.full_bytes}

    def healthy(self) -> tuple[bool, str]:
        """(alive, why) for /healthz: the pipeline thread goes round its loop.

        The loop wakes at least every :data:`IDLE_WAIT_S`; one that has not come round for
        ``STALL_S`` is stuck (a sink call that never returns, a deadlock), and
        a restart is the cure.
        """
        if not self._loop_at:
            return True, "starting"
        stalled = time.monotonic() - self._loop_at
        if stalled > STALL_S:
            return False, f"pipeline thread stalled for {stalled:.0f}s"
        return True, "ok"

    def lag_s(self) -> float:
        """Seconds between now and the newest Event processed (0 before the first)."""
        if not self.stats.last_event_time_ns:
            return 0.0
        return max(self.clock.now_ns() - self.stats.last_event_time_ns, 0) / _NS

    def ready(self) -> tuple[bool, str]:
        """(ready, why) for /readyz: watching and established, or a healthy standby."""
        if not self.stats.leader:
            return True, "standby"
        if self.stats.watch_stats and all(s.established or s.lists for s in self.stats.watch_stats):
            return True, "watching"
        return False, "watch not established"
