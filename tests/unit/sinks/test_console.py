"""Console lines: readable, one per record, and safe for a terminal."""

from __future__ import annotations

import io

from kubevents.records import OutputRecord
from kubevents.sinks.console import ConsoleSink, escape_control, format_line


def record(
    body: str = "Back-off pulling image", count: int = 3, occurrences: int = 1
) -> OutputRecord:
    return OutputRecord(
        timestamp_ns=1_795_255_201 * 10**9,
        observed_ns=0,
        severity_number=17,
        severity_text="Warning",
        event_name="k8s.event",
        body=body,
        namespace="shop",
        attributes={
            "k8s.event.reason": "BackOff",
            "k8s.object.kind": "Pod",
            "k8s.object.name": "web-1",
            "kubevents.category": "Image",
            "kubevents.severity": "error",
            "k8s.event.count": count,
            "kubevents.occurrences": occurrences,
        },
    )


def test_line_shows_time_severity_category_reason_object_message_and_count() -> None:
    line = format_line(record())
    assert line.startswith("10:00:01 ERROR    Image       BackOff")
    assert line.endswith("shop/Pod/web-1: Back-off pulling image (x3)")


def test_control_characters_cannot_reach_the_terminal() -> None:
    line = format_line(record(body="a\x1b[2Jb\nc\x00\u009b"))
    assert "\x1b" not in line and "\n" not in line and "\x00" not in line and "\u009b" not in line
    assert "a\\x1b[2Jb\\nc\\x00\\x9b" in line


def test_long_messages_are_shortened_for_the_console_only() -> None:
    assert format_line(record(body="y" * 10_000)).endswith("y…" + " (x3)")


def test_escape_keeps_printable_unicode() -> None:
    assert escape_control("ünïcødé 🚀\t") == "ünïcødé 🚀\\t"


def test_colour_only_when_asked() -> None:
    out = io.StringIO()
    ConsoleSink(out, color=True).export([record()])
    assert out.getvalue().startswith("\x1b[31m")
    plain = io.StringIO()
    ConsoleSink(plain).export([record()])  # StringIO is not a TTY
    assert "\x1b" not in plain.getvalue()


def test_an_event_without_object_shows_none_not_a_slash() -> None:
    rec = record()
    for key in ("k8s.object.kind", "k8s.object.name"):
        del rec.attributes[key]
    assert format_line(rec).endswith(" shop/(no object): Back-off pulling image (x3)")


class _Full(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(28, "No space left on device")


def test_a_full_or_closed_stdout_is_one_error_naming_it() -> None:
    import pytest

    from kubevents.errors import OutputError

    with pytest.raises(OutputError, match=r"^stdout: cannot write: No space left on device$"):
        ConsoleSink(_Full(), color=False).export([record()])
    closed = io.StringIO()
    closed.close()
    with pytest.raises(OutputError, match=r"^stdout: cannot write: it is closed$"):
        ConsoleSink(closed, color=False).export([record()])
