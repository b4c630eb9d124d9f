"""Bounded label counters: caps per label and on series, overflow, idle eviction."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevents.conventions import Category, Severity
from kubevents.model import Classification, Enriched, KubeEvent, ObjectRef
from kubevents.telemetry.counting import EVENT_LABELS, OTHER, BoundedCounter, EventCounts

S = 1_000_000_000


def counter(
    *,
    max_values: dict[str, int] | None = None,
    max_series: int = 100,
    idle_ttl_s: float | None = None,
) -> BoundedCounter:
    """Labels (ns, reason, type); at most 2 reasons; type survives the series fold."""
    return BoundedCounter(
        ("ns", "reason", "type"),
        max_values={"reason": 2} if max_values is None else max_values,
        max_series=max_series,
        keep_on_overflow=("type",),
        idle_ttl_s=idle_ttl_s,
    )


def enriched(
    reason: str = "BackOff",
    *,
    n: int = 1,
    namespace: str = "shop",
    event_namespace: str = "",
    t: int = 0,
) -> Enriched:
    event = KubeEvent(
        uid="u",
        name="n",
        namespace=event_namespace or namespace,
        reason=reason,
        type="Warning",
        message="m",
        regarding=ObjectRef(kind="Pod", namespace=namespace, name="p"),
        time_ns=t * S,
        first_time_ns=0,
    )
    return Enriched(event, n, 0, Classification(Category.LIFECYCLE, Severity.ERROR, "r"))


def test_counts_occurrences_by_label_set_sorted() -> None:
    c = counter()
    c.add(("shop", "B", "Warning"), 2)
    c.add(("db", "A", "Normal"))
    c.add(("shop", "B", "Warning"), 3)
    assert c.snapshot() == [
        ({"ns": "db", "reason": "A", "type": "Normal"}, 1),
        ({"ns": "shop", "reason": "B", "type": "Warning"}, 5),
    ]


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        (["A"], {"A": 1}),  # below the cap
        (["A", "B"], {"A": 1, "B": 1}),  # at the cap
        (["A", "B", "C"], {"A": 1, "B": 1, OTHER: 1}),  # one above: folded
        (["A", "B", "C", "D", "A"], {"A": 2, "B": 1, OTHER: 2}),  # admitted values keep counting
    ],
)
def test_a_label_full_of_values_counts_new_ones_as_other(
    reasons: list[str], expected: dict[str, int]
) -> None:
    c = counter()
    for reason in reasons:
        c.add(("shop", reason, "Warning"))
    assert {labels["reason"]: n for labels, n in c.snapshot()} == expected
    assert c.value_overflows == sum(n for r, n in expected.items() if r == OTHER)


@pytest.mark.parametrize(("extra", "folded"), [(0, 0), (1, 1), (5, 5)])
def test_past_max_series_label_sets_keep_only_their_closed_labels(extra: int, folded: int) -> None:
    c = counter(max_values={}, max_series=3)
    for i in range(3 + extra):
        c.add((f"ns{i}", "R", "Warning" if i % 2 else "Normal"))
    assert c.series_overflows == folded
    others = {tuple(labels.values()): n for labels, n in c.snapshot() if labels["ns"] == OTHER}
    expected: dict[tuple[str, ...], int] = {}
    for i in range(3, 3 + extra):
        key = (OTHER, OTHER, "Warning" if i % 2 else "Normal")
        expected[key] = expected.get(key, 0) + 1
    assert others == expected


def test_a_flood_of_novel_reasons_cannot_create_unbounded_series() -> None:
    c = EventCounts(max_series=1000)
    for i in range(20_000):
        c.record(enriched(f"Reason{i}", namespace=f"ns{i % 700}"))
    labels = [labels for labels, _ in c.snapshot()]
    assert len(labels) <= 1000 + 5 * 20 * 10  # series cap + the closed-set fold
    assert len({lb["k8s_event_reason"] for lb in labels}) <= 300 + 1
    assert len({lb["k8s_namespace_name"] for lb in labels}) <= 200 + 1
    assert sum(n for _, n in c.snapshot()) == 20_000  # nothing is lost, only folded
    assert c.value_overflows > 0


def test_idle_series_are_evicted_and_free_their_label_values() -> None:
    c = counter(idle_ttl_s=60)
    c.add(("shop", "A", "Warning"), time_ns=0)
    c.add(("shop", "B", "Warning"), time_ns=30 * S)
    assert c.expire(60 * S) == 0  # A was updated exactly 60 s ago: still fresh
    assert c.expire(60 * S + 1) == 1
    c.add(("shop", "C", "Warning"), time_ns=70 * S)  # A's slot is free again
    assert [labels["reason"] for labels, _ in c.snapshot()] == ["B", "C"]
    assert (c.evicted, c.value_overflows) == (1, 0)


def test_expiry_walks_the_series_least_recently_updated_first() -> None:
    """An add moves its series behind the others, whatever its time: a series updated
    last stops the walk even when an earlier one is stale behind it."""
    c = counter(idle_ttl_s=60)
    c.add(("shop", "A", "Warning"), time_ns=0)
    c.add(("shop", "B", "Warning"), time_ns=30 * S)
    c.add(("shop", "A", "Warning"), time_ns=0)  # updated last, with its old time
    assert c.expire(61 * S) == 0  # B, the least recently updated, is fresh: stop
    assert c.expire(91 * S) == 2  # B stale, then A
    c.add(("shop", "C", "Warning"), time_ns=100 * S)
    c.add(("shop", "D", "Warning"), time_ns=10 * S)
    assert c.expire(80 * S) == 0  # C first, fresh; D stale but behind it
    assert [labels["reason"] for labels, _ in c.snapshot()] == ["C", "D"]


def test_without_a_ttl_nothing_expires() -> None:
    c = counter()
    c.add(("shop", "A", "Warning"), time_ns=0)
    assert c.expire(10**20) == 0
    assert len(c) == 1


def test_unknown_labels_in_the_caps_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown labels"):
        BoundedCounter(("a",), max_values={"b": 1}, max_series=1)


def test_event_counts_label_occurrences_with_the_metric_label_names() -> None:
    c = EventCounts()
    c.record(enriched(n=3))
    c.record(enriched(n=0))  # a message-only update adds no occurrence
    c.record(enriched(namespace="", event_namespace="default"))  # cluster-scoped: Event namespace
    rest = ("Pod", "BackOff", "Warning", "Lifecycle", "error")
    assert c.snapshot() == [
        (dict(zip(EVENT_LABELS, ("default", *rest), strict=True)), 1),
        (dict(zip(EVENT_LABELS, ("shop", *rest), strict=True)), 3),
    ]


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(1, 5)), max_size=60))
def test_the_same_input_gives_the_same_series(adds: list[tuple[str, int]]) -> None:
    def run() -> list[tuple[dict[str, str], int]]:
        c = counter(max_series=4)
        for value, n in adds:
            c.add((value, value.upper(), "Warning"), n)
        return c.snapshot()

    first = run()
    assert first == run()
    assert sum(n for _, n in first) == sum(n for _, n in adds)


def unclassified(component: str, *, n: int = 1, type: str = "Warning") -> Enriched:
    event = KubeEvent(
        uid="u",
        name="n",
        namespace="shop",
        reason="SomethingNew",
        type=type,
        message="m",
        regarding=ObjectRef(kind="Widget", namespace="shop", name="w"),
        time_ns=0,
        first_time_ns=0,
        reporting_controller=component,
    )
    return Enriched(event, n, 0, Classification(Category.OTHER, Severity.WARNING, None))


def test_unclassified_occurrences_are_counted_by_reporting_controller() -> None:
    counts = EventCounts()
    counts.record(unclassified("widget-operator", n=3))
    counts.record(unclassified("widget-operator", type="Normal"))
    counts.record(enriched())  # classified: not counted there
    assert counts.unclassified_snapshot() == [
        ({"k8s_event_reporting_controller": "widget-operator", "k8s_event_type": "Normal"}, 1),
        ({"k8s_event_reporting_controller": "widget-operator", "k8s_event_type": "Warning"}, 3),
    ]


def test_the_unclassified_controllers_are_capped_with_an_overflow_value() -> None:
    counts = EventCounts()
    for i in range(60):
        counts.record(unclassified(f"operator-{i:02d}"))
    controllers = {
        labels["k8s_event_reporting_controller"] for labels, _ in counts.unclassified_snapshot()
    }
    assert len(controllers) == 51  # 50 names, then __other__
    assert OTHER in controllers
    assert sum(n for _, n in counts.unclassified_snapshot()) == 60


def test_a_reader_thread_sees_whole_series_while_the_writer_adds_and_expires() -> None:
    """snapshot() from another thread (the scrape) while add() and expire() run, no lock:
    it never fails, and never shows a series without its first count."""
    import sys
    import threading

    c = counter(max_values={}, max_series=10_000, idle_ttl_s=50)
    stop = threading.Event()
    seen: list[int] = []
    errors: list[BaseException] = []

    def scrape() -> None:
        try:
            while not stop.is_set():
                seen.extend(count for _, count in c.snapshot())
        except BaseException as e:  # reported below, in the test's thread
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    reader = threading.Thread(target=scrape)
    reader.start()
    try:
        for t in range(20_000):
            c.add((f"ns{t % 300}", f"R{t}", "Warning"), 1 + t % 3, time_ns=t * S)
            if t % 100 == 0:
                c.expire(t * S)
    finally:
        stop.set()
        reader.join()
        sys.setswitchinterval(interval)
    assert [repr(e) for e in errors] == []
    assert seen and min(seen) >= 1
