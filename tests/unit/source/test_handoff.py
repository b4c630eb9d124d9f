"""WatchQueue: the watch -> pipeline queue holds at most its items and its bytes."""

from __future__ import annotations

import queue
import threading

import pytest

from kubevents.source.handoff import WatchQueue


@pytest.mark.parametrize(
    ("max_items", "max_bytes", "sizes", "admitted", "full_items", "full_bytes"),
    [
        (100, 1000, [300, 300, 300, 300], 3, 0, 1),  # the fourth would pass 1000 bytes
        (2, 10_000, [300, 300, 300], 2, 1, 0),  # the count still bounds it
        (100, 1000, [5000, 10], 1, 0, 1),  # one item always fits, however large
        (100, 1000, [0, 0, 0, 1000], 4, 0, 0),  # exactly full is not over
    ],
)
def test_a_put_waits_at_either_bound_and_counts_which_one(
    max_items: int,
    max_bytes: int,
    sizes: list[int],
    admitted: int,
    full_items: int,
    full_bytes: int,
) -> None:
    q: WatchQueue[int] = WatchQueue(max_items, max_bytes)
    taken = [q.put(i, n, timeout=0.01) for i, n in enumerate(sizes)]
    assert sum(taken) == admitted and taken == sorted(taken, reverse=True)
    assert q.qsize() == admitted and q.bytes == sum(sizes[:admitted])
    assert (q.full_items, q.full_bytes) == (full_items, full_bytes)


def test_a_get_makes_room_for_a_waiting_put_and_items_keep_their_order() -> None:
    q: WatchQueue[str] = WatchQueue(10, 100)
    assert q.put("a", 60, timeout=0.01)
    done = threading.Event()

    def put_b() -> None:
        assert q.put("b", 60, timeout=5)
        done.set()

    thread = threading.Thread(target=put_b)
    thread.start()
    assert not done.wait(0.1)  # 120 bytes would not fit
    assert q.get(timeout=1) == "a"
    assert done.wait(5)
    thread.join()
    assert (q.get_nowait(), q.bytes, q.empty()) == ("b", 0, True)
    with pytest.raises(queue.Empty):
        q.get(timeout=0.01)
    with pytest.raises(queue.Empty):
        q.get_nowait()


@pytest.mark.parametrize(
    ("max_items", "counts", "admitted", "events", "full_items"),
    [
        (1000, [500, 500, 500], 2, 1000, 1),  # a list page counts as the Events it holds
        (1000, [500, 499, 1], 3, 1000, 0),  # exactly full is not over
        (100, [500, 1], 1, 500, 1),  # a page larger than the bound passes alone
    ],
)
def test_a_page_counts_as_its_events_against_the_item_bound(
    max_items: int, counts: list[int], admitted: int, events: int, full_items: int
) -> None:
    q: WatchQueue[int] = WatchQueue(max_items, 10**9)
    taken = [q.put(i, 10, timeout=0.01, count=n) for i, n in enumerate(counts)]
    assert sum(taken) == admitted and taken == sorted(taken, reverse=True)
    assert q.qsize() == events and q.full_items == full_items
    q.get_nowait()
    assert q.qsize() == events - counts[0]
