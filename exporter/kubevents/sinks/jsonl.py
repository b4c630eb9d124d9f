"""The jsonl sink: one JSON object per log record, the OTLP content in JSON.

Each line holds exactly what the OTLP sink sends for the record: timestamps
(RFC 3339, nanoseconds), severity, event name, body, resource and attributes.
It is the easiest way to see the output contract, and the schema test checks
it against ``docs/attributes.md``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import IO, Any

import orjson

from kubevents.errors import output_error
from kubevents.records import OutputRecord, ResourceInfo, format_rfc3339
from kubevents.sinks.base import ExportResult


def record_to_json(record: OutputRecord, resource: ResourceInfo) -> dict[str, Any]:
    """The jsonl form of one record (also the documented contract)."""
    return {
        "timestamp": format_rfc3339(record.timestamp_ns),
        "observed_timestamp": format_rfc3339(record.observed_ns),
        "severity_number": record.severity_number,
        "severity_text": record.severity_text,
        "event_name": record.event_name,
        "body": record.body,
        "resource": resource.attributes(record.namespace),
        "attributes": record.attributes,
    }


class JsonlSink:
    """Writes records as JSON Lines to a file or stdout."""

    name = "jsonl"

    def __init__(self, resource: ResourceInfo, path: str = "-") -> None:
        self._resource = resource
        self._path = path
        self._where = "stdout" if path == "-" else path
        if path == "-" and sys.stdout is None:  # started with stdout closed (``>&-``)
            raise output_error("stdout")
        self._out: IO[bytes] = sys.stdout.buffer if path == "-" else open(path, "ab")  # noqa: SIM115
        self._exported = 0

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        lines = [
            orjson.dumps(record_to_json(r, self._resource), option=orjson.OPT_APPEND_NEWLINE)
            for r in records
        ]
        self._write(b"".join(lines))  # one flush per batch: readers see whole lines promptly
        self._exported += len(records)
        return ExportResult.SUCCESS

    def _write(self, data: bytes) -> None:
        try:
            if data:
                self._out.write(data)
            self._out.flush()
        except BrokenPipeError:
            raise  # the reader left (``| head``): the CLI ends quietly
        except (OSError, ValueError) as e:  # ValueError: the stream was closed
            raise output_error(self._where, e if isinstance(e, OSError) else None) from e

    def settled(self) -> int:
        return self._exported  # written synchronously

    def force_flush(self, timeout_s: float) -> bool:
        self._write(b"")
        return True

    def shutdown(self, timeout_s: float) -> None:
        if self._out.closed:
            return
        try:
            self._write(b"")
        finally:
            if self._path != "-":
                self._out.close()
