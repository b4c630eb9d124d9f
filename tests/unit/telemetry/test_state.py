"""Metrics read from the detectors and the watch: real detectors, real run statistics."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from kubevents.records import ResourceInfo
from kubevents.running import RunStats
from kubevents.source.watching import WatchStats
from kubevents.telemetry.metrics import Telemetry
from tests.unit.enrich.test_anomaly import M, detector, quiet, replay
from tests.unit.enrich.test_correlate import BACKOFF, MOUNT, Run, ev
from tests.unit.telemetry.test_metrics import samples

RESOURCE = ResourceInfo(service_version="1.2.3", instance_id="kv-0", cluster_name="c1")


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry(RESOURCE)
    yield t
    t.shutdown()


def metric(telemetry: Telemetry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        labels: value
        for (sample, labels), value in samples(telemetry.exposition()[0].decode()).items()
        if sample == name
    }


def test_anomalies_are_reported_while_they_last_and_both_scopes_read_zero_when_calm(
    telemetry: Telemetry,
) -> None:
    anomalies = detector()
    telemetry.observe_detectors(anomalies=anomalies)
    scope = "kubevents_anomaly_scope"
    assert metric(telemetry, "kubevents_anomalies_active") == {
        ((scope, "category"),): 0.0,
        ((scope, "reason"),): 0.0,
    }
    replay(anomalies, [*quiet(30), 20])  # a storm of a normally quiet reason
    assert metric(telemetry, "kubevents_anomalies_active") == {
        ((scope, "category"),): 1.0,
        ((scope, "reason"),): 1.0,
    }
    scores = metric(telemetry, "kubevents_anomaly_score")
    assert len(scores) == 2 and all(score >= 4 for score in scores.values())
    assert metric(telemetry, "kubevents_pattern_transitions_total") == {
        (("state", "anomalous"),): 2.0
    }
    assert metric(telemetry, "kubevents_state_entries") == {
        (("state", "anomaly_series"),): float(len(anomalies))
    }
    anomalies.expire(31 * M)
    assert metric(telemetry, "kubevents_anomaly_score") == {}
    assert set(metric(telemetry, "kubevents_anomalies_active").values()) == {0.0}


def test_open_incidents_by_root_cause_category_and_their_transitions(
    telemetry: Telemetry,
) -> None:
    run = Run()
    telemetry.observe_detectors(correlator=run.correlator)
    assert metric(telemetry, "kubevents_incidents_open") == {}
    run.feed(
        ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT),
        ev(30, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF),
    )
    (incident,) = run.correlator.current()
    assert metric(telemetry, "kubevents_incidents_open") == {
        (
            ("kubevents_category", incident.root.category.value),
            ("kubevents_severity", incident.severity.value),
        ): 1.0
    }
    entries = metric(telemetry, "kubevents_state_entries")
    assert entries[(("state", "incidents"),)] == 1.0
    assert entries[(("state", "owners"),)] == float(len(run.correlator.owners)) > 0
    started = metric(telemetry, "kubevents_incident_transitions_total")
    assert started[(("state", "started"),)] == 1.0
    run.expire(3600)
    assert metric(telemetry, "kubevents_incidents_open") == {}
    assert (
        metric(telemetry, "kubevents_incident_transitions_total")[(("state", "resolved"),)] == 1.0
    )


class _Run:
    """What the metrics read from ``running.Runner``: its stats and queue."""

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.queued = 0
        self.throttled = 3

    def lag_s(self) -> float:
        return 12.5

    def queue_size(self) -> int:
        return self.queued

    @property
    def queue_capacity(self) -> int:
        return 100

    def queue_bytes(self) -> int:
        return self.queued * 1000

    @property
    def queue_max_bytes(self) -> int:
        return 4096

    def queue_full(self) -> dict[str, int]:
        return {"items": 0, "bytes": self.queued // 7}


def test_watch_metrics_sum_the_watch_loops_by_resource(telemetry: Telemetry) -> None:
    up = WatchStats(lists=2, relists=Counter(expired=1), api_errors=Counter({"429": 3}))
    up.established = True
    down = WatchStats(lists=1, restarts=Counter(connection=2))
    pods = WatchStats(lists=1)
    stats = RunStats(watch_stats=[up, down])
    run = _Run(stats)
    telemetry.observe_run(
        lambda: run, {"events": lambda: stats.watch_stats, "pods": lambda: [pods]}
    )
    lists = metric(telemetry, "kubevents_watch_lists_total")
    assert lists == {(("resource", "events"),): 3.0, (("resource", "pods"),): 1.0}
    relists = metric(telemetry, "kubevents_watch_relists_total")
    assert relists[(("reason", "expired"), ("resource", "events"))] == 1.0
    assert relists[(("reason", "empty_watch"), ("resource", "pods"))] == 0.0  # known: from 0
    assert metric(telemetry, "kubevents_watch_api_errors_total") == {
        (("code", "429"), ("resource", "events")): 3.0
    }
    streams = metric(telemetry, "kubevents_watch_streams")
    assert streams[(("resource", "events"), ("state", "established"))] == 1.0
    assert streams[(("resource", "events"), ("state", "down"))] == 1.0
    # Before the first Event and the first checkpoint, their timestamps are absent, not 0.
    assert metric(telemetry, "kubevents_watch_last_event_timestamp_seconds") == {}
    assert metric(telemetry, "kubevents_checkpoint_last_success_timestamp_seconds") == {}
    assert metric(telemetry, "kubevents_leader") == {(): 0.0}
    stats.leader, stats.last_event_time_ns = True, 1_700_000_000_500_000_000
    stats.checkpoints, stats.checkpoint_errors = 4, 1
    stats.last_checkpoint_ns = 1_700_000_001_000_000_000
    run.queued = 7
    assert metric(telemetry, "kubevents_leader") == {(): 1.0}
    assert metric(telemetry, "kubevents_watch_last_event_timestamp_seconds") == {
        (): 1_700_000_000.5
    }
    assert metric(telemetry, "kubevents_watch_lag_seconds") == {(): 12.5}
    assert metric(telemetry, "kubevents_checkpoint_writes_total") == {
        (("result", "success"),): 4.0,
        (("result", "failure"),): 1.0,
    }
    assert metric(telemetry, "kubevents_pipeline_queue_size") == {(): 7.0}
    assert metric(telemetry, "kubevents_watch_throttled_total") == {(): 3.0}
    assert metric(telemetry, "kubevents_pipeline_queue_capacity") == {(): 100.0}
    assert metric(telemetry, "kubevents_pipeline_queue_bytes") == {(): 7000.0}
    assert metric(telemetry, "kubevents_pipeline_queue_max_bytes") == {(): 4096.0}
    assert metric(telemetry, "kubevents_pipeline_queue_full_total") == {
        (("bound", "items"),): 0.0,
        (("bound", "bytes"),): 1.0,
    }
