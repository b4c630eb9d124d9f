"""The console sink: one compact, human-readable line per record.

Meant for people at a terminal (``make demo``), not for machines: use jsonl
for that. Control characters in messages are escaped so an Event cannot move
the cursor or change colours, and colours are used only on a TTY.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from kubevents import conventions as c
from kubevents.errors import output_error
from kubevents.records import OutputRecord
from kubevents.sinks.base import ExportResult

_COLORS = {
    c.Severity.CRITICAL.value: "\x1b[1;35m",
    c.Severity.ERROR.value: "\x1b[31m",
    c.Severity.WARNING.value: "\x1b[33m",
    c.Severity.INFO.value: "\x1b[2m",
    c.Severity.DEBUG.value: "\x1b[2m",
}
_RESET = "\x1b[0m"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape_control(text: str) -> str:
    r"""Replace control characters by visible escapes (``\n``, ``\x1b``)."""

    def repl(m: re.Match[str]) -> str:
        ch = m.group()
        return {"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\x{ord(ch):02x}")

    return _CONTROL.sub(repl, text)


def format_line(record: OutputRecord, *, color: bool = False, max_body: int = 240) -> str:
    """One console line for ``record``."""
    attrs = record.attributes
    stamp = time.strftime("%H:%M:%S", time.gmtime(record.timestamp_ns // 1_000_000_000))
    severity = str(attrs.get(c.KV_SEVERITY, ""))
    category = str(attrs.get(c.KV_CATEGORY, ""))
    kind, name = attrs.get(c.OBJECT_KIND, ""), attrs.get(c.OBJECT_NAME, "")
    if not kind and not name:
        obj = f"{record.namespace}/(no object)" if record.namespace else "(no object)"
    else:
        obj = f"{record.namespace}/{kind}/{name}" if record.namespace else f"{kind}/{name}"
    body = escape_control(record.body)
    if len(body) > max_body:
        body = body[: max_body - 1] + "…"
    occurrences = attrs.get(c.KV_OCCURRENCES, 1)
    count = attrs.get(c.EVENT_COUNT, 1)
    repeat = f" (x{count})" if isinstance(count, int) and count > 1 and occurrences else ""
    head = f"{stamp} {severity.upper():8} {category:11} {escape_control(str(attrs.get(c.EVENT_REASON, '')))}"
    line = f"{head:<50} {escape_control(obj)}: {body}{repeat}"
    if color:
        return f"{_COLORS.get(severity, '')}{line}{_RESET}"
    return line


class ConsoleSink:
    """Prints one line per record to stdout (coloured on a TTY)."""

    name = "console"

    def __init__(self, out: TextIO | None = None, *, color: bool | None = None) -> None:
        stream = out or sys.stdout
        if stream is None:  # started with stdout closed (``>&-``)
            raise output_error("stdout")
        self._out = stream
        self._color = _isatty(stream) if color is None else color
        self._exported = 0

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        text = "".join(format_line(r, color=self._color) + "\n" for r in records)
        self._write(text)
        self._exported += len(records)
        return ExportResult.SUCCESS

    def _write(self, text: str) -> None:
        """Write and flush (a reader at the other end of a pipe sees each batch at once)."""
        try:
            if text:
                self._out.write(text)
            self._out.flush()
        except BrokenPipeError:
            raise  # the reader left (``| head``): the CLI ends quietly
        except (OSError, ValueError) as e:  # ValueError: the stream was closed
            raise output_error("stdout", e if isinstance(e, OSError) else None) from e

    def settled(self) -> int:
        return self._exported  # written synchronously

    def force_flush(self, timeout_s: float) -> bool:
        self._write("")
        return True

    def shutdown(self, timeout_s: float) -> None:
        self._write("")


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False
