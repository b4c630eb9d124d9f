"""The fake apiserver against the real ``kubernetes`` client.

These tests pin down what the fake promises (STYLE point 22): if one of its
assumptions about the protocol is wrong, it shows up here, not as a puzzling
failure in a kubevents protocol test. Watches are read the way kubevents reads
them: ``watch=True, _preload_content=False`` and the lines of ``resp.stream()``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from .apiserver import (
    ApiResource,
    ApiStatusError,
    ExpiredWatch,
    FakeApiServer,
    make_event,
    make_object,
)
from .certs import Pki, make_pki

TIMEOUT = (2.0, 2.0)  # (connect, read): a broken fake fails a test, it never hangs it
LIMITED_USER = "system:serviceaccount:ns:sa"
APP = {"name": "app", "image": "registry.example/app:1"}

Event = dict[str, Any]


# -- helpers ---------------------------------------------------------------------


@pytest.fixture
def core(fake_api_client: k8s.ApiClient) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(fake_api_client)


@pytest.fixture
def events_v1(fake_api_client: k8s.ApiClient) -> k8s.EventsV1Api:
    return k8s.EventsV1Api(fake_api_client)


@pytest.fixture
def leases(fake_api_client: k8s.ApiClient) -> k8s.CoordinationV1Api:
    return k8s.CoordinationV1Api(fake_api_client)


def watch(api: k8s.CoreV1Api | k8s.EventsV1Api, **params: Any) -> urllib3.BaseHTTPResponse:
    """Open a raw watch of all Events, as kubevents does."""
    return api.list_event_for_all_namespaces(  # type: ignore[no-any-return]
        watch=True, _preload_content=False, _request_timeout=TIMEOUT, **params
    )


def read_events(
    response: urllib3.BaseHTTPResponse, count: int, *, bookmarks: bool = False
) -> list[Event]:
    """The first ``count`` watch events (BOOKMARKs skipped unless asked for); closes the stream."""
    events: list[Event] = []
    buffer = b""
    try:
        for chunk in response.stream(4096):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            events += [e for e in map(json.loads, lines) if bookmarks or e["type"] != "BOOKMARK"]
            if len(events) >= count:
                break
    finally:
        response.close()
    return events[:count]


def read_to_end(response: urllib3.BaseHTTPResponse) -> list[Event]:
    """Every watch event until the server ends the stream cleanly."""
    data = b"".join(response.stream(4096))
    response.release_conn()
    assert data == b"" or data.endswith(b"\n")
    return [json.loads(line) for line in data.splitlines()]


def api_error(call: Callable[[], Any]) -> ApiException:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value


def body(error: ApiException) -> dict[str, Any]:
    return json.loads(error.body)  # type: ignore[no-any-return]


def fill(fake: FakeApiServer, count: int, **fields: Any) -> list[Event]:
    return [fake.store.create(make_event(f"e{i}", **fields)) for i in range(count)]


# -- lists -----------------------------------------------------------------------


def test_list_pages_with_limit_and_continue(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 5)

    first = core.list_event_for_all_namespaces(limit=2)
    names = [e.metadata.name for e in first.items]
    token = first.metadata._continue
    assert first.metadata.remaining_item_count == 3
    while token:
        page = core.list_event_for_all_namespaces(limit=2, _continue=token)
        assert page.metadata.resource_version == first.metadata.resource_version
        names += [e.metadata.name for e in page.items]
        token = page.metadata._continue

    assert names == ["e0", "e1", "e2", "e3", "e4"]


def test_continue_reads_the_snapshot_of_the_first_page(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 3)
    first = core.list_event_for_all_namespaces(limit=2)
    fake_apiserver.store.create(make_event("e9"))
    fake_apiserver.store.delete("e2", namespace="default")

    rest = core.list_event_for_all_namespaces(limit=2, _continue=first.metadata._continue)

    assert [e.metadata.name for e in rest.items] == ["e2"]
    assert rest.metadata.resource_version == first.metadata.resource_version == "3"


def test_continue_expires_with_compaction_and_bad_tokens_are_rejected(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 3)
    first = core.list_event_for_all_namespaces(limit=1)
    fake_apiserver.store.create(make_event("e9"))
    fake_apiserver.compact(4)

    expired = api_error(
        lambda: core.list_event_for_all_namespaces(_continue=first.metadata._continue)
    )
    bad = api_error(lambda: core.list_event_for_all_namespaces(_continue="not-a-token"))

    assert (expired.status, body(expired)["reason"]) == (410, "Expired")
    assert (bad.status, body(bad)["reason"]) == (400, "BadRequest")


def test_list_at_an_exact_resource_version(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 3)
    fake_apiserver.store.delete("e0", namespace="default")

    then = core.list_event_for_all_namespaces(resource_version="2", resource_version_match="Exact")
    now = core.list_event_for_all_namespaces(resource_version="0")

    assert [e.metadata.name for e in then.items] == ["e0", "e1"]
    assert [e.metadata.name for e in now.items] == ["e1", "e2"]
    assert (then.metadata.resource_version, now.metadata.resource_version) == ("2", "4")


def test_a_resource_version_from_the_future_is_504(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fake_apiserver.fresh_wait = 0.05

    error = api_error(lambda: core.list_event_for_all_namespaces(resource_version="99"))

    assert (error.status, body(error)["reason"]) == (504, "Timeout")
    assert body(error)["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"


def test_resource_versions_are_global_and_strictly_increasing(
    fake_apiserver: FakeApiServer,
) -> None:
    store = fake_apiserver.store
    written = [
        store.create(make_event("e1")),
        store.create(make_object("Pod", "web-1")),
        store.update({**make_event("e1"), "count": 2}),
        store.delete("web-1", namespace="default", resource="pods"),
    ]

    assert [int(o["metadata"]["resourceVersion"]) for o in written] == [1, 2, 3, 4]
    assert store.resource_version == "4"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("type=Warning", ["w1"]),
        ("type!=Normal", ["w1"]),
        ("involvedObject.kind=Node", ["n1"]),
        ("reason=BackOff", ["w1"]),
        ("metadata.namespace=kube-system", ["n1"]),
        ("type=Normal,involvedObject.kind=Pod", ["p1"]),
    ],
)
def test_core_field_selectors(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api, selector: str, expected: list[str]
) -> None:
    store = fake_apiserver.store
    store.create(make_event("p1"))
    store.create(make_event("w1", event_type="Warning", reason="BackOff"))
    store.create(make_event("n1", namespace="kube-system", kind="Node", object_name="node-1"))

    listed = core.list_event_for_all_namespaces(field_selector=selector)

    assert [e.metadata.name for e in listed.items] == expected
    assert listed.metadata.remaining_item_count is None


def test_events_v1_field_selectors_use_the_new_names(
    fake_apiserver: FakeApiServer, events_v1: k8s.EventsV1Api
) -> None:
    fake_apiserver.store.create(make_event("p1"))
    fake_apiserver.store.create(make_event("n1", kind="Node", object_name="node-1"))

    # Raw JSON: legacy Events have "eventTime": null, which the typed EventsV1Event model
    # rejects (kubernetes-client/python#1826); the real apiserver serves them just so.
    by_kind = json.loads(
        events_v1.list_event_for_all_namespaces(
            field_selector="regarding.kind=Node", _preload_content=False
        ).data
    )
    unknown = api_error(
        lambda: events_v1.list_event_for_all_namespaces(field_selector="involvedObject.kind=Node")
    )

    assert [e["metadata"]["name"] for e in by_kind["items"]] == ["n1"]
    assert unknown.status == 400
    assert "field label not supported: involvedObject.kind" in body(unknown)["message"]


def test_list_items_have_no_kind_and_the_list_has_a_resource_version(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 2)

    raw = json.loads(core.list_namespaced_event("default", _preload_content=False).data)

    assert (raw["kind"], raw["apiVersion"], raw["metadata"]) == (
        "EventList",
        "v1",
        {"resourceVersion": "2"},
    )
    assert all("kind" not in item and "apiVersion" not in item for item in raw["items"])


# -- one store, two Event APIs ------------------------------------------------------


def test_one_event_in_both_api_shapes(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api, events_v1: k8s.EventsV1Api
) -> None:
    fake_apiserver.store.create(
        make_event(
            "e1",
            event_type="Warning",
            reason="BackOff",
            message="Back-off",
            count=7,
            host="node-1",
            series={"count": 3, "lastObservedTime": "2024-01-01T00:05:00.000000Z"},
        )
    )

    old = json.loads(core.read_namespaced_event("e1", "default", _preload_content=False).data)
    new = json.loads(events_v1.read_namespaced_event("e1", "default", _preload_content=False).data)

    assert new["apiVersion"] == "events.k8s.io/v1"
    assert new["metadata"] == old["metadata"]
    assert new["regarding"] == old["involvedObject"]
    assert new["note"] == old["message"] == "Back-off"
    assert new["deprecatedSource"] == old["source"] == {"component": "kubelet", "host": "node-1"}
    assert new["deprecatedCount"] == old["count"] == 7
    assert new["series"] == old["series"]
    assert new["deprecatedFirstTimestamp"] == old["firstTimestamp"]
    assert new["deprecatedLastTimestamp"] == old["lastTimestamp"]
    assert new["reportingController"] == old["reportingComponent"] == "kubelet"
    assert new["eventTime"] is None and old["eventTime"] is None  # Go writes zero times as null
    assert "involvedObject" not in new and "regarding" not in old


def test_event_created_through_events_v1_reads_back_through_core(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api, events_v1: k8s.EventsV1Api
) -> None:
    event = k8s.EventsV1Event(
        metadata=k8s.V1ObjectMeta(name="e1"),
        event_time=datetime(2024, 1, 1, tzinfo=UTC),
        reporting_controller="kubevents.io/leader",
        reporting_instance="kubevents-0",
        action="Elect",
        reason="LeaderElection",
        note="kubevents-0 became leader",
        type="Normal",
        regarding=k8s.V1ObjectReference(kind="Lease", namespace="kubevents", name="kubevents"),
    )

    created = events_v1.create_namespaced_event("kubevents", event)
    read = core.read_namespaced_event("e1", "kubevents")

    assert created.metadata.resource_version == read.metadata.resource_version == "1"
    assert (read.message, read.involved_object.kind, read.reporting_component) == (
        "kubevents-0 became leader",
        "Lease",
        "kubevents.io/leader",
    )
    assert read.count is None and read.first_timestamp is None


def test_event_created_through_core_reads_back_through_events_v1(
    core: k8s.CoreV1Api, events_v1: k8s.EventsV1Api
) -> None:
    core.create_namespaced_event(
        "default",
        k8s.CoreV1Event(
            metadata=k8s.V1ObjectMeta(generate_name="web-1."),
            involved_object=k8s.V1ObjectReference(kind="Pod", namespace="default", name="web-1"),
            reason="Pulled",
            message="Pulled image",
            type="Normal",
            count=1,
        ),
    )

    (event,) = json.loads(events_v1.list_namespaced_event("default", _preload_content=False).data)[
        "items"
    ]
    assert event["metadata"]["name"].startswith("web-1.")
    assert (event["note"], event["regarding"]["name"], event["deprecatedCount"]) == (
        "Pulled image",
        "web-1",
        1,
    )


def test_events_v1_create_is_validated(events_v1: k8s.EventsV1Api) -> None:
    error = api_error(
        lambda: events_v1.create_namespaced_event(
            "default",
            {
                "metadata": {"name": "e1"},
                "eventTime": "2024-01-01T00:00:00.000000Z",
                "reason": "Started",
                "type": "Normal",
            },
        )
    )

    assert (error.status, body(error)["reason"]) == (422, "Invalid")
    assert body(error)["message"] == (
        'Event.events.k8s.io "e1" is invalid: [reportingController: Required value, '
        "reportingInstance: Required value, action: Required value]"
    )


def test_put_patch_and_delete_through_both_apis(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api, events_v1: k8s.EventsV1Api
) -> None:
    fake_apiserver.store.create(make_event("e1", event_time="2024-01-01T00:00:00.000000Z"))

    event = core.read_namespaced_event("e1", "default")
    event.count = 2
    replaced = core.replace_namespaced_event("e1", "default", event)
    patched = events_v1.patch_namespaced_event("e1", "default", {"note": "patched"})
    events_v1.delete_namespaced_event("e1", "default")

    assert replaced.count == 2
    assert (patched.note, patched.deprecated_count) == ("patched", 2)
    assert fake_apiserver.store.objects() == []
    assert [r.method for r in fake_apiserver.requests.matching(path="/events/e1")] == [
        "GET",
        "PUT",
        "PATCH",
        "DELETE",
    ]


# -- watch ---------------------------------------------------------------------------


def test_watch_from_a_resource_version_replays_later_changes(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    store = fake_apiserver.store
    store.create(make_event("e1"))
    store.create(make_event("e2"))
    store.update({**make_event("e1"), "count": 2})
    store.delete("e2", namespace="default")

    events = read_events(watch(core, resource_version="1"), 3)

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "e2"),
        ("MODIFIED", "e1"),
        ("DELETED", "e2"),
    ]
    assert [e["object"]["metadata"]["resourceVersion"] for e in events] == ["2", "3", "4"]
    assert events[0]["object"]["kind"] == "Event"


def test_watch_sees_changes_made_while_it_is_open(
    fake_apiserver: FakeApiServer, events_v1: k8s.EventsV1Api
) -> None:
    response = watch(events_v1, resource_version="0")
    fake_apiserver.requests.wait_for(1, watch=True)
    fake_apiserver.store.create(make_event("e1", message="hello"))

    (event,) = read_events(response, 1)

    assert (event["type"], event["object"]["note"]) == ("ADDED", "hello")


def test_watch_without_resource_version_starts_with_the_current_objects(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 2)

    events = read_events(watch(core), 2)

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "e0"),
        ("ADDED", "e1"),
    ]


def test_watch_field_selector_turns_transitions_into_added_and_deleted(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    store = fake_apiserver.store
    store.create(make_event("e1"))
    store.update(make_event("e1", event_type="Warning"))
    store.update(make_event("e1", event_type="Normal"))

    events = read_events(watch(core, resource_version="1", field_selector="type=Warning"), 2)

    assert [e["type"] for e in events] == ["ADDED", "DELETED"]


def test_watch_sends_plain_bookmarks_at_the_latest_resource_version(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 2)

    events = read_events(
        watch(core, resource_version="2", allow_watch_bookmarks=True), 1, bookmarks=True
    )

    assert events == [
        {
            "type": "BOOKMARK",
            "object": {"kind": "Event", "apiVersion": "v1", "metadata": {"resourceVersion": "2"}},
        }
    ]


def test_no_bookmarks_unless_allowed(fake_apiserver: FakeApiServer, core: k8s.CoreV1Api) -> None:
    fake_apiserver.timeout_scale = 0.25  # timeoutSeconds=1 ends the stream after 0.25 s

    events = read_to_end(watch(core, resource_version="0", timeout_seconds=1))

    assert events == []


def test_send_initial_events_ends_with_an_annotated_bookmark(
    fake_apiserver: FakeApiServer, events_v1: k8s.EventsV1Api
) -> None:
    fill(fake_apiserver, 2)

    events = read_events(
        watch(
            events_v1,
            send_initial_events=True,
            resource_version_match="NotOlderThan",
            allow_watch_bookmarks=True,
        ),
        3,
        bookmarks=True,
    )

    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert events[2]["object"] == {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": {"resourceVersion": "2", "annotations": {"k8s.io/initial-events-end": "true"}},
    }


def test_timeout_seconds_ends_the_stream_cleanly(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fake_apiserver.store.create(make_event("e1"))
    fake_apiserver.timeout_scale = 0.2
    started = time.monotonic()

    events = read_to_end(
        watch(core, resource_version="0", timeout_seconds=1, allow_watch_bookmarks=True)
    )

    assert 0.2 <= time.monotonic() - started < 1.0
    assert events[0]["type"] == "ADDED"
    assert {e["type"] for e in events[1:]} <= {"BOOKMARK"}
    assert fake_apiserver.active_watches == 0


def test_watch_1_and_raw_http_work_too(fake_apiserver: FakeApiServer) -> None:
    fake_apiserver.store.create(make_event("e1"))

    with requests.get(
        f"{fake_apiserver.url}/apis/events.k8s.io/v1/namespaces/default/events",
        params={"watch": "1", "resourceVersion": "0"},
        headers={"Authorization": f"Bearer {fake_apiserver.token}"},
        stream=True,
        timeout=2,
    ) as response:
        line = next(response.iter_lines())

    assert response.headers["Transfer-Encoding"] == "chunked"
    assert json.loads(line)["object"]["regarding"]["name"] == "web-1"


def test_kubernetes_watch_stream_decodes_the_fakes_events(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 2, event_type="Warning")
    w = k8s_watch.Watch()
    seen = []

    for event in w.stream(
        core.list_namespaced_event,
        "default",
        resource_version="0",
        timeout_seconds=5,
        _request_timeout=TIMEOUT,
    ):
        seen.append((event["type"], event["object"].metadata.name, event["object"].type))
        if len(seen) == 2:
            w.stop()

    assert seen == [("ADDED", "e0", "Warning"), ("ADDED", "e1", "Warning")]
    assert w.resource_version == "2"


# -- 410 Expired ------------------------------------------------------------------------


def test_expired_watch_gets_an_error_event(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 12)
    fake_apiserver.compact(10)

    events = read_to_end(watch(core, resource_version="5"))

    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "too old resource version: 5 (10)",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


def test_watch_from_the_compaction_point_is_still_valid(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 12)
    fake_apiserver.compact(10)

    events = read_events(watch(core, resource_version="10"), 2)

    assert [e["object"]["metadata"]["name"] for e in events] == ["e10", "e11"]


def test_expired_watch_as_http_410(fake_apiserver: FakeApiServer, core: k8s.CoreV1Api) -> None:
    fill(fake_apiserver, 12)
    fake_apiserver.compact(10)
    fake_apiserver.expired_watch = ExpiredWatch.HTTP_410

    error = api_error(lambda: watch(core, resource_version="5"))

    assert error.status == 410
    assert body(error)["reason"] == "Expired"
    assert body(error)["message"] == "too old resource version: 5 (10)"


def test_expired_watch_as_an_empty_200_stream(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 12)
    fake_apiserver.compact(10)
    fake_apiserver.expired_watch = ExpiredWatch.EMPTY_200

    response = watch(core, resource_version="5")

    assert response.status == 200
    assert read_to_end(response) == []


def test_expire_fault_ends_a_watch_with_410_after_n_events(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fill(fake_apiserver, 3)
    fake_apiserver.faults.expire(after_events=1)

    events = read_to_end(watch(core, resource_version="0"))

    assert [e["type"] for e in events] == ["ADDED", "ERROR"]
    assert events[1]["object"]["code"] == 410


# -- faults -------------------------------------------------------------------------------


def test_429_carries_retry_after_to_the_client(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fake_apiserver.faults.status(429, retry_after=3)

    error = api_error(lambda: core.list_event_for_all_namespaces())
    after = core.list_event_for_all_namespaces()

    assert error.status == 429
    assert error.headers["Retry-After"] == "3"
    assert body(error) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 3},
        "code": 429,
    }
    assert after.items == []
    assert [r.status for r in fake_apiserver.requests] == [429, 200]


@pytest.mark.parametrize(("code", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable")])
def test_status_faults_hit_the_next_n_matching_requests(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api, code: int, reason: str
) -> None:
    fake_apiserver.faults.where(path="/pods").status(code, times=2)

    core.list_event_for_all_namespaces()  # does not match
    errors = [api_error(lambda: core.list_pod_for_all_namespaces()) for _ in range(2)]
    core.list_pod_for_all_namespaces()

    assert [(e.status, body(e)["reason"]) for e in errors] == [(code, reason)] * 2
    assert fake_apiserver.faults.pending == []
    assert len(fake_apiserver.faults.fired) == 2


def test_403_fault_has_the_rbac_message(
    fake_apiserver: FakeApiServer, events_v1: k8s.EventsV1Api
) -> None:
    fake_apiserver.faults.status(403)

    error = api_error(lambda: events_v1.list_namespaced_event("shop"))

    assert body(error)["message"] == (
        'events.events.k8s.io is forbidden: User "system:serviceaccount:kubevents:kubevents" '
        'cannot list resource "events" in API group "events.k8s.io" in the namespace "shop"'
    )


def test_cut_stream_mid_line(fake_apiserver: FakeApiServer, core: k8s.CoreV1Api) -> None:
    fill(fake_apiserver, 3)
    fake_apiserver.faults.cut_stream(after_events=1)
    response = watch(core, resource_version="0")
    received = b""

    with pytest.raises(urllib3.exceptions.ProtocolError):
        for chunk in response.stream(4096):
            received += chunk

    complete, _, partial = received.rpartition(b"\n")
    assert json.loads(complete)["object"]["metadata"]["name"] == "e0"
    assert partial.startswith(b'{"type":"ADDED"')
    with pytest.raises(json.JSONDecodeError):
        json.loads(partial)


def test_cut_stream_between_lines(fake_apiserver: FakeApiServer, core: k8s.CoreV1Api) -> None:
    fill(fake_apiserver, 3)
    fake_apiserver.faults.cut_stream(after_events=2, mid_line=False)
    response = watch(core, resource_version="0")
    received = b""

    with pytest.raises(urllib3.exceptions.ProtocolError):
        for chunk in response.stream(4096):
            received += chunk

    assert [json.loads(line)["object"]["metadata"]["name"] for line in received.splitlines()] == [
        "e0",
        "e1",
    ]
    assert received.endswith(b"\n")


def test_stalled_watch_sends_headers_then_nothing(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    fake_apiserver.store.create(make_event("e1"))
    fake_apiserver.faults.stall()

    response = core.list_event_for_all_namespaces(
        watch=True, resource_version="0", _preload_content=False, _request_timeout=(1.0, 0.2)
    )

    assert response.status == 200
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        response.read(1)


def test_delay_then_normal_answer(fake_apiserver: FakeApiServer, core: k8s.CoreV1Api) -> None:
    fake_apiserver.faults.delay(0.15)
    started = time.monotonic()

    core.list_event_for_all_namespaces()

    assert time.monotonic() - started >= 0.15


def test_empty_200_watch(fake_apiserver: FakeApiServer, core: k8s.CoreV1Api) -> None:
    fill(fake_apiserver, 2)
    fake_apiserver.faults.empty_200()

    assert read_to_end(watch(core, resource_version="0")) == []
    assert len(read_events(watch(core, resource_version="0"), 2)) == 2


def test_request_log_records_what_the_client_sent(
    fake_apiserver: FakeApiServer, core: k8s.CoreV1Api
) -> None:
    core.list_namespaced_event("shop", field_selector="type=Warning", limit=10)

    (request,) = fake_apiserver.requests
    assert (request.method, request.path, request.status) == (
        "GET",
        "/api/v1/namespaces/shop/events",
        200,
    )
    assert request.query == {"fieldSelector": "type=Warning", "limit": "10"}
    assert request.headers["Authorization"] == f"Bearer {fake_apiserver.token}"
    assert not request.watch


# -- auth -------------------------------------------------------------------------------


def test_bad_token_is_401(fake_apiserver: FakeApiServer) -> None:
    with k8s.ApiClient(fake_apiserver.kube_config(token="wrong")) as api_client:
        error = api_error(lambda: k8s.CoreV1Api(api_client).list_event_for_all_namespaces())

    assert error.status == 401
    assert body(error) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }


def test_allow_list_gives_403_with_the_rbac_message(fake_apiserver: FakeApiServer) -> None:
    fake_apiserver.add_token("limited", user=LIMITED_USER, allow=[("list", "", "events")])

    with k8s.ApiClient(fake_apiserver.kube_config(token="limited")) as api_client:
        core_events = k8s.CoreV1Api(api_client).list_event_for_all_namespaces()
        error = api_error(lambda: k8s.EventsV1Api(api_client).list_event_for_all_namespaces())

    assert core_events.items == []
    assert error.status == 403
    assert body(error)["reason"] == "Forbidden"
    assert body(error)["details"] == {"group": "events.k8s.io", "kind": "events"}
    assert body(error)["message"] == (
        'events.events.k8s.io is forbidden: User "system:serviceaccount:ns:sa" cannot list '
        'resource "events" in API group "events.k8s.io" at the cluster scope'
    )


def test_anonymous_may_read_version_but_not_events(fake_apiserver: FakeApiServer) -> None:
    version = requests.get(f"{fake_apiserver.url}/version", timeout=2)
    events = requests.get(f"{fake_apiserver.url}/api/v1/events", timeout=2)

    assert version.json()["gitVersion"].startswith("v1.")
    assert events.status_code == 403
    assert 'User "system:anonymous" cannot list resource "events"' in events.json()["message"]


# -- Leases -----------------------------------------------------------------------------


def new_lease(holder: str) -> k8s.V1Lease:
    return k8s.V1Lease(
        metadata=k8s.V1ObjectMeta(name="kubevents", annotations={"kubevents.io/checkpoint": "{}"}),
        spec=k8s.V1LeaseSpec(holder_identity=holder, lease_duration_seconds=15),
    )


def test_lease_optimistic_concurrency(leases: k8s.CoordinationV1Api) -> None:
    leases.create_namespaced_lease("kubevents", new_lease("a"))
    seen_by_a = leases.read_namespaced_lease("kubevents", "kubevents")
    seen_by_b = leases.read_namespaced_lease("kubevents", "kubevents")

    seen_by_a.spec.holder_identity = "a"
    seen_by_a.metadata.annotations["kubevents.io/checkpoint"] = '{"rv": "42"}'
    leases.replace_namespaced_lease("kubevents", "kubevents", seen_by_a)
    seen_by_b.spec.holder_identity = "b"
    conflict = api_error(
        lambda: leases.replace_namespaced_lease("kubevents", "kubevents", seen_by_b)
    )
    exists = api_error(lambda: leases.create_namespaced_lease("kubevents", new_lease("c")))

    assert (conflict.status, body(conflict)["reason"]) == (409, "Conflict")
    assert body(conflict)["message"].startswith(
        'Operation cannot be fulfilled on leases.coordination.k8s.io "kubevents": the object has been modified'
    )
    assert (exists.status, body(exists)["reason"]) == (409, "AlreadyExists")
    final = leases.read_namespaced_lease("kubevents", "kubevents")
    assert final.spec.holder_identity == "a"
    assert final.metadata.annotations == {"kubevents.io/checkpoint": '{"rv": "42"}'}


def test_lease_patch_with_a_stale_resource_version_conflicts(leases: k8s.CoordinationV1Api) -> None:
    created = leases.create_namespaced_lease("kubevents", new_lease("a"))
    stale = created.metadata.resource_version

    patched = leases.patch_namespaced_lease(
        "kubevents",
        "kubevents",
        {"metadata": {"annotations": {"k": "v"}}, "spec": {"holderIdentity": "b"}},
    )
    conflict = api_error(
        lambda: leases.patch_namespaced_lease(
            "kubevents",
            "kubevents",
            {"metadata": {"resourceVersion": stale}, "spec": {"holderIdentity": "c"}},
        )
    )

    assert patched.spec.holder_identity == "b"
    assert patched.metadata.annotations == {"kubevents.io/checkpoint": "{}", "k": "v"}
    assert conflict.status == 409


def test_two_clients_racing_from_the_same_version_one_wins(
    fake_apiserver: FakeApiServer, leases: k8s.CoordinationV1Api
) -> None:
    leases.create_namespaced_lease("kubevents", new_lease("nobody"))
    fake_apiserver.faults.where(method="PUT").delay(0.05, times=2)  # both PUTs in flight together
    barrier = threading.Barrier(2)
    results: dict[str, int] = {}

    def campaign(identity: str) -> None:
        with k8s.ApiClient(fake_apiserver.kube_config()) as api_client:
            api = k8s.CoordinationV1Api(api_client)
            lease = api.read_namespaced_lease("kubevents", "kubevents")
            lease.spec.holder_identity = identity
            barrier.wait(timeout=2)
            try:
                api.replace_namespaced_lease("kubevents", "kubevents", lease)
                results[identity] = 200
            except ApiException as e:
                results[identity] = e.status

    threads = [threading.Thread(target=campaign, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2)

    assert sorted(results.values()) == [200, 409]
    winner = next(name for name, code in results.items() if code == 200)
    assert leases.read_namespaced_lease("kubevents", "kubevents").spec.holder_identity == winner


# -- read-only resources ------------------------------------------------------------------


def test_pods_replicasets_and_nodes_list_and_watch(
    fake_apiserver: FakeApiServer, fake_api_client: k8s.ApiClient
) -> None:
    store = fake_apiserver.store
    store.create(make_object("Pod", "web-1", spec={"nodeName": "node-1", "containers": [APP]}))
    store.create(make_object("ReplicaSet", "web-7d9", api_version="apps/v1", spec={"selector": {}}))
    store.create(make_object("Node", "node-1", namespace=None))
    store.create(make_object("Job", "backup-1", api_version="batch/v1", namespace="ops"))
    core, apps = k8s.CoreV1Api(fake_api_client), k8s.AppsV1Api(fake_api_client)

    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=node-1")
    replica_sets = apps.list_namespaced_replica_set("default")
    nodes = core.list_node()
    jobs = k8s.BatchV1Api(fake_api_client).list_job_for_all_namespaces(_preload_content=False)
    response = core.list_pod_for_all_namespaces(
        watch=True, resource_version="0", _preload_content=False, _request_timeout=TIMEOUT
    )
    (added,) = read_events(response, 1)

    assert [p.metadata.name for p in pods.items] == ["web-1"]
    assert [r.metadata.name for r in replica_sets.items] == ["web-7d9"]
    assert [(n.metadata.name, n.metadata.namespace) for n in nodes.items] == [("node-1", None)]
    assert [j["metadata"]["name"] for j in json.loads(jobs.data)["items"]] == ["backup-1"]
    assert (added["type"], added["object"]["kind"]) == ("ADDED", "Pod")


def test_read_only_resources_refuse_writes(core: k8s.CoreV1Api) -> None:
    error = api_error(lambda: core.create_namespaced_pod("default", {"metadata": {"name": "p"}}))

    assert (error.status, body(error)["reason"]) == (405, "MethodNotAllowed")


def test_store_python_api_errors_are_statuses(fake_apiserver: FakeApiServer) -> None:
    with pytest.raises(ApiStatusError) as missing:
        fake_apiserver.store.get("nope", namespace="default")

    assert missing.value.status["message"] == 'events "nope" not found'


# -- discovery, routes ------------------------------------------------------------------


def test_version_and_discovery(fake_api_client: k8s.ApiClient) -> None:
    version = k8s.VersionApi(fake_api_client).get_code()
    core_versions = k8s.CoreApi(fake_api_client).get_api_versions()
    groups = k8s.ApisApi(fake_api_client).get_api_versions()
    resources = k8s.EventsV1Api(fake_api_client).get_api_resources()

    assert version.git_version == "v1.34.0-fake"
    assert core_versions.versions == ["v1"]
    assert {"events.k8s.io", "coordination.k8s.io", "apps", "batch"} <= {
        g.name for g in groups.groups
    }
    assert [(r.name, r.kind, r.namespaced) for r in resources.resources] == [
        ("events", "Event", True)
    ]


def test_health_endpoints(fake_apiserver: FakeApiServer) -> None:
    for path in ("/healthz", "/readyz", "/livez"):
        response = requests.get(fake_apiserver.url + path, timeout=2)
        assert (response.status_code, response.text) == (200, "ok")


def test_unknown_route_is_404_with_a_hint(fake_apiserver: FakeApiServer) -> None:
    response = requests.get(
        f"{fake_apiserver.url}/apis/example.com/v1/widgets",
        headers={"Authorization": f"Bearer {fake_apiserver.token}"},
        timeout=2,
    )

    assert response.status_code == 404
    assert response.json()["reason"] == "NotFound"
    assert "FakeApiServer.add_resource(ApiResource(" in response.json()["message"]


def test_added_resource_is_served(fake_apiserver: FakeApiServer) -> None:
    fake_apiserver.add_resource(ApiResource("example.com", "v1", "widgets", "Widget"))
    fake_apiserver.store.create(make_object("Widget", "w1", api_version="example.com/v1"))

    response = requests.get(
        f"{fake_apiserver.url}/apis/example.com/v1/namespaces/default/widgets",
        headers={"Authorization": f"Bearer {fake_apiserver.token}"},
        timeout=2,
    )

    assert [item["metadata"]["name"] for item in response.json()["items"]] == ["w1"]


# -- TLS, kubeconfig, shutdown ------------------------------------------------------------


def test_tls_with_the_ca_file(fake_apiserver_tls: FakeApiServer) -> None:
    fake_apiserver_tls.store.create(make_event("e1"))

    with k8s.ApiClient(fake_apiserver_tls.kube_config()) as api_client:
        listed = k8s.CoreV1Api(api_client).list_event_for_all_namespaces()

    assert fake_apiserver_tls.url.startswith("https://127.0.0.1:")
    assert [e.metadata.name for e in listed.items] == ["e1"]


def test_tls_with_a_wrong_ca_fails(fake_apiserver_tls: FakeApiServer, tmp_path: Path) -> None:
    other: Pki = make_pki(tmp_path / "other")
    config = fake_apiserver_tls.kube_config()
    config.ssl_ca_cert = str(other.ca_file)

    with k8s.ApiClient(config) as api_client:
        error = api_error(lambda: k8s.CoreV1Api(api_client).list_event_for_all_namespaces())

    assert error.status == 0
    assert "CERTIFICATE_VERIFY_FAILED" in str(error.reason)
    assert len(fake_apiserver_tls.requests) == 0


def test_kubeconfig_file_works_with_the_client_loader(
    fake_apiserver_tls: FakeApiServer, tmp_path: Path
) -> None:
    path = fake_apiserver_tls.write_kubeconfig(tmp_path / "kubeconfig")
    config = k8s.Configuration()

    k8s_config.load_kube_config(config_file=str(path), client_configuration=config)
    with k8s.ApiClient(config) as api_client:
        k8s.CoreV1Api(api_client).list_namespaced_event("default")

    assert config.host == fake_apiserver_tls.url
    (request,) = fake_apiserver_tls.requests
    assert request.headers["Authorization"] == f"Bearer {fake_apiserver_tls.token}"


def test_stop_ends_open_watches_and_joins_every_thread() -> None:
    server = FakeApiServer(bookmark_interval=0.1).start()
    api_client = k8s.ApiClient(server.kube_config())
    response = watch(k8s.CoreV1Api(api_client), resource_version="0")
    server.requests.wait_for(1, watch=True)
    idle = requests.get(f"{server.url}/healthz", timeout=2)  # a keep-alive connection left open

    server.stop(timeout=2)  # raises if a connection thread is left behind

    started = time.monotonic()
    with contextlib.suppress(urllib3.exceptions.ProtocolError):  # ended or cut: both fine
        for _ in response.stream(4096):
            pass
    assert time.monotonic() - started < 1.0  # the server ended it, not the client's read timeout
    assert idle.ok
    api_client.close()
