"""Replay order in bounded memory (source/ordering.py): the same order as a stable sort."""

from __future__ import annotations

import gc
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kubevents.model import KubeEvent
from kubevents.normalize import normalize
from kubevents.source import ordering
from kubevents.source.ordering import Spool, WindowCheck, occurrence_ns, sorted_on_disk, windowed

DATA = Path(__file__).parents[2] / "data"


def recorded_objects() -> list[dict[str, Any]]:
    """Every Event object of the demo, the format samples and the correlation scenarios."""
    objects: list[dict[str, Any]] = []
    for path in [DATA / "demo" / "events.jsonl", *sorted((DATA / "correlation").glob("*.jsonl"))]:
        for line in path.read_bytes().splitlines():
            if line.strip():
                document = orjson.loads(line)
                objects.append(document.get("object", document))
    for name in ("core-list.json", "events-v1-list.json"):
        objects.extend(orjson.loads((DATA / "formats" / name).read_bytes())["items"])
    objects.extend(yaml.safe_load((DATA / "formats" / "core-list.yaml").read_text())["items"])
    return objects


def test_occurrence_time_is_normalize_s_on_every_recorded_event() -> None:
    objects = recorded_objects()
    assert len(objects) > 500
    for obj in objects:
        assert occurrence_ns(obj) == normalize(obj).time_ns, obj.get("metadata")


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        ({"kind": "Event", "series": {"lastObservedTime": "2026-01-01T00:00:05.5Z"},
          "eventTime": "2026-01-01T00:00:01Z", "lastTimestamp": "2026-01-01T00:00:02Z"}, "series"),
        ({"kind": "Event", "eventTime": "2026-01-01T00:00:01.000001Z",
          "lastTimestamp": "2026-01-01T00:00:02Z"}, "eventTime"),
        ({"kind": "Event", "lastTimestamp": "2026-01-01T00:00:02Z",
          "firstTimestamp": "2026-01-01T00:00:01Z"}, "lastTimestamp"),
        ({"kind": "Event", "firstTimestamp": "2026-01-01T00:00:01Z", "lastTimestamp": None}, "first"),
        ({"kind": "Event", "metadata": {"creationTimestamp": "2026-01-01T00:00:03Z"}}, "created"),
        ({"apiVersion": "events.k8s.io/v1", "kind": "Event", "lastTimestamp": "2026-01-01T00:00:09Z",
          "deprecatedLastTimestamp": "2026-01-01T00:00:04Z"}, "v1 deprecated"),
        ({"kind": "Event", "lastTimestamp": "not a time", "series": "not a map"}, "none"),
    ],
)
def test_occurrence_time_follows_normalize_s_precedence(obj: dict[str, Any], field: str) -> None:
    assert occurrence_ns(obj) == normalize(obj).time_ns, field


@pytest.mark.parametrize(
    ("times", "window", "ok"),
    [
        ([1, 2, 3, 4, 5], 0, True),
        ([2, 1, 3], 0, False),
        ([2, 1, 3], 1, True),
        ([5, 1, 2, 3, 4], 1, True),  # an early 5 waits in the window
        ([2, 3, 4, 5, 1], 3, False),  # a late 1: four times before it had to leave a window of 3
        ([2, 3, 4, 5, 1], 4, True),
        ([3, 3, 1, 3], 2, True),
        ([3, 3, 3, 1], 2, False),
        # In order past the window's size, then not: the window is built from the last times.
        ([1, 2, 3, 4, 1], 3, True),  # equal to the largest that left: still in place
        ([1, 2, 3, 4, 0], 3, False),
        ([1, 2, 3, 4, 2, 5, 2], 3, True),
        ([1, 2, 3, 4, 2, 5, 1], 3, False),
        # Past the eighth time (the recorded objects from the eighth on have times of their own).
        ([1, 2, 3, 4, 5, 6, 7, 8, 0], 8, True),
        ([1, 2, 3, 4, 5, 6, 7, 8, 0], 7, False),
    ],
)
def test_window_check_says_whether_a_window_sorts_the_times(
    times: list[int], window: int, ok: bool
) -> None:
    check = WindowCheck(window)
    for t in times:
        check.add(t)
    assert check.ok is ok
    assert check.in_order is (times == sorted(times))
    events = [event(t, i) for i, t in enumerate(times)]
    assert (list(windowed(events, window)) == stable_sorted(events)) is ok


TIME_FIELDS = ("eventTime", "series", "lastTimestamp", "firstTimestamp",
               "deprecatedLastTimestamp", "deprecatedFirstTimestamp")
"""Every field normalize takes an Event's time from before ``creationTimestamp``."""


def event(time_ns: int, index: int) -> KubeEvent:
    """A recorded Event (the ``index``-th, cycling) whose only time is ``time_ns`` seconds
    past 2026-01-01T00:00:00Z; checked, so that a recorded object with a time field of its
    own can not give a row other times than the ones it lists."""
    obj = recorded_objects_cache()[index % len(recorded_objects_cache())]
    made = normalize({**{k: v for k, v in obj.items() if k not in TIME_FIELDS},
                      "metadata": {**obj.get("metadata", {}), "uid": f"u{index}",
                                   "creationTimestamp": f"2026-01-01T00:{time_ns // 60:02d}:{time_ns % 60:02d}Z"}})
    assert made.time_ns == EPOCH_2026_NS + time_ns * 1_000_000_000, (index, obj.get("metadata"))
    return made


EPOCH_2026_NS = 1_767_225_600_000_000_000
"""2026-01-01T00:00:00Z."""


_CACHE: list[dict[str, Any]] = []


def recorded_objects_cache() -> list[dict[str, Any]]:
    if not _CACHE:
        _CACHE.extend(recorded_objects())
    return _CACHE


def stable_sorted(events: list[KubeEvent]) -> list[KubeEvent]:
    return sorted(events, key=lambda e: e.time_ns)


def test_the_sort_on_disk_is_a_stable_sort_through_several_merge_levels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ordering, "RUN", 7)
    monkeypatch.setattr(ordering, "FAN_IN", 3)
    monkeypatch.setattr(ordering, "BLOCK", 2)
    rng = random.Random(3)
    events = [event(rng.randrange(40), i) for i in range(300)]  # many equal times
    assert list(sorted_on_disk(events)) == stable_sorted(events)
    assert list(sorted_on_disk(events[:5])) == stable_sorted(events[:5])
    assert list(sorted_on_disk([])) == []


def test_a_spool_gives_back_its_events_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ordering, "BLOCK", 4)
    events = [event(i % 7, i) for i in range(30)]
    for n in (0, 3, 30):
        spool = Spool()
        for e in events[:n]:
            spool.add(e)
        assert list(spool) == events[:n]


def live_events() -> int:
    return sum(1 for o in gc.get_objects() if type(o) is KubeEvent)


@pytest.mark.parametrize(
    ("order", "bound"),
    [
        # Sorted on disk: a block of each run being merged, and the one being read.
        ("shuffled", lambda: (ordering.FAN_IN + 1) * ordering.BLOCK),
        ("nearly", lambda: ordering.WINDOW + 1),  # the reorder window
    ],
)
def test_events_wait_in_bounded_numbers_whatever_the_input_s_size(
    monkeypatch: pytest.MonkeyPatch, order: str, bound: Callable[[], int]
) -> None:
    # An input 40 times the in-memory run: only a bounded number of Events may be alive
    # at any point of the replay, however many the input has (the consumer keeps none).
    monkeypatch.setattr(ordering, "RUN", 50)
    monkeypatch.setattr(ordering, "FAN_IN", 4)
    monkeypatch.setattr(ordering, "BLOCK", 8)
    monkeypatch.setattr(ordering, "WINDOW", 16)
    n = 41 * ordering.RUN - 1  # the last run one short of full
    times = list(range(n))
    if order == "shuffled":
        random.Random(5).shuffle(times)
    else:  # each time swapped with the one 10 after: in the window's reach
        for i in range(0, n - 10, 20):
            times[i], times[i + 10] = times[i + 10], times[i]
    made = (event(t, i) for i, t in enumerate(times))
    out = sorted_on_disk(made) if order == "shuffled" else windowed(made)
    gc.collect()
    baseline = live_events()
    peak, last, count = 0, -1, 0
    for count, e in enumerate(out, 1):
        assert order != "shuffled" or e.time_ns >= last
        last = e.time_ns
        del e
        if count % 97 == 0:
            peak = max(peak, live_events() - baseline)
    assert count == n
    assert peak <= bound()
