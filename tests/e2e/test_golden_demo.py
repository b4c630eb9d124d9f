"""The demo replay's jsonl output, byte for byte, against a committed golden file.

A refactor that moves code must not change what kubevents writes: this test proves it
for the whole demo recording (every Event, incident and pattern record, in order). Two
fields are masked because they say when and by which build the replay ran, not what it
found: ``observed_timestamp`` (the wall clock) and ``service.version``; the instance id
is set. Everything else must be identical.

The golden file is the output of the code at the commit that added it. When a change
*means* to alter the output, regenerate it and review the diff of the golden file in the
same commit::

    .venv/bin/python -m tests.e2e.test_golden_demo
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import pytest

from kubevents.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
GOLDEN = ROOT / "tests" / "data" / "demo" / "golden.jsonl"
INSTANCE = "golden"

_OBSERVED = re.compile(rb'"observed_timestamp":"[^"]*"')
_VERSION = re.compile(rb'"service\.version":"[^"]*"')


def mask(output: bytes) -> bytes:
    """``output`` with the two fields that depend on the run, not on the input, fixed."""
    output = _OBSERVED.sub(b'"observed_timestamp":"1970-01-01T00:00:00.000000000Z"', output)
    return _VERSION.sub(b'"service.version":"0"', output)


def replay_demo(out: Path) -> bytes:
    """The masked jsonl output of ``kubevents replay`` of the demo recording."""
    assert main(["replay", str(DEMO), "--sink", f"jsonl:{out}", "--no-summary"]) == 0
    return mask(out.read_bytes())


def test_the_demo_replay_writes_the_golden_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEVENTS_INSTANCE_ID", INSTANCE)
    got = replay_demo(tmp_path / "out.jsonl")
    want = GOLDEN.read_bytes()
    if got != want:
        got_lines, want_lines = got.splitlines(), want.splitlines()
        first = next(
            (i for i, (g, w) in enumerate(zip(got_lines, want_lines, strict=False)) if g != w),
            min(len(got_lines), len(want_lines)),
        )
        g = got_lines[first] if first < len(got_lines) else b"(end of output)"
        w = want_lines[first] if first < len(want_lines) else b"(end of file)"
        col = next((i for i, (a, b) in enumerate(zip(g, w, strict=False)) if a != b), 0)
        start = max(0, col - 120)
        pytest.fail(
            f"the output differs from {GOLDEN.name} at line {first + 1}, column {col + 1} "
            f"({len(got_lines)} lines written, {len(want_lines)} expected):\n"
            f"got:  {g[start : col + 120]!r}\nwant: {w[start : col + 120]!r}"
        )


if __name__ == "__main__":
    os.environ["KUBEVENTS_INSTANCE_ID"] = INSTANCE
    with tempfile.TemporaryDirectory() as tmp:
        GOLDEN.write_bytes(replay_demo(Path(tmp) / "out.jsonl"))
    sys.stdout.write(f"wrote {GOLDEN.relative_to(ROOT)}\n")
