"""Loki's push protobuf, built at runtime: field numbers as in Loki's push.proto, and the wire bytes."""

from __future__ import annotations

import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from kubevents.sinks.loki_proto import EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter


def known_request() -> Message:
    return PushRequest(
        streams=[
            StreamAdapter(
                labels='{a="b"}',
                entries=[
                    EntryAdapter(
                        timestamp=Timestamp(seconds=1, nanos=2),
                        line="hi",
                        structuredMetadata=[LabelPairAdapter(name="k", value="v")],
                    )
                ],
            )
        ]
    )


# Hand-encoded from the proto3 wire format: tag = field number << 3 | wire type (2 = length-delimited).
KNOWN_WIRE = b"".join(
    [
        bytes.fromhex("0a1d"),  # PushRequest.streams (1), 29 bytes
        bytes.fromhex("0a07") + b'{a="b"}',  # StreamAdapter.labels (1)
        bytes.fromhex("1212"),  # StreamAdapter.entries (2), 18 bytes
        bytes.fromhex("0a04 0801 1002"),  # EntryAdapter.timestamp (1): seconds=1, nanos=2
        bytes.fromhex("1202") + b"hi",  # EntryAdapter.line (2)
        bytes.fromhex("1a06 0a016b 120176"),  # .structuredMetadata (3): name="k", value="v"
    ]
)


def test_known_message_has_the_hand_encoded_wire_bytes() -> None:
    assert known_request().SerializeToString() == KNOWN_WIRE


def test_round_trip() -> None:
    request = known_request()
    decoded = PushRequest.FromString(request.SerializeToString())
    assert decoded == request
    entry = decoded.streams[0].entries[0]
    assert (entry.timestamp.seconds, entry.timestamp.nanos, entry.line) == (1, 2, "hi")
    assert [(p.name, p.value) for p in entry.structuredMetadata] == [("k", "v")]


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        (PushRequest, {"streams": (1, FieldDescriptor.TYPE_MESSAGE)}),
        (
            StreamAdapter,
            {
                "labels": (1, FieldDescriptor.TYPE_STRING),
                "entries": (2, FieldDescriptor.TYPE_MESSAGE),
                "hash": (3, FieldDescriptor.TYPE_UINT64),
            },
        ),
        (
            EntryAdapter,
            {
                "timestamp": (1, FieldDescriptor.TYPE_MESSAGE),
                "line": (2, FieldDescriptor.TYPE_STRING),
                "structuredMetadata": (3, FieldDescriptor.TYPE_MESSAGE),
            },
        ),
        (
            LabelPairAdapter,
            {"name": (1, FieldDescriptor.TYPE_STRING), "value": (2, FieldDescriptor.TYPE_STRING)},
        ),
    ],
)
def test_field_numbers_match_lokis_push_proto(
    message: type[Message], fields: dict[str, tuple[int, int]]
) -> None:
    descriptor = message.DESCRIPTOR
    assert descriptor.full_name == f"logproto.{descriptor.name}"
    assert {f.name: (f.number, f.type) for f in descriptor.fields} == fields


def test_entry_timestamp_is_the_well_known_timestamp() -> None:
    entry = EntryAdapter()
    entry.timestamp.CopyFrom(Timestamp(seconds=1_700_000_000, nanos=5))
    assert isinstance(entry.timestamp, Timestamp)
    assert entry.timestamp.ToNanoseconds() == 1_700_000_000_000_000_005
