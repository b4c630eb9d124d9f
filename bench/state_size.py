"""Where the pipeline's state is: a deep size of each stage after the ``objects`` stream.

Run as ``python -m bench.state_size FILE`` (FILE: :func:`bench.memory.write_objects_file`'s
stream; written to a temporary file when omitted). The stream goes through the pipeline
``kubevents run`` builds, into no sink; then each stage's objects are walked
(``gc.get_referents``) and sized (``sys.getsizeof``), in the order below, each object
counted once, in the first stage that reaches it: the strings the tracker's keys share
with the links are the tracker's. Rules, classifier and other configuration are not
state and are left out. Pure Python only: a compiled native object is sized without
what it points to.
"""

from __future__ import annotations

import gc
import os
import sys
import tempfile
import types
from collections import Counter
from collections.abc import Iterable
from typing import Any

import orjson

_SKIP_TYPES = (
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.CodeType,
)


class Walker:
    """Deep sizes that count each object once, across every stage walked."""

    def __init__(self, skip: Iterable[object]) -> None:
        self.seen: set[int] = {id(obj) for obj in skip}
        self.by_type: Counter[str] = Counter()

    def size(self, root: object, *, stage: str = "") -> tuple[int, Counter[str]]:
        total = 0
        types_here: Counter[str] = Counter()
        stack = [root]
        seen = self.seen
        while stack:
            obj = stack.pop()
            if id(obj) in seen or isinstance(obj, _SKIP_TYPES):
                continue
            seen.add(id(obj))
            n = sys.getsizeof(obj)
            total += n
            types_here[type(obj).__name__] += n
            stack.extend(gc.get_referents(obj))
            if type(obj) is dict or isinstance(obj, dict):
                stack.extend(obj.keys())  # a dict of str keys does not show them to gc
        self.by_type.update(types_here)
        return total, types_here


def _pipeline() -> Any:
    from bench.throughput import bench_settings
    from kubevents import app
    from kubevents.clock import SystemClock
    from kubevents.pipeline import Pipeline
    from kubevents.series import SeriesTracker

    settings = bench_settings("127.0.0.1:1")
    return Pipeline(
        classifier=app.classifier_from(settings),
        sinks=[],
        clock=SystemClock(),
        tracker=SeriesTracker(
            ttl_s=settings.pipeline.series_ttl_s, max_entries=settings.pipeline.series_max_entries
        ),
        batch_size=settings.pipeline.batch_size,
        detectors=app.detectors_from(settings),
    )


def link_census(correlator: Any) -> dict[str, int]:
    """What the link index holds: links to incidents, to Causes, traces and their entries."""
    from kubevents.enrich.incidents import Incident
    from kubevents.enrich.links import Cause, Traced

    links = correlator._links
    counts: Counter[str] = Counter()
    causes: set[int] = set()
    for (index, _), table in links._tables.items():
        kind = "trace" if index < -1 else "link"
        for link in table.values():
            target = link.target
            if isinstance(target, Incident):
                counts[f"{kind} -> incident"] += 1
            elif isinstance(target, Cause):
                counts[f"{kind} -> cause"] += 1
                counts[f"{kind} entries"] += 1
                causes.add(id(target))
            elif isinstance(target, Traced):
                counts[f"{kind} -> traced"] += 1
                counts[f"{kind} entries"] += len(target.causes)
                causes.update(id(c) for c in target.causes)
    counts["tables"] = len(links._tables)
    counts["distinct traced causes"] = len(causes)
    counts["links"] = len(links)
    return dict(counts)


def _module_caches() -> list[object]:
    """The per-process caches of the hot path (``lru_cache`` and bounded tables)."""
    from kubevents import normalize, records
    from kubevents.enrich import owners, templates

    return [
        owners.conventional_owners,
        templates.template,
        templates._pieces,
        normalize._parse_time,
        records._SECONDS,
    ]


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    path = argv[0] if argv else ""
    made = False
    if not path:
        from bench.memory import write_objects_file

        fd, path = tempfile.mkstemp(suffix=".jsonl", prefix="kubevents-objects-")
        os.close(fd)
        write_objects_file(path)
        made = True
    from kubevents.normalize import normalize

    pipeline = _pipeline()
    with open(path, "rb") as f:
        for line in f:
            pipeline.handle(normalize(orjson.loads(line)["object"]))
    pipeline.flush()
    if made:
        os.unlink(path)
    gc.collect()
    correlator = pipeline.correlator
    walker = Walker(
        [
            correlator.rules,
            pipeline.classifier,
            pipeline.patterns.rules,
            getattr(pipeline.anomalies, "rules", None),
            pipeline.stats,
            pipeline.clock,
        ]
    )
    stages: list[tuple[str, object]] = [
        ("series tracker", pipeline.tracker),
        ("link index", correlator._links),
        ("open incidents", (correlator._open, correlator._deadlines)),
        ("owner resolver", correlator.owners),
        ("routine-ID memo", correlator._plain),
        ("correlator, rest", correlator),
        ("pattern groups", pipeline.patterns),
        ("anomalies", pipeline.anomalies),
        ("counts", pipeline.counts),
        ("pipeline, rest", pipeline),
        ("module caches", _module_caches()),
    ]
    total = 0
    print(f"{'stage':20} {'MiB':>7}  largest types")
    for name, root in stages:
        n, kinds = walker.size(root, stage=name)
        total += n
        top = ", ".join(f"{k} {v / 2**20:.1f}" for k, v in kinds.most_common(5))
        print(f"{name:20} {n / 2**20:7.1f}  {top}")
    print(f"{'total':20} {total / 2**20:7.1f}")
    print("by type:", ", ".join(f"{k} {v / 2**20:.1f}" for k, v in walker.by_type.most_common(10)))
    print("links:", link_census(correlator))
    print("series tracked:", len(pipeline.tracker), "open incidents:", correlator.open_incidents)


if __name__ == "__main__":
    main()
