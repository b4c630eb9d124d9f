"""Shutdown with dead sinks: every sink is flushed at once, within one
``delivery.flush_timeout_s``, the message gives the real timeout,
the replay says it lost records (exit 1), and each lost record is counted once.

Dead sinks of both kinds: a closed port (refused at once, retried until the deadline)
and a black hole (a socket that accepts connections and never answers: each request
waits for its own timeout, 10 s, longer than the flush timeout).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.sinks_support import DEMO, ReplayThread, settings_for
from tests.faults.support import child_env, free_port
from tests.support.scraping import sample, scrape
from tests.support.waiting import wait_until

FLUSH_S = 4.0


@pytest.fixture
def black_holes() -> Iterator[list[int]]:
    """Two ports that accept TCP connections (the kernel's backlog) and never answer."""
    sockets = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        sockets.append(s)
    yield [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()


@dataclass
class Replay:
    seconds: float
    code: int
    lines: list[tuple[float, str]] = field(default_factory=list)
    """Its stderr lines, each with the (monotonic) time it came."""

    @property
    def stderr(self) -> str:
        return "".join(line for _, line in self.lines)


def replay_to_dead_sinks(tmp: Path, holes: list[int], flush_s: float) -> Replay:
    closed = free_port()
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "kubevents.cli", "replay", str(DEMO), "--no-summary",
            "--sink", f"jsonl:{tmp / f'out-{flush_s}.jsonl'}",
            "--sink", f"loki:http://127.0.0.1:{holes[0]}",
            "--sink", f"otlp:http://127.0.0.1:{holes[1]}",
            "--sink", f"otlp+http:http://127.0.0.1:{closed}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env(
            KUBEVENTS_DELIVERY_FLUSH_TIMEOUT_S=str(flush_s),
            KUBEVENTS_DELIVERY_BACKOFF_BASE_S="0.2",  # metrics.otlp stays on: its endpoint
        ),  # is the otlp sink's, dead too, and its final export fits in the same timeout
    )
    run = Replay(0.0, 0)

    def read() -> None:  # stderr is line-buffered: each log line comes when it is written
        assert proc.stderr is not None
        for raw in proc.stderr:
            run.lines.append((time.monotonic(), raw.decode(errors="replace")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        run.code = proc.wait(timeout=120)
    finally:
        proc.kill()
        reader.join(10)
    run.seconds = time.monotonic() - started
    return run


def test_three_dead_sinks_take_one_flush_timeout(tmp_path: Path, black_holes: list[int]) -> None:
    # The same replay with no time to flush: start-up, replay and the workers' stop.
    base = replay_to_dead_sinks(tmp_path, black_holes, 0.0)
    run = replay_to_dead_sinks(tmp_path, black_holes, FLUSH_S)
    stderr = run.stderr
    print(
        f"\nthree dead sinks: {run.seconds:.1f}s with flush_timeout_s={FLUSH_S}, "
        f"{base.seconds:.1f}s with 0"
    )
    assert "Traceback" not in stderr
    # Each sink gives up at the end of its flush timeout: at once, the three say so
    # together; one after another, a timeout (and a worker's stop) apart. Timed in
    # the child's own output, so a slow start-up or replay under load does not count.
    gave_up = [t for t, line in run.lines if "did not flush within" in line]
    assert len(gave_up) == 3, stderr[-2000:]
    assert max(gave_up) - min(gave_up) < FLUSH_S / 2, (gave_up, stderr[-2000:])
    assert run.seconds > FLUSH_S  # it did wait for them
    # The whole run: one timeout more than the run with none (three would be 12 s
    # more); the bound leaves a timeout of slack for the two runs' noise.
    assert run.seconds - base.seconds < 2 * FLUSH_S, (run.seconds, base.seconds)
    for sink in ("loki", "otlp", "otlp+http"):
        assert f"sink {sink} did not flush within {FLUSH_S:g}s" in stderr, stderr[-2000:]
        assert f"sink {sink}: " in stderr and "records were not delivered" in stderr
    assert "10.0s" not in stderr and "within 10s" not in stderr
    assert run.code == base.code == 1  # records were lost: the replay says so


def test_a_shutdown_drop_is_counted_once(black_holes: list[int]) -> None:
    settings = settings_for(
        [f"loki:http://127.0.0.1:{black_holes[0]}"],
        **{
            "delivery.flush_timeout_s": 0.5,
            "metrics.host": "127.0.0.1",
            "metrics.otlp": False,
            "replay.hold_s": 60.0,
        },
    )
    run = ReplayThread(settings, metrics=True)

    def dropped() -> float:
        return sample(scrape(run.metrics_url), "kubevents_sink_dropped_total", sink="loki",
                      reason="shutdown")

    try:
        wait_until(lambda: dropped() > 0, timeout=60, what="the shutdown drop")
        samples = scrape(run.metrics_url)
    finally:
        assert run.join() == 1
    records = sample(samples, "kubevents_pipeline_records_total")
    assert sample(samples, "kubevents_sink_dropped_total", sink="loki", reason="shutdown") == records
    assert sample(samples, "kubevents_sink_queue_size", sink="loki") == 0  # not also queued
    assert sample(samples, "kubevents_sink_exported_total", sink="loki") == 0
