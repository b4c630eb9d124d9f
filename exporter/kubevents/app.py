"""What each command does, given settings: the layer between the CLI and the parts.

``cli.py`` only parses arguments; everything here is callable from tests
with explicit settings and streams.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import heapq
import itertools
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TextIO

from kubevents import __version__, allocator
from kubevents.clock import Clock, SystemClock
from kubevents.enrich.classify import Classifier, compile_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import compile_correlation_rules
from kubevents.enrich.owners import OwnerLookup
from kubevents.enrich.rules import (
    RULE_KINDS,
    RuleFile,
    check_disabled_packs,
    pack_files,
    read_rule_file,
    rule_files,
    rule_files_by_kind,
    rule_layers,
)
from kubevents.errors import ConfigError, InputError, RulesError, did_you_mean, output_error
from kubevents.model import KubeEvent
from kubevents.normalize import NotAnEvent, is_event, normalize
from kubevents.pipeline import Detectors, Pipeline, RepairLog
from kubevents.records import ResourceInfo
from kubevents.ruletesting.cases import CaseResult, format_results
from kubevents.ruletesting.classification import run_test_file
from kubevents.series import SeriesTracker
from kubevents.settings import Settings
from kubevents.sinks.registry import SinkContext, build_sinks
from kubevents.source import ordering
from kubevents.source.dumplines import Normalized, Scan
from kubevents.source.ordering import Spool, WindowCheck, sorted_on_disk, windowed
from kubevents.source.replaying import (
    Item,
    Problem,
    as_read,
    display_name,
    is_stream,
    read_file,
    stream_batches,
    where_of,
)
from kubevents.summary import Summary
from kubevents.telemetry.plan import metrics_plan
from kubevents.telemetry.server import Probes

if TYPE_CHECKING:
    from kubevents.source.kubeclient import KubeClient
    from kubevents.source.objects import ObjectCache
    from kubevents.telemetry.metrics import MetricsRuntime

logger = logging.getLogger(__name__)


def resource_info(settings: Settings) -> ResourceInfo:
    """The Resource of this process; the instance id is stable across restarts."""
    instance = settings.instance_id or os.environ.get("POD_NAME") or socket.gethostname()
    return ResourceInfo(
        service_version=__version__, instance_id=instance, cluster_name=settings.cluster_name
    )


RulesRead = dict[str, list[RuleFile]]
"""The rule files of the configured layers and packs, by kind (:func:`read_rules`)."""


def read_rules(settings: Settings) -> RulesRead:
    """Every rule file of the configured layers and packs, each read once, by kind.

    A command that builds its classifier, correlator and detectors passes this to each:
    every file is read whatever its kind, so reading them for each kind apart read the
    shipped rules three times (about 60 ms of a start, compiled, measured)."""
    return rule_files_by_kind(
        dirs=[Path(d) for d in settings.rules.dirs],
        include_shipped=settings.rules.include_shipped,
        disabled_packs=settings.rules.disabled_packs,
    )


def rule_files_from(settings: Settings, kind: str, read: RulesRead | None = None) -> list[RuleFile]:
    """The rule files of ``kind`` of the configured layers and packs (from ``read`` when
    given, read now otherwise)."""
    if read is not None:
        return read.get(kind, [])
    return rule_files(
        kind,
        dirs=[Path(d) for d in settings.rules.dirs],
        include_shipped=settings.rules.include_shipped,
        disabled_packs=settings.rules.disabled_packs,
    )


def classifier_from(settings: Settings, read: RulesRead | None = None) -> Classifier:
    """The classifier of the configured rule layers (``read``: see :func:`read_rules`)."""
    return compile_classifier(rule_files_from(settings, "classification", read))


def detectors_from(
    settings: Settings,
    lookup: OwnerLookup | None = None,
    *,
    replay: bool = False,
    read: RulesRead | None = None,
) -> Detectors:
    """Correlator, pattern and anomaly detectors and event counters, for a Pipeline.

    ``lookup``: the watched object cache, when ``run`` has one (see :func:`correlator_from`).
    ``read``: the rule files, when the caller has read them (:func:`read_rules`).
    """
    from kubevents.enrich.anomaly import AnomalyDetector
    from kubevents.enrich.pattern_rules import compile_pattern_rules
    from kubevents.enrich.patterns import PatternDetector
    from kubevents.telemetry.counting import EventCounts

    rules = compile_pattern_rules(rule_files_from(settings, "patterns", read))
    return Detectors(
        correlator=correlator_from(settings, lookup, replay=replay, read=read),
        patterns=PatternDetector(rules),
        anomalies=AnomalyDetector(rules),
        counts=EventCounts(),
    )


def correlator_from(
    settings: Settings,
    lookup: OwnerLookup | None = None,
    *,
    replay: bool = False,
    read: RulesRead | None = None,
) -> Correlator | None:
    """The correlator of the configured rule layers (None when correlation is off).

    ``lookup`` is the watched object cache, when there is one; without it (replay)
    owners and nodes come from the Events and from naming conventions. A replay
    holds records up to the longest rule window (nobody waits for them), a watch
    for ``correlation.settle_s``.
    """
    config = settings.correlation
    if not config.enabled:
        return None
    rules = compile_correlation_rules(rule_files_from(settings, "correlation", read))
    return Correlator(
        rules,
        lookup=lookup,
        max_incidents=config.max_incidents,
        max_links=config.max_links,
        max_owners=config.max_owners,
        settle_ns=(
            max(int(config.settle_s * 1e9), rules.max_window_ns)
            if replay
            else int(config.settle_s * 1e9)
        ),
    )


class ProblemCounter:
    """Logs each input problem once, on one line, and counts them.

    At most :attr:`LOGGED_PER_FILE` problems are logged per file (a corrupt gzip stream
    or a binary file makes one per line): the rest are counted, and one line says so.
    """

    LOGGED_PER_FILE = 20

    def __init__(self) -> None:
        self.count = 0
        """Documents or files skipped."""
        self.repaired = 0
        """Inputs repaired and kept (bad bytes replaced, a cut gzip stream's good part)."""
        self._per_file: dict[str, int] = {}

    def __call__(self, problem: Problem) -> None:
        if problem.kept:
            self.repaired += 1
        else:
            self.count += 1
        match = _FILE_OF.match(problem.where)
        name = match.group(1) if match else problem.where
        logged = self._per_file.get(name, 0) + 1
        self._per_file[name] = logged
        if logged > self.LOGGED_PER_FILE:
            if logged == self.LOGGED_PER_FILE + 1:
                logger.warning("%s: more problems; they are counted, not logged", name)
            return
        if problem.kept:
            logger.warning("%s: %s", problem.where, problem.message)
        else:
            logger.warning("skipped %s: %s", problem.where, problem.message)


_FILE_OF = re.compile(r"^(.*?):\d+")


GC_THRESHOLD = (200_000, 20, 20)
"""Collect the young generation every 200 000 allocations instead of 700: an Event makes
dozens of short-lived objects and no cycles worth chasing that often. In order, nearly
every record of a replay waits in the held queue (about 8,700 at once on the bench mix)
and the stages' tables grow, so each young collection found tens of thousands of
survivors to walk and keep (50-70 ms each, six over the bench's 150,000 lines at 50 000,
2.6 µs per line; one of 120 ms at 200 000, 0.8 µs per line: ``gc.callbacks``, pure
Python). ``kubevents run`` against the prepared-bytes server spent 0.29-0.41 s of the
150,000 lines in young collections at 50 000, 0.11-0.14 s at 200 000 (compiled, three
runs each), which found 699 objects to free either way, and its RSS at rest stayed
39.8 MiB (docs/performance.md, "The watch path"). Cycles are still freed, later.

In a replay, while the files' Events go through the pipeline (the second pass), the collector is off
altogether, and what is alive after them is frozen (else the allocations counted while
it was off start a young collection of it all at once): that one young collection of
the bench's replay found nothing to free (0 objects, and 0 to 5 in the full
collections, compiled, to the OTLP sink, to jsonl with the summary, in order or sorted
on disk); with it off the whole replay left 96 objects in cycles, and the same peak RSS.
What it walked was only what lives on: the held records and the stages' tables. The
first pass, the streams (a pipe may run for days) and the close keep it on."""


def tune_gc(threshold: tuple[int, int, int] = GC_THRESHOLD) -> None:
    """Freeze what is alive now (rules, tables, the input) out of every future collection,
    and collect less often. Called once a command has loaded what it keeps for good.

    The collector otherwise walks every object that lives for good, again and again.
    Measured on the bench's replay (150 000 lines to an OTLP receiver, medians of 3) while
    replay held its whole input in a list: 8 200 occurrences/s before, 9 500 after (+16%);
    replay now holds a bounded window of Events (``source/ordering.py``) and calls this
    once its pipeline is built, after its first pass (which it runs at these thresholds
    already). The collector stays on: cycles made after this are still freed.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*threshold)


INTERRUPTED = 130
"""Exit code of a replay stopped by SIGINT (128 + 2, as a shell reports it)."""


P = ParamSpec("P")


def leaves_collector_as_found(command: Callable[P, int]) -> Callable[P, int]:
    """``command`` tunes and freezes the collector (:func:`tune_gc`); on its return what is
    frozen goes back to it (what was frozen before too: ``gc.unfreeze`` cannot tell them
    apart), with the thresholds it had. Frozen, the stages' tables would outlive a replay
    for as long as the process: their entries are linked both ways (the least recently
    used first), so only the collector frees them. ``kubevents report`` replays and then
    builds its page in the same process; the bench and the tests replay many times in one.
    """

    @functools.wraps(command)
    def restoring(*args: P.args, **kwargs: P.kwargs) -> int:
        threshold = gc.get_threshold()
        try:
            return command(*args, **kwargs)
        finally:
            gc.unfreeze()
            gc.set_threshold(*threshold)

    return restoring


@leaves_collector_as_found
def replay(
    settings: Settings,
    paths: Sequence[str],
    *,
    clock: Clock | None = None,
    out: TextIO | None = None,
    metrics_port: int | None = None,
    on_metrics: Callable[[MetricsRuntime], None] | None = None,
    stop: threading.Event | None = None,
    now_ns: int | None = None,
    explain: Sequence[str] = (),
) -> int:
    """Replay recorded Events through the pipeline.

    Files are replayed together in occurrence-time order, each read twice so that
    memory stays bounded (``source/ordering.py``; a regular file as stdin is held); then each
    stream (a pipe, terminal or FIFO, ``-`` for stdin) is replayed as it comes, in
    arrival order, until it ends or ``stop`` is set (SIGINT sets it). An input that
    cannot be read is reported on one line and the others are replayed.

    ``now_ns``: the time the ages of kubectl text count back from (``--now``); by
    default each file's modification time (stdin: the current time).
    ``explain``: incident ids (or ``all``) whose chain is printed after the summary.

    ``metrics_port`` serves ``/metrics`` during the replay (0: any free port;
    None: no server) and ``replay.hold_s`` after it, until ``stop`` is set;
    ``on_metrics`` is told where (tests).

    Returns the exit code: 0; 1 when nothing at all could be read, or when a network
    sink did not deliver (nor spool) every record; 130 after SIGINT.

    Raises:
        InputError: no input could be read.
    """
    stop = stop or threading.Event()
    # Both passes at the same thresholds. The first one keeps nothing of a line, so its
    # young generation rarely fills at any threshold: it cost the same at 700 (measured,
    # docs/performance.md "Fixes made"). What lives for good is frozen once the pipeline
    # is built (tune_gc below).
    gc.set_threshold(*GC_THRESHOLD)
    problems = ProblemCounter()
    streams = [path for path in paths if is_stream(path)]
    repairs = RepairLog()
    events = _scan_files([p for p in paths if p not in streams], repairs, now_ns)
    if not events.updates and not events.deletions and not streams:
        _report_problems(events, problems)
        if len(events.unreadable) == len(paths):  # the reasons, on one line
            raise InputError("; ".join(events.unreadable))
        raise InputError(f"nothing could be read from {', '.join(paths)}")
    for unreadable in events.unreadable:
        logger.warning("skipped %s", unreadable)
    _report_problems(events, problems)
    clock = clock or SystemClock()
    shift = _Shift(clock) if settings.replay.shift_to_now else None
    if shift is not None and (events.updates or events.deletions):
        shift.anchor(events.latest_ns)
    summary = Summary(explain=bool(explain)) if settings.replay.summary or explain else None
    resource = resource_info(settings)
    sinks = build_sinks(SinkContext(settings, resource, stop))
    metrics = _start_metrics(settings, resource, sinks, port=metrics_port)
    rules = read_rules(settings)
    pipeline = Pipeline(
        classifier=classifier_from(settings, rules),
        sinks=sinks,
        clock=clock,
        tracker=SeriesTracker(
            ttl_s=settings.pipeline.series_ttl_s, max_entries=settings.pipeline.series_max_entries
        ),
        summary=summary,
        batch_size=settings.pipeline.batch_size,
        ordered=True,
        checkpointed=False,
        detectors=detectors_from(settings, replay=True, read=rules),
    )
    del rules  # the rule files as read: the stages keep what they compiled
    tune_gc()
    if metrics is not None:
        metrics.telemetry.observe_events(lambda: pipeline.counts)
        metrics.telemetry.observe_pipeline(lambda: pipeline.stats)
        metrics.telemetry.observe_detectors(
            patterns=pipeline.patterns,
            anomalies=pipeline.anomalies,
            correlator=pipeline.correlator,
            counts=pipeline.counts,
        )
        if on_metrics is not None:
            on_metrics(metrics)
    deletions: list[Spool] = []
    gc.disable()  # while the files are replayed: see GC_THRESHOLD
    try:
        handle = pipeline.handle
        for event in _in_order(events, repairs, deletions, now_ns):
            handle(shift(event) if shift is not None else event)
        for spool in deletions:
            for event in spool:
                pipeline.delete(shift(event) if shift is not None else event)
    finally:
        # What the files left alive (the stages' tables, the held records) frozen as
        # tune_gc freezes: the collector counts allocations while it is off, and the
        # first one after it is on again would start a young collection of all of it.
        gc.freeze()
        gc.enable()
    read = events.updates + events.deletions
    interrupted = False
    if streams:
        # A live pipe: records go out as its Events come, with no settle time (a cause
        # that comes later still re-roots and merges incidents; see docs/correlation.md).
        pipeline.stream()
        with _interrupt_sets(stop) as flag:
            for path in streams:
                read += _replay_stream(path, pipeline, problems, repairs, stop, shift, now_ns)
            interrupted = flag.is_set()
    closing = time.monotonic()
    pipeline.close(settings.delivery.flush_timeout_s)
    flush_s = time.monotonic() - closing
    if summary is not None and pipeline.correlator is not None:
        for incident in pipeline.correlator.current():  # still open at the end of the input
            summary.add_incident(incident)
    if summary is not None and settings.replay.summary:
        text = summary.render(
            top=settings.replay.top, skipped=pipeline.stats.unchanged, problems=problems.count
        )
        write_text(out or _summary_stream(settings), text)
    if summary is not None and explain:
        stream = out or _summary_stream(settings)
        wanted = sorted(summary.incidents) if "all" in explain else list(explain)
        for incident_id in wanted:
            try:
                chain = summary.explain_text(incident_id)
            except KeyError:
                raise InputError(f"--explain {incident_id}: no incident has this id") from None
            write_text(stream, "\n" + chain)
    if metrics is not None:
        metrics.hold(settings.replay.hold_s, stop)
        metrics.close(within_s=settings.delivery.flush_timeout_s - flush_s)
    if not read:
        raise InputError(f"nothing could be read from {', '.join(paths)}")
    if interrupted:
        return INTERRUPTED
    return 0 if _all_delivered(sinks) else 1


@dataclass
class _Read:
    """What the first pass over the files found (the Events themselves are read again)."""

    files: list[tuple[str, WindowCheck]] = field(default_factory=list)
    """Each file with Events, and whether it is in order or nearly (``ordering.WindowCheck``)."""
    updates: int = 0
    deletions: int = 0
    latest_ns: int = 0
    """The latest occurrence time (``--shift-to-now`` moves it to now)."""
    problems: list[Problem] = field(default_factory=list)
    """Problems inside the files, in order (reported once the whole input is known)."""
    unreadable: list[str] = field(default_factory=list)
    """One message per file that could not be read at all."""
    stdin: list[tuple[str, KubeEvent]] = field(default_factory=list)
    """A regular file given as stdin (``- < dump``), which cannot be read twice: its
    Events, held (watch type, Event), as every input was before."""


def _scan_files(paths: Sequence[str], repairs: RepairLog, now_ns: int | None = None) -> _Read:
    """The first pass: what every file holds and what could not be read, keeping only
    each Event's time (replay memory stays bounded whatever the files' size)."""
    read = _Read()
    report = read.problems.append
    for path in paths:
        # A watch dump's updates are taken by the compiled scan itself; what comes out of
        # the read is every other Event (other formats, other shapes of line).
        scan = Scan(WindowCheck(ordering.WINDOW), read.latest_ns)
        try:
            for obj, watch_type, where in read_file(
                path, report, now_ns, lines=scan.lines, entries=as_read
            ):
                if not is_event(obj):  # what normalize refuses, reported as it says
                    _normalized(Item(obj, watch_type, where_of(path, where)), report, RepairLog())
                    continue
                if path == "-":
                    held = _normalized(
                        Item(obj, watch_type, where_of(path, where)), report, repairs
                    )
                    if held is not None:
                        read.stdin.append((watch_type, held))
                scan.add(obj, watch_type)
        except InputError as e:
            read.unreadable.append(str(e))
        finally:  # what was read before the error counts too
            read.updates += scan.updates
            read.deletions += scan.deletions
            read.latest_ns = scan.latest_ns
        if scan.found:
            read.files.append((path, scan.check))
    return read


def _in_order(
    read: _Read, repairs: RepairLog, deletions: list[Spool], now_ns: int | None
) -> Iterator[KubeEvent]:
    """The second pass: every file's updates, read again, in occurrence-time order (a
    stable sort: updates with the same time keep their order in the files). Each file's
    deletions go to a spool of ``deletions``, replayed after every update."""

    def events_of(path: str) -> Iterator[KubeEvent]:
        spool = Spool()
        deletions.append(spool)
        if path == "-":
            for watch_type, held in read.stdin:
                if watch_type == "DELETED":
                    spool.add(held)
                else:
                    yield held
            return

        def repaired(event: KubeEvent, where: str | int) -> None:
            repairs(event, where_of(path, where))

        # Problems, and what is not an Event, were reported by the first pass.
        normalized = Normalized(spool.add, repaired)
        try:
            yield from read_file(
                path, _ignore_problem, now_ns, lines=normalized.lines, entries=normalized.entries
            )
        except InputError:
            return  # reported by the first pass

    if len(read.files) > ordering.FAN_IN:  # one sort on disk rather than a window per file
        everything = itertools.chain.from_iterable(events_of(p) for p, _ in read.files)
        yield from sorted_on_disk(everything)
        return
    sources = [
        events_of(path)
        if check.in_order
        else windowed(events_of(path))
        if check.ok
        else sorted_on_disk(events_of(path))
        for path, check in read.files
    ]
    # heapq.merge is stable: on equal times the earlier file comes first.
    yield from (
        heapq.merge(*sources, key=_time_of) if len(sources) > 1 else sources[0] if sources else ()
    )


def _time_of(event: KubeEvent) -> int:
    return event.time_ns


def _ignore_problem(problem: Problem) -> None:
    """The second pass's problems: the first pass reported them."""
    del problem


def _report_problems(read: _Read, problems: ProblemCounter) -> None:
    for problem in read.problems:
        problems(problem)


def _normalized(
    item: Item, problems: Callable[[Problem], None], repairs: RepairLog
) -> KubeEvent | None:
    try:
        event = normalize(item.obj)
    except NotAnEvent as e:
        problems(Problem(item.where, str(e)))
        return None
    if event.repairs:
        repairs(event, item.where)
    return event


def _replay_stream(
    path: str,
    pipeline: Pipeline,
    problems: ProblemCounter,
    repairs: RepairLog,
    stop: threading.Event,
    shift: _Shift | None,
    now_ns: int | None = None,
) -> int:
    """Replay one stream as it comes: every read's Events go to the sinks at once."""
    read = 0
    try:
        for batch in stream_batches(path, problems, stopped=stop.is_set, now_ns=now_ns):
            for item in batch:
                event = _normalized(item, problems, repairs)
                if event is None:
                    continue
                read += 1
                if shift is not None:
                    if not shift.anchored:
                        shift.anchor(event.time_ns)
                    event = shift(event)
                if item.watch_type == "DELETED":
                    pipeline.delete(event)
                else:
                    pipeline.handle(event)
            pipeline.flush()
    except InputError as e:
        problems(Problem(display_name(path), str(e).removeprefix(f"{display_name(path)}: ")))
    return read


class _Shift:
    """``--shift-to-now``: moves Event times by one offset, so the anchor time is now."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._offset = 0
        self.anchored = False

    def anchor(self, time_ns: int) -> None:
        self._offset = self._clock.now_ns() - time_ns if time_ns else 0
        self.anchored = True

    def __call__(self, event: KubeEvent) -> KubeEvent:
        offset = self._offset

        def moved(t: int) -> int:
            return t + offset if t else 0

        return dataclasses.replace(
            event,
            time_ns=moved(event.time_ns),
            first_time_ns=moved(event.first_time_ns),
            creation_time_ns=moved(event.creation_time_ns),
        )


@contextlib.contextmanager
def _interrupt_sets(stop: threading.Event) -> Iterator[threading.Event]:
    """While streaming, SIGINT sets ``stop`` (and the flag yielded) instead of raising
    KeyboardInterrupt in the middle of a record: the replay then closes the pipeline,
    flushes the sinks and prints the summary. A second SIGINT interrupts at once."""
    import signal

    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum: int, frame: object) -> None:
        if flag.is_set():
            raise KeyboardInterrupt
        flag.set()
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _all_delivered(sinks: Sequence[object]) -> bool:
    """True when every network sink delivered (or spooled) every record it was given;
    else one line per sink says how many records were lost and why."""
    ok = True
    for sink in sinks:
        stats = getattr(sink, "stats", None)
        dropped = getattr(stats, "dropped", None)
        if not dropped:
            continue
        ok = False
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(dropped.items()))
        logger.error(
            "sink %s: %d records were not delivered (%s)",
            getattr(sink, "name", "?"),
            sum(dropped.values()),
            reasons,
        )
    return ok


def write_text(out: TextIO | None, text: str) -> None:
    """Write a command's output (summary, report, settings) and flush it.

    Raises:
        OutputError: the stream is closed or cannot be written (a full disk).
    """
    if out is None:
        raise output_error("stdout")
    try:
        out.write(text)
        out.flush()
    except BrokenPipeError:
        raise  # the reader left (``| head``): the CLI ends quietly
    except OSError as e:
        raise output_error("stdout" if out in (sys.stdout, sys.stderr) else str(out), e) from e


def _summary_stream(settings: Settings) -> TextIO:
    """stdout, unless a jsonl sink writes there: then stderr, keeping stdout pure JSON."""
    for spec in settings.sink_specs:
        if spec.kind == "jsonl" and (spec.arg or settings.jsonl.path) == "-":
            return sys.stderr
    return sys.stdout


def run_cluster(
    settings: Settings, *, stop: threading.Event | None = None, clock: Clock | None = None
) -> int:
    """``kubevents run``: watch the cluster until SIGTERM/SIGINT (or ``stop``)."""
    stop = stop or threading.Event()
    _install_signal_handlers(stop)  # first: the imports below take a while
    allocator.limit_arenas()  # before any thread starts (allocator.py)
    clock = clock or SystemClock()
    from kubevents.running import LEASE_RELEASE_MARGIN_S, SWITCH_INTERVAL_S, Runner, detect_api

    sys.setswitchinterval(SWITCH_INTERVAL_S)  # the watch threads' turns (running.py)
    from kubevents.source.checkpoint import (
        CheckpointStore,
        FileCheckpointStore,
        MemoryCheckpointStore,
    )
    from kubevents.source.kubeapi import events_api
    from kubevents.source.kubeclient import load_client
    from kubevents.source.leader import LeaseCheckpointStore, LeaseElector

    api_client = load_client(kubeconfig=settings.watch.kubeconfig, context=settings.watch.context)
    api = detect_api(lambda version: events_api(api_client, version), settings.watch.api)
    resource = resource_info(settings)

    def make_pipeline(tracker: SeriesTracker) -> Pipeline:
        # Called from runner.run(), once everything below is built.
        return Pipeline(
            detectors=detectors,
            classifier=classifier,
            sinks=sinks,
            clock=clock,
            tracker=tracker,
            batch_size=settings.pipeline.batch_size,
        )

    elector: LeaseElector | None = None
    # The elector stops after the runner: the final checkpoint is written to the Lease
    # before it is released, and leadership is not dropped under the runner's final drain.
    elector_stop = threading.Event()
    store: CheckpointStore
    runner_box: list[Runner] = []
    if settings.leader.enabled:
        elector = LeaseElector(
            api_client=api_client,
            namespace=settings.leader.lease_namespace
            or os.environ.get("POD_NAMESPACE")
            or "default",
            name=settings.leader.lease_name,
            identity=settings.leader.identity or resource.instance_id,
            stop=elector_stop,
            on_started=lambda: runner_box[0].start_leading(),
            on_stopped=lambda: runner_box[0].stop_leading(),
            lease_s=settings.leader.lease_s,
            renew_s=settings.leader.renew_s,
            retry_s=settings.leader.retry_s,
        )
        store = LeaseCheckpointStore(elector)
    elif settings.watch.checkpoint:
        store = FileCheckpointStore(settings.watch.checkpoint)
    else:
        store = MemoryCheckpointStore()
    runner = Runner(
        settings, pipeline_factory=make_pipeline, api=api, store=store, clock=clock, stop=stop
    )
    runner_box.append(runner)
    if elector is None:
        # The first list starts now and goes on while the stages are built (the rules, the
        # sinks, the detectors: 0.2-0.4 s); the pipeline thread takes it from the queue.
        runner.start_watching()
    try:
        rules = read_rules(settings)
        classifier = classifier_from(settings, rules)
        sinks = build_sinks(SinkContext(settings, resource, stop))
        cache = _start_object_cache(settings, api_client, stop)
        # Shared across leadership terms: their state is in event time.
        detectors = detectors_from(settings, lookup=cache, read=rules)
        # The rule files as read (about 1 MiB at rest, for as long as this runs): the stages
        # keep what they compiled.
        del rules
    except BaseException:
        runner.stop_leading()  # the watch threads end
        raise
    tune_gc()
    election: threading.Thread | None = None
    if elector is not None:
        election = threading.Thread(target=elector.run, name="leader-election", daemon=True)
        election.start()
    # "watching" is logged by each watch once the server answered it (watching.py).
    logger.debug(
        "starting the watch of %s Events (%s)",
        api.api_version,
        ", ".join(settings.watch.namespaces) or "all namespaces",
    )
    metrics = _start_metrics(
        settings,
        resource,
        sinks,
        port=settings.metrics.port or None,
        probes=Probes(health=runner.healthy, ready=runner.ready),
    )
    if metrics is not None:
        telemetry = metrics.telemetry
        telemetry.observe_events(lambda: detectors.counts)
        telemetry.observe_pipeline(
            lambda: runner.pipeline.stats if runner.pipeline is not None else None
        )
        telemetry.observe_detectors(
            patterns=detectors.patterns,
            anomalies=detectors.anomalies,
            correlator=detectors.correlator,
            counts=detectors.counts,
        )
        watches = {"events": lambda: runner.stats.watch_stats}
        if cache is not None:
            watches.update(cache.watch_stats_by_resource())
        telemetry.observe_run(lambda: runner, watches)
    try:
        runner.run()
    finally:
        elector_stop.set()
        if election is not None:
            election.join(timeout=settings.leader.renew_s + LEASE_RELEASE_MARGIN_S)  # release
        if metrics is not None:
            metrics.close(within_s=settings.delivery.flush_timeout_s - runner.flush_s)
    return 0


def _start_object_cache(
    settings: Settings, api_client: KubeClient, stop: threading.Event
) -> ObjectCache | None:
    """Watch Pods, ReplicaSets and Jobs for correlation (``watch.object_cache``).

    It runs on every replica, leader or not, so a new leader starts with a warm
    cache. A watch it cannot do (no RBAC for Pods, say) is retried and reported
    like the Event watch; meanwhile correlation falls back to naming conventions.
    """
    if not settings.watch.object_cache:
        return None
    from kubevents.source.objects import ObjectCache
    from kubevents.source.watching import WatchOptions

    w = settings.watch
    cache = ObjectCache(max_per_kind=w.object_cache_max)
    cache.start(
        api_client=api_client,
        stop=stop,
        # The field selector is about Events, not the objects they are about.
        options=dataclasses.replace(WatchOptions.from_settings(w), field_selector=""),
        namespaces=w.namespaces,
    )
    return cache


def _start_metrics(
    settings: Settings,
    resource: ResourceInfo,
    sinks: Sequence[object],
    *,
    port: int | None,
    probes: Probes | None = None,
) -> MetricsRuntime | None:
    """The metrics of a command (see ``telemetry/plan.py``); None when nothing wants them.

    Imported only then: the OpenTelemetry SDK adds about 80 ms to a start.
    """
    plan = metrics_plan(settings, port=port)
    if plan is None:
        return None
    from kubevents.telemetry.metrics import start_metrics

    return start_metrics(settings, plan, resource, sinks, probes=probes)


def _install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (only possible from the main thread)."""
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())


def check_config(settings: Settings) -> None:
    """Everything ``replay`` and ``run`` check at start, short of serving or watching:
    ``check-config`` fails on what they would fail on.

    Loads and compiles every rule layer; builds every sink (files, certificates,
    headers and password files, the spool directory) and closes it at once, with no
    record sent; a jsonl file is checked for writing, not created; reads the kubeconfig
    when one is named (``watch.kubeconfig``, ``watch.context``), without running its
    credential plugin. ``run``'s other start-up needs (the metrics port, the apiserver)
    are only known when it runs.

    Raises:
        ConfigError, RulesError: the first problem, on one line.
    """
    rules = read_rules(settings)
    classifier_from(settings, rules)
    detectors_from(settings, read=rules)
    for spec in settings.sink_specs:
        if spec.kind == "jsonl":
            _check_writable(spec.arg or settings.jsonl.path, spec.text)
    # The other sinks are built (which checks them), then closed unused.
    others = tuple(spec.text for spec in settings.sink_specs if spec.kind != "jsonl")
    checked = dataclasses.replace(settings, sinks=others)
    for sink in build_sinks(SinkContext(checked, resource_info(settings), threading.Event())):
        sink.shutdown(0.0)
    if settings.watch.kubeconfig or settings.watch.context:
        from kubevents.source.kubeconfig import kubeconfig_config, kubeconfig_paths

        kubeconfig_config(
            kubeconfig_paths(settings.watch.kubeconfig), context=settings.watch.context
        )


def _check_writable(path: str, spec: str) -> None:
    if path == "-":
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"sinks: {spec}: cannot open: Is a directory")
    where = target if target.exists() else target.parent
    if not os.access(where, os.W_OK):
        problem = "Permission denied" if where.exists() else "No such file or directory"
        raise ConfigError(f"sinks: {spec}: cannot open: {problem}")


def rules_test(settings: Settings, files: Sequence[str], out: TextIO) -> int:
    """Run rule test files (any kind); 0 when every case passed, 1 otherwise."""
    from kubevents.enrich.pattern_rules import compile_pattern_rules
    from kubevents.ruletesting.correlation import run_correlation_test_file
    from kubevents.ruletesting.patterns import run_patterns_test_file

    cached: list[Classifier] = []

    def classifier() -> Classifier:
        if not cached:
            cached.append(classifier_from(settings))
        return cached[0]

    runners = {
        "classification_test": lambda path: run_test_file(path, classifier),
        "patterns_test": lambda path: run_patterns_test_file(
            path,
            default_rules=lambda: compile_pattern_rules(rule_files_from(settings, "patterns")),
            default_classifier=classifier,
        ),
        "correlation_test": lambda path: run_correlation_test_file(
            path,
            default_rules=lambda: compile_correlation_rules(
                rule_files_from(settings, "correlation")
            ),
            default_classifier=classifier,
        ),
    }
    results: list[CaseResult] = []
    for name in files:
        path = Path(name)
        kind = str(read_rule_file(path).kind)
        runner = runners.get(kind)
        if runner is None:
            raise RulesError(
                f"{path}: no test runner for kind {kind!r}{did_you_mean(kind, runners)}"
            )
        results.extend(runner(path))
    report, ok = format_results(results)
    write_text(out, report + "\n")
    return 0 if ok else 1


def rules_check(settings: Settings, dirs: Sequence[str], out: TextIO) -> int:
    """Validate every rule file in ``dirs`` (default: the configured layers), packs
    included (switched off or not), and list the packs."""
    paths = [Path(d) for d in dirs] or rule_layers(
        [Path(d) for d in settings.rules.dirs], include_shipped=settings.rules.include_shipped
    )
    checked = 0
    packs: dict[str, list[Path]] = {}
    for directory in paths:
        if not directory.is_dir():
            raise RulesError(f"{directory}: rules directory not found")
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            read_rule_file(path)
            checked += 1
        for name, files in pack_files(directory).items():
            packs.setdefault(name, []).extend(files)
            checked += len(files)
    # Compiling is the full check: every rule, every regex, every layer, every pack.
    classification = rule_files("classification", dirs=paths, include_shipped=False)
    correlation_files = rule_files("correlation", dirs=paths, include_shipped=False)
    classifier = compile_classifier(classification)
    correlation = compile_correlation_rules(correlation_files)
    write_text(
        out,
        f"{checked} rule files OK ({len(classifier.rules)} classification rules, "
        f"{len(correlation.rules)} correlation rules; "
        f"kinds: {', '.join(RULE_KINDS)})\n",
    )
    disabled = set(settings.rules.disabled_packs)
    check_disabled_packs(paths, disabled)
    if packs:
        off = sum(1 for name in packs if name in disabled)
        write_text(out, f"{len(packs)} packs ({len(packs) - off} on, {off} off):\n")
        width = max(len(name) for name in packs)
        for name in sorted(packs):
            counts = {
                kind: sum(len(f.data.get("rules") or []) for f in files if f.pack == name)
                for kind, files in (
                    ("classification", classification),
                    ("correlation", correlation_files),
                )
            }
            state = "off" if name in disabled else "on "
            write_text(
                out,
                f"  {name:<{width}}  {state}  {counts['classification']:>3} classification, "
                f"{counts['correlation']:>2} correlation rules\n",
            )
    return 0
