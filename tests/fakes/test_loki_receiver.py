"""The fake Loki push API, driven with ``requests``: the body formats, each validation
limit's 400, the order window, and the fault knobs.

The clock is pinned (``now_ns``), so the age checks and their messages are exact.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import cramjam
import pytest
import requests
from google.protobuf.timestamp_pb2 import Timestamp

from kubevents.sinks.loki_proto import EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter
from tests.fakes.loki_receiver import FakeLoki, LokiLimits

NOW = 1_795_255_201 * 10**9  # 2026-11-21T10:00:01Z
SECOND = 10**9
HOUR = 3600 * SECOND
DAY = 24 * HOUR
WEB = {"app": "web"}

Value = tuple[int, str] | tuple[int, str, Mapping[str, str]]


@pytest.fixture
def loki(loki_receiver: FakeLoki) -> FakeLoki:
    loki_receiver.now_ns = lambda: NOW
    return loki_receiver


def stream(labels: Mapping[str, str], *values: Value) -> dict[str, Any]:
    """One JSON stream; timestamps go out as strings, as Loki requires."""
    return {"stream": dict(labels), "values": [[str(v[0]), *v[1:]] for v in values]}


def push(loki: FakeLoki, *streams: dict[str, Any], **headers: str) -> requests.Response:
    return requests.post(loki.push_url, json={"streams": list(streams)}, headers=headers, timeout=2)


def push_protobuf(loki: FakeLoki, request: Any, *, framed: bool = False) -> requests.Response:
    data = request.SerializeToString()
    body = cramjam.snappy.compress(data) if framed else cramjam.snappy.compress_raw(data)
    headers = {"Content-Type": "application/x-protobuf"}
    return requests.post(loki.push_url, data=bytes(body), headers=headers, timeout=2)


def assert_rejected(response: requests.Response, *messages: str) -> None:
    """A 400 whose plain-text body is exactly ``messages``, one per line."""
    assert (response.status_code, response.headers["Content-Type"]) == (
        400,
        "text/plain; charset=utf-8",
    )
    assert response.text == "\n".join(messages) + "\n"


# -- the body formats ------------------------------------------------------------------------


def test_json_push_is_decoded_and_answered_204(loki: FakeLoki) -> None:
    response = push(
        loki,
        stream(
            {"service_name": "kubevents", "k8s_namespace_name": "shop"},
            (
                NOW,
                "Back-off pulling image",
                {"k8s.event.reason": "BackOff", "severity_text": "Warning"},
            ),
            (NOW - SECOND, "Scheduled"),
        ),
        Authorization="Bearer s3cret",
    )

    assert (response.status_code, response.content) == (204, b"")
    first, second = loki.entries()
    assert first.labels == {"service_name": "kubevents", "k8s_namespace_name": "shop"}
    assert (first.ts_ns, first.line, first.tenant) == (NOW, "Back-off pulling image", "fake")
    # Loki normalises structured-metadata names as it stores them.
    assert first.structured_metadata == {"k8s_event_reason": "BackOff", "severity_text": "Warning"}
    assert first.authorization == "Bearer s3cret"
    assert (second.ts_ns, second.line, second.structured_metadata) == (
        NOW - SECOND,
        "Scheduled",
        {},
    )
    [received] = loki.pushes
    assert (received.status, received.content_type) == (204, "application/json")


def test_json_push_with_gzip_and_a_tenant(loki: FakeLoki) -> None:
    body = gzip.compress(json.dumps({"streams": [stream(WEB, (NOW, "hello"))]}).encode())
    headers = {
        "Content-Type": "application/json",
        "Content-Encoding": "gzip",
        "X-Scope-OrgID": "team-a",
    }

    response = requests.post(loki.push_url, data=body, headers=headers, timeout=2)

    assert response.status_code == 204
    [entry] = loki.entries(WEB, tenant="team-a")
    assert entry.line == "hello"
    assert loki.entries(tenant="fake") == []
    assert loki.pushes[0].body == body  # as received, still compressed


def test_protobuf_with_raw_snappy_is_decoded(loki: FakeLoki) -> None:
    entry = EntryAdapter(
        timestamp=Timestamp(seconds=NOW // SECOND, nanos=5),
        line="pulled",
        structuredMetadata=[LabelPairAdapter(name="trace_id", value="0242ac120002")],
    )
    request = PushRequest(
        streams=[StreamAdapter(labels='{app="web", note="a \\"quoted\\" value"}', entries=[entry])]
    )

    response = push_protobuf(loki, request)

    assert response.status_code == 204
    [stored] = loki.entries()
    assert stored.labels == {"app": "web", "note": 'a "quoted" value'}
    assert (stored.ts_ns, stored.line) == (NOW + 5, "pulled")
    assert stored.structured_metadata == {"trace_id": "0242ac120002"}


def test_an_unknown_content_encoding_is_400(loki: FakeLoki) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "br"}

    response = requests.post(loki.push_url, data=b"{}", headers=headers, timeout=2)

    assert (response.status_code, response.text) == (400, 'Content-Encoding "br" not supported\n')


def test_protobuf_with_framed_snappy_is_refused(loki: FakeLoki) -> None:
    entry = EntryAdapter(timestamp=Timestamp(seconds=NOW // SECOND), line="x")
    request = PushRequest(streams=[StreamAdapter(labels='{app="web"}', entries=[entry])])

    response = push_protobuf(loki, request, framed=True)

    assert response.status_code == 400
    assert "snappy" in response.text
    assert loki.entries() == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"streams": [{"stream": WEB, "values": [[NOW, "number ts"]]}]}, "must be a string"),
        (
            {"streams": [{"stream": WEB, "values": [[str(NOW), "x", {"n": {"nested": "no"}}]]}]},
            "object of strings",
        ),
        ({"stream": WEB}, '{"streams": [...]}'),
    ],
)
def test_malformed_json_is_400(loki: FakeLoki, body: Any, reason: str) -> None:
    response = requests.post(loki.push_url, json=body, timeout=2)

    assert response.status_code == 400
    assert reason in response.text


# -- validation limits -------------------------------------------------------------------------


def labels(count: int) -> dict[str, str]:
    return {f"l{n:02d}": "v" for n in range(count)}


def text(label_set: Mapping[str, str]) -> str:
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(label_set.items())) + "}"


LIMIT_CASES = [
    pytest.param(
        stream({"k8s.namespace": "shop"}, (NOW, "x")),
        "Error parsing labels '{k8s.namespace=\"shop\"}' with error: invalid label name "
        "'k8s.namespace': must match [a-zA-Z_][a-zA-Z0-9_]*",
        id="label-name",
    ),
    pytest.param(
        stream({}, (NOW, "x")),
        "error at least one label pair is required per stream",
        id="no-labels",
    ),
    pytest.param(
        stream(labels(16), (NOW, "x")),
        f"entry for stream '{text(labels(16))}' has 16 label names; limit 15",
        id="label-names-per-series",
    ),
    pytest.param(
        stream({"app": "v" * 2049}, (NOW, "x")),
        f"stream '{{app=\"{'v' * 2049}\"}}' has label value too long: '{'v' * 2049}'",
        id="label-value-length",
    ),
    pytest.param(
        stream(WEB, (NOW, "x" * 256_001)),
        "Max entry size '256000' bytes exceeded for stream '{app=\"web\"}' "
        "while adding an entry with length '256001' bytes",
        id="line-size",
    ),
    pytest.param(
        stream(WEB, (NOW - 8 * DAY, "x")),
        "entry for stream '{app=\"web\"}' has timestamp too old: 2026-11-13T10:00:01Z, "
        "oldest acceptable timestamp is: 2026-11-14T10:00:01Z",
        id="too-old",
    ),
    pytest.param(
        stream(WEB, (NOW + 11 * 60 * SECOND, "x")),
        "entry for stream '{app=\"web\"}' has timestamp too new: 2026-11-21T10:11:01Z",
        id="too-new",
    ),
    pytest.param(
        stream(WEB, (NOW, "x", {"big": "v" * 63_998})),
        "stream '{app=\"web\"}' has structured metadata too large: '64001' bytes, limit: "
        "'64000' bytes. Please see `limits_config.max_structured_metadata_size` or contact "
        "your Loki administrator to increase it.",
        id="structured-metadata-size",
    ),
    pytest.param(
        stream(WEB, (NOW, "x", {f"k{n}": "v" for n in range(129)})),
        "stream '{app=\"web\"}' has too many structured metadata labels: '129', limit: '128'. "
        "Please see `limits_config.max_structured_metadata_entries_count` or contact your "
        "Loki administrator to increase it.",
        id="structured-metadata-count",
    ),
]


@pytest.mark.parametrize(("body", "message"), LIMIT_CASES)
def test_each_limit_is_a_400_with_lokis_message(
    loki: FakeLoki, body: dict[str, Any], message: str
) -> None:
    response = push(loki, body)

    assert_rejected(response, message)
    assert loki.entries() == []
    assert loki.pushes[0].rejected == 1


def test_service_name_does_not_count_against_the_label_limit(loki: FakeLoki) -> None:
    response = push(loki, stream({**labels(15), "service_name": "kubevents"}, (NOW, "x")))

    assert response.status_code == 204


def test_limits_are_configurable(loki: FakeLoki) -> None:
    loki.limits = replace(loki.limits, max_line_size=4, reject_old_samples_max_age=3600.0)

    response = push(loki, stream(WEB, (NOW, "12345"), (NOW - 2 * HOUR, "old")))

    assert_rejected(
        response,
        "Max entry size '4' bytes exceeded for stream '{app=\"web\"}' "
        "while adding an entry with length '5' bytes",
        "entry for stream '{app=\"web\"}' has timestamp too old: 2026-11-21T08:00:01Z, "
        "oldest acceptable timestamp is: 2026-11-21T09:00:01Z",
    )


def test_the_valid_entries_of_a_rejected_push_are_stored(loki: FakeLoki) -> None:
    response = push(
        loki,
        stream(WEB, (NOW, "kept"), (NOW - 8 * DAY, "too old")),
        stream({"bad.name": "x"}, (NOW, "refused")),
        stream({"app": "db"}, (NOW, "kept too")),
    )

    assert response.status_code == 400
    assert [e.line for e in loki.entries()] == ["kept", "kept too"]
    assert (loki.pushes[0].rejected, len(loki.pushes[0].entries)) == (2, 2)


# -- order, duplicates ---------------------------------------------------------------------------


def test_out_of_order_entries_within_the_window_are_accepted(loki: FakeLoki) -> None:
    response = push(
        loki, stream(WEB, (NOW, "c"), (NOW - 50 * 60 * SECOND, "a"), (NOW - SECOND, "b"))
    )

    assert response.status_code == 204
    assert [e.line for e in loki.entries()] == ["c", "a", "b"]


def test_an_entry_too_far_behind_its_stream_is_rejected_like_the_ingester_does(
    loki: FakeLoki,
) -> None:
    assert push(loki, stream(WEB, (NOW, "newest"))).status_code == 204

    response = push(
        loki,
        stream(
            WEB, (NOW - 2 * HOUR + SECOND // 2, "behind"), (NOW - 30 * 60 * SECOND, "in window")
        ),
        stream({"app": "db"}, (NOW - 2 * HOUR, "another stream: fine")),
    )

    assert_rejected(
        response,
        "entry with timestamp 2026-11-21 08:00:01.5 +0000 UTC ignored, reason: 'entry too far "
        "behind, entry timestamp is: 2026-11-21T08:00:01Z, oldest acceptable timestamp is: "
        "2026-11-21T09:00:01Z',",
        "user 'fake', total ignored: 1 out of 2 for stream: {app=\"web\"}",
    )
    assert [e.line for e in loki.entries()] == ["newest", "in window", "another stream: fine"]


def test_an_identical_entry_is_stored_once(loki: FakeLoki) -> None:
    body = stream(WEB, (NOW, "same"))

    assert [push(loki, body).status_code for _ in range(2)] == [204, 204]

    assert [e.line for e in loki.entries()] == ["same"]
    assert [p.duplicates for p in loki.pushes] == [0, 1]


# -- tenants, routes -----------------------------------------------------------------------------


def test_auth_enabled_requires_a_tenant(loki: FakeLoki) -> None:
    loki.limits = LokiLimits(auth_enabled=True)

    refused = push(loki, stream(WEB, (NOW, "x")))
    accepted = push(loki, stream(WEB, (NOW, "x")), **{"X-Scope-OrgID": "team-a"})

    assert (refused.status_code, refused.text) == (401, "no org id\n")
    assert accepted.status_code == 204


def test_ready_labels_and_unknown_routes(loki: FakeLoki) -> None:
    push(loki, stream({"app": "web", "env": "prod"}, (NOW, "x")))

    assert requests.get(loki.url + "/ready", timeout=2).text == "ready\n"
    assert requests.get(loki.url + "/loki/api/v1/labels", timeout=2).json() == {
        "status": "success",
        "data": ["app", "env"],
    }
    missing = requests.post(loki.url + "/api/prom/push", timeout=2)
    assert missing.status_code == 404
    assert "/loki/api/v1/push" in missing.text
    assert requests.get(loki.push_url, timeout=2).status_code == 405


# -- faults ----------------------------------------------------------------------------------


def test_429_with_retry_after_then_accepted(loki: FakeLoki) -> None:
    loki.faults.status(429, retry_after=2, times=1)

    throttled = push(loki, stream(WEB, (NOW, "x")))
    retried = push(loki, stream(WEB, (NOW, "x")))

    assert (throttled.status_code, throttled.headers["Retry-After"]) == (429, "2")
    assert "rate limit" in throttled.text
    assert retried.status_code == 204
    assert loki.outcomes() == {429: 1, 204: 1}
    assert len(loki.entries()) == 1


@pytest.mark.parametrize("code", [500, 503])
def test_server_errors_store_nothing(loki: FakeLoki, code: int) -> None:
    loki.faults.status(code, times=2)

    statuses = [push(loki, stream(WEB, (NOW, "x"))).status_code for _ in range(3)]

    assert statuses == [code, code, 204]
    assert loki.calls(code) == 2


def test_slow_loki_times_the_client_out(loki: FakeLoki) -> None:
    loki.delay = 0.2

    with pytest.raises(requests.Timeout):
        requests.post(loki.push_url, json={"streams": [stream(WEB, (NOW, "late"))]}, timeout=0.1)

    [entry] = loki.wait_for_entries(1)
    assert entry.line == "late"  # stored although the client gave up: a retry is a duplicate


def test_down_refuses_and_up_serves_the_same_port(loki: FakeLoki) -> None:
    url, body = loki.push_url, {"streams": [stream(WEB, (NOW, "x"))]}
    with requests.Session() as session:  # keeps its connection alive between requests
        assert session.post(url, json=body, timeout=2).status_code == 204

        loki.down()
        with pytest.raises(requests.ConnectionError):  # the idle connection was closed too
            session.post(url, json=body, timeout=2)
        loki.up()

        assert loki.push_url == url
        body["streams"][0]["values"][0][1] = "after"
        assert session.post(url, json=body, timeout=2).status_code == 204
    assert [e.line for e in loki.entries()] == ["x", "after"]


def test_wait_for_entries_says_what_happened(loki: FakeLoki) -> None:
    loki.faults.status(503)
    push(loki, stream(WEB, (NOW, "x")))

    with pytest.raises(TimeoutError, match=r"0 of 1 entries stored .*503: 1"):
        loki.wait_for_entries(1, timeout=0.05)


def test_entries_filter_by_label_selector(loki: FakeLoki) -> None:
    push(loki, stream(WEB, (NOW, "w")), stream({"app": "db"}, (NOW, "d")))

    lines: Sequence[str] = [e.line for e in loki.entries({"app": "db"})]
    assert lines == ["d"]
