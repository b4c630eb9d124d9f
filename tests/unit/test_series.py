"""SeriesTracker: one emission per new occurrence, bounded memory."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from kubevents.clock import FakeClock
from kubevents.enrich.classify import Classifier
from kubevents.model import KubeEvent, ObjectRef
from kubevents.pipeline import Pipeline
from kubevents.series import UNKNOWN_MESSAGE, Seen, SeriesTracker, fingerprint, pack, unpack

S = 1_000_000_000


def ev(uid: str = "e1", count: int = 1, message: str = "m", t: int = 0) -> KubeEvent:
    return KubeEvent(
        uid=uid,
        name=f"{uid}.x",
        namespace="ns",
        reason="BackOff",
        type="Warning",
        message=message,
        regarding=ObjectRef(kind="Pod", name="p"),
        time_ns=t * S,
        first_time_ns=0,
        count=count,
    )


def test_first_sight_counts_every_occurrence_so_far() -> None:
    assert SeriesTracker().observe(ev(count=4)) == 4


def test_count_growth_is_the_delta_and_repeats_are_skipped() -> None:
    tracker = SeriesTracker()
    assert [tracker.observe(ev(count=c)) for c in (1, 2, 2, 5, 5, 3)] == [1, 1, None, 3, None, None]


def test_message_change_without_count_change_is_emitted_as_zero_occurrences() -> None:
    tracker = SeriesTracker()
    tracker.observe(ev(count=2, message="a"))
    assert tracker.observe(ev(count=2, message="b")) == 0
    assert tracker.observe(ev(count=2, message="b")) is None


def test_events_without_uid_are_keyed_by_namespace_and_name() -> None:
    tracker = SeriesTracker()
    nouid = dataclasses.replace(ev(count=1), uid="")
    assert tracker.observe(nouid) == 1
    assert tracker.observe(dataclasses.replace(nouid, count=2)) == 1
    assert tracker.snapshot() == {"ns/e1.x": 2}


def test_forget_after_delete() -> None:
    tracker = SeriesTracker()
    tracker.observe(ev(count=3))
    tracker.forget(ev())
    assert len(tracker) == 0


def test_restore_from_checkpoint_skips_what_was_emitted() -> None:
    tracker = SeriesTracker()
    tracker.restore([("e1", 3)], time_ns=0)
    assert tracker.observe(ev(count=3)) is None  # message unknown after restore: counts gate
    assert tracker.observe(ev(count=3, message="changed")) == 0
    assert tracker.observe(ev(count=4)) == 1


def test_entries_older_than_ttl_are_dropped_without_counting_as_evictions() -> None:
    tracker = SeriesTracker(ttl_s=60)
    tracker.observe(ev("old", t=0))
    tracker.observe(ev("new", t=61))
    assert tracker.snapshot() == {"new": 1}
    assert tracker.evicted == 0


def test_size_cap_evicts_the_entry_updated_longest_ago_and_counts_it() -> None:
    tracker = SeriesTracker(max_entries=2)
    tracker.observe(ev("a", t=0))
    tracker.observe(ev("b", t=1))
    tracker.observe(ev("a", count=2, t=2))  # a is updated after b
    tracker.observe(ev("c", t=3))
    assert set(tracker.snapshot()) == {"a", "c"}
    assert tracker.evicted == 1


def test_ties_in_event_time_evict_the_first_inserted() -> None:
    tracker = SeriesTracker(max_entries=2)
    for uid in ("a", "b", "c"):
        tracker.observe(ev(uid, t=5))
    assert set(tracker.snapshot()) == {"b", "c"}


def test_the_size_cap_is_never_passed_and_evicts_a_64th_at_once() -> None:
    tracker = SeriesTracker(max_entries=640)
    sizes = []
    for i in range(2_000):
        tracker.observe(ev(f"e{i}", t=i))
        sizes.append(len(tracker))
    assert max(sizes) == 640
    assert min(sizes[640:]) == 640 - 10  # 10 = 640 // 64 evicted beyond the cap
    assert tracker.evicted == tracker.removals == 2_000 - len(tracker)
    newest = {f"e{i}" for i in range(2_000 - len(tracker), 2_000)}
    assert set(tracker.snapshot()) == newest  # the oldest went first


def test_an_entry_outlives_its_ttl_by_at_most_a_64th_of_it() -> None:
    tracker = SeriesTracker(ttl_s=64)  # swept at most once per second of event time
    tracker.observe(ev("old", t=0))
    tracker.observe(dataclasses.replace(ev("later"), time_ns=S // 2))
    gone: dict[str, int] = {}
    for tenth in range(1, 700):  # one Event every 0.1 s, up to 69.9 s
        t_ns = tenth * S // 10
        tracker.observe(dataclasses.replace(ev(f"e{tenth}"), time_ns=t_ns))
        for key in ("old", "later"):
            if key not in tracker:
                gone.setdefault(key, t_ns)
    assert gone["old"] == 64 * S + S // 10  # the first sweep: as soon as it aged out
    assert 64 * S + S // 2 < gone["later"] <= 65 * S + S // 2  # the next one: a second later
    assert tracker.evicted == 0


@given(st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=30))
def test_total_occurrences_equal_the_highest_count_whatever_the_update_order(
    counts: list[int],
) -> None:
    tracker = SeriesTracker()
    added = [tracker.observe(ev(count=c)) for c in counts]
    assert sum(a or 0 for a in added) == max(counts)


def test_restored_entries_age_in_event_time_not_wall_clock() -> None:
    """Events dated long ago (or a skewed apiserver clock) must not evict restored counts."""
    tracker = SeriesTracker(ttl_s=60)
    tracker.restore([("e1", 3)], time_ns=10 * S)
    assert tracker.observe(ev("e2", t=11)) == 1
    assert tracker.observe(ev("e1", count=3, t=12)) is None
    assert tracker.high_water_ns == 12 * S


# -- the packed entries (``pack``): they must give back exactly what went in ------------------


@given(
    emitted=st.integers(),
    fp=st.integers(min_value=0, max_value=UNKNOWN_MESSAGE),
    time_ns=st.integers(),
)
def test_an_entry_unpacks_to_what_was_packed_whatever_the_values(
    emitted: int, fp: int, time_ns: int
) -> None:
    """Any count (a replay may say anything), any time (year 1 is negative), any fingerprint."""
    assert unpack(pack(emitted, fp, time_ns)) == Seen(emitted, fp, time_ns)


def test_ordinary_entries_are_one_int_and_odd_counts_a_plain_tuple() -> None:
    assert isinstance(pack(2**31 - 1, fingerprint("m"), 1_795_000_000 * S), int)
    assert isinstance(pack(2**32, fingerprint("m"), 0), Seen)
    assert isinstance(pack(-1, fingerprint("m"), 0), Seen)


@given(st.text(), st.text())
def test_fingerprints_are_equal_exactly_when_hashes_are(a: str, b: str) -> None:
    assert (fingerprint(a) == fingerprint(b)) == (hash(a) == hash(b))
    assert 0 <= fingerprint(a) < UNKNOWN_MESSAGE


def test_counts_beyond_32_bits_and_times_before_1970_still_gate_exactly() -> None:
    tracker = SeriesTracker(ttl_s=60)
    big = 2**40
    assert tracker.observe(ev("big", count=big, t=-10)) == big
    assert tracker.observe(ev("big", count=big + 3, t=-5)) == 3
    assert tracker.observe(ev("big", count=big + 3, t=-5)) is None
    assert tracker.count_of(ev("big")) == big + 3
    assert tracker.snapshot() == {"big": big + 3}
    tracker.observe(ev("late", t=56))  # the entry is 61 s older: aged out
    assert tracker.snapshot() == {"late": 1}


@given(
    st.lists(
        st.tuples(
            st.one_of(st.uuids().map(str), st.sampled_from(["", "a", "e1"])),
            st.integers(min_value=1, max_value=2**33),
        ),
        max_size=20,
    )
)
def test_a_checkpoint_snapshot_restores_to_the_same_snapshot(
    updates: list[tuple[str, int]],
) -> None:
    tracker = SeriesTracker()
    for uid, count in updates:
        tracker.observe(ev(uid, count=count))
    saved = tracker.snapshot()
    restored = SeriesTracker()
    restored.restore(saved.items(), time_ns=tracker.high_water_ns)
    assert restored.snapshot() == saved
    for uid, _ in updates:  # a relist of what was emitted emits nothing
        event = ev(uid, count=saved[uid or "ns/.x"], message="unknown after a restart")
        assert restored.observe(event) is None


def test_removals_count_every_entry_dropped_and_membership_follows() -> None:
    tracker = SeriesTracker(ttl_s=60, max_entries=2)
    a, b, c = ev("a", t=0), ev("b", t=1), ev("c", t=2)
    for e in (a, b):
        tracker.observe(e)
    assert (a.key in tracker, "zzz" in tracker, tracker.removals) == (True, False, 0)
    tracker.observe(c)  # over the size cap: a goes
    assert (a.key in tracker, tracker.removals, tracker.evicted) == (False, 1, 1)
    tracker.forget(b)
    tracker.forget(b)  # already gone: not counted twice
    assert (b.key in tracker, tracker.removals) == (False, 2)
    tracker.observe(ev("d", t=200))  # c is now 198 s old: aged out, not evicted
    assert (c.key in tracker, tracker.removals, tracker.evicted) == (False, 3, 1)


def test_a_pipeline_keeps_the_empty_tracker_it_is_given() -> None:
    # An empty tracker has length 0: the pipeline must not take it for "none given" (it
    # did, and `kubevents run` silently dropped pipeline.series_max_entries and _ttl_s).
    tracker = SeriesTracker(max_entries=7)
    assert (
        Pipeline(classifier=Classifier([]), sinks=[], clock=FakeClock(), tracker=tracker).tracker
        is tracker
    )
