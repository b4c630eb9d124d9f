"""kubevents' metrics encoder against the SDK's own (``encode_metrics``), on the same MetricsData.

Each case collects real instruments of a real MeterProvider (or, for what the
instruments kubevents uses cannot produce, a MetricsData built by hand), then
compares what ``encode_metrics_bytes`` wrote, decoded with the official
opentelemetry-proto classes, with what the SDK's encoder built: field by field
(the decoded messages as dicts, so a difference names its field), then byte
for byte.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import CallbackOptions, Meter, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.metrics import Exemplar, MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from kubevents.records import ResourceInfo
from kubevents.sinks.base import DeliverySnapshot, InMemorySink
from kubevents.sinks.transport import RequestReport
from kubevents.telemetry.metrics import Telemetry
from kubevents.telemetry.otlp_metrics import CUMULATIVE
from kubevents.telemetry.otlp_metrics_encode import MetricsEncodeError, encode_metrics_bytes

RESOURCE = Resource(
    {
        "service.name": "kubevents",
        "service.instance.id": "kv-0",
        "process.pid": 4242,
        "host.cpu.share": 0.25,
        "k8s.cluster.leader": True,
        "k8s.namespaces": ("shop", "payments"),
        "kubevents.ports": (4317, 4318),
    },
    schema_url="https://opentelemetry.io/schemas/1.26.0",
)


def observe(
    *points: tuple[float, dict[str, str]],
) -> Callable[[CallbackOptions], list[Observation]]:
    return lambda _: [Observation(value, attributes) for value, attributes in points]


def collected(
    instruments: Callable[[Meter], None], *, resource: Resource = RESOURCE
) -> MetricsData:
    """What a cumulative reader collects from the instruments ``instruments`` creates."""
    reader = InMemoryMetricReader(preferred_temporality=dict(CUMULATIVE))
    provider = MeterProvider(metric_readers=[reader], resource=resource, shutdown_on_exit=False)
    meter = provider.get_meter(
        "kubevents", "1.2.3", schema_url="https://example.com/s", attributes={"tier": "exporter"}
    )
    instruments(meter)
    data = reader.get_metrics_data()
    provider.shutdown()
    assert data is not None
    return data


def counters(meter: Meter) -> None:
    meter.create_observable_counter(
        "kubevents.events",
        callbacks=[
            observe((3, {"k8s.namespace.name": "shop", "k8s.event.reason": "BackOff"}), (0, {}))
        ],
        unit="{event}",
        description="Event occurrences.",
    )
    meter.create_observable_counter(
        "kubevents.sink.sent", callbacks=[observe((1.5e9, {"sink": "otlp"}))], unit="By"
    )
    meter.create_observable_up_down_counter(
        "kubevents.queue.delta", callbacks=[observe((-7, {"sink": "otlp"}))]
    )


def gauges(meter: Meter) -> None:
    meter.create_observable_gauge(
        "kubevents.build_info", callbacks=[observe((1, {"version": "0.1.0"}))]
    )
    meter.create_observable_gauge(
        "kubevents.anomaly.score",
        callbacks=[observe((2.75, {"rule": "x"}), (0.0, {"rule": "y"}), (-1.25, {}))],
        unit="1",
    )


def histograms(meter: Meter) -> None:
    durations = meter.create_histogram(
        "kubevents.sink.export.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=(0.005, 0.1, 1.0, 30.0),
    )
    for value in (0.001, 0.05, 0.05, 0.7, 12.0, 45.0):
        durations.record(value, {"sink": "otlp", "result": "success"})
    durations.record(0.2, {"sink": "loki", "result": "unavailable"})
    sizes = meter.create_histogram("kubevents.sink.batch.size", unit="{record}")
    sizes.record(512, {"sink": "otlp"})
    sizes.record(3, {"sink": "otlp"})


def everything(meter: Meter) -> None:
    counters(meter)
    gauges(meter)
    histograms(meter)


def kubevents_telemetry() -> MetricsData:
    """kubevents' own instruments (Telemetry) with a sink that reports on its delivery."""

    class Reporting(InMemorySink):
        name = "otlp"

        def __init__(self) -> None:
            super().__init__()
            self.on_request: Callable[[RequestReport], None] | None = None

        def snapshot(self) -> DeliverySnapshot:
            return DeliverySnapshot(
                exported=40,
                bytes_sent=9000,
                truncated=1,
                failed={"unavailable": 2},
                retried={"unavailable": 2},
                dropped={"queue_full": 3},
                queue_size=5,
                queue_capacity=10_000,
                spool_bytes=None,
                spool_capacity=None,
            )

    reader = InMemoryMetricReader(preferred_temporality=dict(CUMULATIVE))
    telemetry = Telemetry(
        ResourceInfo(service_version="1.2.3", instance_id="kv-0", cluster_name="c1"),
        otlp_reader=reader,
    )
    sink = Reporting()
    telemetry.observe_sinks([sink])
    assert sink.on_request is not None
    sink.on_request(RequestReport(records=512, bytes=9000, seconds=0.02, result="success"))
    sink.on_request(RequestReport(records=7, bytes=300, seconds=3.5, result="unavailable"))
    data = reader.get_metrics_data()
    telemetry.shutdown()
    assert data is not None
    return data


def by_hand() -> MetricsData:
    """What kubevents' instruments do not produce: exemplars (with and without a span),
    an empty histogram, a scope without version, a point without start time, a metric
    with no data points."""
    exemplars = [
        Exemplar(
            {"trace": "a"},
            0.5,
            1_700_000_000_000_000_001,
            0x00F067AA0BA902B7,
            0x4BF92F3577B34DA6A3CE929D0E0E4736,
        ),
        Exemplar({}, 3, 1_700_000_000_000_000_002, None, None),
    ]
    metrics = [
        Metric(
            "with.exemplars",
            "",
            "s",
            Histogram(
                [
                    HistogramDataPoint(
                        {"a": "b"}, 1, 2, 2, 3.5, [1, 1], [1.0], 0.5, 3.0, exemplars
                    ),
                    HistogramDataPoint(
                        {}, 0, 2, 0, 0.0, [0, 0, 0], [1.0, 2.0], float("inf"), float("-inf"), []
                    ),
                ],
                AggregationTemporality.CUMULATIVE,
            ),
        ),
        Metric(
            "sum.points",
            "no start",
            "",
            Sum(
                [
                    NumberDataPoint({"n": "1"}, 0, 5, -(2**63), exemplars),
                    NumberDataPoint({}, 4, 5, 2**63 - 1),
                ],
                AggregationTemporality.DELTA,
                False,
            ),
        ),
        Metric("gauge.empty", "", "", Gauge([])),
        Metric("sum.empty", "", "", Sum([], AggregationTemporality.CUMULATIVE, True)),
    ]
    scopes = [
        ScopeMetrics(InstrumentationScope("plain"), metrics, ""),
        ScopeMetrics(InstrumentationScope("", "2"), metrics[:1], ""),
    ]
    return MetricsData(
        [
            ResourceMetrics(RESOURCE, scopes, ""),
            ResourceMetrics(Resource({}), [], ""),
        ]
    )


CASES: dict[str, Callable[[], MetricsData]] = {
    "sums: int, double, monotonic or not": lambda: collected(counters),
    "gauges: int, double, no attributes": lambda: collected(gauges),
    "histograms: advisory and default buckets, min/max/sum/count": lambda: collected(histograms),
    "all kinds together, resource of every attribute type": lambda: collected(everything),
    "an empty resource": lambda: collected(everything, resource=Resource({})),
    "kubevents' own instruments": kubevents_telemetry,
    "exemplars, empty points and scopes, extreme ints (by hand)": by_hand,
}


def as_dict(message: Any) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_the_request_is_the_one_the_sdk_encoder_builds(make: Callable[[], MetricsData]) -> None:
    data = make()
    expected = encode_metrics(data)
    got = ExportMetricsServiceRequest.FromString(encode_metrics_bytes(data))
    assert got.resource_metrics, "nothing was encoded"
    for ours, sdk in zip(got.resource_metrics, expected.resource_metrics, strict=True):
        assert as_dict(ours.resource) == as_dict(sdk.resource)
        assert ours.schema_url == sdk.schema_url
        for our_scope, sdk_scope in zip(ours.scope_metrics, sdk.scope_metrics, strict=True):
            assert as_dict(our_scope.scope) == as_dict(sdk_scope.scope)
            assert our_scope.schema_url == sdk_scope.schema_url
            for our_metric, sdk_metric in zip(our_scope.metrics, sdk_scope.metrics, strict=True):
                assert as_dict(our_metric) == as_dict(sdk_metric), sdk_metric.name
    assert got == expected
    assert encode_metrics_bytes(data) == expected.SerializeToString()


def test_the_cases_cover_every_kind_and_value_type() -> None:
    seen: set[str] = set()
    for make in CASES.values():
        for rm in encode_metrics(make()).resource_metrics:
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    seen.add(str(kind))
                    points = getattr(metric, kind).data_points if kind else []
                    seen.update(str(p.WhichOneof("value")) for p in points if kind != "histogram")
                    seen.update("exemplar" for p in points if p.exemplars)
    assert seen >= {"sum", "gauge", "histogram", "as_int", "as_double", "exemplar", "None"}


def test_a_value_the_wire_cannot_carry_names_its_metric() -> None:
    data = collected(
        lambda meter: meter.create_observable_counter(
            "kubevents.too.big", callbacks=[observe((2**64, {}))]
        )
    )
    with pytest.raises(MetricsEncodeError, match=r"metric kubevents\.too\.big"):
        encode_metrics_bytes(data)


def test_a_resource_the_wire_cannot_carry_is_named() -> None:
    data = collected(gauges)
    bad = dataclasses.replace(data.resource_metrics[0], resource=Resource({"broken": "\udcff"}))
    with pytest.raises(MetricsEncodeError, match="the resource"):
        encode_metrics_bytes(MetricsData([bad]))
