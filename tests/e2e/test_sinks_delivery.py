"""Delivery end to end: a backend down then back loses nothing; a full queue follows its
policy and the metrics say so; a restart with a spool sends again what was not acknowledged.

Each test runs the replay command's own function in a thread with ``/metrics`` on a
free port, takes the backend (the fake OTLP receiver or the fake Loki) down and up,
and compares what arrived with the jsonl output of the same run.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from kubevents.cli import main
from tests.e2e.sinks_support import ReplayThread, ns_of, read_jsonl, settings_for
from tests.fakes.loki_receiver import FakeLoki
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.support.scraping import sample, scrape
from tests.support.waiting import wait_until

SMALL = Path(__file__).resolve().parents[1] / "data" / "formats" / "watch.jsonl"


@pytest.fixture(scope="module")
def demo_now_ns(jsonl_demo_records: list[dict[str, Any]]) -> int:
    """Loki refuses entries older than a week: the fake's clock is pinned a minute
    after the demo recording's last Event, whenever the tests run."""
    return max(ns_of(r["timestamp"]) for r in jsonl_demo_records) + 60 * 1_000_000_000


def keys_jsonl(records: list[dict[str, Any]]) -> Counter[tuple[str, str, str]]:
    """Identity of a record within and across runs: uid, observed time, event name."""
    return Counter(
        (r["attributes"].get("k8s.event.uid", r["body"]), r["observed_timestamp"], r["event_name"])
        for r in records
    )


def keys_otlp(receiver: OtlpReceiver) -> Counter[tuple[str, str, str]]:
    from kubevents.records import format_rfc3339

    return Counter(
        (
            log.attributes.get("k8s.event.uid", log.body),
            format_rfc3339(log.record.observed_time_unix_nano),
            log.record.event_name,
        )
        for log in receiver.records()
    )


def test_otlp_down_then_back_loses_nothing_and_blocks_meanwhile(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    with OtlpReceiver() as receiver:
        receiver.down()
        settings = settings_for(
            [f"jsonl:{out}", f"otlp:http://{receiver.grpc_endpoint}"],
            **{"delivery.queue_size": 100, "metrics.host": "127.0.0.1", "metrics.otlp": False},
        )
        run = ReplayThread(settings, metrics=True)

        def blocked() -> bool:
            samples = scrape(run.metrics_url)
            return (
                sample(samples, "kubevents_sink_failed_total", sink="otlp", reason="unavailable")
                > 0
                and sample(samples, "kubevents_sink_queue_size", sink="otlp") == 100
            )

        wait_until(blocked, what="a full queue while the receiver is down")
        assert run.thread.is_alive()  # block: the replay waits for room
        receiver.up()
        wait_until(lambda: not run.thread.is_alive(), what="the replay to finish")
        assert run.join() == 0
        records = read_jsonl(out)
        assert keys_otlp(receiver) == keys_jsonl(records)  # each record once, none lost


@pytest.mark.parametrize("spool", [False, True])
def test_loki_down_then_back_loses_nothing(tmp_path: Path, spool: bool, demo_now_ns: int) -> None:
    out = tmp_path / "records.jsonl"
    extra = {"delivery.spool_dir": str(tmp_path / "spool")} if spool else {}
    with FakeLoki(now_ns=lambda: demo_now_ns) as loki:
        loki.down()
        settings = settings_for(
            [f"jsonl:{out}", f"loki:{loki.url}"],
            **{"delivery.queue_size": 64, "metrics.host": "127.0.0.1", **extra},
        )
        run = ReplayThread(settings, metrics=True)
        wait_until(
            lambda: (
                sample(
                    scrape(run.metrics_url),
                    "kubevents_sink_retried_total",
                    sink="loki",
                    reason="connection",
                )
                >= 64
            ),
            what="retries while Loki is down",
        )
        loki.up()
        samples_before_end = scrape(run.metrics_url)
        assert run.join() == 0
        records = read_jsonl(out)
        assert len(loki.entries()) == len(records)
        assert sum(p.duplicates for p in loki.pushes) == 0
        assert (
            sample(
                samples_before_end, "kubevents_sink_dropped_total", sink="loki", reason="queue_full"
            )
            == 0
        )


def test_drop_oldest_drops_and_counts_when_the_queue_is_full(
    tmp_path: Path, jsonl_demo_records: list[dict[str, Any]]
) -> None:
    out = tmp_path / "records.jsonl"
    with OtlpReceiver() as receiver:
        receiver.down()
        settings = settings_for(
            [f"jsonl:{out}", f"otlp+http:{receiver.http_url}"],
            **{
                "delivery.queue_size": 50,
                "delivery.queue_full": "drop_oldest",
                "metrics.host": "127.0.0.1",
                "metrics.otlp": False,
                "replay.hold_s": 60.0,
            },
        )
        run = ReplayThread(settings, metrics=True)

        def all_exported() -> bool:
            samples = scrape(run.metrics_url)
            return (
                sample(samples, "kubevents_pipeline_records_total") == len(jsonl_demo_records)
                and sample(samples, "kubevents_sink_queue_size", sink="otlp+http") == 50
            )

        wait_until(all_exported, what="the replay to hand over every record")
        receiver.up()
        wait_until(
            lambda: (
                sample(scrape(run.metrics_url), "kubevents_sink_queue_size", sink="otlp+http") == 0
            ),
            what="the queue to drain",
        )
        samples = scrape(run.metrics_url)
        assert run.join() == 1  # records were dropped: the replay says so
        records = read_jsonl(out)
        total = len(records)
        delivered = keys_otlp(receiver)
        dropped = sample(
            samples, "kubevents_sink_dropped_total", sink="otlp+http", reason="queue_full"
        )
        assert sum(delivered.values()) == 50  # what the queue held when the receiver came back
        assert dropped == total - 50
        assert sample(samples, "kubevents_sink_exported_total", sink="otlp+http") == 50
        # The oldest were dropped: what arrived is the last 50 records handed over.
        assert delivered == keys_jsonl(records[-50:])


def test_restart_with_a_spool_sends_what_was_not_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "spool"
    with OtlpReceiver() as receiver:

        def run(out: Path, path: Path) -> int:
            return main(
                [
                    "replay",
                    str(path),
                    "--no-summary",
                    "--sink",
                    f"jsonl:{out}",
                    "--sink",
                    f"otlp:http://{receiver.grpc_endpoint}",
                    "--spool",
                    str(spool),
                ]
            )

        # 1: delivered and acknowledged; 2: the receiver is down, records stay in the spool.
        assert run(tmp_path / "1.jsonl", SMALL) == 0
        delivered_first = len(receiver.records())
        receiver.down()
        with monkeypatch.context() as m:
            m.setenv("KUBEVENTS_DELIVERY_FLUSH_TIMEOUT_S", "0.5")  # do not wait long at exit
            assert run(tmp_path / "2.jsonl", SMALL) == 0
        assert list((spool / "otlp").glob("*.seg"))
        # 3: back up; the restart sends run 2's records (not run 1's again), then its own.
        receiver.up()
        assert run(tmp_path / "3.jsonl", SMALL) == 0
        expected = sum(
            (keys_jsonl(read_jsonl(tmp_path / f"{i}.jsonl")) for i in (1, 2, 3)), Counter()
        )
        assert delivered_first == sum(keys_jsonl(read_jsonl(tmp_path / "1.jsonl")).values())
        assert keys_otlp(receiver) == expected
