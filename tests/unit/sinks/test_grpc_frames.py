"""The gRPC client's HTTP/2 output (``_Http2``) is byte for byte what h2 itself writes.

``_Http2`` keeps DATA payloads by reference instead of copying them into h2's buffer;
the bytes on the wire must not change for that. Each case runs the same calls on h2's
own client connection and on ``_Http2`` and compares what each would send.
"""

from __future__ import annotations

from collections.abc import Callable

import h2.config
import h2.connection
import pytest

from kubevents.sinks.grpc_unary import _Http2, message_parts

HEADERS = [
    (b":method", b"POST"),
    (b":path", b"/x.Y/Z"),
    (b":scheme", b"http"),
    (b":authority", b"h:1"),
]


Conn = h2.connection.H2Connection


def _run(conn: Conn, calls: Callable[[Conn], None]) -> None:
    conn.initiate_connection()
    conn.send_headers(1, HEADERS)
    calls(conn)


def _one_frame(c: Conn) -> None:
    c.send_data(1, b"abc" * 100, end_stream=True)


def _empty_end(c: Conn) -> None:
    c.send_data(1, b"", end_stream=True)


def _two_frames(c: Conn) -> None:
    c.send_data(1, b"\x00" * 5)
    c.send_data(1, b"m" * 16_384, end_stream=True)


def _padded(c: Conn) -> None:
    c.send_data(1, b"p" * 40, end_stream=True, pad_length=7)


def _then_reset(c: Conn) -> None:
    c.send_data(1, b"q" * 10)
    c.reset_stream(1)


def _request(c: Conn) -> None:
    prefix, message = message_parts(b"r" * 1000, gzip_it=False)
    c.send_data(1, prefix)
    c.send_data(1, message, end_stream=True)


CASES: dict[str, Callable[[Conn], None]] = {
    "one frame, end of stream": _one_frame,
    "empty data frame ending the stream": _empty_end,
    "two frames, then end": _two_frames,
    "padded frame (h2's own path)": _padded,
    "data, then a reset": _then_reset,
    "the prefix and the message of a request": _request,
}


def _config() -> h2.config.H2Configuration:
    return h2.config.H2Configuration(client_side=True, header_encoding=None)


@pytest.mark.parametrize("name", list(CASES))
def test_the_bytes_sent_are_h2s_own(name: str) -> None:
    theirs = h2.connection.H2Connection(_config())
    ours = _Http2(_config())
    _run(theirs, CASES[name])
    _run(ours, CASES[name])
    assert b"".join(ours.outbound()) == theirs.data_to_send()
    assert ours.outbound() == []  # all of it handed out once


def test_a_payload_is_handed_out_as_it_came() -> None:
    ours = _Http2(_config())
    payload = b"x" * 10_000

    def send(c: Conn) -> None:
        c.send_data(1, payload, end_stream=True)

    _run(ours, send)
    assert any(part is payload for part in ours.outbound())
