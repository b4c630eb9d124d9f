"""The metrics layer: instruments read plain counters; /metrics, /healthz, /readyz; OTLP push."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest
import requests

from kubevents import conventions
from kubevents.conventions import MetricLabel, metric_label
from kubevents.errors import ConfigError
from kubevents.records import ResourceInfo
from kubevents.settings import Settings
from kubevents.sinks.base import DeliverySnapshot, InMemorySink
from kubevents.sinks.transport import RequestReport
from kubevents.telemetry.metrics import Telemetry, start_metrics
from kubevents.telemetry.plan import MetricsPlan, OtlpTarget, metrics_plan
from kubevents.telemetry.server import MetricsServer, Probes
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.support.scraping import parse as samples

RESOURCE = ResourceInfo(service_version="1.2.3", instance_id="kv-0", cluster_name="c1")


class Counts:
    """Stands for telemetry.counting.EventCounts (the metrics layer only reads these)."""

    def __init__(self) -> None:
        self.series: list[tuple[dict[str, str], int]] = []
        self.value_overflows = 0
        self.series_overflows = 0

    def snapshot(self) -> list[tuple[dict[str, str], int]]:
        return list(self.series)

    def unclassified_snapshot(self) -> list[tuple[dict[str, str], int]]:
        return []


@dataclasses.dataclass
class Stats:
    received: int = 0
    records: int = 0
    occurrences: int = 0
    unchanged: int = 0
    deleted: int = 0


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    t = Telemetry(RESOURCE)
    yield t
    t.shutdown()


@pytest.fixture
def server(telemetry: Telemetry) -> Iterator[MetricsServer]:
    s = MetricsServer(telemetry.exposition, host="127.0.0.1", port=0, probes=Probes())
    yield s
    s.close()


def test_counters_are_read_at_collection_time(telemetry: Telemetry) -> None:
    counts, stats = Counts(), Stats()
    telemetry.observe_events(lambda: counts)
    telemetry.observe_pipeline(lambda: stats)
    labels = {
        "k8s_namespace_name": "shop",
        "k8s_object_kind": "Pod",
        "k8s_event_reason": "BackOff",
        "k8s_event_type": "Warning",
        "kubevents_category": "Image",
        "kubevents_severity": "error",
    }
    counts.series = [(labels, 3)]
    stats.received, stats.unchanged, stats.records = 5, 1, 6
    first = samples(telemetry.exposition()[0].decode())
    counts.series = [(labels, 7)]
    stats.received = 9
    second = samples(telemetry.exposition()[0].decode())
    key = ("kubevents_events_total", tuple(sorted(labels.items())))
    assert (first[key], second[key]) == (3.0, 7.0)
    assert second[("kubevents_pipeline_updates_total", (("result", "emitted"),))] == 8.0
    assert second[("kubevents_pipeline_records_total", ())] == 6.0
    assert second[("kubevents_build_info", (("version", telemetry_version()),))] == 1.0


def telemetry_version() -> str:
    from kubevents import __version__

    return __version__


class ReportingSink(InMemorySink):
    """A sink that is no DeliverySink but reports on its delivery (an ObservableSink)."""

    name = "reporting"

    def __init__(self) -> None:
        super().__init__()
        self.on_request: Callable[[RequestReport], None] | None = None
        self.current = DeliverySnapshot(
            exported=4,
            bytes_sent=900,
            truncated=1,
            failed={"unavailable": 2},
            retried={"unavailable": 2},
            dropped={"queue_full": 3, "rejected": 1},
            queue_size=5,
            queue_capacity=None,
            spool_bytes=4096,
            spool_capacity=1 << 20,
        )

    def snapshot(self) -> DeliverySnapshot:
        return self.current


def test_sinks_are_observed_through_their_snapshot(telemetry: Telemetry) -> None:
    reporting, plain = ReportingSink(), InMemorySink()
    telemetry.observe_sinks([plain, reporting])
    assert reporting.on_request is not None
    reporting.on_request(RequestReport(records=4, bytes=900, seconds=0.02, result="success"))
    got = samples(telemetry.exposition()[0].decode())
    sink = (("sink", "reporting"),)
    by_sink = {name: value for (name, labels), value in got.items() if labels == sink}
    assert by_sink == {
        "kubevents_sink_exported_total": 4.0,
        "kubevents_sink_sent_bytes_total": 900.0,
        "kubevents_sink_truncated_total": 1.0,
        "kubevents_sink_queue_size": 5.0,
        "kubevents_sink_spool_size_bytes": 4096.0,
        "kubevents_sink_spool_capacity_bytes": float(1 << 20),
        "kubevents_sink_batch_size_count": 1.0,
        "kubevents_sink_batch_size_sum": 4.0,
    }
    assert got[("kubevents_sink_dropped_total", (("reason", "queue_full"), *sink))] == 3.0
    assert got[("kubevents_sink_failed_total", (("reason", "unavailable"), *sink))] == 2.0
    assert not any(("sink", "memory") in labels for _, labels in got)
    reporting.current = dataclasses.replace(reporting.current, exported=9, queue_size=0)
    again = samples(telemetry.exposition()[0].decode())
    assert again[("kubevents_sink_exported_total", sink)] == 9.0
    assert again[("kubevents_sink_queue_size", sink)] == 0.0


def test_no_pipeline_yet_means_no_series(telemetry: Telemetry) -> None:
    telemetry.observe_pipeline(lambda: None)
    telemetry.observe_events(lambda: None)
    names = {name for name, _ in samples(telemetry.exposition()[0].decode())}
    assert "kubevents_pipeline_records_total" not in names
    assert "kubevents_events_total" not in names


def test_target_info_carries_the_resource(telemetry: Telemetry) -> None:
    got = samples(telemetry.exposition()[0].decode())
    info = [labels for name, labels in got if name == "target_info"]
    assert dict(info[0]) == {
        "service_name": "kubevents",
        "service_version": "1.2.3",
        "service_instance_id": "kv-0",
        "k8s_cluster_name": "c1",
    }


def test_the_endpoint_serves_metrics_and_probes(server: MetricsServer) -> None:
    answer = requests.get(f"{server.url}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain")
    assert "kubevents_build_info" in answer.text
    openmetrics = requests.get(
        f"{server.url}/metrics", headers={"Accept": "application/openmetrics-text"}, timeout=5
    )
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert requests.get(f"{server.url}/healthz", timeout=5).text == "ok\n"
    server.probes.ready = lambda: (False, "watch not started")
    ready = requests.get(f"{server.url}/readyz", timeout=5)
    assert (ready.status_code, ready.text) == (503, "watch not started\n")
    missing = requests.get(f"{server.url}/nope", timeout=5)
    assert missing.status_code == 404 and "/metrics" in missing.text


@pytest.mark.parametrize("host", ["127.0.0.1", ""])
def test_close_ends_the_wait_for_a_request_and_frees_the_port(
    telemetry: Telemetry, host: str
) -> None:
    """The server's thread waits for a request without a timeout; close() ends that wait
    (bound to every address too) rather than a poll interval running out."""
    server = MetricsServer(telemetry.exposition, host=host, port=0, probes=Probes())
    assert requests.get(f"{server.url}/healthz", timeout=5).text == "ok\n"
    server.close()
    assert not server._thread.is_alive()
    # The port is free: nothing listens there any more. SO_REUSEADDR lets the bind pass a
    # connection of the probe above still in TIME_WAIT, never a socket that listens.
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", server.port))


def test_a_failing_callback_leaves_only_its_own_series_out(
    telemetry: Telemetry, server: MetricsServer
) -> None:
    def broken() -> Counts:
        raise RuntimeError("boom")

    telemetry.observe_events(broken)  # type: ignore[arg-type]
    answer = requests.get(f"{server.url}/metrics", timeout=5)
    # The SDK logs the failing callback and leaves its series out; the rest is served.
    assert answer.status_code == 200
    assert "kubevents_build_info" in answer.text
    assert "kubevents_events_total" not in answer.text


def test_nothing_starts_when_nothing_wants_metrics() -> None:
    assert metrics_plan(Settings(), port=None) is None
    # metrics.otlp is on by default, but there is no OTLP sink to push to.
    assert (
        metrics_plan(replace(Settings(), sinks=("console", "loki:http://l:3100")), port=None)
        is None
    )
    assert metrics_plan(Settings(), port=0) == MetricsPlan(port=0, otlp=None)


@pytest.mark.parametrize(
    ("sinks", "otlp", "target"),
    [
        (
            ("console", "otlp:collector:4317", "otlp+http"),
            True,
            OtlpTarget("grpc", "collector:4317"),
        ),
        (("otlp+http", "otlp:collector:4317"), True, OtlpTarget("http", None)),
        (("otlp:collector:4317",), False, None),
    ],
)
def test_metrics_are_pushed_to_the_first_otlp_sink_when_wanted(
    sinks: tuple[str, ...], otlp: bool, target: OtlpTarget | None
) -> None:
    settings = replace(Settings(), sinks=sinks, metrics=replace(Settings().metrics, otlp=otlp))
    plan = metrics_plan(settings, port=9090)
    assert plan == MetricsPlan(port=9090, otlp=target)


def test_a_busy_port_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = dataclasses.replace(
            Settings(), metrics=dataclasses.replace(Settings().metrics, host="127.0.0.1")
        )
        with pytest.raises(ConfigError, match="metrics -> port: cannot listen"):
            start_metrics(settings, MetricsPlan(port=port, otlp=None), RESOURCE, [])


@pytest.mark.parametrize("kind", ["otlp", "otlp+http"])
def test_metrics_are_pushed_over_otlp_to_the_first_otlp_sink(
    otlp_receiver: OtlpReceiver, kind: str
) -> None:
    endpoint = f"http://{otlp_receiver.grpc_endpoint}" if kind == "otlp" else otlp_receiver.http_url
    settings = dataclasses.replace(Settings(), sinks=("console", f"{kind}:{endpoint}"))
    plan = metrics_plan(settings, port=None)
    assert plan is not None
    runtime = start_metrics(settings, plan, RESOURCE, [])
    assert runtime is not None and runtime.server is None
    runtime.close()  # the final collection is pushed
    metrics = otlp_receiver.metrics()
    assert "kubevents.build_info" in {m.metric.name for m in metrics}
    assert metrics[0].resource["service.name"] == "kubevents"


@pytest.mark.parametrize(
    ("label", "attribute"),
    [
        (MetricLabel.NAMESPACE, conventions.K8S_NAMESPACE_NAME),
        (MetricLabel.KIND, conventions.OBJECT_KIND),
        (MetricLabel.EVENT_REASON, conventions.EVENT_REASON),
        (MetricLabel.REPORTING_CONTROLLER, conventions.EVENT_REPORTING_CONTROLLER),
        (MetricLabel.CATEGORY, conventions.KV_CATEGORY),
        (MetricLabel.SEVERITY, conventions.KV_SEVERITY),
        (MetricLabel.PATTERN_RULE, conventions.KV_PATTERN_RULE),
    ],
)
def test_a_label_that_carries_an_attribute_is_named_after_it(label: str, attribute: str) -> None:
    assert label == metric_label(attribute)
