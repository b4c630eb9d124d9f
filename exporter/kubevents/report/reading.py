"""The report's inputs: kubevents' own records, or Events to replay into records first.

The report is built on the output contract (docs/attributes.md), never on the
pipeline's internals: a file that already holds ``--sink jsonl`` records is read
as it is; every other input (anything ``kubevents replay`` reads) goes through
``app.replay`` with a jsonl sink to a temporary file, so the report sees exactly
the records a replay would ship. Which is which is told from the content: a
jsonl record is a JSON object with ``event_name`` and ``attributes``.

The records are read again for each pass of the aggregation (model.py: three),
from the files, the replay's output file and the bytes read from stdin, so no
record is held between passes.
"""

from __future__ import annotations

import contextlib
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


class Inputs:
    """The records of every input, read again each time they are iterated over.

    Input problems are reported on the first reading only (they are counted once).
    """

    def __init__(
        self,
        stdin_records: bytes | None,
        record_paths: Sequence[str],
        replayed: str | None,
        report: Callable[[Problem], None],
    ) -> None:
        self.stdin_records = stdin_records
        self.record_paths = record_paths
        self.replayed = replayed
        """The replay's jsonl output (a temporary file), when some inputs were Events."""
        self._report = report
        self._read = False

    def __iter__(self) -> Iterator[Record]:
        report = self._report if not self._read else _ignore
        count = 0
        if self.stdin_records is not None:
            for record in parse_records(io.BytesIO(self.stdin_records), "<stdin>", report):
                count += 1
                yield record
        for path in self.record_paths:
            with _open(path) as f:
                try:
                    for record in parse_records(f, path, report):
                        count += 1
                        yield record
                except (OSError, EOFError) as e:
                    raise InputError(f"{path}: broken gzip data: {e}") from e
        if self.replayed is not None:
            with open(self.replayed, "rb") as f:
                for record in parse_records(f, "<replay>", _bug):
                    count += 1
                    yield record
        if not self._read and not count:
            paths = [*(["-"] if self.stdin_records is not None else []), *self.record_paths]
            raise InputError(f"no records or Events could be read from {', '.join(paths)}")
        self._read = True


@contextlib.contextmanager
def open_inputs(
    settings: Settings, paths: Sequence[str], report: Callable[[Problem], None]
) -> Iterator[Inputs]:
    """The records of ``paths``: record files as they are, the rest replayed together first.

    Raises:
        InputError: an input cannot be read, or nothing at all could be (on the first
            reading of the records).
    """
    replay: list[str] = []
    records: list[str] = []
    stdin_records: bytes | None = None
    temporary: list[str] = []
    try:
        for path in paths:
            if path == "-":
                data = read_bytes(path)
                if is_records(data):
                    stdin_records = data
                    continue
                # replay reads its inputs by path: keep what was read from stdin
                fd, stdin_copy = tempfile.mkstemp(prefix="kubevents-report-", suffix=".json")
                temporary.append(stdin_copy)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                replay.append(stdin_copy)
            elif is_records(_peek(path)):
                records.append(path)
            else:
                replay.append(path)
        replayed = None
        if replay:
            fd, replayed = tempfile.mkstemp(prefix="kubevents-report-", suffix=".jsonl")
            os.close(fd)
            temporary.append(replayed)
            replay_to(settings, replay, replayed)
        yield Inputs(stdin_records, records, replayed, report)
    finally:
        for path in temporary:
            with contextlib.suppress(OSError):
                os.unlink(path)


def replay_to(settings: Settings, paths: Sequence[str], out: str) -> None:
    """Replay Event dumps (``app.replay``) into jsonl records in the file ``out``."""
    quiet = dataclasses.replace(
        settings,
        sinks=(f"jsonl:{out}",),
        replay=dataclasses.replace(settings.replay, summary=False),
    )
    app.replay(quiet, paths)


def _ignore(problem: Problem) -> None:
    # Reported on the first reading already.
    pass


def _bug(problem: Problem) -> None:
    # The jsonl sink wrote these lines itself: a bad one is a bug, not bad input.
    raise AssertionError(f"replay wrote a bad record at {problem.where}: {problem.message}")
