"""PatternDetector: start/ongoing/resolve at the thresholds, ids, bounds, determinism."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevents.conventions import Category, Severity
from kubevents.enrich.pattern_rules import PatternPolicy, PatternRule, PatternRules
from kubevents.enrich.patterns import (
    PatternDetector,
    PatternState,
    RateKey,
    Sample,
    Transition,
    add_sample,
    pattern_id,
    rate_per_minute,
)
from kubevents.errors import clip
from kubevents.model import (
    CategorySeverity,
    Classification,
    Correlation,
    Enriched,
    KubeEvent,
    ObjectRef,
)

S = 1_000_000_000
M = 60 * S
KEY = (("reason", "BackOff"), ("kind", "Pod"), ("namespace", "shop"))


def occ(
    t: float,
    *,
    reason: str = "BackOff",
    namespace: str = "shop",
    n: int = 1,
    uid: str = "u1",
    message: str = "Back-off restarting failed container",
    severity: Severity = Severity.ERROR,
    workload: str = "",
    incident: str = "",
) -> Enriched:
    """One Event update at ``t`` seconds adding ``n`` occurrences."""
    event = KubeEvent(
        uid=uid,
        name=f"{uid}.x",
        namespace=namespace,
        reason=reason,
        type="Warning",
        message=message,
        regarding=ObjectRef(kind="Pod", namespace=namespace, name="web-1"),
        time_ns=int(t * S),
        first_time_ns=0,
    )
    correlation = None
    if workload or incident:
        ns, kind, name = workload.split("/") if workload else ("", "", "")
        owners = (ObjectRef(kind=kind, namespace=ns, name=name),) if workload else ()
        correlation = Correlation(object="x", owners=owners, incident_id=incident)
    cls = Classification(Category.LIFECYCLE, severity, "crash-loop-backoff")
    return Enriched(event, n, int(t * S), cls, correlation)


def detector(*, min_count: int = 3, patterns: bool = True) -> PatternDetector:
    """The default policy (window 10m, quiet 10m, 0.5/min), with these changes."""
    policy = PatternPolicy(None, min_count=min_count, patterns=patterns)
    return PatternDetector(PatternRules(default=policy))


def feed(
    d: PatternDetector,
    times: list[float],
    *,
    namespace: str = "shop",
    uid: str = "u1",
    reason: str = "BackOff",
    severity: Severity = Severity.ERROR,
) -> list[Transition]:
    """Observe one occurrence at each time; return the transitions in order."""
    out: list[Transition] = []
    for t in times:
        d.observe(occ(t, namespace=namespace, uid=uid, reason=reason, severity=severity))
        out += d.transitions()
    return out


def states(transitions: list[Transition]) -> list[tuple[str, float]]:
    return [(t.state.value, t.time_ns / S) for t in transitions]


# -- start: min_count and min_rate_per_minute, just below, at and above ------


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        ([0, 10], []),  # 2 < min_count 3
        ([0, 10, 20], [("started", 20)]),  # exactly 3
        ([0, 10, 20, 30], [("started", 20)]),  # the 4th joins the pattern
        ([0, 120, 240], [("started", 240)]),  # (3-1)/4min = 0.5/min: at min_rate
        ([0, 120, 241], []),  # just slower than 0.5/min
        ([0, 120, 239], [("started", 239)]),  # just faster
        ([0, 0, 0], [("started", 0)]),  # a burst: the span counts as one minute
    ],
)
def test_start_needs_min_count_and_min_rate(
    times: list[float], expected: list[tuple[str, float]]
) -> None:
    assert states(feed(detector(), times)) == expected


@pytest.mark.parametrize(
    ("n", "expected"),
    [(2, []), (3, [("started", 0)]), (4, [("started", 0)])],
)
def test_a_series_update_counts_all_its_new_occurrences(
    n: int, expected: list[tuple[str, float]]
) -> None:
    d = detector()
    d.observe(occ(0, n=n))
    assert states(d.transitions()) == expected


def test_the_started_transition_describes_the_pattern() -> None:
    d = detector()
    d.observe(occ(0, uid="a", incident="inc-1"))
    d.observe(occ(5, uid="b", n=2, incident="inc-2"))
    (started,) = d.transitions()
    assert started == Transition(
        pattern_id=pattern_id(KEY, 0),
        state=PatternState.STARTED,
        time_ns=5 * S,
        fields=KEY,
        rule_id=None,
        category=Category.LIFECYCLE,
        severity=Severity.ERROR,
        count=3,
        rate_per_minute=2.0,
        first_seen_ns=0,
        last_seen_ns=5 * S,
        samples=(
            Sample("a", "Back-off restarting failed container"),
            Sample("b", "Back-off restarting failed container"),
        ),
        incidents=("inc-1", "inc-2"),
    )
    assert started.key == "reason=BackOff;kind=Pod;namespace=shop"
    assert started.namespace == "shop"
    assert started.pattern_id.startswith("pat-") and len(started.pattern_id) == 16


_TEXT = st.lists(
    st.sampled_from(["at", " ", "\n", "\r\n", "\t", "\x0b", "\x1c", "\x85", "\x00", "\x7f",
                     "\u2028", "\u00a0", "…", "x" * 40, "  \n  ", " / "]),
    max_size=400,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.integers(0, 400), st.sampled_from([" ", "\n", "\t", "\x85", "\x00"]))
def test_a_sample_quotes_the_message_as_clip_does(text: str, run: int, space: str) -> None:
    """Long messages are clipped from their head: the result is clip's, whatever lies
    around the head's end (runs of whitespace, line breaks, control characters)."""
    message = text[:1000] + space * run + text[1000:] + "tail " * (500 if run % 2 else 0)
    (sample,) = add_sample((), occ(0, message=message))
    assert sample.message == clip(message)


def test_samples_are_three_distinct_events_at_most() -> None:
    d = detector()
    for i, uid in enumerate(["a", "a", "b", "c", "d"]):
        d.observe(occ(i, uid=uid))
    assert [s.uid for s in d.transitions()[0].samples] == ["a", "b"]
    assert [s.uid for s in d.active_patterns()[0].samples] == ["a", "b", "c"]


# -- ongoing: at most once per window -----------------------------------------


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (630, [("started", 60)]),  # 9.5 min after the start: not yet
        (660, [("started", 60), ("ongoing", 660)]),  # exactly one window later
        (1230, [("started", 60), ("ongoing", 660)]),  # still one per window
        (1260, [("started", 60), ("ongoing", 660), ("ongoing", 1260)]),
    ],
)
def test_ongoing_is_reported_once_per_window(last: int, expected: list[tuple[str, float]]) -> None:
    assert states(feed(detector(), list(range(0, last + 1, 30)))) == expected


def test_ongoing_carries_the_window_rate_and_the_running_count() -> None:
    transitions = feed(detector(), list(range(0, 661, 30)))
    ongoing = transitions[-1]
    assert (ongoing.state, ongoing.count, ongoing.rate_per_minute) == ("ongoing", 23, 2.0)


# -- resolved: the condition has not held for `quiet` ---------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (20 * S + 10 * M - 1, []),  # one nanosecond early
        (20 * S + 10 * M, [("resolved", 620)]),  # quiet (10 min) after it last held
        (10**6 * S, [("resolved", 620)]),  # the time is the deadline, not "now"
    ],
)
def test_resolved_after_the_quiet_period(now: int, expected: list[tuple[str, float]]) -> None:
    d = detector()
    feed(d, [0, 10, 20])
    d.expire(now)
    assert states(d.transitions()) == expected
    assert d.active == (0 if expected else 1)


def test_resolution_also_happens_when_a_later_event_moves_time_on() -> None:
    d = detector()
    feed(d, [0, 10, 20])
    assert states(feed(d, [2000], reason="Other")) == [("resolved", 620)]


def test_the_resolved_transition_sums_the_pattern_up() -> None:
    d = detector()
    feed(d, [0, 10, 20, 80], uid="a")
    d.expire(10**6 * S)
    (resolved,) = d.transitions()
    assert (resolved.count, resolved.first_seen_ns, resolved.last_seen_ns) == (4, 0, 80 * S)
    assert resolved.rate_per_minute == rate_per_minute(4, 80 * S) == 2.25
    assert resolved.pattern_id == pattern_id(KEY, 0)


def test_a_pattern_whose_rate_drops_resolves_although_events_keep_coming() -> None:
    # 0, 10 s, 20 s start it; every 4 minutes is too slow to hold it.
    transitions = feed(detector(), [0, 10, 20, 260, 500, 740, 980, 1220])
    assert states(transitions) == [("started", 20), ("resolved", 860)]


def test_after_resolution_a_new_pattern_needs_fresh_occurrences_and_gets_a_new_id() -> None:
    d = detector()
    first = feed(d, [0, 10, 20])[0]
    second = feed(d, [700, 1300, 1310, 1320])
    assert states(second) == [("resolved", 620), ("started", 1320)]
    assert second[1].pattern_id == pattern_id(KEY, 1300 * S) != first.pattern_id
    assert second[1].count == 3


# -- what observe returns -------------------------------------------------------


def test_observe_returns_the_active_pattern_id_of_the_event() -> None:
    d = detector()
    ids = [d.observe(occ(t)) for t in (0, 10, 20, 30)]
    pid = pattern_id(KEY, 0)
    assert ids == ["", "", pid, pid]
    assert d.observe(occ(31, n=0)) == pid  # a message-only update still belongs to it
    assert d.observe(occ(32, namespace="db")) == ""  # another group


def test_rules_can_turn_patterns_off() -> None:
    d = detector(patterns=False)
    assert [d.observe(occ(t)) for t in (0, 1, 2, 3)] == ["", "", "", ""]
    assert (d.transitions(), len(d)) == ((), 0)


# -- keys --------------------------------------------------------------------------


def test_the_key_fields_decide_what_groups_together() -> None:
    rule = PatternRule(
        id="per-workload",
        reasons=frozenset({"BackOff"}),
        categories=frozenset(),
        severities=frozenset(),
        types=frozenset(),
        kinds=frozenset(),
        namespaces=frozenset(),
        policy=PatternPolicy("per-workload", key=("reason", "workload", "template")),
    )
    d = PatternDetector(PatternRules([rule]))
    for t, pod in enumerate(
        ["web-7d4f8b9c5d-x2x9k", "web-7d4f8b9c5d-p8k2m", "web-7d4f8b9c5d-zz9q4"]
    ):
        d.observe(occ(t, workload="shop/Deployment/web", message=f"Back-off in pod {pod}"))
    (started,) = d.transitions()
    assert started.fields == (
        ("reason", "BackOff"),
        ("workload", "shop/Deployment/web"),
        ("template", "Back-off in pod <name>"),
    )
    assert (started.rule_id, started.namespace) == ("per-workload", "")


# -- bounds ------------------------------------------------------------------------


def test_occurrences_older_than_the_window_are_late() -> None:
    d = detector()
    d.observe(occ(2000))
    d.observe(occ(100, n=4))
    assert (d.late, d.transitions(), d.window_count(occ(0))) == (4, (), 1)


def test_groups_with_an_empty_window_are_forgotten() -> None:
    d = detector()
    for i in range(50):
        d.observe(occ(i, namespace=f"ns{i}"))
    assert len(d) == 50
    d.expire(50 * S + 10 * M + 30 * S)
    assert len(d) == 0
    assert d.evicted_groups == 0


def test_max_groups_evicts_the_least_recently_updated_inactive_group() -> None:
    d = PatternDetector(PatternRules(), max_groups=3)
    feed(d, [0, 0, 0], namespace="busy")  # an active pattern is never evicted
    for i in range(5):
        d.observe(occ(1 + i, namespace=f"ns{i}"))
    assert (len(d), d.evicted_groups, d.active) == (3, 3, 1)


def test_an_update_moves_its_group_behind_the_others_for_eviction() -> None:
    d = PatternDetector(PatternRules(), max_groups=2)
    d.observe(occ(0, namespace="a"))
    d.observe(occ(1, namespace="b"))
    d.observe(occ(2, namespace="a"))  # a is now the most recently updated
    d.observe(occ(3, namespace="c"))  # evicts b
    assert [d.window_count(occ(4, namespace=ns)) for ns in "abc"] == [2, 0, 1]
    d.observe(occ(5, namespace="b"))  # evicts a, then c goes the same way
    d.observe(occ(6, namespace="d"))
    assert [d.window_count(occ(7, namespace=ns)) for ns in "abcd"] == [0, 1, 0, 1]
    assert d.evicted_groups == 3


def test_active_patterns_come_least_recently_updated_first() -> None:
    d = detector()
    feed(d, [0, 1, 2], namespace="a")
    feed(d, [3, 4, 5], namespace="b")
    feed(d, [6], namespace="a")
    assert [p.namespace for p in d.active_patterns()] == ["b", "a"]


def test_max_active_suppresses_new_patterns() -> None:
    d = PatternDetector(PatternRules(), max_active=2)
    for ns in ("a", "b", "c"):
        feed(d, [0, 0, 0], namespace=ns)
    assert (d.active, d.suppressed, d.transition_counts["started"]) == (2, 1, 2)


def test_active_counts_by_category_and_severity() -> None:
    d = detector()
    feed(d, [0, 0, 0], namespace="a")
    feed(d, [0, 0, 0], namespace="b", severity=Severity.WARNING)
    feed(d, [0, 0, 0], namespace="c", severity=Severity.WARNING)
    assert d.active_counts() == [
        (CategorySeverity(Category.LIFECYCLE, Severity.ERROR), 1),
        (CategorySeverity(Category.LIFECYCLE, Severity.WARNING), 2),
    ]
    d.expire(10**6 * S)
    assert d.active_counts() == []
    assert d.transition_counts == {"started": 3, "ongoing": 0, "resolved": 3}


def test_active_rates_sum_patterns_by_bounded_labels_only() -> None:
    rule = PatternRule(
        id="per-template",
        reasons=frozenset({"BackOff"}),
        categories=frozenset(),
        severities=frozenset(),
        types=frozenset(),
        kinds=frozenset(),
        namespaces=frozenset(),
        policy=PatternPolicy("per-template", key=("reason", "namespace", "template")),
    )
    d = PatternDetector(PatternRules([rule]))
    for message, times in (("a 1", [0, 0, 0]), ("b 1", [0, 30, 60, 90]), ("a 2", [0, 0, 0])):
        for t in times:
            d.observe(occ(t, message=message))
    # "a <num>" and "b <num>" are two patterns; the gauge has no template label.
    assert d.active == 2
    assert d.active_rates() == [
        (
            RateKey("per-template", "shop", "BackOff", Category.LIFECYCLE, Severity.ERROR),
            5.0 + 2.0,  # "a <num>": (6-1)/1 min; "b <num>": (4-1)/1.5 min
        )
    ]


# -- properties ----------------------------------------------------------------------

occurrences = st.lists(
    st.tuples(st.integers(0, 3600), st.integers(1, 3), st.sampled_from(["shop", "db"])),
    min_size=1,
    max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(occurrences, st.randoms(use_true_random=False))
def test_a_groups_count_is_the_occurrences_in_its_window_whatever_the_order(
    items: list[tuple[int, int, str]], rnd: random.Random
) -> None:
    shuffled = list(items)
    rnd.shuffle(shuffled)
    high_water = max(t for t, _, _ in items)
    width = 30  # 10 min window / 20 buckets
    for namespace in ("shop", "db"):
        expected = sum(
            n for t, n, ns in items if ns == namespace and t // width > high_water // width - 20
        )
        counts = []
        for order in (sorted(items), shuffled):
            d = detector(min_count=10**9)  # never a pattern: windows are never emptied
            for t, n, ns in order:
                d.observe(occ(t, n=n, namespace=ns))
            counts.append(d.window_count(occ(0, namespace=namespace)))
        assert counts == [expected, expected]


@settings(max_examples=100, deadline=None)
@given(occurrences)
def test_the_same_input_gives_the_same_transitions(items: list[tuple[int, int, str]]) -> None:
    def run() -> list[Transition]:
        d = detector()
        out = []
        for t, n, ns in sorted(items):
            d.observe(occ(t, n=n, namespace=ns, uid=f"u{t % 7}"))
            out += d.transitions()
        d.expire(10**6 * S)
        return [*out, *d.transitions()]

    first = run()
    assert first == run()
    started = [t for t in first if t.state is PatternState.STARTED]
    resolved = [t for t in first if t.state is PatternState.RESOLVED]
    assert sorted(t.pattern_id for t in started) == sorted(t.pattern_id for t in resolved)
    assert len({t.pattern_id for t in started}) == len(started)
