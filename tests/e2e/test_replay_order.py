"""Replay in bounded memory gives the output of a whole-input stable sort.

The demo recording, shuffled, is larger than the reorder window and the in-memory runs
set here: its Events go through the sort on disk (several runs, merged), while the same
Events sorted beforehand need no reordering, and swapped by a few lines they go through
the window. Both must give the records the sorted
input gives, byte for byte (but the observed time, which is the wall clock).
"""

from __future__ import annotations

import gzip
import random
import re
from pathlib import Path

import orjson
import pytest

from kubevents.cli import main
from kubevents.normalize import normalize
from kubevents.source import ordering

DEMO = Path(__file__).resolve().parents[2] / "tests" / "data" / "demo" / "events.jsonl"
OBSERVED = re.compile(rb'"observed_timestamp":"[^"]*",')


def replayed(tmp_path: Path, name: str, *inputs: Path) -> bytes:
    out = tmp_path / f"{name}.out.jsonl"
    code = main(["replay", *map(str, inputs), "--no-summary", "--sink", f"jsonl:{out}"])
    assert code == 0
    return OBSERVED.sub(b"", out.read_bytes())


def time_of(line: bytes) -> int:
    return normalize(orjson.loads(line)["object"]).time_ns


@pytest.fixture
def small_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ordering, "WINDOW", 16)
    monkeypatch.setattr(ordering, "RUN", 50)
    monkeypatch.setattr(ordering, "FAN_IN", 4)
    monkeypatch.setattr(ordering, "BLOCK", 8)


def test_an_input_out_of_order_beyond_the_window_replays_as_sorted(
    tmp_path: Path, small_windows: None
) -> None:
    lines = [line for line in DEMO.read_bytes().splitlines() if line.strip()]
    random.Random(7).shuffle(lines)
    assert len(lines) > 10 * ordering.RUN
    shuffled = tmp_path / "shuffled.jsonl.gz"
    shuffled.write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    in_order = tmp_path / "sorted.jsonl"  # a stable sort by normalize's time
    in_order.write_bytes(b"\n".join(sorted(lines, key=time_of)) + b"\n")

    nearly = sorted(lines, key=time_of)  # each line swapped with the one 10 after
    for i in range(0, len(nearly) - 10, 20):
        nearly[i], nearly[i + 10] = nearly[i + 10], nearly[i]
    nearly_path = tmp_path / "nearly.jsonl"  # the reorder window's case
    nearly_path.write_bytes(b"\n".join(nearly) + b"\n")
    nearly_sorted = tmp_path / "nearly-sorted.jsonl"
    nearly_sorted.write_bytes(b"\n".join(sorted(nearly, key=time_of)) + b"\n")

    expected = replayed(tmp_path, "sorted", in_order)
    assert expected.count(b"\n") >= len(lines)
    assert replayed(tmp_path, "shuffled", shuffled) == expected
    assert replayed(tmp_path, "nearly", nearly_path) == replayed(tmp_path, "ns", nearly_sorted)


def test_several_files_merge_as_one_stable_sort(tmp_path: Path, small_windows: None) -> None:
    lines = [line for line in DEMO.read_bytes().splitlines() if line.strip()]
    ordered = sorted(lines, key=time_of)
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_bytes(b"\n".join(ordered[1::2]) + b"\n")  # both nearly in order
    random.Random(1).shuffle(half := ordered[::2])
    second.write_bytes(b"\n".join(half) + b"\n")  # not
    together = tmp_path / "together.jsonl"
    together.write_bytes(b"\n".join(sorted(ordered[1::2] + half, key=time_of)) + b"\n")
    assert replayed(tmp_path, "two", first, second) == replayed(tmp_path, "one", together)
