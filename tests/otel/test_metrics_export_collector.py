"""kubevents' own OTLP metric exporter against the real OpenTelemetry Collector.

The Collector (tests/servers/configs/otelcol.yaml: the ``otlp`` receiver, the
``file`` exporter) writes what it received as OTLP-JSON; every metric there is
compared, field by field, with what the SDK's own encoder (``encode_metrics``)
makes of the same MetricsData, rendered the same way. Over OTLP/HTTP and
OTLP/gRPC, each in plaintext and over TLS with a CA bundle and a client
certificate (the receiver requires one: mutual TLS), with gzip and a header.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from kubevents.settings import OtlpSettings
from kubevents.sinks.otlp_options import resolve_otlp
from kubevents.telemetry.otlp_metrics import OtlpMetricExporter, metric_transport
from tests.fakes.certs import make_client_pair, make_pki
from tests.integration.servers import CONFIGS, Otelcol, server_binary
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.servers, pytest.mark.timeout(3600)]  # the first run may build

NAMES = {"kubevents.events", "kubevents.build_info", "kubevents.sink.export.duration"}


def tls_config(workdir: Path) -> tuple[Path, dict[str, str]]:
    """otelcol.yaml with TLS on both receivers, a client certificate required; the
    client's files as ``OtlpSettings`` fields."""
    pki = make_pki(workdir / "pki")
    cert, key = make_client_pair(pki)
    config = yaml.safe_load((CONFIGS / "otelcol.yaml").read_text())
    for protocol in config["receivers"]["otlp"]["protocols"].values():
        protocol["tls"] = {
            "cert_file": str(pki.cert_file),
            "key_file": str(pki.key_file),
            "client_ca_file": str(pki.ca_file),
        }
    path = workdir / "otelcol-tls.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, {
        "certificate": str(pki.ca_file),
        "client_certificate": str(cert),
        "client_key": str(key),
    }


@pytest.fixture(scope="module")
def binary() -> Path:
    return server_binary("otelcol")


@pytest.fixture(params=["http", "https", "grpc", "grpcs"])
def collector(
    request: pytest.FixtureRequest, binary: Path, tmp_path: Path
) -> Iterator[tuple[Otelcol, str, str, dict[str, str]]]:
    """(the Collector, the transport, its endpoint, its client settings)."""
    transport = request.param
    if transport.endswith("s"):
        config, client = tls_config(tmp_path)
    else:
        config, client = CONFIGS / "otelcol.yaml", {}
    col = Otelcol.start(binary, config, tmp_path / "otelcol")
    try:
        url = col.grpc if transport.startswith("grpc") else col.http
        if transport.endswith("s"):
            url = url.replace("http://", "https://")
        yield col, transport.rstrip("s"), url, client
    finally:
        col.process.stop()


def export_once(endpoint: str, client: dict[str, str], transport: str = "http") -> MetricsData:
    """One export of a few instruments (a counter, a gauge, a histogram) through kubevents'
    exporter; returns the MetricsData that was sent."""
    options = resolve_otlp(
        transport="grpc" if transport == "grpc" else "http",
        signal="metrics",
        spec_endpoint=endpoint,
        settings=OtlpSettings(compression="gzip", headers=("x-tenant=acme",), **client),  # type: ignore[arg-type]
        env={},
    )
    exporter = OtlpMetricExporter(metric_transport(options, transport), timeout_s=10.0)
    sent: list[MetricsData] = []
    export = exporter.export

    results: list[MetricExportResult] = []

    def keep(data: MetricsData, **kwargs: Any) -> Any:
        sent.append(data)
        results.append(export(data, **kwargs))
        return results[-1]

    exporter.export = keep  # type: ignore[method-assign]
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=86_400_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource({"service.name": "kubevents", "k8s.cluster.name": "c1"}),
        shutdown_on_exit=False,
    )
    meter = provider.get_meter("kubevents", "0.1.0")
    meter.create_observable_counter(
        "kubevents.events",
        callbacks=[
            lambda _: [
                Observation(7, {"k8s.namespace.name": "shop", "k8s.event.reason": "BackOff"}),
                Observation(2, {"k8s.namespace.name": "payments", "k8s.event.reason": "Failed"}),
            ]
        ],
        unit="{event}",
        description="Event occurrences.",
    )
    meter.create_observable_gauge(
        "kubevents.build_info", callbacks=[lambda _: [Observation(1, {"version": "0.1.0"})]]
    )
    durations = meter.create_histogram(
        "kubevents.sink.export.duration",
        unit="s",
        explicit_bucket_boundaries_advisory=(0.01, 0.1, 1.0),
    )
    for seconds in (0.004, 0.02, 0.03, 2.5):
        durations.record(seconds, {"sink": "otlp", "result": "success"})
    provider.shutdown(timeout_millis=15_000)  # the final export
    assert len(sent) == 1
    assert results == [MetricExportResult.SUCCESS], "the exports failed"
    return sent[0]


def as_json(metric: Any) -> dict[str, Any]:
    """A metric as the Collector's file exporter writes it (OTLP-JSON)."""
    return MessageToDict(metric, use_integers_for_enums=True)


def test_the_collector_receives_what_the_sdk_encoder_would_have_sent(
    collector: tuple[Otelcol, str, str, dict[str, str]],
) -> None:
    col, transport, endpoint, client = collector
    data = export_once(endpoint, client, transport)
    wait_until(lambda: {m["name"] for m in col.metrics()} >= NAMES, 30, "the metrics in the file")
    received = {m["name"]: m for m in col.metrics()}
    (expected,) = encode_metrics(data).resource_metrics
    (scope,) = expected.scope_metrics
    for metric in scope.metrics:
        got = dict(received[metric.name])
        assert got.pop("resource") == {"service.name": "kubevents", "k8s.cluster.name": "c1"}
        assert got.pop("scope") == {"name": "kubevents", "version": "0.1.0"}
        assert got == as_json(metric), metric.name
    assert set(received) == NAMES


@pytest.mark.parametrize(("transport", "kind"), [("http", "TLS"), ("grpc", "UNAVAILABLE")])
def test_the_client_certificate_and_the_ca_bundle_are_what_tls_uses(
    binary: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, transport: str, kind: str
) -> None:
    config, client = tls_config(tmp_path)
    col = Otelcol.start(binary, config, tmp_path / "otelcol")
    try:
        endpoint = (col.grpc if transport == "grpc" else col.http).replace("http://", "https://")
        without_cert = {"certificate": client["certificate"]}
        other_ca = {**client, "certificate": str(make_pki(tmp_path / "other").ca_file)}
        for settings, what in ((without_cert, "no client certificate"), (other_ca, "another CA")):
            caplog.clear()
            with pytest.raises(AssertionError, match="exports"):
                export_once(endpoint, settings, transport)
            failures = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
            assert len(failures) == 1 and f"failed ({kind})" in failures[0], (what, failures)
    finally:
        col.process.stop()
    assert col.metrics() == []
