"""The gRPC client's HTTP/2 output (``_Http2``) is byte for byte what h2 itself writes.

``_Http2`` keeps DATA payloads by reference instead of copying them into h2's buffer;
the bytes on the wire must not change for that. Each case runs the same calls on h2's
own client connection and on ``_Http2`` and compares what each would send.
"""

from __future__ import annotations

from collections.abc import Callable

import h2.config
import h2.connection
import h2.exceptions
import h2.settings
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


# -- runs of DATA frames (_Http2.send_data_run) -------------------------------------------


def _peer(frame_size: int, stream_window: int, connection_window: int) -> bytes:
    """A server's first bytes: its SETTINGS and a WINDOW_UPDATE of the connection."""
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    server.initiate_connection()
    server.update_settings(
        {
            h2.settings.SettingCodes.MAX_FRAME_SIZE: frame_size,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: stream_window,
        }
    )
    if connection_window > 65_535:
        server.increment_flow_control_window(connection_window - 65_535)
    return server.data_to_send()


def _by_frames(c: Conn, pieces: list[bytes]) -> None:
    """What the call did before runs: one h2 ``send_data`` per frame, until the window ends."""
    for i, piece in enumerate(pieces):
        offset = 0
        while offset < len(piece) or not piece:
            size = min(
                len(piece) - offset, c.local_flow_control_window(1), c.max_outbound_frame_size
            )
            if size <= 0 and piece:
                return
            last = i == len(pieces) - 1 and offset + size == len(piece)
            c.send_data(1, piece[offset : offset + size], end_stream=last)
            offset += size
            if not piece:
                break


def _by_runs(c: _Http2, pieces: list[bytes]) -> None:
    for i, piece in enumerate(pieces):
        view, offset = memoryview(piece), 0
        while offset < len(piece) or not piece:
            sent = c.send_data_run(1, view, offset, end_stream=i == len(pieces) - 1)
            if not sent and piece:
                return
            offset += sent
            if not piece:
                break


RUNS = {
    # name: (peer's max frame size, stream window, connection window, piece sizes)
    "grpc-go's 16 KiB frames, 600 kB in one window": (16_384, 4_194_304, 4_194_304, [5, 632_879]),
    "the default 64 KiB windows cut the request": (16_384, 65_535, 65_535, [5, 200_000]),
    "a stream window smaller than the connection's": (16_384, 40_000, 1_000_000, [5, 100_000]),
    "a message of exactly one frame": (16_384, 65_535, 65_535, [5, 16_384]),
    "a message of exactly two frames": (16_384, 65_535, 65_535, [5, 32_768]),
    "one byte over the frames": (16_384, 1_000_000, 1_000_000, [5, 16_385]),
    "larger frames allowed": (1_048_576, 4_194_304, 4_194_304, [5, 3_000_000]),
    "the window ends inside the prefix": (16_384, 3, 65_535, [5, 100]),
    "a small message": (16_384, 65_535, 65_535, [5, 300]),
}


@pytest.mark.parametrize("name", list(RUNS))
def test_a_run_of_frames_is_what_h2_writes_frame_by_frame(name: str) -> None:
    frame_size, stream_window, connection_window, sizes = RUNS[name]
    pieces = [bytes([65 + i]) * n for i, n in enumerate(sizes)]
    peer = _peer(frame_size, stream_window, connection_window)
    theirs = h2.connection.H2Connection(_config())
    ours = _Http2(_config())
    for conn in (theirs, ours):
        conn.initiate_connection()
        conn.receive_data(peer)
        conn.send_headers(1, HEADERS)
    _by_frames(theirs, pieces)
    _by_runs(ours, pieces)
    assert b"".join(ours.outbound()) == theirs.data_to_send()
    assert ours.outbound_flow_control_window == theirs.outbound_flow_control_window
    assert ours.local_flow_control_window(1) == theirs.local_flow_control_window(1)
    assert ours.streams[1].state_machine.state == theirs.streams[1].state_machine.state


def test_a_run_on_a_stream_already_ended_fails_as_h2_does() -> None:
    failures = []
    for conn in (h2.connection.H2Connection(_config()), _Http2(_config())):
        conn.initiate_connection()
        conn.receive_data(_peer(16_384, 1_000_000, 1_000_000))
        conn.send_headers(1, HEADERS)
        conn.send_data(1, b"", end_stream=True)
        with pytest.raises(h2.exceptions.ProtocolError) as failure:
            if isinstance(conn, _Http2):
                conn.send_data_run(1, memoryview(b"x" * 50_000), 0, end_stream=True)
            else:
                conn.send_data(1, b"x" * 16_384)
        failures.append(str(failure.value))
    assert failures[0] == failures[1]
