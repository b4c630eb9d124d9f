"""Metrics read from kubevents' state: detectors (patterns, anomalies, incidents) and the watch.

Like the rest of :mod:`kubevents.telemetry.metrics`, nothing here runs per Event:
each instrument is observable, and its callback reads counters the stages
keep anyway, when a scrape or an OTLP export collects. The callbacks run on
the scrape thread, so they only read what the stages publish as safe for any
thread: plain integers, and copies taken in one builtin call (see
:mod:`kubevents.telemetry`).

The stages count by typed keys (:class:`~kubevents.model.CategorySeverity`,
:class:`~kubevents.enrich.patterns.RateKey`, the state enums); the metric names
and label names are given here, from :mod:`kubevents.conventions`. The stages
are described by protocols: the metrics layer stays below ``running``, and it
imports only the types of ``enrich``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Meter, Observation

from kubevents import conventions as c
from kubevents.conventions import MetricLabel as L
from kubevents.enrich.anomaly import SCOPES
from kubevents.enrich.incidents import IncidentState
from kubevents.enrich.patterns import PatternState, RateKey
from kubevents.model import CategorySeverity

_NS = 1_000_000_000
ANOMALY_SCOPES = SCOPES
"""Both scopes are always reported (0 when calm), so an alert sees 0, not an absent series."""


def by_category(key: CategorySeverity) -> dict[str, str]:
    """The labels of a count by category and severity."""
    return {L.CATEGORY: str(key.category), L.SEVERITY: str(key.severity)}


def by_rate_key(key: RateKey) -> dict[str, str]:
    """The labels of the pattern rate gauge."""
    return {
        L.PATTERN_RULE: key.rule,
        L.NAMESPACE: key.namespace,
        L.EVENT_REASON: key.reason,
        L.CATEGORY: str(key.category),
        L.SEVERITY: str(key.severity),
    }


Callback = Callable[[CallbackOptions], Iterable[Observation]]


# -- what is read -----------------------------------------------------------------------------


class PatternsView(Protocol):
    """``enrich.patterns.PatternDetector``."""

    @property
    def transition_counts(self) -> Mapping[PatternState, int]: ...
    @property
    def evicted_groups(self) -> int: ...
    @property
    def suppressed(self) -> int: ...
    @property
    def late(self) -> int: ...

    def __len__(self) -> int: ...
    def active_counts(self) -> list[tuple[CategorySeverity, int]]: ...
    def active_rates(self, limit: int = 100) -> list[tuple[RateKey, float]]: ...


class AnomalyScoreView(Protocol):
    """``enrich.anomaly.AnomalyScore``."""

    @property
    def scope(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def score(self) -> float: ...


class AnomaliesView(Protocol):
    """``enrich.anomaly.AnomalyDetector``."""

    @property
    def transition_counts(self) -> Mapping[PatternState, int]: ...
    @property
    def evicted(self) -> int: ...
    @property
    def late(self) -> int: ...

    def __len__(self) -> int: ...
    def active_counts(self) -> list[tuple[str, int]]: ...
    def scores(self) -> Sequence[AnomalyScoreView]: ...


class SizedView(Protocol):
    """A bounded structure: its size and what its cap evicted (``enrich.owners.OwnerResolver``)."""

    @property
    def evicted(self) -> int: ...

    def __len__(self) -> int: ...


class CorrelatorView(Protocol):
    """``enrich.correlate.Correlator``."""

    @property
    def owners(self) -> SizedView: ...

    @property
    def transition_counts(self) -> Mapping[IncidentState, int]: ...
    @property
    def evicted_incidents(self) -> int: ...

    @property
    def open_incidents(self) -> int: ...
    @property
    def links(self) -> int: ...
    @property
    def evicted_links(self) -> int: ...
    def open_counts(self) -> list[tuple[CategorySeverity, int]]: ...


class CountsView(Protocol):
    """``telemetry.counting.EventCounts``."""

    @property
    def evicted(self) -> int: ...

    def __len__(self) -> int: ...


class WatchStatsView(Protocol):
    """``source.watching.WatchStats`` of one watch loop."""

    @property
    def lists(self) -> int: ...
    @property
    def relists(self) -> Mapping[str, int]: ...
    @property
    def restarts(self) -> Mapping[str, int]: ...
    @property
    def api_errors(self) -> Mapping[str, int]: ...
    @property
    def bad_lines(self) -> int: ...
    @property
    def bookmarks(self) -> int: ...
    @property
    def established(self) -> bool: ...


class RunStatsView(Protocol):
    """``running.RunStats``."""

    @property
    def invalid(self) -> int: ...
    @property
    def filtered(self) -> int: ...
    @property
    def seeded(self) -> int: ...
    @property
    def checkpoints(self) -> int: ...
    @property
    def checkpoint_errors(self) -> int: ...
    @property
    def last_checkpoint_ns(self) -> int: ...
    @property
    def last_event_time_ns(self) -> int: ...
    @property
    def leader(self) -> bool: ...


class RunView(Protocol):
    """``running.Runner``: its stats, and the queue between the watch and the pipeline."""

    @property
    def stats(self) -> RunStatsView: ...
    @property
    def throttled(self) -> int: ...
    def lag_s(self) -> float: ...
    def queue_size(self) -> int: ...
    @property
    def queue_capacity(self) -> int: ...
    def queue_bytes(self) -> int: ...
    @property
    def queue_max_bytes(self) -> int: ...
    def queue_full(self) -> Mapping[str, int]: ...


# -- detectors --------------------------------------------------------------------------------


def observe_detectors(
    meter: Meter,
    *,
    patterns: PatternsView | None = None,
    anomalies: AnomaliesView | None = None,
    correlator: CorrelatorView | None = None,
    counts: CountsView | None = None,
    rate_limit: int = 100,
) -> None:
    """Patterns active and their rates, anomalies, open incidents, transitions, state sizes."""
    m = meter

    def labelled(read: Callable[[], Iterable[tuple[dict[str, str], float]]]) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            for labels, value in read():
                yield Observation(value, labels)

        return observe

    def transitions(_: CallbackOptions) -> Iterable[Observation]:
        totals: dict[str, int] = {}
        for detector in (patterns, anomalies):
            if detector is not None:
                for state, n in dict(detector.transition_counts).items():
                    totals[str(state)] = totals.get(str(state), 0) + n
        for name, n in sorted(totals.items()):
            yield Observation(n, {L.STATE: name})

    def entries(_: CallbackOptions) -> Iterable[Observation]:
        for state, size in _state_sizes(patterns, anomalies, correlator, counts):
            yield Observation(size, {L.STATE: state})

    def evictions(_: CallbackOptions) -> Iterable[Observation]:
        for state, n in _state_evictions(patterns, anomalies, correlator, counts):
            yield Observation(n, {L.STATE: state})

    def late(_: CallbackOptions) -> Iterable[Observation]:
        for stage, detector in (("patterns", patterns), ("anomalies", anomalies)):
            if detector is not None:
                yield Observation(detector.late, {L.STAGE: stage})

    if patterns is not None:
        m.create_observable_gauge(
            c.MetricName.PATTERNS_ACTIVE,
            callbacks=[
                labelled(lambda: ((by_category(k), n) for k, n in patterns.active_counts()))
            ],
            unit="{pattern}",
            description="Active patterns, by the category and severity they started with.",
        )
        m.create_observable_gauge(
            c.MetricName.PATTERN_RATE,
            callbacks=[
                labelled(
                    lambda: ((by_rate_key(k), r) for k, r in patterns.active_rates(rate_limit))
                )
            ],
            description=(
                "Window rate of the active patterns, summed by rule, namespace, reason, category "
                f"and severity (the {rate_limit} highest)."
            ),
        )
        m.create_observable_counter(
            c.MetricName.PATTERNS_SUPPRESSED,
            callbacks=[lambda _: [Observation(patterns.suppressed)]],
            unit="{pattern}",
            description="Patterns not started because max_active patterns were active.",
        )
    if patterns is not None or anomalies is not None:
        m.create_observable_counter(
            c.MetricName.PATTERN_TRANSITIONS,
            callbacks=[transitions],
            unit="{record}",
            description="Pattern records by state: started, ongoing, resolved, anomalous.",
        )
        m.create_observable_counter(
            c.MetricName.OCCURRENCES_LATE,
            callbacks=[late],
            unit="{occurrence}",
            description="Occurrences older than a detector's window when they arrived, by stage.",
        )
    if anomalies is not None:

        def anomalous_by_scope() -> list[tuple[dict[str, str], float]]:
            found = dict(anomalies.active_counts())
            return [({L.ANOMALY_SCOPE: scope}, found.get(scope, 0)) for scope in ANOMALY_SCOPES]

        def score_labels(s: AnomalyScoreView) -> dict[str, str]:
            return {
                L.ANOMALY_SCOPE: s.scope,
                L.NAMESPACE: s.namespace,
                L.EVENT_REASON: s.reason,
                L.CATEGORY: s.category,
            }

        m.create_observable_gauge(
            c.MetricName.ANOMALIES_ACTIVE,
            callbacks=[labelled(anomalous_by_scope)],
            unit="{series}",
            description="Series whose rate is anomalous now, by scope (reason, category).",
        )
        m.create_observable_gauge(
            c.MetricName.ANOMALY_SCORE,
            callbacks=[labelled(lambda: ((score_labels(s), s.score) for s in anomalies.scores()))],
            description="Score of each anomalous series (standard deviations above its baseline).",
        )
    if correlator is not None:
        m.create_observable_gauge(
            c.MetricName.INCIDENTS_OPEN,
            callbacks=[
                labelled(lambda: ((by_category(k), n) for k, n in correlator.open_counts()))
            ],
            unit="{incident}",
            description="Open incidents, by their root cause's category and their severity.",
        )
        m.create_observable_counter(
            c.MetricName.INCIDENT_TRANSITIONS,
            callbacks=[
                lambda _: [
                    Observation(n, {L.STATE: str(state)})
                    for state, n in sorted(dict(correlator.transition_counts).items())
                ]
            ],
            unit="{record}",
            description="Incident records by state: started, ongoing, resolved.",
        )
    m.create_observable_gauge(
        c.MetricName.STATE_ENTRIES,
        callbacks=[entries],
        unit="{entry}",
        description="Entries in kubevents' bounded in-memory state, by structure.",
    )
    m.create_observable_counter(
        c.MetricName.STATE_EVICTIONS,
        callbacks=[evictions],
        unit="{entry}",
        description="Entries dropped because a structure reached its cap, by structure.",
    )


def _state_sizes(
    patterns: PatternsView | None,
    anomalies: AnomaliesView | None,
    correlator: CorrelatorView | None,
    counts: CountsView | None,
) -> list[tuple[str, int]]:
    sizes = []
    if patterns is not None:
        sizes.append(("pattern_groups", len(patterns)))
    if anomalies is not None:
        sizes.append(("anomaly_series", len(anomalies)))
    if counts is not None:
        sizes.append(("event_series", len(counts)))
    if correlator is not None:
        sizes += [
            ("incidents", correlator.open_incidents),
            ("incident_links", correlator.links),
            ("owners", len(correlator.owners)),
        ]
    return sizes


def _state_evictions(
    patterns: PatternsView | None,
    anomalies: AnomaliesView | None,
    correlator: CorrelatorView | None,
    counts: CountsView | None,
) -> list[tuple[str, int]]:
    evicted = []
    if patterns is not None:
        evicted.append(("pattern_groups", patterns.evicted_groups))
    if anomalies is not None:
        evicted.append(("anomaly_series", anomalies.evicted))
    if counts is not None:
        evicted.append(("event_series", counts.evicted))
    if correlator is not None:
        evicted += [
            ("incidents", correlator.evicted_incidents),
            ("incident_links", correlator.evicted_links),
            ("owners", correlator.owners.evicted),
        ]
    return evicted


# -- the watch ---------------------------------------------------------------------------------


def observe_run(
    meter: Meter,
    run: Callable[[], RunView | None],
    watches: Mapping[str, Callable[[], Sequence[WatchStatsView]]],
) -> None:
    """Watch, leadership, checkpoint and queue metrics of ``kubevents run``.

    ``run`` is the Event watch's runner (queue, leadership, checkpoints);
    ``watches`` gives the watch loops by the ``resource`` label: ``events``,
    and ``pods``, ``replicasets``, ``jobs`` for the object cache.
    """
    m = meter

    def each_watch() -> Iterable[tuple[str, WatchStatsView]]:
        for resource, read in watches.items():
            for stats in list(read()):
                yield resource, stats

    def total(attr: str) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            sums = dict.fromkeys(watches, 0)
            for resource, stats in each_watch():
                sums[resource] += getattr(stats, attr)
            for resource, n in sums.items():
                yield Observation(n, {L.RESOURCE: resource})

        return observe

    def by(attr: str, label: str, known: tuple[str, ...] = ()) -> Callback:
        """Summed by resource and ``label``; ``known`` values are reported from 0."""

        def observe(_: CallbackOptions) -> Iterable[Observation]:
            sums = {(resource, value): 0 for resource in watches for value in known}
            for resource, stats in each_watch():
                for value, n in dict(getattr(stats, attr)).items():
                    sums[(resource, value)] = sums.get((resource, value), 0) + n
            for (resource, value), n in sorted(sums.items()):
                yield Observation(n, {L.RESOURCE: resource, label: value})

        return observe

    def streams(_: CallbackOptions) -> Iterable[Observation]:
        for resource, read in watches.items():
            loops = list(read())
            up = sum(1 for stats in loops if stats.established)
            yield Observation(up, {L.RESOURCE: resource, L.STATE: "established"})
            yield Observation(len(loops) - up, {L.RESOURCE: resource, L.STATE: "down"})

    def main(read: Callable[[RunView], Iterable[Observation]]) -> Callback:
        def observe(_: CallbackOptions) -> Iterable[Observation]:
            current = run()
            if current is not None:
                yield from read(current)

        return observe

    def skipped(run: RunView) -> Iterable[Observation]:
        s = run.stats
        for reason, n in (("invalid", s.invalid), ("filtered", s.filtered), ("initial", s.seeded)):
            yield Observation(n, {L.REASON: reason})

    def last_event(run: RunView) -> Iterable[Observation]:
        if run.stats.last_event_time_ns:
            yield Observation(run.stats.last_event_time_ns / _NS)

    def lag(run: RunView) -> Iterable[Observation]:
        if run.stats.last_event_time_ns:
            yield Observation(run.lag_s())

    def last_checkpoint(run: RunView) -> Iterable[Observation]:
        if run.stats.last_checkpoint_ns:
            yield Observation(run.stats.last_checkpoint_ns / _NS)

    def writes(run: RunView) -> Iterable[Observation]:
        yield Observation(run.stats.checkpoints, {L.RESULT: "success"})
        yield Observation(run.stats.checkpoint_errors, {L.RESULT: "failure"})

    for name, attr, unit, description in (
        (
            c.MetricName.WATCH_LISTS,
            "lists",
            "{list}",
            "List calls completed (first lists and relists).",
        ),
        (
            c.MetricName.WATCH_BAD_LINES,
            "bad_lines",
            "{line}",
            "Watch lines that were not valid JSON watch events.",
        ),
        (c.MetricName.WATCH_BOOKMARKS, "bookmarks", "{event}", "BOOKMARK watch events received."),
    ):
        m.create_observable_counter(
            name, callbacks=[total(attr)], unit=unit, description=description
        )
    for name, attr, label, unit, description, known in (
        (
            c.MetricName.WATCH_RELISTS,
            "relists",
            L.REASON,
            "{list}",
            "Relists by reason: expired (410 Gone), empty_watch, error.",
            ("expired", "empty_watch", "error"),
        ),
        (
            c.MetricName.WATCH_RESTARTS,
            "restarts",
            L.REASON,
            "{watch}",
            "Watch reconnects by reason: server_timeout, connection, inactive, http_<code>.",
            ("server_timeout", "connection", "inactive"),
        ),
        (
            c.MetricName.WATCH_API_ERRORS,
            "api_errors",
            L.CODE,
            "{error}",
            "Error answers of the API server, by HTTP status code.",
            (),
        ),
    ):
        m.create_observable_counter(
            name, callbacks=[by(attr, label, known)], unit=unit, description=description
        )
    m.create_observable_gauge(
        c.MetricName.WATCH_STREAMS,
        callbacks=[streams],
        unit="{stream}",
        description="Watch streams by state: established (answered, reading) or down (listing, retrying, backing off).",
    )
    m.create_observable_counter(
        c.MetricName.WATCH_SKIPPED,
        callbacks=[main(skipped)],
        unit="{event}",
        description="Events not emitted on purpose: invalid (not an Event), filtered (client-side filters), initial (older than watch.initial on a first start).",
    )
    m.create_observable_counter(
        c.MetricName.WATCH_THROTTLED,
        callbacks=[main(lambda run: [Observation(run.throttled)])],
        unit="{update}",
        description="Event updates held back by watch.throttle_s and merged into a later record (their occurrences are still exported).",
    )
    m.create_observable_gauge(
        c.MetricName.WATCH_LAST_EVENT,
        callbacks=[main(last_event)],
        unit="s",
        description="Occurrence time (Unix seconds) of the newest Event processed.",
    )
    m.create_observable_gauge(
        c.MetricName.WATCH_LAG,
        callbacks=[main(lag)],
        unit="s",
        description="Now minus the occurrence time of the newest Event processed.",
    )
    m.create_observable_gauge(
        c.MetricName.PIPELINE_QUEUE_SIZE,
        callbacks=[main(lambda run: [Observation(run.queue_size())])],
        unit="{item}",
        description="Watch items waiting for the pipeline thread (when full, the watch waits).",
    )
    m.create_observable_gauge(
        c.MetricName.PIPELINE_QUEUE_CAPACITY,
        callbacks=[main(lambda run: [Observation(run.queue_capacity)])],
        unit="{item}",
        description="Size of that queue (watch.queue_size).",
    )
    m.create_observable_gauge(
        c.MetricName.PIPELINE_QUEUE_BYTES,
        callbacks=[main(lambda run: [Observation(run.queue_bytes())])],
        unit="By",
        description="Bytes (as JSON) of the watch items waiting for the pipeline thread.",
    )
    m.create_observable_gauge(
        c.MetricName.PIPELINE_QUEUE_MAX_BYTES,
        callbacks=[main(lambda run: [Observation(run.queue_max_bytes)])],
        unit="By",
        description="Bytes that queue holds at most (watch.queue_max_bytes).",
    )
    m.create_observable_counter(
        c.MetricName.PIPELINE_QUEUE_FULL,
        callbacks=[
            main(lambda run: [Observation(n, {L.BOUND: b}) for b, n in run.queue_full().items()])
        ],
        unit="{wait}",
        description="Times a watch found that queue full and waited, by the bound (items, bytes).",
    )
    m.create_observable_gauge(
        c.MetricName.LEADER,
        callbacks=[main(lambda run: [Observation(1 if run.stats.leader else 0)])],
        description="1 while this instance leads (or runs without leader election), 0 on a standby.",
    )
    m.create_observable_counter(
        c.MetricName.CHECKPOINT_WRITES,
        callbacks=[main(writes)],
        unit="{checkpoint}",
        description="Checkpoint saves, by result (success, failure).",
    )
    m.create_observable_gauge(
        c.MetricName.CHECKPOINT_LAST_SUCCESS,
        callbacks=[main(last_checkpoint)],
        unit="s",
        description="Unix time of the last successful checkpoint save.",
    )
