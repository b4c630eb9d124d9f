"""OTLP encoding: compared message by message with a request written out by hand."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kubevents.records import AttrValue, OutputRecord, ResourceInfo
from kubevents.sinks import otlp_encode
from kubevents.sinks.limits import limit_records
from kubevents.sinks.otlp_encode import build_logs, decode_value, encode_logs, encode_logs_bytes

RESOURCE = ResourceInfo(service_version="1.2.3", instance_id="kv-0", cluster_name="prod")


def record(namespace: str, body: str, /, **attributes: AttrValue) -> OutputRecord:
    return OutputRecord(
        timestamp_ns=1_795_255_201_000_000_000,
        observed_ns=1_795_255_202_500_000_000,
        severity_number=13,
        severity_text="Warning",
        event_name="k8s.event",
        body=body,
        namespace=namespace,
        attributes=dict(attributes),
    )


def kv(key: str, **value: object) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(**value))  # type: ignore[arg-type]


def resource(namespace: str | None) -> Resource:
    attrs = [
        kv("service.name", string_value="kubevents"),
        kv("service.version", string_value="1.2.3"),
        kv("service.instance.id", string_value="kv-0"),
        kv("k8s.cluster.name", string_value="prod"),
    ]
    if namespace:
        attrs.append(kv("k8s.namespace.name", string_value=namespace))
    return Resource(attributes=attrs)


def log(body: str, attributes: list[KeyValue]) -> LogRecord:
    return LogRecord(
        time_unix_nano=1_795_255_201_000_000_000,
        observed_time_unix_nano=1_795_255_202_500_000_000,
        severity_number=13,  # type: ignore[arg-type]
        severity_text="Warning",
        event_name="k8s.event",
        body=AnyValue(string_value=body),
        attributes=attributes,
    )


def test_one_resource_logs_per_namespace_in_first_seen_order() -> None:
    records = [
        record("shop", "a", **{"k8s.event.reason": "BackOff"}),
        record("", "node", **{"k8s.event.reason": "NodeNotReady"}),
        record("shop", "b", **{"k8s.event.reason": "Failed"}),
    ]
    scope = InstrumentationScope(name="kubevents", version="9.9")
    expected = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=resource("shop"),
                scope_logs=[
                    ScopeLogs(
                        scope=scope,
                        log_records=[
                            log("a", [kv("k8s.event.reason", string_value="BackOff")]),
                            log("b", [kv("k8s.event.reason", string_value="Failed")]),
                        ],
                    )
                ],
            ),
            ResourceLogs(
                resource=resource(None),  # cluster-scoped: no k8s.namespace.name
                scope_logs=[
                    ScopeLogs(
                        scope=scope,
                        log_records=[
                            log("node", [kv("k8s.event.reason", string_value="NodeNotReady")])
                        ],
                    )
                ],
            ),
        ]
    )
    assert encode_logs(records, RESOURCE, scope_version="9.9") == expected


def test_attribute_values_keep_their_types() -> None:
    attrs: dict[str, AttrValue] = {
        "s": "text",
        "i": 42,
        "f": 2.5,
        "b": True,
        "l": ["x", "y"],
    }
    request = encode_logs([record("shop", "m", **attrs)], RESOURCE)
    got = request.resource_logs[0].scope_logs[0].log_records[0].attributes
    assert list(got) == [
        kv("s", string_value="text"),
        kv("i", int_value=42),
        kv("f", double_value=2.5),
        kv("b", bool_value=True),
        kv(
            "l",
            array_value=ArrayValue(values=[AnyValue(string_value="x"), AnyValue(string_value="y")]),
        ),
    ]


def test_an_empty_batch_is_an_empty_request() -> None:
    assert encode_logs([], RESOURCE) == ExportLogsServiceRequest()


_values = st.one_of(
    st.text(max_size=20),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.booleans(),
    st.lists(st.text(max_size=5), max_size=3),
)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["", "a", "b"]),
            st.text(max_size=30),
            st.dictionaries(st.text(min_size=1, max_size=10), _values, max_size=5),
        ),
        max_size=8,
    )
)
def test_decoding_gives_back_every_record(
    items: list[tuple[str, str, dict[str, AttrValue]]],
) -> None:
    records = [record(ns, body, **attrs) for ns, body, attrs in items]
    request = ExportLogsServiceRequest.FromString(
        encode_logs(records, RESOURCE).SerializeToString()
    )
    decoded = [
        (
            {kv.key: decode_value(kv.value) for kv in rl.resource.attributes}.get(
                "k8s.namespace.name", ""
            ),
            lr.body.string_value,
            {kv.key: decode_value(kv.value) for kv in lr.attributes},
        )
        for rl in request.resource_logs
        for sl in rl.scope_logs
        for lr in sl.log_records
    ]
    expected = sorted(((r.namespace, r.body, r.attributes) for r in records), key=repr)
    assert sorted(decoded, key=repr) == expected
    assert len({ns for ns, _, _ in decoded}) == len(request.resource_logs)


_VALUES = st.one_of(
    st.text(max_size=200),
    st.integers(-(2**63), 2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=80), max_size=4),
)
_RECORDS = st.builds(
    OutputRecord,
    timestamp_ns=st.integers(0, 2**64 - 1),
    observed_ns=st.integers(0, 2**64 - 1),
    severity_number=st.sampled_from([0, 9, 13, 17, 21]),
    severity_text=st.text(max_size=10),
    event_name=st.text(max_size=20),
    body=st.text(max_size=300),
    namespace=st.text(max_size=10),
    attributes=st.dictionaries(st.text(max_size=70), _VALUES, max_size=30),
)


@given(st.lists(_RECORDS, max_size=6), st.text(max_size=5), st.text(max_size=5))
def test_the_fast_writer_makes_the_bytes_the_protobuf_builder_makes(
    records: list[OutputRecord], cluster: str, version: str
) -> None:
    resource = ResourceInfo("1.0", "kv-0", cluster)
    built = build_logs(records, resource, scope_version=version)
    assert encode_logs(records, resource, scope_version=version) == built
    assert encode_logs_bytes(records, resource, scope_version=version) == built.SerializeToString()


# -- the fields kept for keys with few values (_KeyHeads.values) --------------------------

_MANY = otlp_encode._VALUES_MAX + 10

VALUE_RUNS: dict[str, tuple[str, list[str]]] = {
    # name: (key, the values of one attribute, record after record)
    "few values, each again and again": ("t.few", ["Pulled", "BackOff", "Pulled", "", "BackOff"] * 3),
    "more values than are kept, then the first again": (
        "t.many",
        [f"uid-{i}" for i in range(_MANY)] + ["uid-0", "uid-1"],
    ),
    "a key long enough for two-byte lengths": ("t." + "k" * 120, ["a", "b", "a", "b" * 99]),
    "values at and past the short length": ("t.long", ["v" * 99, "v" * 100, "v" * 99, "v" * 100]),
    "non-ASCII values": ("t.utf8", ["é", "日本", "é", "日本", "ü" * 60, "ü" * 60]),
}


@pytest.mark.parametrize("name", list(VALUE_RUNS))
def test_a_kept_field_is_the_bytes_protobuf_writes(name: str) -> None:
    key, values = VALUE_RUNS[name]
    for value in values:  # one request per value: each sees what the ones before kept
        records = [record("ns", "m", **{key: value, "k8s.event.reason": value})]
        expected = build_logs(records, RESOURCE).SerializeToString()
        assert encode_logs_bytes(records, RESOURCE) == expected


def test_a_key_with_more_values_than_are_kept_keeps_none() -> None:
    for i in range(_MANY):
        encode_logs_bytes([record("ns", "m", **{"t.bound": f"name-{i}"})], RESOURCE)
    assert otlp_encode._HEADS[b"\x32"]["t.bound"].values is None
    for i in range(10):
        encode_logs_bytes([record("ns", "m", **{"t.kept": f"reason-{i % 3}"})], RESOURCE)
    assert len(otlp_encode._HEADS[b"\x32"]["t.kept"].values or {}) == 3


# -- the limits checked as the request is written (encode_logs_within) -------------------

LIMITS = {"max_body_bytes": 200, "max_attribute_bytes": 120}


def wire_after_limits(records: list[OutputRecord]) -> tuple[bytes, int]:
    clean, changed = limit_records(records, **LIMITS)
    return otlp_encode.encode_logs_wire(clean, RESOURCE), changed


@pytest.mark.parametrize(
    "over",
    [
        record("shop", "b" * 201),  # a body past its limit
        record("shop", "é" * 101),  # ... in UTF-8 bytes (101 characters, 202 bytes)
        record("shop", "ok", reason="r" * 121),  # a string attribute
        record("shop", "ok", reason="é" * 61),  # ... in UTF-8 bytes
        record("shop", "ok", names=["short", "n" * 121]),  # an item of a list
        record("shop", "bad \ud800"),  # a body that cannot be encoded
        record("shop", "ok", reason="bad \udfff"),  # an attribute that cannot be
        record("n" * 121, "ok"),  # a namespace past the attribute limit
    ],
)
def test_a_batch_the_limits_would_change_is_not_encoded_within_them(over: OutputRecord) -> None:
    batch = [record("shop", "fine", reason="BackOff"), over]
    assert otlp_encode.encode_logs_within(batch, RESOURCE, **LIMITS) is None
    _, changed = wire_after_limits(batch)
    assert changed == 1  # what export does instead: the limits change it


def test_limits_below_the_kept_fields_lengths_are_left_to_the_limits() -> None:
    batch = [record("shop", "fine", reason="BackOff")]
    assert otlp_encode.encode_logs_within(batch, RESOURCE, max_body_bytes=64,
                                          max_attribute_bytes=64) is None
    assert otlp_encode.encode_logs_within(batch, RESOURCE, **LIMITS) is not None


def rows_of(namespaces: list[str]) -> st.SearchStrategy[list[OutputRecord]]:
    """Batches of records (namespace, body, reason, names, count) with strings about the
    limits' lengths, some not UTF-8-encodable."""
    return st.lists(
        st.tuples(
            st.sampled_from(namespaces),
            st.text(alphabet="ab é\u2603\ud800", max_size=220),
            st.text(alphabet="xy é", max_size=140),
            st.lists(st.text(alphabet="z é", max_size=130), max_size=3),
            st.integers(0, 2**40),
        ),
        min_size=1,
        max_size=6,
    ).map(
        lambda rows: [
            record(ns, body, reason=reason, names=names, count=count)
            for ns, body, reason, names, count in rows
        ]
    )


@given(rows_of(["shop", "kube-system", "ünï"]))
def test_what_it_encodes_is_what_the_limits_then_the_encoder_give(
    batch: list[OutputRecord],
) -> None:
    within = otlp_encode.encode_logs_within(batch, RESOURCE, **LIMITS)
    wire, changed = wire_after_limits(batch)
    if within is not None:
        assert changed == 0 and within == wire
    # Always used where it can be: a batch of encodable ASCII text within the limits.
    if all(
        r.namespace.isascii()
        and all(t.isascii() for t in [r.body, r.attributes["reason"], *r.attributes["names"]])  # type: ignore[list-item]
        for r in batch
    ) and changed == 0:
        assert within is not None


def staged_request(
    made: list[OutputRecord], batch: list[OutputRecord], **limits: int
) -> bytes | None:
    staged = otlp_encode.StagedRecords(RESOURCE, max_records=8, **(limits or LIMITS))
    for r in made:
        staged.add(r)
    return staged.take(batch)


@given(rows_of(["shop", "kube-system", "ünï", ""]))
def test_a_batch_encoded_record_by_record_is_what_encode_within_makes_of_it(
    batch: list[OutputRecord],
) -> None:
    assert staged_request(batch, batch) == otlp_encode.encode_logs_within(batch, RESOURCE, **LIMITS)


@given(st.lists(_RECORDS, min_size=1, max_size=6), st.text(max_size=5))
def test_any_records_staged_give_the_bytes_of_the_limits_then_the_encoder_or_none(
    records: list[OutputRecord], version: str
) -> None:
    staged = otlp_encode.StagedRecords(RESOURCE, max_records=8, scope_version=version, **LIMITS)
    for r in records:
        staged.add(r)
    request = staged.take(records)
    within = otlp_encode.encode_logs_within(records, RESOURCE, scope_version=version, **LIMITS)
    assert request == within
    if request is not None:
        clean, changed = limit_records(records, **LIMITS)
        assert changed == 0
        assert request == otlp_encode.encode_logs_wire(clean, RESOURCE, scope_version=version)


def test_a_staged_batch_is_only_ever_the_very_records_staged() -> None:
    a, b, c = (record("shop", f"r{i}", reason="BackOff") for i in range(3))
    equal_a = record("shop", "r0", reason="BackOff")
    assert staged_request([a, b], [a, b]) == otlp_encode.encode_logs_within(
        [a, b], RESOURCE, **LIMITS
    )
    assert staged_request([a, b], [b, a]) is None  # the order
    assert staged_request([a, b], [a, b, c]) is None  # one more
    assert staged_request([a, b, c], [a, b]) is None  # one fewer
    assert staged_request([a, b], [equal_a, b]) is None  # an equal record is not the one staged


def test_a_record_past_the_limits_spoils_its_batch_and_only_its_batch() -> None:
    fine, over = record("shop", "fine", reason="BackOff"), record("shop", "b" * 201)
    staged = otlp_encode.StagedRecords(RESOURCE, max_records=8, **LIMITS)
    staged.add(fine)
    staged.add(over)
    staged.add(fine)
    assert staged.take([fine, over, fine]) is None
    staged.add(fine)  # the next batch starts afresh
    assert staged.take([fine]) == otlp_encode.encode_logs_within([fine], RESOURCE, **LIMITS)


def test_no_more_records_are_kept_than_a_batch_holds() -> None:
    records = [record("shop", f"r{i}") for i in range(3)]
    staged = otlp_encode.StagedRecords(RESOURCE, max_records=2, **LIMITS)
    for r in records:
        staged.add(r)
    assert staged.records == [] and staged.fields == []
    assert staged.take(records) is None
    assert staged.take(records[:2]) is None  # nothing staged since


def test_limits_below_what_the_encoder_checks_stage_nothing() -> None:
    batch = [record("shop", "fine", reason="BackOff")]
    assert staged_request(batch, batch, max_body_bytes=64, max_attribute_bytes=64) is None


def test_a_dropped_stage_stages_nothing_until_the_next_take() -> None:
    batch = [record("shop", f"r{i}", reason="BackOff") for i in range(2)]
    staged = otlp_encode.StagedRecords(RESOURCE, max_records=8, **LIMITS)
    staged.add(batch[0])
    staged.drop()
    for r in batch:
        staged.add(r)
    assert staged.records == [] and staged.fields == []  # nothing encoded
    assert staged.take(batch) is None
    for r in batch:  # the next batch is staged again
        staged.add(r)
    assert staged.take(batch) == otlp_encode.encode_logs_within(batch, RESOURCE, **LIMITS)
