"""Replay a recording of Kubernetes Events as if it were happening now, round after round.

The compose stack's event source (docs/deploy.md, "Local stack"): the recording is played
in real time through one long-lived kubevents pipeline, so Loki receives every record once
with a current timestamp, Prometheus sees counters that only grow, and the dashboards fill
as they would on a cluster. Each round shifts the recording's timestamps so that its
``--start`` is the moment the round begins and gives every uid a new value, so a round is
new Events, not repeats. Lines stamped before ``--start`` (the recording's initial list)
are played at once.

    python replay-loop.py FILE [--start RFC3339] [--speed X] [--pause S] [--rounds N]

Everything else comes from kubevents' own settings (``--config``, ``KUBEVENTS_*``):
sinks, cluster name, metrics port (``/metrics``, ``/healthz``, ``/readyz``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from kubevents.app import _start_metrics, classifier_from, detectors_from, resource_info
from kubevents.clock import SystemClock
from kubevents.normalize import NotAnEvent, normalize
from kubevents.pipeline import Pipeline
from kubevents.series import SeriesTracker
from kubevents.settings import load_settings
from kubevents.sinks.registry import SinkContext, build_sinks

logger = logging.getLogger("replay-loop")
TIMESTAMP = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z"')
UID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROUND_NAMESPACE = uuid.UUID("6f1d3c3e-8a51-4c4f-9d3e-6b7c2a1e0f42")


@dataclass(frozen=True)
class Line:
    text: str
    at: float  # stream time (unix s): the newest timestamp on this line or any before it


def parse_time(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_lines(path: str) -> list[Line]:
    lines: list[Line] = []
    newest = float("-inf")
    with open(path, encoding="utf-8") as f:
        for text in f:
            if not text.strip():
                continue
            stamps = [parse_time(s + "Z") for s, _ in TIMESTAMP.findall(text)]
            newest = max([newest, *stamps])
            lines.append(Line(text.strip(), newest))
    if not lines:
        raise SystemExit(f"{path}: no lines")
    return lines


def shift(text: str, offset_s: int, round_no: int) -> str:
    """Move every timestamp by ``offset_s`` whole seconds; give every uid this round's value."""

    def moved(m: re.Match[str]) -> str:
        t = dt.datetime.fromisoformat(m.group(1) + "+00:00") + dt.timedelta(seconds=offset_s)
        return f'"{t.strftime("%Y-%m-%dT%H:%M:%S")}{m.group(2) or ""}Z"'

    text = TIMESTAMP.sub(moved, text)
    if round_no:
        text = UID.sub(lambda m: str(uuid.uuid5(ROUND_NAMESPACE, f"{round_no}:{m.group(0)}")), text)
    return text


def rounds(lines: list[Line], start: float, speed: float, pause: float, count: int,
           stop: threading.Event) -> Iterator[tuple[str, dict]]:
    """(watch type, Event object) at the moment each line's time comes, round after round."""
    end = lines[-1].at
    round_no = 0
    while not stop.is_set() and (count == 0 or round_no < count):
        began = time.time()
        offset = int(began - start)
        logger.info("round %d: the recording's %s is now", round_no,
                    dt.datetime.fromtimestamp(start, dt.UTC).isoformat())
        for line in lines:
            due = began + max(0.0, line.at - start) / speed
            if stop.wait(max(0.0, due - time.time())):
                return
            item = json.loads(shift(line.text, offset, round_no))
            yield item.get("type", "ADDED"), item.get("object", item)
        stop.wait(max(0.0, began + (end - start) / speed + pause - time.time()))
        round_no += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="a watch stream recording (JSON Lines)")
    parser.add_argument("--start", help="the recording's time that becomes 'now' (RFC3339); "
                        "default: its first line's")
    parser.add_argument("--speed", type=float, default=1.0, help="playback speed (default 1)")
    parser.add_argument("--pause", type=float, default=60.0, help="seconds between rounds")
    parser.add_argument("--rounds", type=int, default=0, help="rounds to play (default 0: forever)")
    parser.add_argument("--config", help="kubevents config file")
    args = parser.parse_args(argv)

    settings = load_settings(args.config)
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lines = read_lines(args.file)
    start = parse_time(args.start) if args.start else lines[0].at
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    resource = resource_info(settings)
    sinks = build_sinks(SinkContext(settings, resource, stop))
    metrics = _start_metrics(settings, resource, sinks, port=settings.metrics.port or None)
    clock = SystemClock()
    pipeline = Pipeline(
        classifier=classifier_from(settings),
        sinks=sinks,
        clock=clock,
        tracker=SeriesTracker(ttl_s=settings.pipeline.series_ttl_s,
                              max_entries=settings.pipeline.series_max_entries),
        summary=None,
        batch_size=settings.pipeline.batch_size,
        detectors=detectors_from(settings),
    )
    if metrics is not None:
        metrics.telemetry.observe_events(lambda: pipeline.counts)
        metrics.telemetry.observe_pipeline(lambda: pipeline.stats)
        metrics.telemetry.observe_detectors(patterns=pipeline.patterns, anomalies=pipeline.anomalies,
                                            correlator=pipeline.correlator, counts=pipeline.counts)
    handled = 0
    try:
        for watch_type, obj in rounds(lines, start, args.speed, args.pause, args.rounds, stop):
            try:
                event = normalize(obj)
            except NotAnEvent as e:
                logger.warning("skipped a line: %s", e)
                continue
            if watch_type == "DELETED":
                pipeline.delete(event)
            else:
                pipeline.handle(event)
                handled += 1
            pipeline.expire(clock.now_ns())
            pipeline.flush()
    finally:
        pipeline.close()
        if metrics is not None:
            metrics.close()
    logger.info("replayed %d Event updates", handled)
    return 0


if __name__ == "__main__":
    sys.exit(main())
