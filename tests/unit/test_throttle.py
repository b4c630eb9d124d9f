"""SeriesThrottle delays records of noisy series; it never loses an update."""

from __future__ import annotations

import dataclasses

from kubevents.model import KubeEvent, ObjectRef
from kubevents.series import SeriesTracker
from kubevents.throttle import SeriesThrottle

BASE = KubeEvent(uid="e1", name="n", namespace="ns", reason="BackOff", type="Warning", message="m",
                 regarding=ObjectRef(kind="Pod", name="p"), time_ns=0, first_time_ns=0)


def at(count: int, uid: str = "e1") -> KubeEvent:
    return dataclasses.replace(BASE, count=count, uid=uid)


def test_off_by_default() -> None:
    throttle = SeriesThrottle(0)
    assert [throttle.offer(at(c), 0.0) for c in (1, 2, 3)] == [at(1), at(2), at(3)]


def test_updates_within_the_interval_are_held_newest_wins_and_released_later() -> None:
    throttle = SeriesThrottle(10)
    assert throttle.offer(at(1), 0.0) == at(1)
    assert throttle.offer(at(2), 1.0) is None
    assert throttle.offer(at(3), 2.0) is None
    assert throttle.offer(at(1, uid="other"), 2.0) == at(1, uid="other")  # per series
    assert throttle.due(9.9) == []
    assert throttle.due(10.0) == [at(3)]
    assert throttle.throttled == 2
    assert throttle.offer(at(4), 12.0) is None  # the release counts as an emission


def test_occurrences_stay_exact_through_the_tracker() -> None:
    throttle, tracker = SeriesThrottle(10), SeriesTracker()
    emitted = []
    for second, count in enumerate(range(1, 8)):
        if (event := throttle.offer(at(count), float(second))) is not None:
            emitted.append(tracker.observe(event))
    emitted += [tracker.observe(e) for e in throttle.drain()]
    assert emitted == [1, 6] and sum(emitted) == 7


def test_size_cap_never_drops_a_held_update() -> None:
    throttle = SeriesThrottle(10, max_keys=1)
    throttle.offer(at(1, "a"), 0.0)
    throttle.offer(at(2, "a"), 1.0)  # held
    throttle.offer(at(1, "b"), 1.0)  # evicts a's window
    assert throttle.drain() == [at(2, "a")]
