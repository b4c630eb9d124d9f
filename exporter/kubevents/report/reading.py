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
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson

from kubevents import app
from kubevents.config import Settings
from kubevents.errors import InputError, clip
from kubevents.source.replaying import Problem, read_bytes

logger = logging.getLogger(__name__)

Record = dict[str, Any]
"""One jsonl record: ``timestamp``, ``event_name``, ``body``, ``resource``, ``attributes``..."""


def is_records(data: bytes) -> bool:
    """True when ``data`` is kubevents jsonl output (its first line is a record)."""
    first = data.lstrip()[:65536].split(b"\n", 1)[0]
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and "event_name" in obj and isinstance(obj.get("attributes"), dict)


def parse_records(data: bytes, name: str, report: Callable[[Problem], None]) -> Iterator[Record]:
    """Every record of a jsonl file; a line that is not one is reported and skipped."""
    for number, line in enumerate(data.split(b"\n"), start=1):
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


def read_inputs(
    settings: Settings, paths: Sequence[str], report: Callable[[Problem], None]
) -> list[Record]:
    """The records of every input: record files as they are, the rest replayed together.

    Raises:
        InputError: an input cannot be read, or nothing at all could be.
    """
    records: list[Record] = []
    replay: list[str] = []
    stdin_copy: str | None = None
    try:
        for path in paths:
            data = read_bytes(path)
            name = "<stdin>" if path == "-" else path
            if is_records(data):
                records.extend(parse_records(data, name, report))
            elif path == "-":
                # replay reads its inputs by path: keep what was read from stdin
                fd, stdin_copy = tempfile.mkstemp(prefix="kubevents-report-", suffix=".json")
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                replay.append(stdin_copy)
            else:
                replay.append(path)
        if replay:
            records.extend(replay_records(settings, replay))
    finally:
        if stdin_copy is not None:
            os.unlink(stdin_copy)
    if not records:
        raise InputError(f"no records or Events could be read from {', '.join(paths)}")
    return records


def replay_records(settings: Settings, paths: Sequence[str]) -> list[Record]:
    """Replay Event dumps (``app.replay``) and return the jsonl records it wrote."""
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
            data = f.read()
    finally:
        os.unlink(out)
    return list(parse_records(data, "<replay>", _bug))


def _bug(problem: Problem) -> None:
    # The jsonl sink wrote these lines itself: a bad one is a bug, not bad input.
    raise AssertionError(f"replay wrote a bad record at {problem.where}: {problem.message}")
