"""Wiring: one Event passes occurrences -> classify -> correlate -> patterns -> sinks, once.

:class:`Pipeline` is the single-threaded core every source feeds (a replay
file or a cluster watch) with Events the source has already normalized
(``normalize.py``; the pipeline only counts the repairs normalize noted). It
decides which updates add occurrences, enriches them, turns them into output
records and hands records to the sinks in batches. It holds no locks: exactly
one thread calls it (``close`` alone starts threads, one per sink, to bound
the shutdown).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from kubevents.clock import Clock
from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.classify import Classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.links import Cause
from kubevents.enrich.patterns import PatternDetector
from kubevents.errors import clip
from kubevents.model import REPAIRED_FIELDS, Enriched, KubeEvent
from kubevents.records import OutputRecord, event_record, incident_record, pattern_record
from kubevents.series import SeriesTracker
from kubevents.sinks.base import ExportResult, Sink
from kubevents.sinks.otlp_encode import StagedRecords
from kubevents.summary import Summary
from kubevents.telemetry.counting import EventCounts

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Held:
    """A record held until its Event settles: it found its incident, or ``due_ns`` passed."""

    cause: Cause
    """The Event as the correlator knows it."""
    enriched: Enriched
    due_ns: int
    """Event time at which it leaves as it is."""
    floor: int
    """Records exported before it was held: checkpoints stay there until it is settled."""


@dataclass
class PipelineStats:
    """What the pipeline did, for metrics and the summary."""

    received: int = 0
    """Event updates handed to the pipeline."""
    records: int = 0
    """Records exported (one per update that added something)."""
    occurrences: int = 0
    unchanged: int = 0
    """Updates skipped because nothing that matters changed."""
    deleted: int = 0
    """DELETED notifications (TTL expiry); never emitted."""
    export_failures: int = 0
    repaired: dict[str, int] = dataclasses.field(
        default_factory=lambda: dict.fromkeys(REPAIRED_FIELDS, 0)
    )
    """Event updates normalize repaired, by field (``KubeEvent.repairs``)."""


class RepairLog:
    """Logs the first repair of each kind (``KubeEvent.repairs``) with where the Event
    came from, on one line; later ones go to DEBUG (the pipeline counts them all)."""

    def __init__(self) -> None:
        self._logged: set[str] = set()

    def __call__(self, event: KubeEvent, where: str) -> None:
        for repair in event.repairs:
            field, _, what = repair.partition(": ")
            first = field not in self._logged
            self._logged.add(field)
            logger.log(
                logging.WARNING if first else logging.DEBUG,
                "repaired %s: Event %s: %s%s",
                where,
                clip(event.name or event.uid or "?", 120),
                what,
                " (further such repairs are counted, not logged)" if first else "",
            )


@dataclass(frozen=True)
class Detectors:
    """What looks across Events, beyond classifying each: every part optional (a test
    passes only what it checks; ``correlation.enabled: false`` leaves ``correlator`` out)."""

    correlator: Correlator | None = None
    patterns: PatternDetector | None = None
    anomalies: AnomalyDetector | None = None
    counts: EventCounts | None = None


def _released(correlator: Correlator, cause: Cause, enriched: Enriched) -> Enriched:
    """``enriched`` as it leaves the held queue: with the correlation its cause has now."""
    if enriched.correlation is None:
        return enriched
    return Enriched(  # not dataclasses.replace: that walks the fields
        enriched.event,
        enriched.occurrences,
        enriched.observed_ns,
        enriched.classification,
        correlator.release(cause, enriched.correlation),
        enriched.pattern_id,
    )


class Pipeline:
    """The core: turns Event updates into output records for the sinks."""

    def __init__(
        self,
        *,
        classifier: Classifier,
        sinks: Sequence[Sink],
        clock: Clock,
        tracker: SeriesTracker | None = None,
        summary: Summary | None = None,
        batch_size: int = 512,
        detectors: Detectors = Detectors(),
        max_held: int = 10_000,
        ordered: bool = False,
        checkpointed: bool = True,
    ) -> None:
        self.classifier = classifier
        self.correlator = detectors.correlator
        self.sinks = list(sinks)
        self.clock = clock
        # "is not None": an empty tracker is falsy (it has a length), and must still be used.
        self.tracker = tracker if tracker is not None else SeriesTracker()
        self.summary = summary
        self.patterns = detectors.patterns
        self.anomalies = detectors.anomalies
        self.counts = detectors.counts
        self.stats = PipelineStats()
        self._batch: list[OutputRecord] = []
        self._staged = [
            staged
            for sink in self.sinks
            if isinstance(staged := getattr(sink, "staged", None), StagedRecords)
        ]
        """The sinks' records encoded as they are made (``DeliverySink.staged``)."""
        self._batch_size = batch_size
        self._exported = 0
        """Records handed to the batch so far (the sinks count in this order)."""
        self._held: OrderedDict[int, _Held] = OrderedDict()
        """Held records in the order they were held. An OrderedDict, not a dict: records
        leave from the front, and a dict's first key is found by scanning past every
        entry deleted before it since the table was last rebuilt (``next(iter(held))``
        cost about 4% of a replay, once per Event, measured). Unordered only: in order
        they are in ``_queue``."""
        self._queue: deque[tuple[Cause | None, Enriched, int, int]] = deque()
        """In order (``ordered``): the held records as (cause, enriched, due_ns, floor) of a
        :class:`_Held`, oldest first. Records leave only from the front, so a deque of
        tuples: in a replay nearly every record passes through it, and a ``_Held`` with a
        key in the OrderedDict cost about a µs per record more."""
        self.held_last = False
        """Whether the last :meth:`handle` held its record for a late cause."""
        self._released: deque[tuple[int, int]] = deque()
        """(position, floor) of records let out late, until a sink settled them."""
        self._checkpointed = checkpointed
        """Something asks :meth:`settled` (a watch's checkpoint): else (a replay) nothing
        is kept for it, since nothing would ever trim ``_released``, one per held record."""
        self.max_held = max_held
        self.ordered = ordered
        """Records leave in the order their Events came (a replay's occurrence order)."""
        self._anchor: tuple[int, int] | None = None
        """(clock, event time) when an Event last moved the stages' time on (or the clock's
        time at an idle checkpoint): what :meth:`expire` counts the clock's progress from."""
        self._busy = False
        """An Event came since the last :meth:`expire`: the watch is not idle."""

    def handle(self, event: KubeEvent) -> Enriched | None:
        """Process one ADDED/MODIFIED Event update; None when it adds nothing."""
        self.stats.received += 1
        self.held_last = False
        for repair in event.repairs:
            field = repair.partition(":")[0]
            self.stats.repaired[field] = self.stats.repaired.get(field, 0) + 1
        occurrences = self.tracker.observe(event)
        if occurrences is None:
            self.stats.unchanged += 1
            return None
        classification = self.classifier.classify(event)
        correlator = self.correlator
        observed_ns = self.clock.now_ns()
        enriched = Enriched(
            event=event,
            occurrences=occurrences,
            observed_ns=observed_ns,
            classification=classification,
            correlation=(
                correlator.correlate(event, classification, occurrences)
                if correlator is not None
                else None
            ),
        )
        self.stats.occurrences += occurrences
        anchor = self._anchor
        if anchor is None or event.time_ns > anchor[1]:
            self._anchor = (observed_ns, event.time_ns)
        self._busy = True
        if correlator is None:
            self._finish(enriched)
            return enriched
        cause = correlator.hold
        # It may still join an incident through a cause that comes late: its record
        # waits (settle time) so that it leaves with the incident's id. In order, the
        # records after it wait behind it.
        if self.ordered:
            queue = self._queue
            if cause is not None or queue:
                queue.append(
                    (cause, enriched, event.time_ns + correlator.settle_ns, self._exported)
                )
                self.held_last = True
                self._release_in_order(correlator)
                return enriched
        elif cause is not None:
            self._held[id(cause)] = _Held(
                cause, enriched, event.time_ns + correlator.settle_ns, self._exported
            )
            self.held_last = True
            self._release(correlator)
            return enriched
        self._finish(enriched)
        if self._held or self._queue or self._released:
            self._release(correlator)
        return enriched

    def _finish(self, enriched: Enriched) -> None:
        """The stages after correlation, and the record."""
        if self.counts is not None:
            self.counts.record(enriched)
        if self.patterns is not None:
            pattern_id = self.patterns.observe(enriched)
            if pattern_id:  # not dataclasses.replace: that walks the fields, per record
                enriched = Enriched(
                    enriched.event,
                    enriched.occurrences,
                    enriched.observed_ns,
                    enriched.classification,
                    enriched.correlation,
                    pattern_id,
                )
        if self.anomalies is not None:
            self.anomalies.observe(enriched)
        if self.summary is not None:
            self.summary.add(enriched)
        self._emit(event_record(enriched))
        self._emit_incidents()
        self._emit_transitions()

    def _release(self, correlator: Correlator, *, everything: bool = False) -> None:
        """Let out the held records that found their incident or whose settle time passed.

        In order (``ordered``), a record leaves only after every record held before it.
        """
        if self.ordered:
            self._release_in_order(correlator, everything=everything)
            return
        held = self._held
        now = correlator.high_water_ns
        for cause in correlator.settled_holds():
            item = held.pop(id(cause), None)
            if item is not None:
                self._let_out(correlator, item)
        while held:
            key = next(iter(held))
            item = held[key]
            waiting = item.cause.incident is None
            if waiting and not everything and item.due_ns > now and len(held) <= self.max_held:
                break
            del held[key]
            self._let_out(correlator, item)
        self._emit_incidents()

    def _release_in_order(self, correlator: Correlator, *, everything: bool = False) -> None:
        """:meth:`_release` in order: the records leave from the front of ``_queue``."""
        queue = self._queue
        now = correlator.high_water_ns
        max_held = self.max_held
        if not everything and queue and len(queue) <= max_held:
            # The first record held keeps every other one in: while it still waits,
            # nothing leaves (in a replay most Events are held, thousands at a time, and
            # leave in bursts: 19 calls in 20 let nothing out).
            cause, _, due_ns, _ = queue[0]
            if cause is not None and cause.incident is None and due_ns > now:
                self._emit_incidents()
                return
        # Unused in order (records leave from the front), but drained so that it does
        # not grow: each burst takes what was found since the last one.
        correlator.settled_holds()
        finish = self._finish
        released = self._released if self._checkpointed else None
        while queue:
            cause, enriched, due_ns, floor = queue[0]
            if cause is not None:
                if (
                    cause.incident is None
                    and not everything
                    and due_ns > now
                    and len(queue) <= max_held
                ):
                    break
                enriched = _released(correlator, cause, enriched)
            queue.popleft()
            finish(enriched)
            # Checkpoints stay behind this record until a sink has settled it.
            if released is not None:
                released.append((self._exported, floor))
        self._emit_incidents()

    def _let_out(self, correlator: Correlator, item: _Held) -> None:
        enriched = item.enriched
        enriched = _released(correlator, item.cause, enriched)
        self._finish(enriched)
        # Checkpoints stay behind this record until a sink has settled it (see settled()).
        if self._checkpointed:
            self._released.append((self._exported, item.floor))

    def expire(self, now_ns: int) -> None:
        """Close what has been quiet long enough at ``now_ns`` (injected clock).

        The stages' time is event time: it moves on from the latest Event by as much
        as the clock has since that Event came, never to the clock itself. Events
        recorded an hour ago (a relist after a restart, a reporter's skewed clock) would
        otherwise be an hour past their links, incidents and patterns at the next
        checkpoint, and every one that follows would open, trace or recur again. Only
        when no Event came since the previous call (the watch is idle) do the stages
        take the clock's time, so what has been quiet resolves and held records leave.
        """
        event_now_ns = self._event_now(now_ns)
        if self.correlator is not None:
            self.correlator.expire(event_now_ns)
            if self._held or self._queue:
                self._release(self.correlator)
            self._emit_incidents()
        if self.patterns is not None:
            self.patterns.expire(event_now_ns)
        if self.anomalies is not None:
            self.anomalies.expire(event_now_ns)
        if self.counts is not None:
            self.counts.expire(event_now_ns)
        self._emit_transitions()

    def _event_now(self, now_ns: int) -> int:
        """The stages' "now" at a checkpoint at ``now_ns`` (see :meth:`expire`)."""
        busy, self._busy = self._busy, False
        anchor = self._anchor
        if not busy or anchor is None:
            self._anchor = (now_ns, now_ns)  # idle: the clock's time, counted on from here
            return now_ns
        clock_ns, event_ns = anchor
        return event_ns + max(now_ns - clock_ns, 0)

    def stream(self) -> None:
        """From here on, records leave as their Events come: what is held leaves now,
        and nothing is held any more (a live pipe)."""
        if self.correlator is not None:
            if self._held or self._queue:
                self._release(self.correlator, everything=True)
            self.correlator.settle_ns = 0
        self.ordered = False

    @property
    def held(self) -> int:
        """Records held until their Event settles (see :class:`_Held`)."""
        return len(self._held) + len(self._queue)

    def _emit_incidents(self) -> None:
        if self.correlator is None:
            return
        transitions = self.correlator.transitions()
        if not transitions:
            return
        observed = self.clock.now_ns()
        for transition in transitions:
            if self.summary is not None:
                self.summary.add_incident(transition)
            self._emit(incident_record(transition, observed))

    def _emit_transitions(self) -> None:
        # Once per record: no list is built when neither detector has a transition.
        found = self.patterns.transitions() if self.patterns is not None else None
        more = self.anomalies.transitions() if self.anomalies is not None else None
        if not found and not more:
            return
        observed = self.clock.now_ns()
        for transitions in (found, more):
            for transition in transitions or ():
                if self.summary is not None:
                    self.summary.add_pattern(transition)
                self._emit(pattern_record(transition, observed))

    def delete(self, event: KubeEvent) -> None:
        """Process a DELETED notification: forget the Event, emit nothing."""
        self.stats.deleted += 1
        self.tracker.forget(event)

    def flush(self) -> None:
        """Hand the pending batch to every sink."""
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        self.stats.records += len(batch)
        for sink in self.sinks:
            if sink.export(batch) is not ExportResult.SUCCESS:
                self.stats.export_failures += 1
                logger.warning("sink %s failed to take %d records", sink.name, len(batch))

    @property
    def records_total(self) -> int:
        """Records produced so far (exported, waiting in the current batch, or held)."""
        return self._exported + len(self._held) + len(self._queue)

    @property
    def exported(self) -> int:
        """Records exported so far (handed to the sinks or waiting in the batch), not the
        held ones."""
        return self._exported

    def delivered(self) -> int:
        """Of the records exported so far, how many every sink has settled (in order),
        whatever is still held."""
        counts = [
            settled() if (settled := getattr(sink, "settled", None)) else self.stats.records
            for sink in self.sinks
        ]
        return min(counts, default=self.stats.records)

    def settled(self) -> int:
        """Records every sink has settled: delivered, or deliberately dropped.

        Sinks without a ``settled()`` method deliver synchronously: everything
        exported to them is settled. A held record keeps this at what was
        exported before it was held, until it has been let out and settled too:
        the checkpoint never passes an Event whose record is not out.
        """
        done = self.delivered()
        released = self._released
        while released and released[0][0] <= done:
            released.popleft()
        floors = [item.floor for item in self._held.values()]
        floors += [item[3] for item in self._queue]
        floors += [floor for _, floor in released]
        return min(done, *floors) if floors else done

    def discard_pending(self) -> None:
        """Drop the batch not yet exported (leadership was lost: emit nothing more)."""
        self._exported -= len(self._batch)
        self._batch.clear()
        self._held.clear()
        self._queue.clear()
        self._released.clear()

    def close(self, timeout_s: float = 10.0) -> None:
        """Let out what is held, flush everything and shut the sinks down, all sinks at
        once: the whole close takes at most ``timeout_s`` (``delivery.flush_timeout_s``)
        plus a second for each sink's worker to stop, however many sinks are down."""
        if self.correlator is not None and (self._held or self._queue):
            self._release(self.correlator, everything=True)
        self.flush()
        deadline = time.monotonic() + timeout_s

        def close_one(sink: Sink) -> None:
            if not sink.force_flush(timeout_s):
                logger.warning("sink %s did not flush within %gs", sink.name, timeout_s)
            sink.shutdown(max(deadline - time.monotonic(), 0.0))

        if len(self.sinks) <= 1:
            for sink in self.sinks:
                close_one(sink)
            return
        threads = [
            threading.Thread(target=close_one, args=(sink,), name=f"close-{sink.name}", daemon=True)
            for sink in self.sinks
        ]
        for thread in threads:
            thread.start()
        for thread in threads:  # a sink stuck past its own bounds is left behind
            thread.join(max(deadline - time.monotonic(), 0.0) + 5.0)

    def _emit(self, record: OutputRecord) -> None:
        self._exported += 1
        self._batch.append(record)
        for staged in self._staged:
            staged.add(record)
        if len(self._batch) >= self._batch_size:
            self.flush()
