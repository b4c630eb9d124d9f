"""The report's inputs: kubevents' own records, or Events to replay into records first.

The report is built on the output contract (docs/attributes.md), never on the
pipeline's internals: a file that already holds ``--sink jsonl`` records is read
as it is; every other input (anything ``kubevents replay`` reads) goes through
``app.replay`` with a jsonl sink to a temporary file, so the report sees exactly
the records a replay would ship. Which is which is told from the content: a
jsonl record is a JSON object with ``event_name`` and ``attributes``.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Final

import orjson

from kubevents import app
from kubevents.errors import InputError, clip
from kubevents.settings import Settings
from kubevents.source.replaying import Problem, read_bytes

logger = logging.getLogger(__name__)

Record = dict[str, Any]
"""One jsonl record: ``timestamp``, ``event_name``, ``body``, ``resource``, ``attributes``..."""


PEEK: Final = 1 << 20
"""Bytes read to tell records from Events: the first line of a record file is one record."""


def is_records(data: bytes) -> bool:
    """True when ``data`` starts like kubevents jsonl output (its first line is a record)."""
    first = data.removeprefix(b"\xef\xbb\xbf").lstrip().split(b"\n", 1)[0]
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and "event_name" in obj and isinstance(obj.get("attributes"), dict)


def parse_records(
    lines: Iterable[bytes], name: str, report: Callable[[Problem], None]
) -> Iterator[Record]:
    """Every record of a jsonl stream; a line that is not one is reported and skipped."""
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix(b"\xef\xbb\xbf")
        if not line.strip():
            continue
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError as e:
            report(Problem(f"{name}:{number}", f"not JSON: {clip(str(e), 80)}"))
            continue
        if not isinstance(obj, dict) or not isinstance(obj.get("attributes"), dict):
            report(Problem(f"{name}:{number}", "not a kubevents record (no attributes)"))
            continue
        yield obj


def _open(path: str) -> io.BufferedIOBase:
    """The file at ``path``, un-gzipped as it is read when it is gzip."""
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed by the caller)
        if f.read(2) == b"\x1f\x8b":
            f.seek(0)
            return gzip.GzipFile(fileobj=f, mode="rb")
        f.seek(0)
        return f
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}") from e


def _peek(path: str) -> bytes:
    with _open(path) as f:
        try:
            return f.read(PEEK)
        except (OSError, EOFError) as e:
            raise InputError(f"{path}: broken gzip data: {e}") from e


def read_inputs(
    settings: Settings, paths: Sequence[str], report: Callable[[Problem], None]
) -> Iterator[Record]:
    """The records of every input: record files as they are, the rest replayed together.

    A generator: records are read as the caller takes them, so a large input is
    never held as records and as text at once.

    Raises:
        InputError: an input cannot be read, or nothing at all could be.
    """
    replay: list[str] = []
    records: list[str] = []
    stdin_records: bytes | None = None
    stdin_copy: str | None = None
    try:
        for path in paths:
            if path == "-":
                data = read_bytes(path)
                if is_records(data):
                    stdin_records = data
                    continue
                # replay reads its inputs by path: keep what was read from stdin
                fd, stdin_copy = tempfile.mkstemp(prefix="kubevents-report-", suffix=".json")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                replay.append(stdin_copy)
            elif is_records(_peek(path)):
                records.append(path)
            else:
                replay.append(path)
        count = 0
        if stdin_records is not None:
            for record in parse_records(io.BytesIO(stdin_records), "<stdin>", report):
                count += 1
                yield record
        for path in records:
            with _open(path) as f:
                try:
                    for record in parse_records(f, path, report):
                        count += 1
                        yield record
                except (OSError, EOFError) as e:
                    raise InputError(f"{path}: broken gzip data: {e}") from e
        if replay:
            for record in replay_records(settings, replay):
                count += 1
                yield record
    finally:
        if stdin_copy is not None:
            os.unlink(stdin_copy)
    if not count:
        raise InputError(f"no records or Events could be read from {', '.join(paths)}")


def replay_records(settings: Settings, paths: Sequence[str]) -> Iterator[Record]:
    """Replay Event dumps (``app.replay``) and yield the jsonl records it wrote."""
    fd, out = tempfile.mkstemp(prefix="kubevents-report-", suffix=".jsonl")
    os.close(fd)
    try:
        quiet = dataclasses.replace(
            settings,
            sinks=(f"jsonl:{out}",),
            replay=dataclasses.replace(settings.replay, summary=False),
        )
        app.replay(quiet, paths)
        with open(out, "rb") as f:
            yield from parse_records(f, "<replay>", _bug)
    finally:
        os.unlink(out)


def _bug(problem: Problem) -> None:
    # The jsonl sink wrote these lines itself: a bad one is a bug, not bad input.
    raise AssertionError(f"replay wrote a bad record at {problem.where}: {problem.message}")
