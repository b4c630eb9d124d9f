"""``make bench``: per-stage cost and end-to-end throughput of the pipeline.

Generates a realistic mix of raw watch lines (reasons and namespaces skewed
like a busy cluster, series updates, long messages, 20k distinct objects),
then measures, in one process:

* the **floor**: ``orjson.loads`` of each line (nothing can be cheaper);
* the **naive path**: the kubernetes client building its model object per
  Event, as a client that uses ``Watch.stream`` does;
* each stage: parse, normalize, occurrences, classify, patterns + counts +
  anomalies, record + jsonl encoding;
* end to end: lines -> records in an in-memory sink, occurrences per second.

Timings are the median of 3 runs (the machine is noisy). Writes a table to
stdout and ``bench/results/latest.json``.
"""

from __future__ import annotations

import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kubevents.clock import SystemClock
from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.counting import EventCounts
from kubevents.enrich.pattern_rules import load_pattern_rules
from kubevents.enrich.patterns import PatternDetector
from kubevents.model import Enriched
from kubevents.normalize import normalize
from kubevents.pipeline import Pipeline
from kubevents.records import ResourceInfo, event_record
from kubevents.series import SeriesTracker
from kubevents.sinks.base import InMemorySink
from kubevents.sinks.jsonl import record_to_json

N = 50_000
RUNS = 3
GOAL_OCCURRENCES_PER_S = 20_000

REASONS = [  # (reason, type, weight, message)
    ("Scheduled", "Normal", 20, "Successfully assigned {ns}/{pod} to node-{n}"),
    ("Pulled", "Normal", 15, 'Container image "registry.example.com/{ns}/app:1.{n}" already present on machine'),
    ("Created", "Normal", 15, "Created container: app"),
    ("Started", "Normal", 15, "Started container app"),
    ("BackOff", "Warning", 10, "Back-off restarting failed container app in pod {pod}_{ns}(uid-{n})"),
    ("Unhealthy", "Warning", 8, "Readiness probe failed: HTTP probe failed with statuscode: 503"),
    ("FailedScheduling", "Warning", 4, "0/50 nodes are available: 50 Insufficient cpu. preemption: 0/50 nodes are available."),
    ("FailedMount", "Warning", 3, 'MountVolume.SetUp failed for volume "config" : configmap "app-{n}" not found'),
    ("Failed", "Warning", 3, 'Failed to pull image "registry.example.com/{ns}/app:2.{n}": rpc error: code = NotFound'),
    ("Killing", "Normal", 5, "Stopping container app"),
    ("SuccessfulCreate", "Normal", 2, "Created pod: {pod}"),
]


def make_lines(n: int, seed: int = 7) -> list[bytes]:
    """Raw watch lines: ADDED for new Events, MODIFIED for series updates."""
    rng = random.Random(seed)
    weights = [w for _, _, w, _ in REASONS]
    namespaces = [f"team-{i:02d}" for i in range(40)]
    live: list[dict[str, Any]] = []
    lines = []
    base = 1_795_000_000
    for i in range(n):
        if live and rng.random() < 0.3:  # a series update
            obj = rng.choice(live)
            obj["count"] += 1
            obj["lastTimestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i // 20))
            kind = "MODIFIED"
        else:
            reason, type_, _, message = rng.choices(REASONS, weights)[0]
            ns = namespaces[min(int(rng.expovariate(0.15)), 39)]
            pod = f"app-{rng.randrange(20_000):05d}-x{rng.randrange(99_999):05d}"
            text = message.format(ns=ns, pod=pod, n=rng.randrange(100))
            if rng.random() < 0.01:
                text += " " + "detail " * 1500  # ~10 KiB messages, 1%
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i // 20))
            obj = {"apiVersion": "v1", "kind": "Event",
                   "metadata": {"name": f"{pod}.{i:016x}", "namespace": ns, "uid": f"uid-{i}", "resourceVersion": str(i)},
                   "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "uid": f"pod-{pod}", "apiVersion": "v1"},
                   "reason": reason, "message": text, "type": type_, "source": {"component": "kubelet", "host": "node-1"},
                   "count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp, "eventTime": None}
            live.append(obj)
            if len(live) > 5000:
                live.pop(0)
            kind = "ADDED"
        obj["metadata"]["resourceVersion"] = str(i)
        lines.append(orjson.dumps({"type": kind, "object": obj}))
    return lines


def timed(fn: Callable[[], object]) -> float:
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    lines = make_lines(N)
    classifier = load_classifier()
    rules = load_pattern_rules()
    resource = ResourceInfo("bench", "bench")
    raws = [orjson.loads(line)["object"] for line in lines]
    events = [normalize(raw) for raw in raws]
    results: dict[str, float] = {}

    results["floor: orjson.loads"] = timed(lambda: [orjson.loads(line) for line in lines])

    def naive() -> None:
        from kubernetes import client as k8s

        for line in lines[:5000]:  # the client is slow: a tenth of the lines, scaled below
            k8s.CoreV1Event.from_dict(orjson.loads(line)["object"])

    results["naive: kubernetes model objects"] = timed(naive) * (N / 5000)
    results["normalize"] = timed(lambda: [normalize(raw) for raw in raws])

    def occurrences() -> None:
        tracker = SeriesTracker()
        for e in events:
            tracker.observe(e)

    results["occurrences (SeriesTracker)"] = timed(occurrences)
    results["classify"] = timed(lambda: [classifier.classify(e) for e in events])
    enriched = [Enriched(e, 1, 0, classifier.classify(e)) for e in events]

    def patterns() -> None:
        detector, anomalies, counts = PatternDetector(rules), AnomalyDetector(rules), EventCounts()
        for en in enriched:
            counts.record(en)
            detector.observe(en)
            anomalies.observe(en)

    results["patterns + anomalies + counts"] = timed(patterns)
    results["record + jsonl encode"] = timed(
        lambda: [orjson.dumps(record_to_json(event_record(en), resource)) for en in enriched]
    )

    def end_to_end() -> int:
        sink = InMemorySink()
        pipeline = Pipeline(classifier=classifier, sinks=[sink], clock=SystemClock(), patterns=PatternDetector(rules),
                            anomalies=AnomalyDetector(rules), counts=EventCounts())
        for line in lines:
            pipeline.handle(normalize(orjson.loads(line)["object"]))
        pipeline.close()
        return pipeline.stats.occurrences

    occurrences_total = end_to_end()
    results["end to end (lines -> records)"] = timed(end_to_end)

    rate = occurrences_total / results["end to end (lines -> records)"]
    print(f"kubevents bench: {N} watch lines ({occurrences_total} occurrences), median of {RUNS} runs")
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'stage':38} {'µs/event':>10}")
    for name, seconds in results.items():
        print(f"{name:38} {seconds / N * 1e6:10.2f}")
    floor = results["floor: orjson.loads"]
    e2e = results["end to end (lines -> records)"]
    print(f"\nend to end: {rate:,.0f} occurrences/s (goal ≥ {GOAL_OCCURRENCES_PER_S:,}: "
          f"{'PASS' if rate >= GOAL_OCCURRENCES_PER_S else 'FAIL'})")
    print(f"vs floor (orjson.loads only): {floor / e2e:.2f}x   vs naive model path: "
          f"{results['naive: kubernetes model objects'] / e2e:.2f}x")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps({
        "lines": N, "occurrences": occurrences_total, "occurrences_per_s": rate,
        "us_per_event": {k: v / N * 1e6 for k, v in results.items()},
    }, indent=2))


if __name__ == "__main__":
    main()
