"""Reading recorded Events from files: every format ``kubectl`` produces.

Accepted, in either API version (core/v1 or events.k8s.io/v1), plain or
``.gz``, from a path or ``-`` (stdin):

* ``kubectl get events -A -o json``: one List document;
* ``kubectl get events -A -o yaml``: a List, or a ``---`` multi-document stream;
* ``kubectl get events -w -o json``: concatenated (pretty-printed) objects;
* JSON Lines of watch events (``{"type": ..., "object": ...}``) or of bare Events;
* the text of ``kubectl get events`` and ``kubectl describe`` (see ``kubectl_text``),
  its ages counted back from ``now_ns`` (default: the file's modification time).

The format is recognised from the content, not the file name. A malformed
line or object is reported once with its file and line, counted, and
skipped; reading goes on. :class:`Problem` values go to the ``report``
callback so the caller decides how to log and count them.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from kubevents.errors import InputError, clip
from kubevents.source import kubectl_text

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DOC_SEPARATOR = re.compile(rb"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_OBJECT_START = re.compile(rb"^\{", re.MULTILINE)
WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


@dataclass(frozen=True, slots=True)
class Item:
    """One Event object read from a file, with where it came from."""

    obj: dict[str, Any]
    watch_type: str
    """ADDED, MODIFIED or DELETED for watch lines; empty for bare objects."""
    where: str


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a file that could not be used."""

    where: str
    message: str


Report = Callable[[Problem], None]


def read_bytes(path: str) -> bytes:
    """Read a file (``-`` for stdin), un-gzipping it when it is gzip."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from e
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: broken gzip data: {e}") from e
    return data.removeprefix(b"\xef\xbb\xbf")


def read_items(path: str, report: Report, now_ns: int | None = None) -> Iterator[Item]:
    """Yield every Event in the file at ``path``; report what cannot be used."""
    name = "<stdin>" if path == "-" else path
    data = read_bytes(path)
    if now_ns is None:  # the reference time of kubectl text's ages
        now_ns = time.time_ns() if path == "-" else Path(path).stat().st_mtime_ns
    yield from parse_items(data, name, report, now_ns)


def parse_items(
    data: bytes, name: str, report: Report, now_ns: int | None = None
) -> Iterator[Item]:
    """Yield every Event in ``data`` (the content of file ``name``)."""
    start = data.lstrip()[:1]
    if not start:
        return
    if start in (b"{", b"["):
        yield from _parse_json(data, name, report)
    elif kubectl_text.looks_like_text(data):
        yield from _parse_text(data, name, report, time.time_ns() if now_ns is None else now_ns)
    else:
        yield from _parse_yaml(data, name, report)


def _parse_text(data: bytes, name: str, report: Report, now_ns: int) -> Iterator[Item]:
    """kubectl's tables: problems are reported (counted), notes only logged."""
    text = data.decode("utf-8", errors="replace")
    parsed = kubectl_text.parse_text(text, name=name, now_ns=now_ns)
    for note in parsed.notes:
        logging.getLogger(__name__).warning("%s:%d: %s", name, note.line, note.message)
    for problem in parsed.problems:
        report(Problem(f"{name}:{problem.line}", problem.message))
    for event in parsed.events:
        yield Item(event.obj, "", f"{name}:{event.line}")


def _parse_json(data: bytes, name: str, report: Report) -> Iterator[Item]:
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError:
        pass
    else:
        yield from _items(document, _line_of(data, len(data) - len(data.lstrip())), name, report)
        return
    first_line = data.lstrip().split(b"\n", 1)[0]
    if _is_json_object(first_line):
        yield from _parse_lines(data, name, report)
    else:
        yield from _parse_concatenated(data, name, report)


def _parse_lines(data: bytes, name: str, report: Report) -> Iterator[Item]:
    """JSON Lines: each non-blank line is one document."""
    for number, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            report(Problem(f"{name}:{number}", f"invalid JSON: {e}"))
            continue
        yield from _items(document, number, name, report)


def _parse_concatenated(data: bytes, name: str, report: Report) -> Iterator[Item]:
    """Concatenated JSON objects (``kubectl get -w -o json``), resyncing after errors."""
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            return
        line = text.count("\n", 0, pos) + 1
        try:
            document, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            report(Problem(f"{name}:{line}", f"invalid JSON: {e.msg}"))
            # Resynchronise at the next object that starts a line.
            found = _OBJECT_START.search(data, _byte_offset(text, pos) + 1)
            if found is None:
                return
            pos = len(data[: found.start()].decode("utf-8", errors="replace"))
            continue
        yield from _items(document, line, name, report)


def _parse_yaml(data: bytes, name: str, report: Report) -> Iterator[Item]:
    """YAML: one List, or a multi-document stream; each document parsed on its own."""
    offset = 0
    bounds = [m.start() for m in _DOC_SEPARATOR.finditer(data)] + [len(data)]
    for end in bounds:
        chunk = data[offset:end]
        first_line = _line_of(data, offset)
        offset = end
        if not chunk.strip() or chunk.strip() == b"---":
            continue
        try:
            document = yaml.load(chunk, Loader=_YAML_LOADER)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = first_line + (mark.line if mark is not None else 0)
            problem = getattr(e, "problem", None) or "cannot parse"
            report(Problem(f"{name}:{line}", f"invalid YAML: {problem}"))
            continue
        if document is not None:
            yield from _items(document, first_line, name, report)


def _items(document: object, line: int, name: str, report: Report) -> Iterator[Item]:
    """The Events of one parsed document: a List, a watch event, an Event or an array."""
    where = f"{name}:{line}"
    if isinstance(document, list):
        for index, element in enumerate(document):
            yield from _one(element, f"{where} [{index}]", report)
        return
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        for index, element in enumerate(document["items"]):
            yield from _one(element, f"{where} items[{index}]", report)
        return
    yield from _one(document, where, report)


def _one(document: object, where: str, report: Report) -> Iterator[Item]:
    if not isinstance(document, dict):
        report(Problem(where, f"expected an object, got {type(document).__name__}"))
        return
    watch_type = document.get("type")
    if "object" in document and watch_type in WATCH_TYPES:
        obj = document["object"]
        if watch_type == "BOOKMARK":
            return
        if watch_type == "ERROR":
            message = obj.get("message", "") if isinstance(obj, dict) else ""
            report(Problem(where, f"watch ERROR in the recording: {clip(str(message))}"))
            return
        if not _looks_like_event(obj):
            report(Problem(where, f"watch {watch_type} object is {_kind_of(obj)}, not an Event"))
            return
        yield Item(obj, str(watch_type), where)
        return
    if not _looks_like_event(document):
        report(Problem(where, f"not an Event, a List or a watch event ({_kind_of(document)})"))
        return
    yield Item(document, "", where)


def _looks_like_event(obj: object) -> bool:
    if not isinstance(obj, dict):
        return False
    return obj.get("kind") == "Event" or "involvedObject" in obj or "regarding" in obj


def _kind_of(obj: object) -> str:
    if isinstance(obj, dict):
        kind = obj.get("kind")
        return f"kind {clip(str(kind), 64)!r}" if kind else "an object without kind"
    return type(obj).__name__


def _is_json_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _byte_offset(text: str, pos: int) -> int:
    return len(text[:pos].encode("utf-8", errors="replace"))
