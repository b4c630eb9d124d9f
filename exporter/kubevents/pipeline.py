"""Wiring: one Event passes normalize -> occurrences -> classify -> correlate -> sinks, once.

:class:`Pipeline` is the single-threaded core every source feeds (a replay
file or a cluster watch). It decides which updates add occurrences, enriches
them, turns them into output records and hands records to the sinks in
batches. It holds no locks: exactly one thread calls it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kubevents.clock import Clock
from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.classify import Classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.counting import EventCounts
from kubevents.enrich.patterns import PatternDetector, Transition
from kubevents.errors import clip
from kubevents.model import REPAIRED_FIELDS, Enriched, KubeEvent
from kubevents.records import OutputRecord, event_record, incident_record, pattern_record
from kubevents.series import SeriesTracker
from kubevents.sinks.base import ExportResult, Sink
from kubevents.summary import Summary

logger = logging.getLogger(__name__)


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
        patterns: PatternDetector | None = None,
        anomalies: AnomalyDetector | None = None,
        counts: EventCounts | None = None,
        correlator: Correlator | None = None,
    ) -> None:
        self.classifier = classifier
        self.correlator = correlator
        self.sinks = list(sinks)
        self.clock = clock
        # "is not None": an empty tracker is falsy (it has a length), and must still be used.
        self.tracker = tracker if tracker is not None else SeriesTracker()
        self.summary = summary
        self.patterns = patterns
        self.anomalies = anomalies
        self.counts = counts
        self.stats = PipelineStats()
        self._batch: list[OutputRecord] = []
        self._batch_size = batch_size

    def handle(self, event: KubeEvent) -> Enriched | None:
        """Process one ADDED/MODIFIED Event update; None when it adds nothing."""
        self.stats.received += 1
        for repair in event.repairs:
            field = repair.partition(":")[0]
            self.stats.repaired[field] = self.stats.repaired.get(field, 0) + 1
        occurrences = self.tracker.observe(event)
        if occurrences is None:
            self.stats.unchanged += 1
            return None
        classification = self.classifier.classify(event)
        enriched = Enriched(
            event=event,
            occurrences=occurrences,
            observed_ns=self.clock.now_ns(),
            classification=classification,
            correlation=(
                self.correlator.correlate(event, classification, occurrences)
                if self.correlator is not None
                else None
            ),
        )
        self.stats.occurrences += occurrences
        if self.counts is not None:
            self.counts.record(enriched)
        if self.patterns is not None:
            pattern_id = self.patterns.observe(enriched)
            if pattern_id:
                enriched = dataclasses.replace(enriched, pattern_id=pattern_id)
        if self.anomalies is not None:
            self.anomalies.observe(enriched)
        if self.summary is not None:
            self.summary.add(enriched)
        self._emit(event_record(enriched))
        self._emit_incidents()
        self._emit_transitions()
        return enriched

    def expire(self, now_ns: int) -> None:
        """Close what has been quiet long enough at ``now_ns`` (injected clock)."""
        if self.correlator is not None:
            self.correlator.expire(now_ns)
            self._emit_incidents()
        if self.patterns is not None:
            self.patterns.expire(now_ns)
        if self.anomalies is not None:
            self.anomalies.expire(now_ns)
        self._emit_transitions()

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
        transitions: list[Transition] = []
        if self.patterns is not None:
            transitions += self.patterns.transitions()
        if self.anomalies is not None:
            transitions += self.anomalies.transitions()
        if not transitions:
            return
        observed = self.clock.now_ns()
        for transition in transitions:
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
        """Records produced so far (exported or waiting in the current batch)."""
        return self.stats.records + len(self._batch)

    def settled(self) -> int:
        """Records every sink has settled: delivered, or deliberately dropped.

        Sinks without a ``settled()`` method deliver synchronously: everything
        exported to them is settled.
        """
        counts = [
            settled() if (settled := getattr(sink, "settled", None)) else self.stats.records
            for sink in self.sinks
        ]
        return min(counts, default=self.stats.records)

    def discard_pending(self) -> None:
        """Drop the batch not yet exported (leadership was lost: emit nothing more)."""
        self._batch.clear()

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush everything and shut the sinks down, all sinks at once: the whole close
        takes at most ``timeout_s`` (``delivery.flush_timeout_s``) plus a second for each
        sink's worker to stop, however many sinks are down."""
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
        self._batch.append(record)
        if len(self._batch) >= self._batch_size:
            self.flush()
