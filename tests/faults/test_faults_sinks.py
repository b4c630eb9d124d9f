"""Faults on the backend side, against the real `kubevents run` process: the collector down
(memory queue, then spool, with a restart in the middle of the outage), Loki answering 429
with Retry-After, a slow receiver that causes backpressure.

Promise (docs/sinks.md "Delivery guarantees"): with ``queue_full: block`` (the default)
nothing the API server still holds is lost, however long the backend is down; a restart
during an outage loses nothing either (the spool keeps what it took; without a spool, what
was not delivered is not checkpointed and is read again from the API). Delivery is at
least once: duplicates are counted and bounded, not forbidden.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.apiserver import FakeApiServer
from tests.fakes.loki_receiver import FakeLoki
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.faults.conftest import Form
from tests.faults.support import (
    Figures,
    Kubevents,
    Traffic,
    config,
    coverage_loki,
    coverage_otlp,
    expected,
    free_port,
    lost,
    running,
    scrape,
)
from tests.support.scraping import sample, total
from tests.support.waiting import wait_until


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(bookmark_interval=0.1, timeout_scale=0.2) as server:
        yield server


def k8s_records(receiver: OtlpReceiver) -> int:
    return sum(1 for log in receiver.records() if log.record.event_name == "k8s.event")


@pytest.mark.parametrize("buffer", ["memory", "spool"])
def test_collector_down(
    fake: FakeApiServer, tmp_path: Path, form: Form, figures: Figures, buffer: str
) -> None:
    """The OTLP receiver refuses connections for the outage. Halfway through, kubevents is
    stopped and started again: with SIGTERM (memory queue: what was not delivered is
    dropped as ``shutdown``, not checkpointed, and read again from the API) or with kill -9
    (spool: what was spooled and fsynced is settled, and sent from the spool after the
    restart). Then the receiver comes back."""
    port = free_port()
    queue_size = 50
    delivery = {"queue_size": queue_size, "batch_size": 25}
    if buffer == "spool":
        delivery["spool_dir"] = str(tmp_path / "spool")
    with OtlpReceiver() as receiver:
        cfg = config(
            fake,
            tmp_path,
            "solo",
            sinks=[f"otlp:http://{receiver.grpc_endpoint}"],
            watch={"checkpoint": str(tmp_path / "cp.json")},
            delivery=delivery,
            metrics_port=port,
        )
        traffic = Traffic(fake, rate=form.rate / 3)
        started = time.monotonic()
        with traffic:
            kv = Kubevents(cfg)
            wait_until(lambda: k8s_records(receiver) > 0, 30, "a first delivery")
            receiver.down()
            outage = time.monotonic()
            wait_until(
                lambda: total(scrape(port), "kubevents_sink_failed_total", sink="otlp") > 0,
                30,
                "failed exports while the collector is down",
            )
            time.sleep(max(form.collector_down_s / 2 - (time.monotonic() - outage), 0))
            if buffer == "memory":  # backpressure: the queue fills, then the watch waits
                wait_until(
                    lambda: (
                        sample(scrape(port), "kubevents_sink_queue_size", sink="otlp") == queue_size
                    ),
                    30,
                    "a full queue",
                )
            else:
                wait_until(
                    lambda: (
                        sample(scrape(port), "kubevents_sink_spool_size_bytes", sink="otlp") > 0
                    ),
                    30,
                    "spooled records",
                )
            during = scrape(port)
            if buffer == "spool":
                kv.kill9()  # what it took is on disk (and checkpointed as settled)
            else:
                assert kv.term() == 0, kv.log()[-3000:]  # undelivered: not checkpointed
            kv = Kubevents(cfg)
            time.sleep(max(form.collector_down_s - (time.monotonic() - outage), 0))
            receiver.up()
        want = expected(fake)
        try:
            wait_until(
                lambda: not lost(want, coverage_otlp(receiver)),
                60 + form.collector_down_s / 10,
                "every occurrence delivered",
            )
            after = scrape(port)
        finally:
            assert kv.term() == 0, kv.log()[-3000:]
        figures.seconds = round(time.monotonic() - started, 1)
        missing = figures.account(want, coverage_otlp(receiver))
    log = (tmp_path / "solo.log").read_text()
    figures.notes.update(
        buffer=buffer,
        down_s=form.collector_down_s,
        queue_size_during=sample(during, "kubevents_sink_queue_size", sink="otlp"),
        queue_full_drops=total(after, "kubevents_sink_dropped_total", reason="queue_full"),
    )
    assert not missing, f"{len(missing)} occurrences lost, e.g. {missing[:5]}"
    assert total(after, "kubevents_sink_dropped_total", reason="queue_full") == 0
    # During the outage: batches are retried, nothing is given up.
    assert total(during, "kubevents_sink_retried_total", sink="otlp") > 0
    assert total(during, "kubevents_sink_dropped_total", sink="otlp") == 0
    if buffer == "memory":
        # Backpressure: the queue holds its capacity and the watch waits (the API server
        # keeps the rest); SIGTERM counts what was queued as dropped (shutdown), and the
        # next start reads it again from the API (nothing missing above).
        assert sample(during, "kubevents_sink_queue_capacity", sink="otlp") == queue_size
        assert re.search(r"sink otlp: [1-9]\d* records not delivered to .* before shutdown", log)
    else:
        # No memory cap with a spool; after kill -9 the next start sends what was spooled.
        assert ("kubevents_sink_queue_capacity", (("sink", "otlp"),)) not in during
        assert sample(during, "kubevents_sink_spool_capacity_bytes", sink="otlp") > 0
        assert re.search(r"spool .*: [1-9]\d* records not yet acknowledged will be sent again", log)
    # At least once: the restart may send again what was in flight; never wholesale.
    assert figures.duplicated <= 2 * queue_size + int(form.rate)
    assert "Traceback" not in log


def test_loki_429_with_retry_after(
    fake: FakeApiServer, tmp_path: Path, form: Form, figures: Figures
) -> None:
    retry_after = 1.0
    storms, per_storm = (1, 3) if form.name == "short" else (20, 3)
    port = free_port()
    with FakeLoki() as loki:
        cfg = config(fake, tmp_path, "solo", sinks=[f"loki:{loki.url}"], metrics_port=port)
        started = time.monotonic()
        with running(cfg) as kv:
            with Traffic(fake, rate=form.rate) as traffic:
                wait_until(lambda: loki.calls(204) > 0, 30, "a first push")
                for _ in range(storms):
                    loki.faults.status(429, retry_after=retry_after, times=per_storm)
                    wait_until(lambda: not loki.faults.pending, 30, "the 429s to be answered")
                    time.sleep(form.traffic_s / storms)
                traffic.stop()
            want = expected(fake)
            wait_until(lambda: not lost(want, coverage_loki(loki)), 60, "every occurrence in Loki")
            samples = scrape(port)
            log = kv.log()
        figures.seconds = round(time.monotonic() - started, 1)
        missing = figures.account(want, coverage_loki(loki))
        pushes = loki.pushes
    # Each 429 is followed by the next push no sooner than Retry-After asked.
    waits = [
        b.received_at - a.received_at for a, b in itertools.pairwise(pushes) if a.status == 429
    ]
    figures.notes.update(
        pushes_429=sum(1 for p in pushes if p.status == 429),
        min_wait_after_429_s=round(min(waits), 2) if waits else None,
        loki_refused_duplicates=sum(p.duplicates for p in pushes),
        retried_metric=total(samples, "kubevents_sink_retried_total", sink="loki"),
    )
    assert not missing, f"{len(missing)} occurrences lost, e.g. {missing[:5]}"
    assert figures.duplicated == 0  # a retried push is byte-identical: Loki keeps one copy
    assert len(waits) == per_storm * storms
    assert min(waits) >= retry_after * 0.95
    assert total(samples, "kubevents_sink_retried_total", sink="loki") > 0
    assert total(samples, "kubevents_sink_dropped_total", sink="loki") == 0
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln]
    assert len(warnings) <= per_storm * storms, "retries must not flood the log"


def test_slow_receiver_backpressure(
    fake: FakeApiServer, tmp_path: Path, form: Form, figures: Figures
) -> None:
    """Each export takes 0.3 s: the receiver takes ~65 records/s while Events arrive faster.
    The queue fills (visible on /metrics), the watch waits, nothing is dropped or lost."""
    port = free_port()
    queue_size, batch = 100, 20
    with OtlpReceiver(delay=0.3) as receiver:
        cfg = config(
            fake,
            tmp_path,
            "solo",
            sinks=[f"otlp:http://{receiver.grpc_endpoint}"],
            delivery={"queue_size": queue_size, "batch_size": batch},
            metrics_port=port,
        )
        started = time.monotonic()
        peak = 0.0
        with running(cfg):
            with Traffic(fake, rate=min(form.rate, 150)):
                wait_until(lambda: k8s_records(receiver) > 0, 30, "a first delivery")
                begin = time.monotonic()
                full_since = None
                while time.monotonic() < begin + form.traffic_s:
                    s = scrape(port)
                    size = sample(s, "kubevents_sink_queue_size", sink="otlp")
                    peak = max(peak, size)
                    if size >= 0.8 * queue_size:
                        full_since = full_since or time.monotonic()
                        if form.name == "short" and time.monotonic() - full_since > 0.5:
                            break  # seen: the short form need not pile up more to drain
                    time.sleep(0.1)
                capacity = sample(s, "kubevents_sink_queue_capacity", sink="otlp")
            want = expected(fake)
            wait_until(
                lambda: not lost(want, coverage_otlp(receiver)),
                60 + 10 * form.traffic_s,
                "the slow receiver to get everything",
            )
            samples = scrape(port)
        figures.seconds = round(time.monotonic() - started, 1)
        missing = figures.account(want, coverage_otlp(receiver))
    figures.notes.update(
        queue_capacity=capacity,
        peak_queue_size=peak,
        dropped=total(samples, "kubevents_sink_dropped_total", sink="otlp"),
    )
    assert not missing
    assert figures.duplicated == 0
    assert capacity == queue_size
    assert peak >= 0.8 * queue_size, f"backpressure not visible: peak queue {peak}"
    assert total(samples, "kubevents_sink_dropped_total", sink="otlp") == 0
