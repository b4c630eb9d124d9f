"""The replay's two passes over a watch dump's lines (source/dumplines.py): whatever the
blocks the lines come in, the same counts, times, Events and problems as the general
reader (``replaying.read_entries``) gives, line by line."""

from __future__ import annotations

import heapq
import random
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubevents.model import KubeEvent
from kubevents.normalize import normalize
from kubevents.source import replaying
from kubevents.source.dumplines import Normalized, Scan, WindowCheck, occurrence_ns
from kubevents.source.replaying import Entry, Problem


def event(uid: str, second: int, **fields: Any) -> dict[str, Any]:
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"uid": uid, "name": f"{uid}.1"},
        "involvedObject": {"kind": "Pod", "name": uid},
        "reason": "Started",
        "lastTimestamp": f"2026-01-01T00:00:{second:02d}Z",
        **fields,
    }


def watch(watch_type: str, obj: object) -> bytes:
    return orjson.dumps({"type": watch_type, "object": obj})


V1 = {
    "kind": "Event",
    "apiVersion": "events.k8s.io/v1",
    "metadata": {"uid": "v1"},
    "regarding": {"kind": "Pod", "name": "v"},
    "note": "n",
    "lastTimestamp": "2026-01-01T00:00:50Z",  # core/v1's name: not a v1 Event's time
    "deprecatedLastTimestamp": "2026-01-01T00:00:12Z",
}

LINES = [
    watch("ADDED", event("a", 10)),
    b"",
    b"  \t ",
    watch("MODIFIED", V1),
    b'{"kind": "Ev',
    watch("DELETED", event("d", 30)),
    watch("BOOKMARK", {"kind": "Event", "metadata": {"resourceVersion": "9"}}),
    watch("ERROR", {"kind": "Status", "message": "too old"}),
    watch("ADDED", {"kind": "Pod", "metadata": {"name": "p"}}),
    orjson.dumps([event("l1", 5), event("l2", 11)]),
    orjson.dumps(event("bare", 13)),
    b"42",
    watch("MODIFIED", event("r", 9, type="Bad", count=-1)),  # repaired by normalize
    watch("DELETED", event("d2", 1, involvedObject={})),  # repaired, and deleted
    b"\t" + watch("MODIFIED", event("a", 14)) + b"  ",
    watch("MODIFIED", {"kind": "List", "items": []}),
    orjson.dumps({"type": ["ADDED"], "object": event("t", 15)}),  # a type that is no name
]
"""A watch dump with every kind of line: updates (core/v1, v1, repaired), deletions,
blank lines, invalid JSON, a bookmark, a watch ERROR, a watch line of another kind, a
List and a bare Event on a line, a number, an Event padded with spaces."""


def reference() -> tuple[list[Entry], list[Problem]]:
    """The general reader's entries and problems (every line its own way)."""
    problems: list[Problem] = []
    entries = list(replaying._parse_line_blocks([list(LINES)], "f", problems.append))
    return entries, problems


def blocks_of(lines: list[bytes], size: int) -> list[list[bytes]]:
    return [lines[i : i + size] for i in range(0, len(lines), size)]


def test_the_reference_holds_every_kind_of_line() -> None:
    entries, problems = reference()
    assert [(e[0]["metadata"]["uid"], e[1], e[2]) for e in entries] == [
        ("a", "ADDED", 1),
        ("v1", "MODIFIED", 4),
        ("d", "DELETED", 6),
        ("l1", "", "f:10 [0]"),
        ("l2", "", "f:10 [1]"),
        ("bare", "", "f:11"),
        ("r", "MODIFIED", 13),
        ("d2", "DELETED", 14),
        ("a", "MODIFIED", 15),
    ]
    assert [(p.where, p.message.split(":")[0]) for p in problems] == [
        ("f:5", "invalid JSON"),
        ("f:8", "watch ERROR in the recording"),
        ("f:9", "watch ADDED object is kind 'Pod', not an Event"),
        ("f:12", "expected an object, got int"),
        ("f:16", "watch MODIFIED object is kind 'List', not an Event"),
        ("f:17", "not an Event, a List or a watch event (an object without kind)"),
    ]


def scanned(blocks: list[list[bytes]], window: int) -> tuple[Scan, list[Entry], list[Problem]]:
    """:class:`Scan` as the first pass runs it: what it yields is added by the caller."""
    scan = Scan(WindowCheck(window), 7)
    problems: list[Problem] = []
    given: list[Entry] = []
    for entry in scan.lines(iter(blocks), "f", problems.append):
        given.append(entry)
        scan.add(entry[0], entry[1])
    return scan, given, problems


@pytest.mark.parametrize("size", range(1, len(LINES) + 1))
def test_the_scan_counts_and_times_every_event_as_the_general_reader_reads_them(
    size: int,
) -> None:
    entries, problems = reference()
    times = [occurrence_ns(obj) for obj, watch_type, _ in entries if watch_type != "DELETED"]
    for window in range(len(times) + 1):
        scan, given, scan_problems = scanned(blocks_of(list(LINES), size), window)
        assert scan_problems == problems
        # What the scan takes itself is every update of a watch line; the rest is given.
        assert given == [e for e in entries if type(e[2]) is str]
        assert (scan.found, scan.updates, scan.deletions) == (9, 7, 2)
        assert scan.latest_ns == max(occurrence_ns(obj) for obj, _, _ in entries)
        expected = WindowCheck(window)
        for t in times:  # in the order of the file
            expected.add(t)
        assert (scan.check.ok, scan.check.in_order) == (expected.ok, expected.in_order), window
    # The times of the file, in its order: v1's own field, deletions left out.
    assert [t // 1_000_000_000 % 60 for t in times] == [10, 12, 5, 11, 13, 9, 14]


def test_the_scan_keeps_a_latest_time_from_the_files_before() -> None:
    scan = Scan(WindowCheck(4), 2_000_000_000_000_000_000)
    list(scan.lines([list(LINES)], "f", lambda problem: None))
    assert scan.latest_ns == 2_000_000_000_000_000_000
    assert Scan(WindowCheck(4), 0).latest_ns == 0


def normalized(
    blocks: list[list[bytes]],
) -> tuple[list[KubeEvent], list[KubeEvent], list[tuple[str, str | int]], list[Problem]]:
    deleted: list[KubeEvent] = []
    repaired: list[tuple[str, str | int]] = []
    problems: list[Problem] = []

    def on_repair(event: KubeEvent, where: str | int) -> None:
        repaired.append((event.uid, where))

    reader = Normalized(deleted.append, on_repair)
    events = list(reader.lines(iter(blocks), "f", problems.append))
    return events, deleted, repaired, problems


@pytest.mark.parametrize("size", range(1, len(LINES) + 1))
def test_the_second_pass_normalizes_every_event_as_the_general_reader_reads_them(
    size: int,
) -> None:
    entries, problems = reference()
    events, deleted, repaired, got_problems = normalized(blocks_of(list(LINES), size))
    assert events == [normalize(obj) for obj, watch_type, _ in entries if watch_type != "DELETED"]
    assert deleted == [normalize(obj) for obj, watch_type, _ in entries if watch_type == "DELETED"]
    assert [e.uid for e in events] == ["a", "v1", "l1", "l2", "bare", "r", "a"]
    assert [e.uid for e in deleted] == ["d", "d2"]
    assert repaired == [("r", 13), ("d2", 14)]
    assert got_problems == problems


def test_the_second_pass_takes_events_read_any_other_way() -> None:
    deleted: list[KubeEvent] = []
    repaired: list[tuple[str, str | int]] = []
    reader = Normalized(deleted.append, lambda e, where: repaired.append((e.uid, where)))
    entries: list[Entry] = [
        (event("x", 1), "", "f:1 items[0]"),
        ({"kind": "Pod"}, "", "f:1 items[1]"),  # not an Event: passed over
        (event("y", 2, type="Odd"), "DELETED", "f:1 items[2]"),
        (event("z", 3), "MODIFIED", 7),
    ]
    assert [e.uid for e in reader.entries(entries)] == ["x", "z"]
    assert [e.uid for e in deleted] == ["y"]
    assert repaired == [("y", "f:1 items[2]")]


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1 << 20])
@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n"])
def test_both_passes_read_a_file_cut_anywhere_as_the_general_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, tail: bytes
) -> None:
    """Lines cut by the file's reads (a multi-byte character and a bad byte too): the same
    Events and problems, in the same order, as ``read_entries`` gives."""
    lines = [*LINES, watch("ADDED", event("\u00e9t\u00e9", 20)).replace(b"Started", b"St\xffrted")]
    path = tmp_path / "dump.jsonl"
    path.write_bytes(b"\n".join(lines) + tail)
    monkeypatch.setattr(replaying, "_FILE_CHUNK", chunk)
    expected_problems: list[Problem] = []
    entries = list(replaying.read_entries(str(path), expected_problems.append, 0))
    assert entries[-1][0]["reason"] == "St\ufffdrted"

    scan = Scan(WindowCheck(2), 0)
    problems: list[Problem] = []
    for obj, watch_type, _ in replaying.read_file(
        str(path), problems.append, 0, lines=scan.lines, entries=replaying.as_read
    ):
        scan.add(obj, watch_type)
    assert problems == expected_problems
    # The bad bytes first (as a whole read reports them), then each line's, in order.
    assert [p.where.rsplit(":", 1)[1] for p in problems] == ["18", "5", "8", "9", "12", "16", "17"]
    assert (scan.found, scan.updates, scan.deletions) == (10, 8, 2)

    deleted: list[KubeEvent] = []
    reader = Normalized(deleted.append, lambda event, where: None)
    problems = []
    events = list(
        replaying.read_file(
            str(path), problems.append, 0, lines=reader.lines, entries=reader.entries
        )
    )
    assert problems == expected_problems
    assert events == [normalize(obj) for obj, t, _ in entries if t != "DELETED"]
    assert [e.uid for e in deleted] == ["d", "d2"]


def test_a_file_of_another_format_goes_through_entries(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_bytes(orjson.dumps({"kind": "List", "items": [event("x", 1), {"kind": "Pod"}]}))
    problems: list[Problem] = []
    reader = Normalized(lambda event: None, lambda event, where: None)
    events = list(
        replaying.read_file(
            str(path), problems.append, 0, lines=reader.lines, entries=reader.entries
        )
    )
    assert [e.uid for e in events] == ["x"]
    assert [p.where for p in problems] == [f"{path}:1 items[1]"]


def sorted_by_window(times: list[int], window: int) -> bool:
    """Whether a reorder window of ``window`` sorts ``times`` (what ``windowed`` does)."""
    heap: list[int] = []
    out: list[int] = []
    for t in times:
        if len(heap) < window:
            heapq.heappush(heap, t)
        else:
            out.append(heapq.heappushpop(heap, t))
    out.extend(sorted(heap))
    return out == sorted(times)


@pytest.mark.parametrize("seed", range(40))
def test_the_window_check_agrees_with_a_reorder_window_past_its_ring(seed: int) -> None:
    """In order for longer than the window (the ring has turned over), then not."""
    rng = random.Random(seed)
    window = rng.randrange(0, 6)
    times = sorted(rng.randrange(0, 40) for _ in range(rng.randrange(0, 30)))
    for _ in range(rng.randrange(0, 4)):  # a few times moved back
        if times:
            i = rng.randrange(len(times))
            times.insert(rng.randrange(i + 1), times.pop(i))
    check = WindowCheck(window)
    for t in times:
        check.add(t)
    assert check.in_order is (times == sorted(times))
    assert check.ok is sorted_by_window(times, window), (times, window)
