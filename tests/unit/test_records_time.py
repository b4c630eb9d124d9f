"""``records.format_rfc3339``: RFC 3339 in UTC with all nine digits of the nanoseconds."""

from __future__ import annotations

import datetime as dt

import pytest

from kubevents import records
from kubevents.records import format_rfc3339

S = 1_000_000_000


def reference(time_ns: int) -> str:
    seconds, nanos = divmod(time_ns, S)
    when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


@pytest.mark.parametrize(
    ("time_ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000000000Z"),
        (1, "1970-01-01T00:00:00.000000001Z"),
        (S - 1, "1970-01-01T00:00:00.999999999Z"),
        (-1, "1969-12-31T23:59:59.999999999Z"),
        (1_763_632_801_123_456_789, "2025-11-20T10:00:01.123456789Z"),
        (1_763_632_801_000_000_000, "2025-11-20T10:00:01.000000000Z"),
        (1_763_632_801_000_001_000, "2025-11-20T10:00:01.000001000Z"),
    ],
)
def test_the_text_of_a_time(time_ns: int, text: str) -> None:
    assert format_rfc3339(time_ns) == text
    assert format_rfc3339(time_ns) == text  # the second call, from the seconds kept


def test_more_seconds_than_are_kept_still_give_their_own_text() -> None:
    start = 1_763_632_801 * S
    times = [start + i * S + i for i in range(3 * records._SECONDS_KEPT)]
    assert [format_rfc3339(t) for t in times] == [reference(t) for t in times]
    assert len(records._SECONDS) <= records._SECONDS_KEPT
    assert [format_rfc3339(t) for t in times[:10]] == [reference(t) for t in times[:10]]


def test_more_whole_seconds_than_are_kept_still_give_their_own_text() -> None:
    start = 1_763_632_801 * S
    times = [start + i * S for i in range(3 * records._SECONDS_KEPT)]
    assert [format_rfc3339(t) for t in times] == [reference(t) for t in times]
    assert len(records._WHOLE_SECONDS) <= records._SECONDS_KEPT
    assert [format_rfc3339(t) for t in times[:10]] == [reference(t) for t in times[:10]]
    # a whole second and a time within it: each its own text, whichever came first
    assert format_rfc3339(start + 7) == reference(start + 7)
    assert format_rfc3339(start) == reference(start)
