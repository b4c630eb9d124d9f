"""In-process measurements: per-stage cost, the floor, the naive path, replay end to end.

Every function takes the watch lines of :mod:`bench.mix` and returns seconds
(one run); the caller repeats and takes medians.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from kubevents import app
from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import load_correlation_rules
from kubevents.enrich.pattern_rules import load_pattern_rules
from kubevents.enrich.patterns import PatternDetector
from kubevents.model import Enriched, KubeEvent
from kubevents.normalize import normalize
from kubevents.records import OutputRecord, ResourceInfo, event_record
from kubevents.series import SeriesTracker
from kubevents.settings import Settings, load_settings
from kubevents.sinks.grpc_unary import UnaryChannel
from kubevents.sinks.limits import limit_record
from kubevents.sinks.otlp_encode import encode_logs_wire
from kubevents.sinks.otlp_grpc import EXPORT_METHOD
from kubevents.sinks.otlp_options import OtlpOptions
from kubevents.telemetry.counting import EventCounts

BATCH = 512  # delivery.batch_size default
RESOURCE = ResourceInfo("bench", "bench-0", cluster_name="bench")


def bench_settings(endpoint: str, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "sinks": (f"otlp:{endpoint}",),
        "replay.summary": False,
        "metrics.otlp": False,
        "cluster_name": "bench",
        "instance_id": "bench-0",
    }
    base.update(overrides)
    return load_settings(None, env={}, overrides=base)


# -- stages ---------------------------------------------------------------------------


@dataclasses.dataclass
class Prepared:
    """Each stage's input, made by the stages before it (untimed)."""

    raws: list[dict[str, Any]]
    events: list[KubeEvent]
    occurrences: list[int]
    enriched: list[Enriched]
    records: list[OutputRecord]


def prepare(lines: list[bytes]) -> Prepared:
    raws = [orjson.loads(line)["object"] for line in lines]
    events = [normalize(raw) for raw in raws]
    tracker = SeriesTracker()
    occ = [tracker.observe(e) or 0 for e in events]
    classifier = load_classifier()
    correlator = Correlator(load_correlation_rules())
    enriched = []
    for e, n in zip(events, occ, strict=True):
        c = classifier.classify(e)
        enriched.append(Enriched(e, n, e.time_ns, c, correlation=correlator.correlate(e, c, n)))
    records = [event_record(en) for en in enriched]
    return Prepared(raws, events, occ, enriched, records)


def stage_functions(lines: list[bytes], prep: Prepared, endpoint: str) -> dict[str, Callable[[], object]]:
    """One callable per stage; each processes every line once."""
    classifier = load_classifier()
    correlation_rules = load_correlation_rules()
    pattern_rules = load_pattern_rules()
    limits = Settings().delivery

    def parse() -> None:
        loads = orjson.loads
        for line in lines:
            loads(line)

    def norm() -> None:
        for raw in prep.raws:
            normalize(raw)

    def occurrences() -> None:
        tracker = SeriesTracker()
        for e in prep.events:
            tracker.observe(e)

    def classify() -> None:
        for e in prep.events:
            classifier.classify(e)

    def correlate() -> None:
        correlator = Correlator(correlation_rules)
        for en in prep.enriched:
            correlator.correlate(en.event, en.classification, en.occurrences)
            correlator.transitions()

    def patterns() -> None:
        detector, anomalies, counts = PatternDetector(pattern_rules), AnomalyDetector(pattern_rules), EventCounts()
        for en in prep.enriched:
            counts.record(en)
            detector.observe(en)
            anomalies.observe(en)
            detector.transitions()
            anomalies.transitions()

    def record() -> None:
        for en in prep.enriched:
            event_record(en)

    def encode() -> None:
        """What the OTLP sink does to a batch before the call: limits, then the request's bytes
        (``encode_logs_wire``, as the transports send them)."""
        records = prep.records
        for start in range(0, len(records), BATCH):
            clean = [
                limit_record(r, max_body_bytes=limits.max_body_bytes, max_attribute_bytes=limits.max_attribute_bytes)
                for r in records[start : start + BATCH]
            ]
            encode_logs_wire(clean, RESOURCE)

    send = send_function(prep.records, endpoint)
    return {
        "parse (orjson.loads)": parse,
        "normalize": norm,
        "occurrences (series)": occurrences,
        "classify": classify,
        "correlate": correlate,
        "patterns (+anomalies, counts)": patterns,
        "record": record,
        "encode (limits + OTLP protobuf)": encode,
        "send (gRPC Export, acked)": send,
    }


def send_function(records: list[OutputRecord], endpoint: str) -> Callable[[], object]:
    """The send stage: the gRPC ``Export`` of ``records`` in batches of 512, encoded
    beforehand, each call waiting for its acknowledgement, on the OTLP sink's own gRPC
    client (``sinks/grpc_unary.py``, HTTP/2 on h2)."""
    requests = [encode_logs_wire(records[s : s + BATCH], RESOURCE)
                for s in range(0, len(records), BATCH)]
    target = endpoint.removeprefix("http://")
    options = OtlpOptions(url=endpoint, target=target, secure=False, headers=(), certificate="",
                          client_certificate="", client_key="", compression="none", timeout_s=30.0)
    channel = UnaryChannel(options, user_agent="kubevents-bench")

    def send() -> None:
        """The gRPC call per batch, already encoded: the network round trip and the ack."""
        for data in requests:
            channel.call(EXPORT_METHOD, data, timeout_s=30.0)

    return send


# -- the floor and the naive path -------------------------------------------------------


def floor_function(lines: list[bytes], records: list[OutputRecord]) -> Callable[[], object]:
    """``orjson.loads`` of each line + the same records in OTLP protobuf, straight from
    opentelemetry-proto (one ResourceLogs per batch, no grouping, no limits)."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue

    def fill(target: AnyValue, value: object) -> None:
        if isinstance(value, bool):
            target.bool_value = value
        elif isinstance(value, int):
            target.int_value = value
        elif isinstance(value, float):
            target.double_value = value
        elif isinstance(value, list):
            target.array_value.values.extend(AnyValue(string_value=v) for v in value)
        else:
            target.string_value = value  # type: ignore[assignment]

    def run() -> None:
        loads = orjson.loads
        for line in lines:
            loads(line)
        for start in range(0, len(records), BATCH):
            request = ExportLogsServiceRequest()
            scope = request.resource_logs.add().scope_logs.add()
            add = scope.log_records.add
            for r in records[start : start + BATCH]:
                log = add()
                log.time_unix_nano = r.timestamp_ns
                log.observed_time_unix_nano = r.observed_ns
                log.severity_number = r.severity_number
                log.severity_text = r.severity_text
                log.event_name = r.event_name
                log.body.string_value = r.body
                add_attr = log.attributes.add
                for key, value in r.attributes.items():
                    kv = add_attr()
                    kv.key = key
                    fill(kv.value, value)
            request.SerializeToString()

    return run


def naive_function(lines: list[bytes], endpoint: str) -> Callable[[], int]:
    """The kubernetes client's watch deserialization (``Watch.unmarshal_event`` into
    ``CoreV1Event`` models) + the OpenTelemetry SDK's per-record ``emit`` through a
    BatchLogRecordProcessor and its OTLP/gRPC exporter, to the same receiver."""
    from kubernetes import watch
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    texts = [line.decode() for line in lines]
    severities = {"Normal": 9, "Warning": 13}

    def run() -> int:
        provider = LoggerProvider(resource=Resource.create({"service.name": "naive", "k8s.cluster.name": "bench"}))
        exporter = OTLPLogExporter(endpoint=endpoint, insecure=True)
        provider.add_log_record_processor(
            BatchLogRecordProcessor(exporter, max_queue_size=len(texts) + 1, max_export_batch_size=BATCH)
        )
        logger = provider.get_logger("naive")
        w = watch.Watch()
        for text in texts:
            item = w.unmarshal_event(text, "CoreV1Event")
            ev = item["object"]
            obj = ev.involved_object
            when = ev.last_timestamp or ev.first_timestamp or ev.event_time
            t_ns = int(when.timestamp() * 1e9) if when else 0
            logger.emit(
                timestamp=t_ns,
                observed_timestamp=time.time_ns(),
                severity_number=severities.get(ev.type, 9),  # type: ignore[arg-type]
                severity_text=ev.type,
                body=ev.message,
                event_name="k8s.event",
                attributes={
                    "k8s.namespace.name": ev.metadata.namespace or "",
                    "k8s.event.reason": ev.reason or "",
                    "k8s.event.action": ev.action or "",
                    "k8s.event.start_time": str(ev.first_timestamp),
                    "k8s.event.name": ev.metadata.name,
                    "k8s.event.uid": ev.metadata.uid,
                    "k8s.event.count": ev.count or 1,
                    "k8s.object.kind": obj.kind or "",
                    "k8s.object.name": obj.name or "",
                    "k8s.object.uid": obj.uid or "",
                    "k8s.object.fieldpath": obj.field_path or "",
                    "k8s.object.api_version": obj.api_version or "",
                    "k8s.object.resource_version": obj.resource_version or "",
                },
            )
        provider.force_flush(120_000)
        provider.shutdown()
        return len(texts)

    return run


# -- replay end to end ------------------------------------------------------------------


def write_replay_file(lines: list[bytes], directory: str | None = None) -> Path:
    path = Path(tempfile.mkstemp(suffix=".jsonl", prefix="kubevents-bench-", dir=directory)[1])
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def replay_end_to_end(path: Path, endpoint: str) -> tuple[float, float]:
    """``kubevents replay FILE --sink otlp:ENDPOINT`` in this process (``app.replay``):
    read, normalize, sort, every stage, OTLP/gRPC, and the final flush that waits for
    every acknowledgement. Returns (wall seconds, CPU seconds of this process)."""
    settings = bench_settings(endpoint)
    cpu0, t0 = time.process_time(), time.perf_counter()
    app.replay(settings, [str(path)])
    return time.perf_counter() - t0, time.process_time() - cpu0
