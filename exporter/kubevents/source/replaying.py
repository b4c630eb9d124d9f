"""Reading recorded Events from files: every format ``kubectl`` produces.

Accepted, in either API version (core/v1 or events.k8s.io/v1), plain or
``.gz``, from a path or ``-`` (stdin):

* ``kubectl get events -A -o json``: one List document;
* ``kubectl get events -A -o yaml``: a List, or a ``---`` multi-document stream;
* ``kubectl get events -w -o json``: concatenated (pretty-printed) objects;
* JSON Lines of watch events (``{"type": ..., "object": ...}``) or of bare Events;
* the text of ``kubectl get events`` and ``kubectl describe`` (see ``kubectl_text``),
  its ages counted back from ``now_ns`` (default: the file's modification time).

The format is recognised from the content, not the file name (:func:`detect_format`).
Compressed input (gzip, bzip2, xz) is recognised by its magic bytes; a cut or corrupt
stream keeps what decompresses and reports where it broke. UTF-16 with a byte order
mark (what PowerShell's ``>`` writes) is decoded; bytes that are not UTF-8 are replaced
by U+FFFD and the Event kept. A malformed line or object, or one nested deeper than
the parsers take, is reported once with its file and line, counted, and skipped;
reading goes on. :class:`Problem` values go to the ``report`` callback so the caller
decides how to log and count them.

A file of JSON Lines (a watch dump) is read line by line, any other file whole; the
replay reads each file twice to sort it by occurrence time in bounded memory
(``ordering``). A pipe, a terminal or a FIFO is read as it comes (:func:`stream_batches`): each document is framed by
lines and handed on as soon as it is complete, so ``kubectl get events -w -o json |
kubevents replay -`` shows Events as they happen.
"""

from __future__ import annotations

import bz2
import itertools
import json
import logging
import lzma
import os
import re
import select
import stat
import sys
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TypeVar

import orjson
import yaml

from kubevents.errors import InputError, clip
from kubevents.safeload import LoadProblem, check_tree
from kubevents.source import kubectl_text

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DOC_SEPARATOR = re.compile(rb"^---[ \t]*(?:#.*)?$", re.MULTILINE)
_OBJECT_START = re.compile(rb"^\{", re.MULTILINE)
WATCH_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


class Item(NamedTuple):
    """One Event object read from a file, with where it came from (a named tuple, not a
    frozen dataclass: made once per line, twice per replay, and a frozen dataclass's
    constructor sets each field through ``object.__setattr__``)."""

    obj: dict[str, Any]
    watch_type: str
    """ADDED, MODIFIED or DELETED for watch lines; empty for bare objects."""
    where: str


@dataclass(frozen=True, slots=True)
class Problem:
    """Something in a file that could not be used (or, ``kept``, was repaired and used)."""

    where: str
    message: str
    kept: bool = False
    """True when the input was repaired and used (bad bytes replaced, the good part
    of a cut gzip stream kept); False when it was skipped."""


Report = Callable[[Problem], None]

MAX_DEPTH = 1024
"""Nesting a replayed document may have: orjson's own limit, applied to every format."""

MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
"""Longest document a stream may frame (a ``kubectl get -o json`` List of 100 000 Events
is about 150 MiB, but arrives as a file; a live stream carries one Event per document)."""

_CHUNK = 1 << 16
"""A stream's read (a pipe returns what it has)."""

_FILE_CHUNK = 1 << 20
"""A regular file's read. Each read lets go of the interpreter lock, and the pipeline
thread then waits for the sink's worker to give it back (up to the 5 ms switch
interval): 1 MiB reads rather than 64 KiB took a replay's wall time 0.81x (medians
of 6, compiled). Bounded all the same: one chunk and its lines at a time."""
_REPLACED = "bytes that are not UTF-8 replaced by U+FFFD (the Event is kept)"


def display_name(path: str) -> str:
    """How an input is named in messages."""
    return "<stdin>" if path == "-" else path


def is_stream(path: str) -> bool:
    """True when ``path`` (``-``: stdin) is a pipe, a terminal, a socket or a FIFO: read as
    it comes, in arrival order. A regular file (also as stdin: ``< dump.json``) is not."""
    try:
        mode = os.fstat(_stdin_fd()).st_mode if path == "-" else os.stat(path).st_mode
    except (OSError, InputError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _stdin_fd() -> int:
    if sys.stdin is None:
        raise InputError("<stdin>: cannot read: standard input is closed")
    try:
        return sys.stdin.fileno()
    except (OSError, ValueError) as e:  # io.UnsupportedOperation: not a file (tests)
        raise InputError("<stdin>: cannot read: standard input has no file descriptor") from e


def read_bytes(path: str, report: Report | None = None) -> bytes:
    """Read a whole file (``-`` for stdin), decompressed and as UTF-8.

    Raises:
        InputError: the file cannot be read at all (missing, a directory, unreadable).
    """
    name = display_name(path)
    try:
        if path == "-":
            if sys.stdin is None:
                raise InputError("<stdin>: cannot read: standard input is closed")
            data = sys.stdin.buffer.read()
        else:
            data = Path(path).read_bytes()
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
    report = report or _ignore
    # Small pieces: a corrupt stream loses only the output of the piece it broke in.
    pieces = (data[i : i + 4096] for i in range(0, len(data), 4096))
    data = b"".join(decompress(pieces, name, report))
    return as_utf8(data, name, report)


def _ignore(problem: Problem) -> None:
    del problem


_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"PK\x03\x04", "zip"),
)


def decompress(chunks: Iterable[bytes], name: str, report: Report) -> Iterator[bytes]:
    """``chunks`` decompressed as they come when they start with gzip, bzip2 or xz magic
    (concatenated members too); as they are otherwise.

    A corrupt or cut stream ends the input with one :class:`Problem` saying where; what
    decompressed before stays. zstd and zip are named, not read.
    """
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= 6:
            break
    kind = next((k for magic, k in _MAGIC if head.startswith(magic)), "")
    if kind in ("zstd", "zip"):
        report(Problem(name, f"{kind} data is not supported: decompress it first"))
        return
    if not kind:
        if head:
            yield head
        yield from it
        return
    make: Callable[[], Any] = {
        "gzip": lambda: zlib.decompressobj(wbits=31),
        "bzip2": bz2.BZ2Decompressor,
        "xz": lzma.LZMADecompressor,
    }[kind]
    decoder = make()
    out = 0
    pending = head
    try:
        while True:
            while pending:
                data = decoder.decompress(pending)
                out += len(data)
                if data:
                    yield data
                if decoder.eof:  # a member ended; another may follow
                    pending = decoder.unused_data
                    if pending.strip(b"\x00"):
                        decoder = make()
                        continue
                    pending = b""
                else:
                    pending = b""
            more = next(it, None)
            if more is None:
                break
            pending = more
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as e:
        why = f"{kind} data corrupt after {out:,} bytes ({e})"
        report(Problem(name, f"{why}: what came before is replayed", True))
        return
    if not decoder.eof:
        report(
            Problem(
                name,
                f"{kind} data ends before its end marker (cut off?) after {out:,} bytes: "
                f"what came before is replayed",
                True,
            )
        )


def as_utf8(data: bytes, name: str, report: Report) -> bytes:
    """``data`` as UTF-8: a UTF-16 byte order mark decodes it, a UTF-8 one is dropped,
    and bytes that are not UTF-8 become U+FFFD (reported once, with the first line)."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16").encode()
        except UnicodeDecodeError as e:
            report(Problem(name, f"broken UTF-16 text ({e.reason}); bad units replaced", True))
            return data.decode("utf-16", errors="replace").encode()
    data = data.removeprefix(b"\xef\xbb\xbf")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        fixed = data.decode("utf-8", errors="replace").encode()
        report(Problem(f"{name}:{line}", _REPLACED, True))
        return fixed
    return data


def read_items(path: str, report: Report, now_ns: int | None = None) -> Iterator[Item]:
    """Yield every Event in the file at ``path``; report what cannot be used.

    ``now_ns``: the reference time of kubectl text's ages (default: the file's
    modification time; stdin: the current time).

    Raises:
        InputError: the file cannot be read at all.
    """
    for obj, watch_type, where in read_entries(path, report, now_ns):
        yield Item(obj, watch_type, where_of(path, where))


Entry = tuple[dict[str, Any], str, "str | int"]
"""An Event read from a file as :func:`read_entries` gives it: an :class:`Item`, or, for
a line of a watch dump, ``(obj, watch_type, line number)``: the replay reads every line
twice and names the line only when something is wrong with it (:func:`where_of`)."""


def where_of(path: str, where: str | int) -> str:
    """Where an :data:`Entry` of the file at ``path`` came from, as messages name it."""
    return _where(display_name(path), where)


def _where(name: str, where: str | int) -> str:
    """:func:`where_of` for an input already named as messages name it."""
    return f"{name}:{where}" if type(where) is int else str(where)


def read_entries(path: str, report: Report, now_ns: int | None = None) -> Iterator[Entry]:
    """:func:`read_items` without an :class:`Item` (nor its text of where) per line of a
    watch dump (see :data:`Entry`).

    Raises:
        InputError: the file cannot be read at all.
    """
    return read_file(path, report, now_ns, lines=_parse_line_blocks, entries=as_read)


T = TypeVar("T")

LineReader = Callable[[Iterable[list[bytes]], str, Report], Iterator[T]]
"""What takes a watch dump's lines, a block of lines at a time (each read's), with the
file's name and where to report the lines' problems: :func:`_parse_line_blocks` (every
line's :data:`Entry`), or a pass of the replay (``dumplines``)."""


def read_file(
    path: str,
    report: Report,
    now_ns: int | None = None,
    *,
    lines: LineReader[T],
    entries: Callable[[Iterable[Entry]], Iterable[T]],
) -> Iterator[T]:
    """What ``lines`` makes of a watch dump's lines (JSON Lines, read a block at a time),
    what ``entries`` makes of the Events of any other file: what the replay's two passes
    read. ``now_ns``: as :func:`read_items` takes it.

    Raises:
        InputError: the file cannot be read at all.
    """
    if now_ns is None:
        try:
            now_ns = time.time_ns() if path == "-" else Path(path).stat().st_mtime_ns
        except OSError:
            now_ns = time.time_ns()
    if path == "-":
        yield from entries(
            parse_items(read_bytes(path, report), display_name(path), report, now_ns)
        )
        return
    try:
        file = open(path, "rb")  # noqa: SIM115 (closed below; a generator holds it)
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from e
    with file:
        yield from _file_items(file, path, report, now_ns, lines, entries)


def as_read(entries: Iterable[Entry]) -> Iterable[Entry]:
    """The Events of a file as read: :func:`read_file`'s ``entries`` for a caller that
    takes each :data:`Entry` itself."""
    return entries


def _file_items(
    file: BinaryIO,
    name: str,
    report: Report,
    now_ns: int,
    lines: LineReader[T],
    entries: Callable[[Iterable[Entry]], Iterable[T]],
) -> Iterator[T]:
    """The Events of a regular file. JSON Lines (the first line one object: a watch dump)
    are read line by line, so a file of any size is never held whole; any other format is
    read whole and parsed as :func:`parse_items` does. Problems come out in the order a
    whole read gives them: decompression, then encoding, then each line's."""

    def chunks() -> Iterator[bytes]:
        try:
            while chunk := file.read(_FILE_CHUNK):
                yield chunk
        except OSError as e:
            raise InputError(f"{name}: cannot read: {e.strerror or e}") from e

    early: list[Problem] = []
    decoded = decompress(chunks(), name, early.append)
    head = b""
    for chunk in decoded:
        head += chunk
        start = head.lstrip()
        if b"\n" in start or len(head) > MAX_DOCUMENT_BYTES:
            break
    body = head.removeprefix(b"\xef\xbb\xbf")
    first = _utf8(body.lstrip().split(b"\n", 1)[0], name, _ignore)
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or not _is_json_object(first):
        data = head + b"".join(decoded)
        for problem in early:
            report(problem)
        yield from entries(parse_items(as_utf8(data, name, report), name, report, now_ns))
        return
    encoding: list[Problem] = []
    late: list[Problem] = []
    yield from lines(_lines(body, decoded, name, encoding.append), name, late.append)
    for problem in (*early, *encoding, *late):
        report(problem)


def _lines(head: bytes, rest: Iterable[bytes], name: str, report: Report) -> Iterator[list[bytes]]:
    """The lines of ``head`` and then ``rest``, as UTF-8, a block of lines at a time (each
    read's: not a generator's step per line): bad bytes replaced, the first line that had
    some reported (as :func:`as_utf8` reports a whole input)."""
    partial = b""
    number = 0
    reported = False
    for chunk in itertools.chain((head,), rest, (None,)):
        if chunk is None:
            ascii = partial.isascii()
            lines = [partial]
        else:
            # The chunk split as it is, the line it cut joined to its first line: no copy
            # of the whole chunk.
            ascii = partial.isascii() and chunk.isascii()
            lines = chunk.split(b"\n")
            lines[0] = partial + lines[0]
            partial = lines.pop()
        if ascii or _is_utf8(b"\n".join(lines)):  # ASCII is UTF-8, known without a copy
            number += len(lines)
            yield lines
            continue
        for index, line in enumerate(lines):  # a block with bad bytes somewhere: line by line
            number += 1
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                lines[index] = line.decode("utf-8", errors="replace").encode()
                if not reported:
                    report(Problem(f"{name}:{number}", _REPLACED, True))
                    reported = True
        yield lines


Parser = Callable[[bytes, str, Report], Iterator[Item]]


def detect_format(data: bytes) -> str:
    """The format of an input from its first bytes: ``json``, ``text`` (kubectl's
    tables) or ``yaml`` (``""``: empty).

    One place decides, for files and streams alike; a new format adds a branch here and
    a parser in :data:`PARSERS`."""
    start = data.lstrip()[:1]
    if not start:
        return ""
    if start in (b"{", b"["):
        return "json"
    if kubectl_text.looks_like_text(data):
        return "text"
    return "yaml"


def parse_items(
    data: bytes, name: str, report: Report, now_ns: int | None = None
) -> Iterator[Item]:
    """Yield every Event in ``data`` (the content of file ``name``)."""
    fmt = detect_format(data)
    if fmt == "text":
        yield from _parse_text(data, name, report, time.time_ns() if now_ns is None else now_ns)
    elif fmt:
        yield from PARSERS[fmt](data, name, report)


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
    for obj, watch_type, where in _parse_line_blocks((data.split(b"\n"),), name, report):
        yield Item(obj, watch_type, _where(name, where))


def _parse_line_blocks(blocks: Iterable[list[bytes]], name: str, report: Report) -> Iterator[Entry]:
    """JSON Lines, given as blocks of lines: a watch dump's line that carries an update of
    an Event as ``(obj, watch_type, line number)`` (see :data:`Entry`), every other
    document as :func:`_items` takes it. The loop is the replay's passes' (compiled, in
    ``dumplines``, which imports this module: imported here)."""
    from kubevents.source.dumplines import Entries

    return Entries().lines(blocks, name, report)


def _parse_concatenated(data: bytes, name: str, report: Report, line0: int = 0) -> Iterator[Item]:
    """Concatenated JSON objects (``kubectl get -w -o json``), resyncing after errors."""
    text = data.decode("utf-8", errors="replace")
    decoder = json.JSONDecoder()
    pos = 0
    while True:
        pos = _skip_space(text, pos)
        if pos >= len(text):
            return
        line = text.count("\n", 0, pos) + 1 + line0
        try:
            document, pos = decoder.raw_decode(text, pos)
        except (json.JSONDecodeError, RecursionError) as e:
            why = e.msg if isinstance(e, json.JSONDecodeError) else "nested too deeply"
            report(Problem(f"{name}:{line}", f"invalid JSON: {why}"))
            # Resynchronise at the next object that starts a line.
            found = _OBJECT_START.search(data, _byte_offset(text, pos) + 1)
            if found is None:
                return
            pos = len(data[: found.start()].decode("utf-8", errors="replace"))
            continue
        yield from _items(document, line, name, report)


def _parse_yaml(data: bytes, name: str, report: Report, line0: int = 0) -> Iterator[Item]:
    """YAML: one List, or a multi-document stream; each document parsed on its own.
    ``line0``: lines before ``data`` in its file (a streamed document)."""
    offset = 0
    bounds = [m.start() for m in _DOC_SEPARATOR.finditer(data)] + [len(data)]
    for end in bounds:
        chunk = data[offset:end]
        first_line = _line_of(data, offset) + line0
        offset = end
        if not chunk.strip() or chunk.strip() == b"---":
            continue
        try:
            document = yaml.load(chunk, Loader=_YAML_LOADER)
            check_tree(document, max_depth=MAX_DEPTH)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = first_line + (mark.line if mark is not None else 0)
            problem = getattr(e, "problem", None) or "cannot parse"
            report(Problem(f"{name}:{line}", f"invalid YAML: {problem}"))
            continue
        except RecursionError:
            report(Problem(f"{name}:{first_line}", "invalid YAML: nested too deeply"))
            continue
        except LoadProblem as e:
            report(Problem(f"{name}:{first_line}", f"invalid YAML: {e.message}"))
            continue
        if document is not None:
            yield from _items(document, first_line, name, report)


def _parse_text_now(data: bytes, name: str, report: Report) -> Iterator[Item]:
    """kubectl text read from a stream: its ages count back from now."""
    return _parse_text(data, name, report, time.time_ns())


PARSERS: dict[str, Parser] = {"json": _parse_json, "yaml": _parse_yaml, "text": _parse_text_now}
"""The parser of each format :func:`detect_format` names: a whole input at once."""


# -- streams ------------------------------------------------------------------------


class _Framer:
    """Turns the lines of a stream into Items as soon as a document is complete."""

    def __init__(self, name: str, report: Report) -> None:
        self.name = name
        self.report = report

    def line(self, number: int, line: bytes) -> Iterator[Item]:
        """Take one line (without its newline); yield the Items it completes."""
        raise NotImplementedError

    def end(self) -> Iterator[Item]:
        """The input ended: yield what is left, report what is torn."""
        raise NotImplementedError


class _JsonFramer(_Framer):
    """JSON Lines, or pretty-printed objects one after the other (``kubectl get -w -o
    json``): an object that does not fit on its line runs from a line starting with
    ``{`` to one starting with ``}`` (nested lines are indented). A line at column 0
    before that ends a torn object."""

    def __init__(self, name: str, report: Report) -> None:
        super().__init__(name, report)
        self._lines: list[bytes] = []
        self._size = 0
        self._first = 0
        self._error = ""

    def line(self, number: int, line: bytes) -> Iterator[Item]:
        if self._lines and line[:1] not in (b" ", b"\t", b"}", b"]", b""):
            yield from self._torn()  # a line at column 0 inside an object: it was torn
        if not self._lines:
            if not line.strip():
                return
            yield from self._alone(number, line)
            return
        self._lines.append(line)
        self._size += len(line)
        if line[:1] in (b"}", b"]"):
            data, first = b"\n".join(self._lines), self._first
            self._lines, self._size = [], 0
            yield from self._document(data, first)
        elif self._size > MAX_DOCUMENT_BYTES:
            self.report(Problem(f"{self.name}:{self._first}", "document longer than 64 MiB"))
            self._lines, self._size = [], 0

    def _alone(self, number: int, line: bytes) -> Iterator[Item]:
        stripped = line.strip()
        try:
            document = orjson.loads(_utf8(stripped, f"{self.name}:{number}", self.report))
        except orjson.JSONDecodeError as e:
            if stripped[:1] not in (b"{", b"["):
                self.report(Problem(f"{self.name}:{number}", f"invalid JSON: {e}"))
            elif stripped[-1:] in (b"}", b"]"):  # whole, but not one value: resync in it
                yield from _parse_concatenated(stripped, self.name, self.report, number - 1)
            else:  # the start of a longer document
                self._lines, self._size, self._first = [line], len(line), number
                self._error = str(e)
            return
        yield from _items(document, number, self.name, self.report)

    def _document(self, data: bytes, first: int) -> Iterator[Item]:
        try:
            document = orjson.loads(_utf8(data, f"{self.name}:{first}", self.report))
        except orjson.JSONDecodeError as e:
            self.report(Problem(f"{self.name}:{first}", f"invalid JSON: {e}"))
            return
        yield from _items(document, first, self.name, self.report)

    def _torn(self) -> Iterator[Item]:
        why = self._error if len(self._lines) == 1 else "the document ends early"
        self.report(Problem(f"{self.name}:{self._first}", f"invalid JSON: {why}"))
        self._lines, self._size = [], 0
        return iter(())

    def end(self) -> Iterator[Item]:
        if self._lines:
            yield from self._torn()


class _YamlFramer(_Framer):
    """YAML documents separated by ``---`` lines (``kubectl get -w -o yaml``): a document
    is parsed when the next one starts, or at the end of the input."""

    def __init__(self, name: str, report: Report) -> None:
        super().__init__(name, report)
        self._lines: list[bytes] = []
        self._size = 0
        self._first = 1

    def line(self, number: int, line: bytes) -> Iterator[Item]:
        if _DOC_SEPARATOR.match(line):
            yield from self.end()
            self._first = number + 1
            return
        if not self._lines:
            self._first = number
        self._lines.append(line)
        self._size += len(line)
        if self._size > MAX_DOCUMENT_BYTES:
            self.report(Problem(f"{self.name}:{self._first}", "document longer than 64 MiB"))
            self._lines, self._size = [], 0

    def end(self) -> Iterator[Item]:
        if not self._lines:
            return
        where = f"{self.name}:{self._first}"
        data = _utf8(b"\n".join(self._lines), where, self.report)
        self._lines, self._size = [], 0
        yield from _parse_yaml(data, self.name, self.report, self._first - 1)


class _WholeFramer(_Framer):
    """A format without a framer: parsed whole at the end of the input."""

    def __init__(self, name: str, report: Report, fmt: str, now_ns: int | None = None) -> None:
        super().__init__(name, report)
        self._fmt = fmt
        self._now_ns = now_ns
        self._lines: list[bytes] = []

    def line(self, number: int, line: bytes) -> Iterator[Item]:
        self._lines.append(line)
        return iter(())

    def end(self) -> Iterator[Item]:
        data = as_utf8(b"\n".join(self._lines), self.name, self.report)
        if self._fmt == "text":  # kubectl's tables: ages count back from --now, or now
            now_ns = time.time_ns() if self._now_ns is None else self._now_ns
            # A table comes whole: its rows in occurrence order, as from a file.
            items = list(_parse_text(data, self.name, self.report, now_ns))
            items.sort(key=lambda item: str(item.obj.get("lastTimestamp", "")))
            yield from items
            return
        yield from PARSERS[self._fmt](data, self.name, self.report)


FRAMERS: dict[str, Callable[[str, Report], _Framer]] = {
    "json": _JsonFramer,
    "yaml": _YamlFramer,
}
"""How each format is framed on a stream; a format not here is parsed at the end."""


def _utf8(data: bytes, where: str, report: Report) -> bytes:
    """One document as UTF-8, bad bytes replaced (and reported, kept)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        report(Problem(where, _REPLACED, True))
        return data.decode("utf-8", errors="replace").encode()
    return data


def _read_chunks(path: str, stopped: Callable[[], bool], poll_s: float) -> Iterator[bytes]:
    """Bytes of a pipe, terminal or FIFO as they arrive, until its end or ``stopped()``."""
    name = display_name(path)
    try:
        fd = _stdin_fd() if path == "-" else os.open(path, os.O_RDONLY)
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
    try:
        while not stopped():
            ready, _, _ = select.select([fd], [], [], poll_s)
            if not ready:
                continue
            chunk = os.read(fd, _CHUNK)
            if not chunk:
                return
            yield chunk
    except OSError as e:
        raise InputError(f"{name}: cannot read: {e.strerror or e}") from e
    finally:
        if path != "-":
            os.close(fd)


def stream_batches(
    path: str,
    report: Report,
    *,
    stopped: Callable[[], bool] = lambda: False,
    poll_s: float = 0.2,
    now_ns: int | None = None,
) -> Iterator[list[Item]]:
    """The Events of a stream (``-``: stdin), one list per read, as they arrive.

    Each list holds the Items completed by what the last read brought (often none):
    the caller hands them on at once. Ends at the end of the input or once
    ``stopped()`` is true (checked every ``poll_s`` seconds while the input is quiet).

    Raises:
        InputError: the stream cannot be opened or read.
    """
    name = display_name(path)
    framer: _Framer | None = None
    partial = b""
    number = 0
    for chunk in decompress(_read_chunks(path, stopped, poll_s), name, report):
        lines = (partial + chunk).split(b"\n")
        partial = lines.pop()
        if len(partial) > MAX_DOCUMENT_BYTES:
            report(Problem(f"{name}:{number + 1}", "line longer than 64 MiB"))
            partial = b""  # the rest of that line is reported as invalid when it ends
        batch: list[Item] = []
        for line in lines:
            number += 1
            if framer is None:
                fmt = detect_format(line)
                if not fmt:
                    continue
                framer = _framer(fmt, name, report, now_ns)
            batch.extend(framer.line(number, line.removesuffix(b"\r")))
        yield batch
    batch = []
    if partial.strip():
        number += 1
        if framer is None and (fmt := detect_format(partial)):
            framer = _framer(fmt, name, report, now_ns)
        if framer is not None:
            batch.extend(framer.line(number, partial))
    if framer is not None:
        batch.extend(framer.end())
    yield batch


def _framer(fmt: str, name: str, report: Report, now_ns: int | None = None) -> _Framer:
    make = FRAMERS.get(fmt)
    return make(name, report) if make is not None else _WholeFramer(name, report, fmt, now_ns)


def document_entries(document: object, line: int, name: str, report: Report) -> Iterator[Item]:
    """The Events of one parsed document that starts on line ``line`` of file ``name``:
    a List, a watch event, an Event or an array; what is not an Event is reported."""
    return _items(document, line, name, report)


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
    if "object" in document and isinstance(watch_type, str) and watch_type in WATCH_TYPES:
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


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


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
