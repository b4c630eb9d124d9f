"""kubevents' OTLP metric exporter against the protocol-faithful OTLP receiver (a real server).

What reaches the receiver (decoded there with the official classes), how a
failed export is logged (one line, no traceback, not once per interval), that
the next export carries the cumulative totals again, partial successes, and
that the run path with the metrics export configured loads neither protobuf
nor grpc.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)

from kubevents.settings import OtlpSettings
from kubevents.sinks.otlp_options import OtlpOptions, resolve_otlp
from kubevents.telemetry.otlp_metrics import OtlpMetricExporter, metric_transport
from tests.fakes.otlp_receiver import OtlpReceiver, attributes

ROOT = Path(__file__).resolve().parents[3]
LOGGER = "kubevents.telemetry.otlp_metrics"


def options_for(receiver: OtlpReceiver, transport: str = "http", **settings: object) -> OtlpOptions:
    return resolve_otlp(
        transport="grpc" if transport == "grpc" else "http",
        signal="metrics",
        spec_endpoint=f"http://{receiver.grpc_endpoint}"
        if transport == "grpc"
        else receiver.http_url,
        settings=OtlpSettings(**settings),  # type: ignore[arg-type]
        env={},
    )


TRANSPORTS = ["http", "grpc"]


class Pipeline:
    """A MeterProvider with one observable counter (``total``) read by a periodic reader
    that exports only when :meth:`export` asks (its interval is a day)."""

    def __init__(self, options: OtlpOptions, transport: str) -> None:
        self.total = 0
        self.exporter = OtlpMetricExporter(
            metric_transport(options, transport), timeout_s=options.timeout_s
        )
        self.reader = PeriodicExportingMetricReader(
            self.exporter, export_interval_millis=86_400_000
        )
        self.provider = MeterProvider(metric_readers=[self.reader], shutdown_on_exit=False)
        meter = self.provider.get_meter("kubevents", "0.1.0")
        meter.create_observable_counter(
            "kubevents.events",
            callbacks=[lambda _: [Observation(self.total, {"k8s.event.reason": "BackOff"})]],
            unit="{event}",
        )
        self.results: list[MetricExportResult] = []
        export = self.exporter.export

        def recorded(*args: object, **kwargs: object) -> MetricExportResult:
            result = export(*args, **kwargs)  # type: ignore[arg-type]
            self.results.append(result)
            return result

        self.exporter.export = recorded  # type: ignore[method-assign]

    def export(self) -> MetricExportResult:
        self.reader.collect()
        return self.results[-1]

    def close(self) -> None:
        self.provider.shutdown(timeout_millis=2000)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pipeline(otlp_receiver: OtlpReceiver, transport: str) -> Iterator[Pipeline]:
    p = Pipeline(options_for(otlp_receiver, transport, timeout_s=2.0), transport)
    yield p
    p.close()


def failed(transport: str, http: str, grpc_code: str) -> str:
    return http if transport == "http" else grpc_code


def endpoint_of(receiver: OtlpReceiver, transport: str) -> str:
    """The endpoint the exporter names in its log lines."""
    if transport == "http":
        return f"{receiver.http_url}/v1/metrics"
    return f"http://{receiver.grpc_endpoint}"


def totals(receiver: OtlpReceiver) -> list[int]:
    """The ``kubevents.events`` value of every accepted export, in order."""
    return [
        point.as_int
        for m in receiver.metrics()
        if m.metric.name == "kubevents.events"
        for point in m.metric.sum.data_points
    ]


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_the_request_reaches_the_receiver_as_the_sdk_would_encode_it(
    otlp_receiver: OtlpReceiver, transport: str, compression: str
) -> None:
    options = options_for(
        otlp_receiver, transport, headers=("x-tenant=acme",), compression=compression
    )
    exporter = OtlpMetricExporter(metric_transport(options, transport), timeout_s=2.0)
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=86_400_000)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    meter = provider.get_meter("kubevents", "0.1.0")
    meter.create_observable_gauge(
        "kubevents.build_info", callbacks=[lambda _: [Observation(1, {"version": "0.1.0"})]]
    )
    histogram = meter.create_histogram("kubevents.sink.export.duration", unit="s")
    histogram.record(0.02, {"sink": "otlp", "result": "success"})
    sent = []
    export = exporter.export

    def keep(data, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(data)
        return export(data, **kwargs)

    exporter.export = keep  # type: ignore[method-assign]
    reader.collect()
    provider.shutdown(timeout_millis=2000)
    (call, *_) = otlp_receiver.exports
    assert (call.signal, call.transport, call.outcome) == ("metrics", transport, "ok")
    assert call.request == encode_metrics(sent[0])
    assert call.headers.get("x-tenant") == "acme"
    assert call.headers.get("user-agent", "").startswith("kubevents/")
    if transport == "http":
        assert call.headers.get("content-type") == "application/x-protobuf"
        assert call.headers.get("content-encoding") == (None if compression == "none" else "gzip")


def test_a_failed_export_is_one_line_and_the_next_carries_the_totals(
    otlp_receiver: OtlpReceiver,
    pipeline: Pipeline,
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = endpoint_of(otlp_receiver, transport)
    kind = failed(transport, "HTTP 503", "UNAVAILABLE")
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    pipeline.total = 5
    assert pipeline.export() is MetricExportResult.SUCCESS
    otlp_receiver.faults.fail(grpc.StatusCode.UNAVAILABLE, times=2, message="collector overloaded")
    pipeline.total = 9
    assert pipeline.export() is MetricExportResult.FAILURE
    pipeline.total = 12
    assert pipeline.export() is MetricExportResult.FAILURE
    pipeline.total = 20
    assert pipeline.export() is MetricExportResult.SUCCESS
    assert totals(otlp_receiver) == [5, 20]  # the points of the failed exports are in the 20
    assert otlp_receiver.outcomes(transport=transport) == {"ok": 2, "unavailable": 2}
    ours = [r for r in caplog.records if r.name == LOGGER]
    assert [(r.levelname, r.getMessage()) for r in ours] == [
        (
            "WARNING",
            f"metrics: OTLP export to {endpoint} failed ({kind}): "
            "collector overloaded; the next export sends the totals again",
        ),
        (
            "DEBUG",
            f"metrics: OTLP export to {endpoint} failed ({kind}): "
            "collector overloaded (2 in a row); the next export sends the totals again",
        ),
        (
            "INFO",
            f"metrics: OTLP export to {endpoint} goes through again (after 2 failed)",
        ),
    ]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    ("break_it", "kinds"),
    [
        (lambda r: r.down(), ("connection", "UNAVAILABLE")),
        (lambda r: setattr(r, "delay", 3.0), ("timeout", "DEADLINE_EXCEEDED")),
        (
            lambda r: r.faults.fail(grpc.StatusCode.INVALID_ARGUMENT, message="bad metric"),
            ("HTTP 400", "INVALID_ARGUMENT"),
        ),
    ],
    ids=["down", "slow", "invalid"],
)
def test_every_failure_is_one_warning_without_traceback(
    otlp_receiver: OtlpReceiver,
    transport: str,
    caplog: pytest.LogCaptureFixture,
    break_it: object,
    kinds: tuple[str, str],
) -> None:
    kind = failed(transport, *kinds)
    pipeline = Pipeline(options_for(otlp_receiver, transport, timeout_s=0.5), transport)
    try:
        break_it(otlp_receiver)  # type: ignore[operator]
        assert pipeline.export() is MetricExportResult.FAILURE
    finally:
        pipeline.close()
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert f"failed ({kind})" in warnings[0].getMessage()
    assert "\n" not in warnings[0].getMessage()
    assert warnings[0].name == LOGGER and not warnings[0].exc_info


def test_a_partial_success_is_logged_and_counts_as_delivered(
    otlp_receiver: OtlpReceiver,
    pipeline: Pipeline,
    transport: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint = endpoint_of(otlp_receiver, transport)
    otlp_receiver.faults.partial_success(
        rejected=1, message="kubevents.events: too many series", times=2
    )
    pipeline.total = 3
    assert pipeline.export() is MetricExportResult.SUCCESS
    assert pipeline.export() is MetricExportResult.SUCCESS
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        f"metrics: {endpoint} rejected 1 of 1 data points: kubevents.events: too many series"
    ]


def test_after_shutdown_nothing_is_sent(otlp_receiver: OtlpReceiver, pipeline: Pipeline) -> None:
    pipeline.close()  # the final collection is exported, then the exporter closes
    assert otlp_receiver.calls(signal="metrics") == 1
    assert pipeline.exporter.export(MetricsData([])) is MetricExportResult.FAILURE
    assert otlp_receiver.calls(signal="metrics") == 1


PROBE = textwrap.dedent(
    """
    import sys
    from dataclasses import replace
    from kubevents import app, cli  # the run path
    from kubevents.records import ResourceInfo
    from kubevents.settings import Settings
    from kubevents.telemetry.metrics import start_metrics
    from kubevents.telemetry.plan import metrics_plan

    settings = replace(Settings(), sinks=(sys.argv[1],))
    plan = metrics_plan(settings, port=None)
    assert plan is not None and plan.otlp is not None, plan
    runtime = start_metrics(settings, plan, ResourceInfo(service_version="1", instance_id="kv-0", cluster_name="c1"), [])
    runtime.close(5.0)  # the final export
    unwanted = ("google.protobuf", "opentelemetry.proto", "opentelemetry.exporter.otlp")
    roots = {"grpc", *sys.argv[2:]}  # h2 too, for OTLP/HTTP: only the gRPC transport needs it
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in roots or m.startswith(unwanted))
    print(" ".join(loaded) or "none")
    """
)


@pytest.mark.parametrize("kind", ["otlp+http", "otlp"])
def test_the_run_path_with_the_metrics_export_loads_neither_protobuf_nor_grpc_nor_the_sdk_exporter(
    otlp_receiver: OtlpReceiver, kind: str
) -> None:
    endpoint = (
        otlp_receiver.http_url if kind == "otlp+http" else f"http://{otlp_receiver.grpc_endpoint}"
    )
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            f"{kind}:{endpoint}",
            *(["h2"] if kind == "otlp+http" else []),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none"
    (call,) = otlp_receiver.exports  # and the export did happen
    assert call.outcome == "ok"
    assert "kubevents.build_info" in {m.metric.name for m in otlp_receiver.metrics()}
    assert (
        attributes(call.request.resource_metrics[0].resource.attributes)["service.name"]
        == "kubevents"
    )
