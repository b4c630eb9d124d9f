"""Loki push encoding: labels, structured metadata as Loki's OTLP ingestion writes them, escaping."""

from __future__ import annotations

import dataclasses

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevents import __version__
from kubevents.records import AttrValue, OutputRecord, ResourceInfo
from kubevents.sinks.loki_encode import (
    MAX_LABEL_VALUE_BYTES,
    LokiMapper,
    TwinSeparator,
    encode_json,
    encode_protobuf,
    float_string,
    label_name,
    selector,
    value_string,
)
from kubevents.sinks.loki_proto import PushRequest
from tests.fakes.loki_receiver import parse_labels

RESOURCE = ResourceInfo(service_version="1.2.3", instance_id="kv-0", cluster_name="prod")


def record(
    namespace: str = "shop", body: str = "m", ts: int = 10, **attributes: AttrValue
) -> OutputRecord:
    return OutputRecord(
        timestamp_ns=ts,
        observed_ns=99,
        severity_number=13,
        severity_text="Warning",
        event_name="k8s.event",
        body=body,
        namespace=namespace,
        attributes=dict(attributes),
    )


def test_labels_and_structured_metadata_in_lokis_order() -> None:
    [stream] = LokiMapper(RESOURCE).streams(
        [record(**{"k8s.event.reason": "BackOff", "kubevents.occurrences": 2})]
    )
    assert stream.labels == (
        ("k8s_cluster_name", "prod"),
        ("k8s_namespace_name", "shop"),
        ("service_name", "kubevents"),
    )
    [entry] = stream.entries
    assert (entry.timestamp_ns, entry.line) == (10, "m")
    assert entry.metadata == [
        ("service_version", "1.2.3"),
        ("service_instance_id", "kv-0"),
        ("scope_name", "kubevents"),
        ("scope_version", __version__),
        ("k8s_event_reason", "BackOff"),
        ("kubevents_occurrences", "2"),
        ("observed_timestamp", "99"),
        ("severity_number", "13"),
        ("severity_text", "Warning"),
        ("event_name", "k8s.event"),
    ]


def test_cluster_scoped_records_have_no_namespace_label() -> None:
    [stream] = LokiMapper(RESOURCE).streams([record(namespace="")])
    assert dict(stream.labels) == {"k8s_cluster_name": "prod", "service_name": "kubevents"}


def test_configured_labels_move_attributes_between_label_and_metadata() -> None:
    mapper = LokiMapper(RESOURCE, labels=("service.name", "service.instance.id"))
    [stream] = mapper.streams([record()])
    assert dict(stream.labels) == {"service_name": "kubevents", "service_instance_id": "kv-0"}
    metadata = dict(stream.entries[0].metadata)
    assert metadata["k8s_namespace_name"] == "shop"
    assert "service_instance_id" not in metadata


def test_more_than_15_labels_is_refused() -> None:
    with pytest.raises(ValueError, match="at most 15"):
        LokiMapper(RESOURCE, labels=[f"a{i}" for i in range(16)])


def test_streams_group_by_namespace_and_sort_entries_by_time() -> None:
    streams = LokiMapper(RESOURCE).streams(
        [record("a", "x", 30), record("b", "y", 5), record("a", "z", 10)]
    )
    assert [dict(s.labels)["k8s_namespace_name"] for s in streams] == ["a", "b"]
    assert [(e.timestamp_ns, e.line) for e in streams[0].entries] == [(10, "z"), (30, "x")]


def test_twins_are_moved_apart_by_a_nanosecond_across_requests() -> None:
    separate = TwinSeparator()
    first = separate([record(body="probe failed", ts=5), record(body="other", ts=5)])
    second = separate(
        [
            record(body="probe failed", ts=5),
            record(body="probe failed", ts=5),
            record(body="probe failed", ts=6),
            record(namespace="other", body="probe failed", ts=5),
        ]
    )
    assert [r.timestamp_ns for r in first] == [5, 5]
    assert [(r.namespace, r.timestamp_ns) for r in second] == [
        ("shop", 6),
        ("shop", 7),
        ("shop", 8),  # 6 was taken by the first twin
        ("other", 5),  # another stream
    ]


def test_twin_memory_is_bounded() -> None:
    separate = TwinSeparator(memory=2)
    separate([record(body="a", ts=1), record(body="b", ts=1), record(body="c", ts=1)])
    assert separate([record(body="a", ts=1)])[0].timestamp_ns == 1  # forgotten


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("s", "s"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-12, "-12"),
        (2.5, "2.5"),
        (3.0, "3"),
        (0.1, "0.1"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-7"),
        (0.000001, "0.000001"),
        (123456789.125, "123456789.125"),
        (["a", "b"], '["a","b"]'),
    ],
)
def test_values_are_written_as_lokis_as_string(value: AttrValue, text: str) -> None:
    assert value_string(value) == text


def test_special_floats() -> None:
    assert [float_string(v) for v in (float("nan"), float("inf"), -float("inf"))] == [
        "NaN",
        "+Inf",
        "-Inf",
    ]


@pytest.mark.parametrize(
    ("attribute", "label"),
    [
        ("k8s.event.reason", "k8s_event_reason"),
        ("service.name", "service_name"),
        ("a-b/c d", "a_b_c_d"),
        ("1st", "key_1st"),
        ("", "key_"),
    ],
)
def test_label_names(attribute: str, label: str) -> None:
    assert label_name(attribute) == label


@given(st.text(max_size=40))
def test_no_label_value_can_escape_its_quotes(value: str) -> None:
    text = selector([("k8s_namespace_name", value), ("service_name", "kubevents")])
    assert parse_labels(text) == [("k8s_namespace_name", value), ("service_name", "kubevents")]


def test_an_injection_attempt_stays_one_value() -> None:
    evil = 'shop", service_name="other'
    [stream] = LokiMapper(RESOURCE).streams([record(namespace=evil)])
    request = PushRequest.FromString(encode_protobuf([stream]))
    assert dict(parse_labels(request.streams[0].labels))["k8s_namespace_name"] == evil


def test_label_values_are_bounded() -> None:
    [stream] = LokiMapper(RESOURCE).streams([record(namespace="n" * 5000)])
    assert len(dict(stream.labels)["k8s_namespace_name"]) == MAX_LABEL_VALUE_BYTES


def test_json_body_follows_the_push_api() -> None:
    streams = LokiMapper(RESOURCE).streams([record(ts=1_700_000_000_123_456_789)])
    body = orjson.loads(encode_json(streams))
    [stream] = body["streams"]
    assert stream["stream"]["k8s_namespace_name"] == "shop"
    [[ts, line, metadata]] = stream["values"]
    assert (ts, line) == ("1700000000123456789", "m")  # timestamps are strings
    assert metadata["severity_number"] == "13"


def test_protobuf_body_round_trips() -> None:
    streams = LokiMapper(RESOURCE).streams([record(ts=1_700_000_000_123_456_789)])
    request = PushRequest.FromString(encode_protobuf(streams))
    [entry] = request.streams[0].entries
    assert (entry.timestamp.seconds, entry.timestamp.nanos) == (1_700_000_000, 123_456_789)
    assert [(p.name, p.value) for p in entry.structuredMetadata] == streams[0].entries[0].metadata


# -- the k8s-monitoring label profile ---------------------------------------------------
# What Grafana's k8s-monitoring chart writes for a cluster Event, as read from the chart
# (grafana/k8s-monitoring-helm at commit 1963110, chart k8s-monitoring 4.4.0, subchart
# feature-cluster-events 1.0.0, default values; the Loki destination's default
# clusterLabels): loki.source.kubernetes_events sets job, instance and namespace (of the
# involved object); the feature's loki.process adds source="kubernetes-events", level (the
# Event type, Normal as Info), service_name (= job) and reason, drops kind, and keeps the
# object's name and the node as structured metadata; the destination adds cluster and
# k8s_cluster_name. Written out here by hand: no file of the chart is copied.
CHART_JOB = "integrations/kubernetes/eventhandler"
CHART_EVENT_LABELS = {
    "job": CHART_JOB,
    "service_name": CHART_JOB,
    "source": "kubernetes-events",
    "namespace": "shop",
    "level": "Warning",
    "reason": "BackOff",
    "cluster": "prod",
    "k8s_cluster_name": "prod",
}


def chart_record(**overrides: object) -> OutputRecord:
    attributes: dict[str, AttrValue] = {
        "k8s.event.reason": "BackOff",
        "k8s.object.kind": "Pod",
        "k8s.object.name": "web-1",
        "kubevents.node": "node-3",
        "kubevents.occurrences": 1,
    }
    base = record(**attributes)
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def test_the_k8s_monitoring_profile_labels_an_event_as_the_chart_does() -> None:
    [stream] = LokiMapper(RESOURCE, profile="k8s-monitoring").streams([chart_record()])
    labels = dict(stream.labels)
    # the chart's labels, plus kubevents' namespace label name (for its own dashboards)
    assert labels == {**CHART_EVENT_LABELS, "k8s_namespace_name": "shop"}
    [entry] = stream.entries
    metadata = dict(entry.metadata)
    assert (metadata["name"], metadata["node"]) == ("web-1", "node-3")
    # kubevents' enrichment still travels as structured metadata
    assert metadata["k8s_event_reason"] == "BackOff" and metadata["kubevents_occurrences"] == "1"
    assert metadata["service_version"] == "1.2.3" and "service_name" not in metadata


def test_the_profile_writes_normal_as_info_and_leaves_out_what_is_unknown() -> None:
    normal = chart_record(severity_text="Normal", namespace="")
    [stream] = LokiMapper(RESOURCE, profile="k8s-monitoring").streams([normal])
    labels = dict(stream.labels)
    assert labels["level"] == "Info"
    assert "namespace" not in labels and "k8s_namespace_name" not in labels
    no_cluster = ResourceInfo(service_version="1", instance_id="i")
    [stream] = LokiMapper(no_cluster, profile="k8s-monitoring", job="loki.source.kubernetes_events").streams(
        [chart_record()]
    )
    labels = dict(stream.labels)
    assert "cluster" not in labels and "k8s_cluster_name" not in labels
    assert labels["job"] == labels["service_name"] == "loki.source.kubernetes_events"


def test_kubevents_own_records_under_the_profile_are_told_apart_by_source() -> None:
    incident = chart_record(event_name="kubevents.incident", severity_text="error", attributes={})
    [stream] = LokiMapper(RESOURCE, profile="k8s-monitoring").streams([incident])
    labels = dict(stream.labels)
    assert labels["source"] == "kubevents" and labels["job"] == CHART_JOB
    assert "reason" not in labels and "level" not in labels


def test_an_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown label profile 'grafana'"):
        LokiMapper(RESOURCE, profile="grafana")


def test_the_default_profile_is_unchanged_by_the_other() -> None:
    [stream] = LokiMapper(RESOURCE).streams([chart_record()])
    assert dict(stream.labels) == {
        "service_name": "kubevents",
        "k8s_cluster_name": "prod",
        "k8s_namespace_name": "shop",
    }
    assert "name" not in dict(stream.entries[0].metadata)
