"""Peak RSS of a kubevents pipeline at a given state size, one process per case.

Run as ``python -m bench.memory CASE ENDPOINT [FILE]``; prints one JSON object. Cases:

* ``objects``: the :mod:`bench.mix` stream up to its 100,000th distinct
  involved object (about 213,000 watch lines, written to FILE by
  :func:`write_objects_file` beforehand), read line by line and streamed through the pipeline
  ``kubevents run`` builds (series tracker, classify, correlate, patterns,
  anomalies, counts) and its OTLP/gRPC sink to the receiver at ENDPOINT;
* ``incidents``: 10,000 open incidents (the default ``correlation.max_incidents``):
  a volume that cannot attach on each of 10,000 Pods, each Pod then
  crash-looping (two BackOff updates joining the incident), within the
  incident window, through the same pipeline;
* ``replay`` / ``replay_shuffled``: ``kubevents replay FILE`` (``app.replay``, every
  stage, the OTLP/gRPC sink to ENDPOINT) of a 150,000-line watch dump of the mix
  (100,000 distinct objects; written by :func:`write_replay_dump`), in the mix's order
  (nearly in order, as a recorded watch is: the reorder window) and shuffled (the sort
  on disk). The goal (150 MiB) holds for a dump of any size: replay keeps a bounded
  number of Events (``source/ordering.py``), the rest is the pipeline's state;
* ``patterns``: 50,000 pattern keys: ``bench/patterns_memory.py``'s traffic
  (400,000 occurrences, 9.6 h of event time) through the pattern stage only.

The process imports what ``kubevents run`` imports (its own Kubernetes client,
the Lease elector, the object cache and the OpenTelemetry SDK; not the
``kubernetes`` package, which run no longer loads), so the figure is what a
pod would use.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
from typing import Any

import orjson


def rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` over
    ``exec`` from the parent (the bench process, which holds the whole mix),
    while ``VmHWM`` belongs to this process's own address space.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _import_what_run_imports() -> None:
    """The modules ``kubevents run`` imports beyond the pipeline (see ``app.run_cluster``)."""


def _pipeline(endpoint: str) -> Any:
    _import_what_run_imports()
    from bench.throughput import bench_settings
    from kubevents import app
    from kubevents.clock import SystemClock
    from kubevents.pipeline import Pipeline
    from kubevents.series import SeriesTracker
    from kubevents.sinks.registry import SinkContext, build_sinks

    settings = bench_settings(endpoint)
    sinks = build_sinks(SinkContext(settings, app.resource_info(settings), None))
    return Pipeline(
        classifier=app.classifier_from(settings),
        sinks=sinks,
        clock=SystemClock(),
        tracker=SeriesTracker(
            ttl_s=settings.pipeline.series_ttl_s, max_entries=settings.pipeline.series_max_entries
        ),
        batch_size=settings.pipeline.batch_size,
        detectors=app.detectors_from(settings),
    )


def objects(endpoint: str, path: str) -> dict[str, Any]:
    from kubevents.normalize import normalize

    pipeline = _pipeline(endpoint)
    gc.collect()
    baseline = rss_mib()
    lines = 0
    with open(path, "rb") as f:
        for line in f:  # as the watch reads them: one line at a time
            pipeline.handle(normalize(orjson.loads(line)["object"]))
            lines += 1
    pipeline.close()
    return {
        "case": "100k distinct objects",
        "lines": lines,
        "series_tracked": len(pipeline.tracker),
        "open_incidents": pipeline.correlator.open_incidents,
        "baseline_mib": baseline,
        "peak_rss_mib": rss_mib(),
    }


OBJECTS: int = 100_000
"""Distinct involved objects of the ``objects`` case: the size the goal names."""


def write_objects_file(path: str, objects: int = OBJECTS) -> dict[str, Any]:
    """The ``objects`` input: the mix up to its ``objects``-th distinct involved object.

    The mix is the 250,000-line stream this case used before; it now stops at
    its ``objects``-th distinct object (the goal is set at that many), where
    the whole stream held 116,000.
    """
    from bench.mix import EventMix

    mix = EventMix(objects=objects, lines=250_000, seed=11)
    lines = 0
    with open(path, "wb") as f:
        for item in mix.generate_iter():
            f.write(orjson.dumps(item) + b"\n")
            lines += 1
            if len(mix.distinct) >= objects:
                break
    return {"lines": lines, "distinct_objects": len(mix.distinct)}


def incidents(endpoint: str, _path: str) -> dict[str, Any]:
    from kubevents.normalize import normalize

    pipeline = _pipeline(endpoint)
    gc.collect()
    baseline = rss_mib()
    base = 1_795_000_000
    n = 10_000

    def event(i: int, reason: str, message: str, count: int, t: float) -> dict[str, Any]:
        stamp = f"{__import__('time').strftime('%Y-%m-%dT%H:%M:%S', __import__('time').gmtime(base + t))}Z"
        ns = f"team-{i % 2000:04d}"
        pod = f"db-{i}-0"
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{pod}.{reason}.{i:x}", "namespace": ns, "uid": f"{reason}-{i}"},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "uid": f"pod-{i}", "apiVersion": "v1"},
            "reason": reason, "message": message, "type": "Warning",
            "source": {"component": "kubelet", "host": f"node-{i}"},
            "reportingComponent": "kubelet", "reportingInstance": f"node-{i}",
            "count": count, "firstTimestamp": stamp, "lastTimestamp": stamp,
        }

    for i in range(n):  # within one window (10 minutes): 10,000 causes in 300 s
        t = i * 0.03
        pipeline.handle(normalize(event(i, "FailedAttachVolume",
                                        f'AttachVolume.Attach failed for volume "pvc-{i:08x}" : rpc error: code = DeadlineExceeded', 1, t)))
        for k in (1, 2):
            pipeline.handle(normalize(event(i, "BackOff",
                                            f"Back-off restarting failed container db in pod db-{i}-0_team-{i % 2000:04d}(pod-{i})", k, t + 0.01 * k)))
    open_now = pipeline.correlator.open_incidents
    pipeline.close()
    return {
        "case": "10k open incidents",
        "open_incidents": open_now,
        "baseline_mib": baseline,
        "peak_rss_mib": rss_mib(),
    }


def patterns(_endpoint: str, _path: str) -> dict[str, Any]:
    import io
    from contextlib import redirect_stdout

    _import_what_run_imports()
    from bench import patterns_memory

    out = io.StringIO()
    with redirect_stdout(out):
        patterns_memory.main(["--keys", "50000", "--occurrences", "400000", "--hours", "9.6", "--no-costs"])
    text = out.getvalue()
    groups = next((line.strip() for line in text.splitlines() if "pattern groups" in line), "")
    return {"case": "50k pattern keys", "detail": groups, "peak_rss_mib": rss_mib()}


REPLAY_LINES = 150_000
"""Lines of the replay cases' dump: the issue's 150,000-line dump of 100,000 objects."""


def write_replay_dump(path: str, shuffled_path: str) -> dict[str, Any]:
    """The replay cases' inputs: the mix's first 150,000 lines, as the bench's replay
    end to end reads them, and the same lines shuffled (seeded)."""
    import random

    from bench.mix import EventMix

    lines = [orjson.dumps(item) for item in EventMix(objects=OBJECTS, lines=REPLAY_LINES).generate_iter()]
    with open(path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    random.Random(5).shuffle(lines)
    with open(shuffled_path, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    return {"lines": len(lines)}


def replay(endpoint: str, path: str, case: str = "replay of a 150k-line dump, in order") -> dict[str, Any]:
    from bench.throughput import bench_settings
    from kubevents import app

    gc.collect()
    baseline = rss_mib()
    app.replay(bench_settings(endpoint), [path])
    return {"case": case, "lines": REPLAY_LINES, "baseline_mib": baseline, "peak_rss_mib": rss_mib()}


def replay_shuffled(endpoint: str, path: str) -> dict[str, Any]:
    return replay(endpoint, path, "replay of a 150k-line dump, shuffled")


def main() -> None:
    case, endpoint, path = sys.argv[1], sys.argv[2], (sys.argv[3:] or [""])[0]
    cases = {"objects": objects, "incidents": incidents, "patterns": patterns,
             "replay": replay, "replay_shuffled": replay_shuffled}
    result = cases[case](endpoint, path)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
