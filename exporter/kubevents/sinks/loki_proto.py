"""Loki's push protobuf (``logproto.PushRequest``), built at import time.

Loki's ``POST /loki/api/v1/push`` takes, by default, a raw-block snappy
compressed ``logproto.PushRequest``. The schema is four small messages, so
rather than check in generated ``_pb2`` code (STYLE point 3: generated code
never sits in a handwritten module) or add a ``protoc`` step to the build,
this module describes them with a ``descriptor_pb2.FileDescriptorProto`` and
lets the protobuf runtime build the classes
(``message_factory.GetMessageClass``, protobuf 4.21 and later, so 5, 6 and 7).
The wire format is all that matters to Loki, and it is fixed by the field
numbers and types below.

Source: grafana/loki ``pkg/push/push.proto`` (read at commit 01a3f3fa), the
file behind ``github.com/grafana/loki/pkg/push``::

    message PushRequest      { repeated StreamAdapter streams = 1; string format = 2; }
    message StreamAdapter    { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }
    message EntryAdapter     { google.protobuf.Timestamp timestamp = 1; string line = 2;
                               repeated LabelPairAdapter structuredMetadata = 3;
                               repeated LabelPairAdapter parsed = 4; }
    message LabelPairAdapter { string name = 1; string value = 2; }

Left out on purpose: ``PushRequest.format`` (set by Loki itself, "loki" or
"otlp") and ``EntryAdapter.parsed`` (the comment in push.proto: only used in
query responses, not by clients). Both would be kept as unknown fields if a
message carrying them were parsed. The gogoproto options in push.proto
(``jsontag``, ``customtype``, ``nullable``) change the Go code, not the wire.
``StreamAdapter.labels`` is the stream selector as text, ``{name="value", ...}``.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

__all__ = ["EntryAdapter", "LabelPairAdapter", "PushRequest", "StreamAdapter"]

PACKAGE = "logproto"
# Our name for the file in the descriptor pool; Loki's own is pkg/push/push.proto.
FILE_NAME = "kubevents/sinks/loki_push.proto"

_F = descriptor_pb2.FieldDescriptorProto
_Field = tuple[str, int, int, int, str]  # name, number, type, label, message type name


def _message(name: str, fields: list[_Field]) -> descriptor_pb2.DescriptorProto:
    message = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, type_, label, type_name in fields:
        field = message.field.add(name=field_name, number=number, type=type_, label=label)
        if type_name:  # descriptor.proto is proto2: an empty type_name still counts as set
            field.type_name = type_name
    return message


def _file() -> descriptor_pb2.FileDescriptorProto:
    """The schema above as a FileDescriptorProto (proto3, package ``logproto``)."""
    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    string, uint64, message = _F.TYPE_STRING, _F.TYPE_UINT64, _F.TYPE_MESSAGE
    pair = f".{PACKAGE}.LabelPairAdapter"
    file = descriptor_pb2.FileDescriptorProto(
        name=FILE_NAME,
        package=PACKAGE,
        syntax="proto3",
        dependency=[timestamp_pb2.DESCRIPTOR.name],
    )
    file.message_type.extend(
        [
            _message("PushRequest", [("streams", 1, message, many, f".{PACKAGE}.StreamAdapter")]),
            _message(
                "StreamAdapter",
                [
                    ("labels", 1, string, one, ""),
                    ("entries", 2, message, many, f".{PACKAGE}.EntryAdapter"),
                    ("hash", 3, uint64, one, ""),
                ],
            ),
            _message(
                "EntryAdapter",
                [
                    ("timestamp", 1, message, one, ".google.protobuf.Timestamp"),
                    ("line", 2, string, one, ""),
                    ("structuredMetadata", 3, message, many, pair),
                ],
            ),
            _message(
                "LabelPairAdapter",
                [("name", 1, string, one, ""), ("value", 2, string, one, "")],
            ),
        ]
    )
    return file


def _descriptor(name: str) -> Descriptor:
    """The message descriptor, adding the file to the default pool on first use.

    The default pool (not a private one) so that ``EntryAdapter.timestamp`` is
    the very ``timestamp_pb2.Timestamp`` class the rest of the code uses.
    """
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(FILE_NAME)
    except KeyError:
        pool.Add(_file())
    return pool.FindMessageTypeByName(f"{PACKAGE}.{name}")


PushRequest: type[Message] = message_factory.GetMessageClass(_descriptor("PushRequest"))
StreamAdapter: type[Message] = message_factory.GetMessageClass(_descriptor("StreamAdapter"))
EntryAdapter: type[Message] = message_factory.GetMessageClass(_descriptor("EntryAdapter"))
LabelPairAdapter: type[Message] = message_factory.GetMessageClass(_descriptor("LabelPairAdapter"))
