"""docs/metrics.md is the contract: a real /metrics scrape after a replay must match it exactly.

The replay sends to two sinks chosen to make every documented metric appear:
OTLP/gRPC with one UNAVAILABLE answer (failed, retried) and OTLP/HTTP with a
spool and one partial success (dropped, spool gauges). Every metric scraped
must be documented with exactly its labels and type, and every documented
metric must be scraped.
"""

from __future__ import annotations

import re
from pathlib import Path

import grpc
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kubevents import conventions as c
from tests.e2e.sinks_support import ReplayThread, settings_for
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.support.scraping import sample, scrape
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| `([a-z0-9_]+)` \| (counter|gauge|histogram) \|[^|]*\|([^|]*)\| (stable|experimental) \|",
    re.MULTILINE,
)


def documented() -> dict[str, tuple[str, frozenset[str]]]:
    """Prometheus name -> (type, label names), from the tables of docs/metrics.md."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    return {
        m.group(1): (m.group(2), frozenset(re.findall(r"`([a-z0-9_]+)`", m.group(3))))
        for m in ROW.finditer(text)
    }


def scraped(url: str) -> dict[str, tuple[str, frozenset[str]]]:
    """Prometheus name -> (type, label names) of a real scrape."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    out: dict[str, tuple[str, set[str]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = family.name if family.type == "histogram" else s.name
            if family.type == "info":  # target_info is exposed as a gauge named *_info
                name, kind = s.name, "gauge"
            else:
                kind = family.type
            labels = out.setdefault(name, (kind, set()))[1]
            labels.update(k for k in s.labels if k != "le")
    return {name: (kind, frozenset(labels)) for name, (kind, labels) in out.items()}


@pytest.fixture(scope="module")
def metrics_after_replay(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[str, frozenset[str]]]:
    tmp = tmp_path_factory.mktemp("metrics")
    with OtlpReceiver() as receiver:
        receiver.faults.fail(grpc.StatusCode.UNAVAILABLE, retry_after=0.01, transport="grpc")
        receiver.faults.partial_success(rejected=3, message="3 too big", transport="http")
        settings = settings_for(
            [f"otlp:http://{receiver.grpc_endpoint}", f"otlp+http:{receiver.http_url}"],
            **{
                "metrics.host": "127.0.0.1",
                "metrics.otlp": False,
                "replay.hold_s": 60.0,
                "delivery.spool_dir": str(tmp / "spool"),
            },
        )
        run = ReplayThread(settings, metrics=True)
        wait_until(
            lambda: (
                sample(scrape(run.metrics_url), "kubevents_sink_exported_total", sink="otlp+http")
                > 500
            ),
            what="the replay to be delivered",
        )
        result = scraped(run.metrics_url)
        run.join()
    # A sink without a spool reports its queue capacity: scrape a second, memory-only run.
    with OtlpReceiver() as receiver:
        settings = settings_for(
            [f"otlp:http://{receiver.grpc_endpoint}"],
            **{"metrics.host": "127.0.0.1", "metrics.otlp": False, "replay.hold_s": 60.0},
        )
        run = ReplayThread(settings, metrics=True)
        wait_until(
            lambda: (
                sample(scrape(run.metrics_url), "kubevents_sink_exported_total", sink="otlp") > 500
            ),
            what="the second replay to be delivered",
        )
        for name, value in scraped(run.metrics_url).items():
            result.setdefault(name, value)
        run.join()
    return result


def test_every_scraped_metric_is_documented_with_its_labels(metrics_after_replay: dict) -> None:  # type: ignore[type-arg]
    docs = documented()
    undocumented = sorted(set(metrics_after_replay) - set(docs))
    assert undocumented == [], "scraped but not in docs/metrics.md"
    wrong = {
        name: (got, docs[name]) for name, got in metrics_after_replay.items() if got != docs[name]
    }
    assert wrong == {}, "type or labels differ from docs/metrics.md"


RUN_ONLY = "\n## Watch"
"""The section of docs/metrics.md that only `kubevents run` produces (test_run_metrics.py)."""
ONLY_WHILE_ANOMALOUS = {"kubevents_anomaly_score"}
"""Series exist only while a series is anomalous: tests/unit/telemetry/test_state.py."""


def run_only() -> set[str]:
    text = (ROOT / "docs" / "metrics.md").read_text()
    section = text.split(RUN_ONLY, 1)[1].split("\n## ", 1)[0]
    return {name for name in documented() if f"`{name}`" in section}


def test_every_documented_metric_is_produced_by_the_replay(metrics_after_replay: dict) -> None:  # type: ignore[type-arg]
    expected = set(documented()) - run_only() - ONLY_WHILE_ANOMALOUS
    assert run_only(), "docs/metrics.md has no Watch section"
    missing = sorted(expected - set(metrics_after_replay))
    assert missing == []


def test_documented_names_are_the_declared_instruments() -> None:
    declared = {
        value.replace(".", "_")
        for key, value in vars(c.MetricName).items()
        if key.isupper() and isinstance(value, str)
    }
    docs = set(documented()) - {"target_info"}
    unmatched = sorted(name for name in docs if not any(name.startswith(d) for d in declared))
    assert unmatched == []
    assert len(docs) == len(declared)
