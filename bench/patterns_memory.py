"""Memory and cost of the pattern stage: 1,000,000 occurrences over 50,000 keys.

Replays synthetic occurrences through PatternDetector + EventCounts +
AnomalyDetector (shipped rules) and prints the peak RSS, the time, and the
state sizes, then the median per-occurrence cost of each part (timeit).

Traffic: one occurrence every 86.4 ms of event time (a day for 1M), spread
uniformly over the keys (namespace x reason, kind Pod), plus a rotating hot
set (every 10 minutes, 20 keys get 30% of the traffic) so that patterns start,
go on, resolve and anomalies fire. Categories cycle over the closed set, so
Image keys (keyed by message template) pay for templating, with more distinct
messages than the template cache holds.

Run from the repository root: ``.venv/bin/python bench/patterns_memory.py``.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import random
import resource
import statistics
import time
import timeit
from collections.abc import Callable, Iterator
from functools import partial

from kubevents.conventions import Category, Severity
from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.pattern_rules import load_pattern_rules
from kubevents.enrich.patterns import PatternDetector
from kubevents.model import Classification, Enriched, KubeEvent, ObjectRef
from kubevents.telemetry.counting import EventCounts

S = 1_000_000_000
T0 = 1_767_225_600 * S
CATEGORIES = [c for c in Category]
SEVERITIES = [Severity.WARNING, Severity.ERROR, Severity.CRITICAL]


def rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``VmHWM``: unlike
    ``ru_maxrss`` it is not carried over ``exec`` from a parent)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Keys:
    """The synthetic keys: a namespace, a reason, a classification and a message each."""

    def __init__(self, count: int) -> None:
        namespaces = max(count // 100, 1)
        self.refs = [
            ObjectRef(kind="Pod", namespace=f"ns-{i % namespaces}", name="p") for i in range(count)
        ]
        self.reasons = [f"Reason{i // namespaces}" for i in range(count)]
        self.classes = [
            Classification(
                CATEGORIES[(i // namespaces) % len(CATEGORIES)], SEVERITIES[i % 3], "synthetic"
            )
            for i in range(count)
        ]
        self.messages = [
            f'Failed to pull image "registry.example.com/team-{i}/app:1.{i % 97}": not found (attempt {i % 13})'
            for i in range(count)
        ]


def occurrences(keys: Keys, total: int, *, span_s: float, seed: int) -> Iterator[Enriched]:
    """``total`` single-occurrence updates in time order over ``span_s`` seconds."""
    rnd = random.Random(seed)
    n_keys = len(keys.refs)
    step = span_s / total
    for i in range(total):
        t_s = i * step
        if rnd.random() < 0.3:
            hot = int(t_s // 600) * 20
            k = (hot + rnd.randrange(20)) % n_keys
        else:
            k = rnd.randrange(n_keys)
        ref = keys.refs[k]
        t = T0 + int(t_s * S)
        event = KubeEvent(
            uid=f"k{k}-{i % 3}",
            name=f"k{k}",
            namespace=ref.namespace,
            reason=keys.reasons[k],
            type="Warning",
            message=keys.messages[k] + ".",  # a new string, as a real Event would bring
            regarding=ref,
            time_ns=t,
            first_time_ns=t,
        )
        yield Enriched(event, 1, t, keys.classes[k])


class GcTimer:
    """Time spent in the cyclic garbage collector, whoever triggered it (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = 0
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start
            self.collections += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--occurrences", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=50_000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-costs", action="store_true", help="skip the per-part costs")
    parser.add_argument("--gc-threshold", type=int, default=0, help="gc.set_threshold(N) first")
    args = parser.parse_args(argv)
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold)

    rules = load_pattern_rules()
    keys = Keys(args.keys)
    gc.collect()
    baseline = rss_mib()

    patterns, anomalies, counts = PatternDetector(rules), AnomalyDetector(rules), EventCounts()
    transitions: dict[str, int] = {}
    peak_groups = peak_series = 0
    gc_timer = GcTimer()
    stage_s = 0.0
    stream = occurrences(keys, args.occurrences, span_s=args.hours * 3600, seed=args.seed)
    started = time.perf_counter()
    # Input is made in chunks of 4,096 updates so that only the stage is timed.
    while chunk := list(itertools.islice(stream, 4096)):
        start = time.perf_counter()
        for enriched in chunk:
            patterns.observe(enriched)
            anomalies.observe(enriched)
            counts.record(enriched)
        for t in [*patterns.transitions(), *anomalies.transitions()]:
            transitions[t.state.value] = transitions.get(t.state.value, 0) + 1
        counts.expire(chunk[-1].event.time_ns)
        stage_s += time.perf_counter() - start
        peak_groups = max(peak_groups, len(patterns))
        peak_series = max(peak_series, len(anomalies))
    total_s = time.perf_counter() - started
    peak = rss_mib()
    n = args.occurrences

    print(f"replayed {n:,} occurrences over {args.keys:,} keys, {args.hours:g} h of event time")
    print(
        f"  time: {stage_s:.1f} s in the stage, {stage_s / n * 1e6:.2f} us/occurrence "
        f"({total_s:.1f} s with making the input); garbage collector: {gc_timer.seconds:.1f} s "
        f"in {gc_timer.collections:,} collections (threshold {gc.get_threshold()[0]})"
    )
    print(
        f"  peak RSS: {peak:.0f} MiB (after setup {baseline:.0f} MiB: +{peak - baseline:.0f} MiB)"
    )
    print(
        f"  pattern groups: {len(patterns):,} now, {peak_groups:,} at most; "
        f"active {patterns.active}; evicted {patterns.evicted_groups}; late {patterns.late}"
    )
    print(f"  transitions: {dict(sorted(transitions.items()))}")
    print(
        f"  anomaly series: {len(anomalies):,} now, {peak_series:,} at most; "
        f"evicted {anomalies.evicted:,}"
    )
    print(
        f"  event count series: {len(counts.counter):,}; value overflows "
        f"{counts.value_overflows:,}; series overflows {counts.series_overflows:,}; "
        f"evicted {counts.evicted:,}"
    )

    if args.no_costs:
        return 0
    # Median per-occurrence cost of each part on 20,000 updates of the same traffic,
    # continuing where the replay stopped (groups and series mostly exist).
    sample = list(occurrences(keys, 20_000, span_s=20_000 * 0.0864, seed=args.seed + 1))
    shift = patterns.high_water_ns - T0 + S
    sample = [_shifted(e, shift) for e in sample]
    print("  median cost per occurrence (timeit, 7 x 20,000):")
    parts: list[tuple[str, Callable[[Enriched], object]]] = [
        ("PatternDetector.observe", patterns.observe),
        ("AnomalyDetector.observe", anomalies.observe),
        ("EventCounts.record", counts.record),
    ]
    for name, call in parts:
        runs = timeit.repeat(partial(_each, call, sample), number=1, repeat=7)
        print(f"    {name:26} {statistics.median(runs) / len(sample) * 1e6:.2f} us")
    return 0


def _each(call: Callable[[Enriched], object], sample: list[Enriched]) -> None:
    for enriched in sample:
        call(enriched)


def _shifted(enriched: Enriched, shift_ns: int) -> Enriched:
    event = enriched.event
    t = event.time_ns + shift_ns
    moved = KubeEvent(
        uid=event.uid,
        name=event.name,
        namespace=event.namespace,
        reason=event.reason,
        type=event.type,
        message=event.message,
        regarding=event.regarding,
        time_ns=t,
        first_time_ns=t,
    )
    return Enriched(moved, enriched.occurrences, t, enriched.classification)


if __name__ == "__main__":
    raise SystemExit(main())
