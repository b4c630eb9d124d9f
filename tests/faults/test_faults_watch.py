"""Faults on the API side, against the real `kubevents run` process and the fake apiserver:
watch streams cut every N events, 410 storms, the API server down, malformed and oversized
Events in the stream.

Promise (README "Restarts without loss or repeats", docs/sinks.md): within one process,
every occurrence the API server holds is exported once: watch drops, relists and outages
neither lose nor repeat anything. So every scenario here asserts 0 lost and 0 duplicated.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.apiserver import ExpiredWatch, FakeApiServer
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.faults.conftest import Form
from tests.faults.support import (
    Figures,
    TcpProxy,
    Traffic,
    config,
    corrupt_watch_lines,
    coverage_jsonl,
    coverage_otlp,
    expected,
    free_port,
    jsonl_records,
    lost,
    running,
    scrape,
    write_proxy_kubeconfig,
)
from tests.support.scraping import sample, total
from tests.support.waiting import wait_until


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(bookmark_interval=0.1, timeout_scale=0.2) as server:
        yield server


def converge_jsonl(fake: FakeApiServer, out: Path, timeout: float) -> dict[str, int]:
    want = expected(fake)
    wait_until(
        lambda: not lost(want, coverage_jsonl(jsonl_records(out))),
        timeout,
        "every occurrence in the jsonl output",
    )
    return want


def watch_requests(fake: FakeApiServer) -> tuple[int, int]:
    """(lists, watches) of Events the fake answered."""
    lists = watches = 0
    for r in fake.requests:
        if r.path.endswith("/events"):
            if r.watch:
                watches += 1
            else:
                lists += 1
    return lists, watches


def test_watch_dropped_every_n_events(
    fake: FakeApiServer, tmp_path: Path, form: Form, figures: Figures
) -> None:
    every = 25
    fake.faults.cut_stream(after_events=every, mid_line=True, times=None)
    out = tmp_path / "out.jsonl"
    cfg = config(fake, tmp_path, "solo", sinks=[f"jsonl:{out}"])
    traffic = Traffic(fake, rate=form.rate)
    started = time.monotonic()
    with running(cfg):
        wait_until(lambda: len(jsonl_records(out)) >= 5, 30, "the first list exported")
        with traffic:  # from here on, through the watch
            time.sleep(form.traffic_s)
        stopped = time.monotonic()
        want = expected(fake)
        backlog = len(lost(want, coverage_jsonl(jsonl_records(out))))
        # Generous: the catch-up is slow while the backoff escalates (see below).
        converge_jsonl(fake, out, 30 + sum(want.values()) / 20)
        catch_up_s = time.monotonic() - stopped
    figures.seconds = round(time.monotonic() - started, 1)
    missing = figures.account(want, coverage_jsonl(jsonl_records(out)))
    lists, watches = watch_requests(fake)
    drain = backlog / catch_up_s
    figures.notes.update(
        cut_every=every,
        cuts=len(fake.faults.fired),
        lists=lists,
        watches=watches,
        backlog_when_traffic_stopped=backlog,
        catch_up_s=round(catch_up_s, 1),
        catch_up_per_s=round(drain),
    )
    assert not missing
    assert figures.duplicated == 0
    assert len(fake.faults.fired) >= 3, "the stream was not cut often enough to mean anything"
    # A stream cut after it delivered is no outage: the watch retries at once instead of
    # backing off towards watch.backoff_cap_s, so the backlog drains at full speed.
    assert backlog <= 50 or drain >= 100, f"catch-up at {drain:.0f} occurrences/s"


def test_410_storms(fake: FakeApiServer, tmp_path: Path, form: Form, figures: Figures) -> None:
    """Every few hundred ms the history is compacted and watches expire (all three ways an
    apiserver says so); each storm forces relists, which must repeat nothing."""
    out = tmp_path / "out.jsonl"
    cfg = config(fake, tmp_path, "solo", sinks=[f"jsonl:{out}"])
    modes = [ExpiredWatch.ERROR_EVENT, ExpiredWatch.HTTP_410, ExpiredWatch.EMPTY_200]
    storms = 0
    stop = threading.Event()

    def storm() -> None:
        nonlocal storms
        while not stop.wait(0.3):
            fake.expired_watch = modes[storms % len(modes)]
            fake.faults.expire(after_events=3, times=3)
            fake.compact(fake.store.resource_version)
            storms += 1

    traffic = Traffic(fake, rate=form.rate)
    started = time.monotonic()
    with running(cfg):
        wait_until(lambda: len(jsonl_records(out)) >= 5, 30, "the first list exported")
        storm_thread = threading.Thread(target=storm, daemon=True)
        with traffic:
            storm_thread.start()
            time.sleep(form.traffic_s)
            stop.set()
            storm_thread.join()
        want = converge_jsonl(fake, out, 30)
    figures.seconds = round(time.monotonic() - started, 1)
    missing = figures.account(want, coverage_jsonl(jsonl_records(out)))
    lists, watches = watch_requests(fake)
    figures.notes.update(storms=storms, lists=lists, watches=watches)
    assert not missing
    assert figures.duplicated == 0
    assert lists >= 3, "the storms did not force relists"


def test_apiserver_down(fake: FakeApiServer, tmp_path: Path, form: Form, figures: Figures) -> None:
    """Connections refused (and open watches reset) for the outage, while Events keep being
    written to the store; after it, everything is exported once."""
    out = tmp_path / "out.jsonl"
    with TcpProxy(fake.port) as proxy:
        kubeconfig = write_proxy_kubeconfig(fake, proxy, tmp_path / "kubeconfig")
        port = free_port()
        cfg = config(
            fake,
            tmp_path,
            "solo",
            sinks=[f"jsonl:{out}"],
            kubeconfig=kubeconfig,
            metrics_port=port,
        )
        started = time.monotonic()
        with running(cfg) as kv, Traffic(fake, rate=form.rate / 3):
            wait_until(lambda: bool(jsonl_records(out)), 30, "a first record")
            proxy.down()
            outage = time.monotonic()
            # Visible on /metrics: the watch loop is down while the API server is.
            wait_until(
                lambda: total(scrape(port), "kubevents_watch_streams", state="down") == 1,
                max(form.apiserver_down_s - 0.5, 1.0),
                "kubevents_watch_streams{state=down} during the outage",
            )
            time.sleep(max(form.apiserver_down_s - (time.monotonic() - outage), 0))
            during = len(jsonl_records(out))
            proxy.up()
            back = time.monotonic()
            time.sleep(1.0)
            want = converge_jsonl(fake, out, 30 + form.apiserver_down_s)
            recovered_s = time.monotonic() - back
            log = kv.log()
    figures.seconds = round(time.monotonic() - started, 1)
    missing = figures.account(want, coverage_jsonl(jsonl_records(out)))
    figures.notes.update(
        down_s=form.apiserver_down_s,
        catch_up_s=round(recovered_s, 2),
        records_at_end_of_outage=during,
    )
    assert not missing
    assert figures.duplicated == 0
    # Retried quietly: one WARNING line per distinct failure, not one per attempt.
    assert "Traceback" not in log
    # A persistent failure is logged once, then at DEBUG while it repeats (watching.py):
    # the cut, then "cannot reach the API server", whatever the length of the outage.
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln and "watch" in ln]
    figures.notes["warning_lines"] = len(warnings)
    assert len(warnings) <= 3, warnings


def test_malformed_and_oversized_events_mixed_in(
    fake: FakeApiServer,
    tmp_path: Path,
    form: Form,
    figures: Figures,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """About 1% of the watch lines are malformed (torn JSON, wrong types, not an Event, not
    UTF-8), about 1% of the Events carry a 1 MiB message, and the poisoned Events have
    wrong-typed fields. Malformed lines are counted and logged on one line each; the stream
    goes on; every Event is exported (oversized ones truncated, and counted, by the OTLP sink)."""
    corruption = corrupt_watch_lines(monkeypatch)
    big = "x" * (1024 * 1024 - 20) + " ünïcødé\x00\x1b[0m"

    def decorate(index: int, event: dict[str, Any]) -> dict[str, Any]:
        if index % 20 == 3:  # creations are 1 op in 5: 1% of the stream
            event["metadata"]["name"] = "poison-" + event["metadata"]["name"]
            event["reason"] = 42  # wrong types: coerced, not fatal
            event["involvedObject"]["name"] = ["not", "a", "string"]
            event["source"] = "kubelet"
        elif index % 20 == 13:
            event["metadata"]["name"] = "big-" + event["metadata"]["name"]
            event["message"] = big
        return event

    out = tmp_path / "out.jsonl"
    port = free_port()
    with OtlpReceiver() as receiver:
        cfg = config(
            fake,
            tmp_path,
            "solo",
            sinks=[f"jsonl:{out}", f"otlp:http://{receiver.grpc_endpoint}"],
            metrics_port=port,
        )
        started = time.monotonic()
        traffic = Traffic(fake, rate=form.rate, decorate=decorate)
        with running(cfg) as kv:
            wait_until(lambda: len(jsonl_records(out)) >= 5, 30, "the first list exported")
            with traffic:  # the poisoned Events come through the watch, not the first list
                time.sleep(form.traffic_s)
            want = converge_jsonl(fake, out, 30)
            wait_until(lambda: not lost(want, coverage_otlp(receiver)), 30, "OTLP delivery")
            samples = scrape(port)
            log = kv.log()
        figures.seconds = round(time.monotonic() - started, 1)
        missing = figures.account(want, coverage_otlp(receiver))
        jsonl_missing = lost(want, coverage_jsonl(jsonl_records(out)))
        otlp_big = [
            log_
            for log_ in receiver.records()
            if log_.attributes.get("kubevents.truncated") is True
        ]
    recs = jsonl_records(out)
    oversized = sum(1 for r in recs if len(r["body"]) > 1024 * 1024 - 100)
    bad_lines = [
        ln for ln in log.splitlines() if re.search(r"skipped malformed line|skipped object", ln)
    ]
    figures.notes.update(
        malformed_lines=corruption.injected,
        reported_lines=len(bad_lines),
        oversized_records=oversized,
        truncated_metric=sample(samples, "kubevents_sink_truncated_total", sink="otlp"),
    )
    assert not missing and not jsonl_missing
    assert figures.duplicated == 0
    assert corruption.injected >= 2 and oversized >= 1
    # Each malformed line: counted once, reported on one line, nothing else went wrong.
    assert len(bad_lines) == corruption.injected, "\n".join(bad_lines)
    assert all(len(ln) < 400 for ln in bad_lines)
    assert "Traceback" not in log
    assert sample(samples, "kubevents_sink_truncated_total", sink="otlp") == len(otlp_big)
    assert len(otlp_big) >= oversized
    assert all(len(x.body.encode()) <= 16384 for x in otlp_big), (
        "an oversized body was not cut to delivery.max_body_bytes"
    )
