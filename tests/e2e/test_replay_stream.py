"""``kubevents replay -`` on a pipe that stays open: records come out as Events arrive,
in arrival order; the summary comes at the end of the input or on SIGINT.

The real command in a child process, fed by the test through a pipe it keeps open
(what ``kubectl get events -A -w -o json | kubevents replay -`` does).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import zlib
from pathlib import Path
from typing import IO, Any

import orjson
import pytest

from tests.faults.support import child_env
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
PRETTY = ROOT / "tests" / "data" / "formats" / "watch-pretty.json"
LINES = DEMO.read_bytes().splitlines()


def start(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    out = tmp_path / "records.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kubevents.cli", "replay", "-", "--sink", f"jsonl:{out}", *extra],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    return proc, out


def records(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [orjson.loads(line) for line in out.read_bytes().splitlines() if line.endswith(b"}")]


def events(out: Path) -> list[dict[str, Any]]:
    return [r for r in records(out) if r["event_name"] == "k8s.event"]


def send(stdin: IO[bytes] | None, data: bytes) -> None:
    assert stdin is not None
    stdin.write(data)
    stdin.flush()


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    """Close stdin (the end of the input) and wait for the exit."""
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out.decode(), err.decode()


def uid(line: bytes) -> str:
    return str(orjson.loads(line)["object"]["metadata"]["uid"])


def test_records_come_out_before_the_end_of_the_input_and_the_summary_at_its_end(
    tmp_path: Path,
) -> None:
    proc, out = start(tmp_path)
    try:
        send(proc.stdin, b"\n".join(LINES[:20]) + b"\n")
        # The pipe stays open: records must come out now, not when the writer closes.
        wait_until(lambda: len(events(out)) >= 20, what="the first 20 Events while the pipe is open")
        assert proc.poll() is None
        send(proc.stdin, b"\n".join(LINES[20:30]) + b"\n")
        wait_until(lambda: len(events(out)) >= 30, what="the next 10 Events")
        code, stdout, stderr = finish(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    assert "kubevents summary" in stdout  # at the end of the input
    assert "Traceback" not in stderr


def test_sigint_ends_the_stream_with_the_summary(tmp_path: Path) -> None:
    proc, out = start(tmp_path)
    try:
        send(proc.stdin, b"\n".join(LINES[:5]) + b"\n")
        wait_until(lambda: len(events(out)) >= 5, what="the first Events")
        proc.send_signal(signal.SIGINT)
        code, stdout, stderr = finish(proc)
    finally:
        proc.kill()
    assert code == 130, stderr
    assert "kubevents summary" in stdout and "5 occurrences" in stdout, stdout
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr


def test_a_stream_keeps_arrival_order_and_a_file_is_sorted(tmp_path: Path) -> None:
    late, early = LINES[100], LINES[0]  # the demo is in time order: 100 is after 0
    proc, out = start(tmp_path, "--no-summary")
    try:
        send(proc.stdin, late + b"\n" + early + b"\n")
        code, _, stderr = finish(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    streamed = [r["attributes"]["k8s.event.uid"] for r in events(out)]
    assert streamed == [uid(late), uid(early)]  # as they came
    dump = tmp_path / "dump.jsonl"
    dump.write_bytes(late + b"\n" + early + b"\n")
    sorted_out = tmp_path / "sorted.jsonl"
    done = subprocess.run(
        [sys.executable, "-m", "kubevents.cli", "replay", str(dump), "--no-summary",
         "--sink", f"jsonl:{sorted_out}"],
        capture_output=True, timeout=60, env=child_env(), check=False,
    )
    assert done.returncode == 0, done.stderr
    assert [r["attributes"]["k8s.event.uid"] for r in events(sorted_out)] == [
        uid(early), uid(late)
    ]  # a file: by occurrence time


@pytest.mark.parametrize("encoding", ["plain", "gzip"])
def test_pretty_printed_watch_output_streams_object_by_object(
    tmp_path: Path, encoding: str
) -> None:
    """``kubectl get events -w -o json`` prints indented objects one after the other."""
    text = PRETTY.read_bytes()
    objects = [b"{" + part for part in text.split(b"\n{")]
    objects[0] = objects[0][1:]
    assert len(objects) > 3
    proc, out = start(tmp_path, "--no-summary")
    try:
        if encoding == "gzip":
            # One gzip stream, flushed after the first objects: they must decompress now.
            packer = zlib.compressobj(wbits=31)
            first = b"\n".join(objects[:2]) + b"\n"
            send(proc.stdin, packer.compress(first) + packer.flush(zlib.Z_SYNC_FLUSH))
            wait_until(lambda: len(events(out)) >= 2, what="the first objects of a gzip stream")
            rest = b"\n".join(objects[2:]) + b"\n"
            send(proc.stdin, packer.compress(rest) + packer.flush())
        else:
            send(proc.stdin, b"\n".join(objects[:2]) + b"\n")
            wait_until(lambda: len(events(out)) >= 2, what="the first pretty-printed objects")
            send(proc.stdin, b"\n".join(objects[2:]) + b"\n")
        code, _, stderr = finish(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    assert "skipped" not in stderr, stderr
    assert len(events(out)) == len(objects)


def test_bad_documents_in_a_stream_are_one_line_each_and_the_stream_goes_on(
    tmp_path: Path,
) -> None:
    proc, out = start(tmp_path, "--no-summary")
    try:
        send(proc.stdin, LINES[0] + b"\n")
        wait_until(lambda: len(events(out)) >= 1, what="the first Event")
        torn = LINES[1][: len(LINES[1]) // 2]
        send(proc.stdin, b"[" * 100_000 + b"\n" + torn + b"\n" + b"\xff\xfe not json\n")
        send(proc.stdin, LINES[2] + b"\n")
        wait_until(lambda: len(events(out)) >= 2, what="the Event after the bad ones")
        code, _, stderr = finish(proc)
    finally:
        proc.kill()
    assert code == 0, stderr
    problems = [ln for ln in stderr.splitlines() if "skipped <stdin>:" in ln]
    assert [p.split("skipped <stdin>:")[1].split(":")[0] for p in problems] == ["2", "3", "4"]
    assert "Traceback" not in stderr
    assert [r["attributes"]["k8s.event.uid"] for r in events(out)] == [uid(LINES[0]), uid(LINES[2])]
