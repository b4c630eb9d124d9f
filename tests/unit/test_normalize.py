"""normalize(): both API versions, time priority, and forgiving handling of holes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubevents.model import REPAIRED_FIELDS, KubeEvent, ObjectRef, new_occurrences
from kubevents.normalize import NotAnEvent, normalize, parse_time_ns

T0 = "2026-11-20T10:00:00Z"
T0_NS = int(datetime(2026, 11, 20, 10, tzinfo=UTC).timestamp()) * 10**9


def core(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "web-1.17f",
            "namespace": "shop",
            "uid": "e1",
            "resourceVersion": "7",
            "creationTimestamp": T0,
        },
        "involvedObject": {
            "kind": "Pod",
            "namespace": "shop",
            "name": "web-1",
            "uid": "p1",
            "apiVersion": "v1",
            "resourceVersion": "42",
            "fieldPath": "spec.containers{web}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container web in pod web-1_shop(p1)",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "count": 3,
        "firstTimestamp": T0,
        "lastTimestamp": "2026-11-20T10:02:00Z",
        "eventTime": None,
    }
    base.update(fields)
    return base


def v1(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {
            "name": "web-1.17f",
            "namespace": "shop",
            "uid": "e1",
            "resourceVersion": "7",
            "creationTimestamp": T0,
        },
        "regarding": {
            "kind": "Pod",
            "namespace": "shop",
            "name": "web-1",
            "uid": "p1",
            "apiVersion": "v1",
            "resourceVersion": "42",
            "fieldPath": "spec.containers{web}",
        },
        "reason": "BackOff",
        "note": "Back-off restarting failed container web in pod web-1_shop(p1)",
        "type": "Warning",
        "action": "Restarting",
        "reportingController": "kubelet",
        "reportingInstance": "node-1",
        "eventTime": "2026-11-20T10:00:00.250000Z",
        "series": {"count": 3, "lastObservedTime": "2026-11-20T10:02:00.500000Z"},
    }
    base.update(fields)
    return base


def test_core_v1_fields() -> None:
    event = normalize(core())
    assert event == KubeEvent(
        uid="e1",
        name="web-1.17f",
        namespace="shop",
        reason="BackOff",
        type="Warning",
        message="Back-off restarting failed container web in pod web-1_shop(p1)",
        regarding=ObjectRef("Pod", "shop", "web-1", "p1", "v1", "42", "spec.containers{web}"),
        time_ns=T0_NS + 120 * 10**9,
        first_time_ns=T0_NS,
        count=3,
        action="",
        reporting_controller="kubelet",
        reporting_instance="node-1",
        source_host="node-1",
        related=None,
        resource_version="7",
        creation_time_ns=T0_NS,
        api_version="v1",
    )


def test_events_v1_fields() -> None:
    event = normalize(v1())
    assert event.message.startswith("Back-off restarting")
    assert event.regarding.field_path == "spec.containers{web}"
    assert (event.count, event.action, event.reporting_controller) == (3, "Restarting", "kubelet")
    assert event.time_ns == T0_NS + 120_500_000_000  # series.lastObservedTime, microseconds kept
    assert event.first_time_ns == T0_NS + 250_000_000  # eventTime when no deprecatedFirstTimestamp
    assert event.api_version == "events.k8s.io/v1"


def test_same_event_in_both_versions_normalizes_alike() -> None:
    a = normalize(core(count=None, series={"count": 3, "lastObservedTime": "2026-11-20T10:02:00Z"}))
    b = normalize(v1(series={"count": 3, "lastObservedTime": "2026-11-20T10:02:00Z"}, action=""))
    fields = (
        "uid",
        "reason",
        "type",
        "message",
        "regarding",
        "time_ns",
        "count",
        "reporting_controller",
    )
    assert {f: getattr(a, f) for f in fields} == {f: getattr(b, f) for f in fields}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "2026-11-20T10:02:00.5Z"),  # series.lastObservedTime
        ({"series": None}, "2026-11-20T10:00:00.25Z"),  # eventTime
        (
            {"series": None, "eventTime": None, "deprecatedLastTimestamp": "2026-11-20T10:01:00Z"},
            "2026-11-20T10:01:00Z",
        ),
        (
            {"series": None, "eventTime": None, "deprecatedFirstTimestamp": "2026-11-20T10:00:30Z"},
            "2026-11-20T10:00:30Z",
        ),
        ({"series": None, "eventTime": None}, T0),  # creationTimestamp
    ],
)
def test_occurrence_time_priority(fields: dict[str, object], expected: str) -> None:
    assert normalize(v1(**fields)).time_ns == parse_time_ns(expected)


@pytest.mark.parametrize(
    ("fields", "count"),
    [
        ({"series": {"count": 9}}, 9),
        ({"series": None, "deprecatedCount": 4}, 4),
        ({"series": None}, 1),
        ({"series": {"count": "7"}}, 7),
        ({"series": {"count": "three"}}, 1),
        ({"series": None, "deprecatedCount": True}, 1),
        ({"series": None, "deprecatedCount": -2}, 1),
    ],
)
def test_count_sources_and_bad_values(fields: dict[str, object], count: int) -> None:
    assert normalize(v1(**fields)).count == count


def test_missing_and_wrong_typed_fields_still_flow() -> None:
    event = normalize(
        {
            "kind": "Event",
            "involvedObject": None,
            "metadata": "oops",
            "reason": 5,
            "message": None,
            "count": "three",
            "lastTimestamp": "not a time",
        }
    )
    assert event.reason == "5"
    assert event.message == ""
    assert event.regarding == ObjectRef()
    assert (event.count, event.time_ns, event.uid) == (1, 0, "")


def test_related_object() -> None:
    event = normalize(v1(related={"kind": "Node", "name": "node-3"}))
    assert event.related == ObjectRef(kind="Node", name="node-3")


@pytest.mark.parametrize("raw", [[], "Event", {"kind": "Pod", "metadata": {}}, {"items": []}])
def test_not_an_event(raw: object) -> None:
    with pytest.raises(NotAnEvent):
        normalize(raw)


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2026-11-20T10:00:00Z", T0_NS),
        ("2026-11-20T10:00:00.000001Z", T0_NS + 1000),
        ("2026-11-20T11:00:00+01:00", T0_NS),
        ("2026-11-20T10:00:00", T0_NS),
        ("", None),
        (None, None),
        ("yesterday", None),
        (1234, None),
    ],
)
def test_parse_time(text: object, ns: int | None) -> None:
    assert parse_time_ns(text) == ns


@pytest.mark.parametrize(
    ("previous", "count", "added"), [(None, 1, 1), (None, 5, 5), (3, 5, 2), (5, 5, 0), (6, 5, 0)]
)
def test_new_occurrences(previous: int | None, count: int, added: int) -> None:
    event = normalize(v1(series={"count": count}))
    assert new_occurrences(event, previous) == added


@pytest.mark.parametrize(
    ("fields", "repairs", "count"),
    [
        ({}, (), 3),
        ({"count": "abc"}, ("count: count 'abc' is not a count; taken as 1",), 1),
        ({"count": -5}, ("count: count -5 is not a count; taken as 1",), 1),
        ({"count": 1e300}, ("count: count 1e+300 is not a count; taken as 1",), 1),
        ({"count": True}, ("count: count True is not a count; taken as 1",), 1),
        ({"count": 10**30}, (f"count: count {10**30} is not a count; taken as 1",), 1),
        ({"count": "7"}, ("count: count '7' is not a count; taken as 7",), 7),
        ({"count": 0}, (), 1),  # events.k8s.io's deprecatedCount of a new-style Event
        (
            {"involvedObject": None},
            ("object: involvedObject names no object; the Event has none",),
            3,
        ),
        ({"type": "Bogus"}, ("type: 'Bogus' is not Normal or Warning; classified as Warning",), 3),
        ({"type": "Normal"}, (), 3),
    ],
)
def test_malformed_fields_are_repaired_and_recorded(
    fields: dict[str, object], repairs: tuple[str, ...], count: int
) -> None:
    event = normalize(core(**{"count": 3, **fields}))
    assert event.repairs == repairs
    assert event.count == count
    assert all(r.partition(":")[0] in REPAIRED_FIELDS for r in event.repairs)


def test_an_event_without_object_is_never_about_an_object_named_slash() -> None:
    event = normalize(core(involvedObject=None))
    assert event.regarding.key == ""
    assert normalize(v1(regarding={"kind": "Pod"})).regarding.key == "Pod/"  # partial: kept
