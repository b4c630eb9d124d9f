"""Shutdown with dead sinks: every sink is flushed at once, within one
``delivery.flush_timeout_s`` (plus a small margin), the message gives the real timeout,
the replay says it lost records (exit 1), and each lost record is counted once.

Dead sinks of both kinds: a closed port (refused at once, retried until the deadline)
and a black hole (a socket that accepts connections and never answers: each request
waits for its own timeout, 10 s, longer than the flush timeout).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.sinks_support import DEMO, ReplayThread, settings_for
from tests.faults.support import child_env, free_port
from tests.support.scraping import sample, scrape
from tests.support.waiting import wait_until

FLUSH_S = 4.0
MARGIN_S = 1.5
"""Each sink's worker gets one second to stop after the timeout; the rest is slack."""


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


def replay_to_dead_sinks(tmp: Path, holes: list[int], flush_s: float) -> tuple[float, int, str]:
    closed = free_port()
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable, "-m", "kubevents.cli", "replay", str(DEMO), "--no-summary",
            "--sink", f"jsonl:{tmp / f'out-{flush_s}.jsonl'}",
            "--sink", f"loki:http://127.0.0.1:{holes[0]}",
            "--sink", f"otlp:http://127.0.0.1:{holes[1]}",
            "--sink", f"otlp+http:http://127.0.0.1:{closed}",
        ],
        capture_output=True,
        timeout=120,
        env=child_env(
            KUBEVENTS_DELIVERY_FLUSH_TIMEOUT_S=str(flush_s),
            KUBEVENTS_DELIVERY_BACKOFF_BASE_S="0.2",  # metrics.otlp stays on: its endpoint
        ),  # is the otlp sink's, dead too, and its final export fits in the same timeout
        check=False,
    )
    return time.monotonic() - started, done.returncode, done.stderr.decode()


def test_three_dead_sinks_take_one_flush_timeout(tmp_path: Path, black_holes: list[int]) -> None:
    # The same replay with no time to flush: start-up, replay and the workers' stop.
    base_s, base_code, _ = replay_to_dead_sinks(tmp_path, black_holes, 0.0)
    took_s, code, stderr = replay_to_dead_sinks(tmp_path, black_holes, FLUSH_S)
    print(f"\nthree dead sinks: {took_s:.1f}s with flush_timeout_s={FLUSH_S}, {base_s:.1f}s with 0")
    assert "Traceback" not in stderr
    # One after another they would take three timeouts (and more); at once, one.
    assert took_s - base_s < FLUSH_S + MARGIN_S, (took_s, base_s, stderr[-2000:])
    assert took_s - base_s > FLUSH_S - MARGIN_S  # it did wait for them
    for sink in ("loki", "otlp", "otlp+http"):
        assert f"sink {sink} did not flush within {FLUSH_S:g}s" in stderr, stderr[-2000:]
        assert f"sink {sink}: " in stderr and "records were not delivered" in stderr
    assert "10.0s" not in stderr and "within 10s" not in stderr
    assert code == base_code == 1  # records were lost: the replay says so


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
