"""The chunked framing of a watch body, decoded from blocks cut anywhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubevents.source.chunked import ChunkedLines, ChunkError

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "events.jsonl"
LINES = [line for line in DEMO.read_bytes().splitlines() if line.strip()][:3]


def chunk(data: bytes, extension: bytes = b"") -> bytes:
    return b"%x%s\r\n%s\r\n" % (len(data), extension, data)


def decode(body: bytes, step: int) -> tuple[list[bytes], ChunkedLines]:
    lines, got = ChunkedLines(), []
    for offset in range(0, len(body), step):
        got += lines.feed(body[offset : offset + step])
    return got, lines


# One chunk per line (as the kube-apiserver flushes), a line across chunks, several lines
# in one chunk, blank lines, a chunk extension: the same lines, wherever the reads cut.
BODIES = {
    "a chunk per line": b"".join(chunk(line + b"\n") for line in LINES),
    "a line across chunks": chunk(LINES[0][:10]) + chunk(LINES[0][10:] + b"\n" + LINES[1][:5])
    + chunk(LINES[1][5:] + b"\n") + chunk(LINES[2] + b"\n"),
    "lines in one chunk, blank lines between": chunk(b"\n".join(LINES[:2]) + b"\n \n\n")
    + chunk(LINES[2] + b"\n", b";name=value"),
}


@pytest.mark.parametrize("name", BODIES)
def test_lines_come_out_whole_wherever_the_reads_cut(name: str) -> None:
    body = BODIES[name] + b"0\r\n\r\n"
    for step in (1, 2, 7, 64, len(body)):
        got, lines = decode(body, step)
        assert got == LINES, (name, step)
        assert lines.done and lines.partial == b""


def test_a_line_without_its_newline_stays_partial_and_the_end_is_seen() -> None:
    got, lines = decode(chunk(LINES[0] + b"\n" + LINES[1]) + b"0\r\n\r\n", 5)
    assert (got, lines.partial, lines.done) == ([LINES[0]], LINES[1], True)


def test_a_body_cut_before_its_last_chunk_is_not_done() -> None:
    got, lines = decode(chunk(LINES[0] + b"\n") + chunk(LINES[1] + b"\n")[:20], 3)
    assert (got, lines.done) == ([LINES[0]], False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"zz\r\n", r"^invalid chunk size line b'zz'$"),
        (b"-5\r\nabcde\r\n", r"^invalid chunk size line b'-5'$"),
        (b"3\r\nabcXY", r"^chunk of 3 bytes not followed by CRLF$"),
        (b"1" * 2000, r"^chunk size line longer than 1024 bytes$"),
    ],
)
def test_bad_framing_is_one_error_naming_what_after_the_lines_before_it(body: bytes, message: str) -> None:
    lines = ChunkedLines()
    assert lines.feed(chunk(LINES[0] + b"\n") + body) == [LINES[0]]
    assert isinstance(lines.error, ChunkError)
    assert re.match(message, str(lines.error))
    assert lines.feed(chunk(LINES[1] + b"\n")) == []  # nothing after an error
