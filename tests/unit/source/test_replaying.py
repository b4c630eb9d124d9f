"""Format detection and error recovery of the replay reader, on inline content."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from kubevents.source import replaying
from kubevents.source.replaying import Item, Problem, parse_items

EVENT = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {"uid": "u1", "name": "a.1"},
    "involvedObject": {"kind": "Pod", "name": "a"},
    "reason": "Started",
}
EVENT2 = {**EVENT, "metadata": {"uid": "u2", "name": "b.1"}}


def parse(data: bytes) -> tuple[list[Item], list[Problem]]:
    problems: list[Problem] = []
    items = list(parse_items(data, "f", problems.append))
    return items, problems


def uids(items: list[Item]) -> list[str]:
    return [i.obj["metadata"]["uid"] for i in items]


@pytest.mark.parametrize(
    "data",
    [
        orjson.dumps({"kind": "List", "items": [EVENT, EVENT2]}),
        orjson.dumps([EVENT, EVENT2]),
        orjson.dumps(EVENT) + b"\n" + orjson.dumps(EVENT2) + b"\n",
        orjson.dumps(EVENT, option=orjson.OPT_INDENT_2)
        + b"\n"
        + orjson.dumps(EVENT2, option=orjson.OPT_INDENT_2),
        orjson.dumps({"type": "ADDED", "object": EVENT})
        + b"\n"
        + orjson.dumps({"type": "MODIFIED", "object": EVENT2}),
        b"apiVersion: v1\nkind: List\nitems:\n- "
        + orjson.dumps(EVENT)
        + b"\n- "
        + orjson.dumps(EVENT2)
        + b"\n",
        b"---\n" + orjson.dumps(EVENT) + b"\n---\n" + orjson.dumps(EVENT2) + b"\n",
        b"\xef\xbb\xbf" + orjson.dumps([EVENT, EVENT2]),
    ],
    ids=["list", "array", "jsonl", "concatenated", "watch", "yaml-list", "yaml-multidoc", "bom"],
)
def test_formats(data: bytes) -> None:
    items, problems = parse(data)
    assert (uids(items), problems) == (["u1", "u2"], [])


def test_watch_types_are_kept_and_bookmarks_dropped() -> None:
    lines = [
        {"type": "ADDED", "object": EVENT},
        {"type": "BOOKMARK", "object": {"kind": "Event", "metadata": {}}},
        {"type": "DELETED", "object": EVENT2},
    ]
    items, problems = parse(b"\n".join(orjson.dumps(x) for x in lines))
    assert [(i.watch_type, i.where) for i in items] == [("ADDED", "f:1"), ("DELETED", "f:3")]
    assert problems == []


def test_jsonl_bad_lines_are_reported_and_skipped() -> None:
    data = b"\n".join(
        [
            orjson.dumps(EVENT),
            b'{"kind": "Ev',
            b"[1, 2]",
            orjson.dumps({"kind": "Pod"}),
            orjson.dumps({"type": "ERROR", "object": {"message": "too old"}}),
            orjson.dumps(EVENT2),
        ]
    )
    items, problems = parse(data)
    assert uids(items) == ["u1", "u2"]
    assert [p.where for p in problems] == ["f:2", "f:3 [0]", "f:3 [1]", "f:4", "f:5"]
    assert "invalid JSON" in problems[0].message
    assert problems[3].message == "not an Event, a List or a watch event (kind 'Pod')"
    assert problems[4].message == "watch ERROR in the recording: too old"


@pytest.mark.parametrize("watch_type", [["ADDED"], {"a": 1}, 1, None])
def test_a_watch_line_whose_type_is_not_a_name_is_reported_not_fatal(watch_type: object) -> None:
    data = orjson.dumps({"type": watch_type, "object": EVENT}) + b"\n" + orjson.dumps(EVENT2)
    items, problems = parse(data)
    assert uids(items) == ["u2"]
    assert [(p.where, p.message) for p in problems] == [
        ("f:1", "not an Event, a List or a watch event (an object without kind)")
    ]


def test_concatenated_stream_resyncs_after_a_broken_object() -> None:
    good = orjson.dumps(EVENT, option=orjson.OPT_INDENT_2).decode()
    data = ('{\n  "kind": "Event",\n  broken\n}\n' + good + "\n").encode()
    items, problems = parse(data)
    assert uids(items) == ["u1"]
    assert [p.where for p in problems] == ["f:1"]


def test_yaml_error_names_the_line_and_later_documents_still_flow() -> None:
    data = b"kind: Event\nreason: [unclosed\n---\n" + orjson.dumps(EVENT2) + b"\n"
    items, problems = parse(data)
    assert uids(items) == ["u2"]
    assert (
        len(problems) == 1
        and problems[0].where.startswith("f:")
        and "invalid YAML" in problems[0].message
    )


def test_empty_input() -> None:
    assert parse(b"  \n") == ([], [])


WATCH_FILE = b"\n".join(
    [
        orjson.dumps({"type": "ADDED", "object": EVENT}),
        b"   ",
        orjson.dumps(
            {
                "type": "MODIFIED",
                "object": {
                    **EVENT2,
                    "metadata": {"uid": "u2", "annotations": {"a": "n\u0153ud \u00e9t\u00e9"}},
                },
            }
        ),
        b'{"kind": "Ev',
        orjson.dumps({"type": "DELETED", "object": EVENT}).replace(b"a.1", b"a\xff1"),
        orjson.dumps({"type": "BOOKMARK", "object": {"kind": "Event", "metadata": {}}}),
        orjson.dumps([EVENT, EVENT2]),
        orjson.dumps({"type": "MODIFIED", "object": EVENT2}),
    ]
)


@pytest.mark.parametrize("chunk", [1, 2, 7, 64, 1 << 20])
@pytest.mark.parametrize("tail", [b"", b"\n", b"\n\n"])
def test_a_file_read_in_chunks_gives_what_the_whole_input_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, tail: bytes
) -> None:
    """Lines cut by the file's reads (a multi-byte character too), bad bytes, blank lines:
    the same items and problems, in the same order, as the whole input parsed at once."""
    data = WATCH_FILE + tail
    path = tmp_path / "f"
    path.write_bytes(data)
    monkeypatch.setattr(replaying, "_FILE_CHUNK", chunk)
    problems: list[Problem] = []
    items = list(replaying.read_items(str(path), problems.append, 0))
    whole_problems: list[Problem] = []
    text = replaying.as_utf8(data, str(path), whole_problems.append)
    whole = list(replaying.parse_items(text, str(path), whole_problems.append))
    assert (items, problems) == (whole, whole_problems)
    assert [i.watch_type for i in items] == ["ADDED", "MODIFIED", "DELETED", "", "", "MODIFIED"]
