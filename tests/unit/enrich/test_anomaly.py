"""AnomalyDetector on synthetic series: storms fire, steady rates do not, warm-up holds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevents.conventions import Category, Severity
from kubevents.enrich.anomaly import AnomalyDetector, AnomalyScore
from kubevents.enrich.pattern_rules import AnomalySettings, PatternPolicy, PatternRules
from kubevents.enrich.patterns import PatternState, Transition
from kubevents.model import Classification, Enriched, KubeEvent, ObjectRef

S = 1_000_000_000
M = 60 * S
REASON = (("namespace", "shop"), ("reason", "FailedMount"))
CATEGORY = (("category", "Storage"),)


def occ(t: float, *, reason: str = "FailedMount", namespace: str = "shop", n: int = 1) -> Enriched:
    """One Event update at ``t`` seconds adding ``n`` occurrences."""
    event = KubeEvent(
        uid=f"{reason}-{int(t)}",
        name="x",
        namespace=namespace,
        reason=reason,
        type="Warning",
        message="MountVolume.SetUp failed",
        regarding=ObjectRef(kind="Pod", namespace=namespace, name="db-0"),
        time_ns=int(t * S),
        first_time_ns=0,
    )
    cls = Classification(Category.STORAGE, Severity.WARNING, "failed-mount")
    return Enriched(event, n, int(t * S), cls)


def detector(*, anomalies: bool = True, idle_ns: int = 3600 * S) -> AnomalyDetector:
    """The default settings: 1 min buckets, alpha 0.1, warm-up 10 min, z 4, 10, 3x."""
    rules = PatternRules(
        default=PatternPolicy(None, anomalies=anomalies),
        anomaly=AnomalySettings(idle_ns=idle_ns),
    )
    return AnomalyDetector(rules)


def replay(d: AnomalyDetector, per_minute: list[int], *, start: int = 0) -> list[Transition]:
    """``per_minute[i]`` occurrences spread evenly over minute ``start + i``."""
    out: list[Transition] = []
    for i, count in enumerate(per_minute):
        for j in range(count):
            d.observe(occ((start + i) * 60 + j * 60 / count))
            out += d.transitions()
    return out


def quiet(minutes: int) -> list[int]:
    """A normally quiet reason: one occurrence every ten minutes."""
    return [1 if i % 10 == 0 else 0 for i in range(minutes)]


def test_a_storm_of_a_normally_quiet_reason_is_anomalous() -> None:
    transitions = replay(detector(), [*quiet(120), 50])
    assert [(t.state, t.fields, t.count) for t in transitions] == [
        (PatternState.ANOMALOUS, REASON, 10),  # as soon as the bucket reaches min_count
        (PatternState.ANOMALOUS, CATEGORY, 10),
    ]
    storm = transitions[0]
    assert storm.time_ns == int((120 * 60 + 9 * 60 / 50) * S)
    assert storm.first_seen_ns == 120 * M
    assert storm.score >= 4.0
    assert storm.rate_per_minute == 10.0
    assert storm.key == "namespace=shop;reason=FailedMount"
    assert storm.pattern_id.startswith("pat-")


@pytest.mark.parametrize("rate", [20, 100, 1000])
def test_a_steady_high_rate_is_not_anomalous(rate: int) -> None:
    rnd = random.Random(rate)
    # Poisson-like noise around the rate (normal approximation), for three hours.
    per_minute = [max(0, round(rnd.gauss(rate, rate**0.5))) for _ in range(180)]
    assert replay(detector(), per_minute) == []


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 2000))
def test_a_constant_rate_never_fires_whatever_its_level(rate: int) -> None:
    d = detector()
    for minute in range(40):
        d.observe(occ(minute * 60, n=rate))
    assert d.transitions() == ()


@pytest.mark.parametrize(("minute", "fires"), [(5, False), (9, False), (10, True), (30, True)])
def test_warm_up_suppresses_early_noise(minute: int, fires: bool) -> None:
    # One occurrence at 0 starts the clock; the storm's 10th occurrence is at minute + 9 s.
    d = detector()
    transitions = replay(d, [1, *[0] * (minute - 1), 60])
    assert bool(transitions) is fires


@pytest.mark.parametrize(("count", "fires"), [(9, False), (10, True), (11, True)])
def test_a_bucket_needs_min_count_occurrences(count: int, fires: bool) -> None:
    assert bool(replay(detector(), [*quiet(30), count])) is fires


@pytest.mark.parametrize(("count", "fires"), [(59, False), (60, True)])
def test_a_bucket_needs_min_ratio_times_the_baseline(count: int, fires: bool) -> None:
    # After an hour at 20/min the mean is ~20: 3 x 20 = 60 is the least that qualifies.
    transitions = replay(detector(), [*[20] * 60, count])
    assert bool(transitions) is fires


def test_a_lasting_new_level_is_learnt() -> None:
    d = detector()
    transitions = replay(d, [*quiet(60), *[200] * 240])
    minutes = sorted({t.time_ns // M for t in transitions if t.fields == REASON})
    # Anomalous for a while (the clipped baseline learns slowly), then normal.
    assert minutes == list(range(60, 69))
    assert replay(d, [200] * 30, start=300) == []


def test_each_anomalous_bucket_emits_once() -> None:
    transitions = replay(detector(), [*quiet(30), 100, 100])
    assert [t.time_ns // M for t in transitions if t.fields == REASON] == [30, 31]


def test_empty_buckets_decay_the_baseline_in_closed_form() -> None:
    d = detector()
    d.observe(occ(0, n=10))
    d.observe(occ(6 * 60))  # buckets 1-5 were empty
    mean = var = 0.0
    for x in (10, 0, 0, 0, 0, 0):
        diff = x - mean
        mean += 0.1 * diff
        var = 0.9 * (var + diff * 0.1 * diff)
    got = d.baseline(("reason", "shop", "FailedMount"))
    assert got is not None
    assert got == pytest.approx((mean, var), rel=1e-12)


def test_scores_list_the_anomalous_series_until_their_bucket_closes() -> None:
    d = detector()
    replay(d, [*quiet(30), 20])
    # Equal scores: ordered by scope.
    assert [(s.scope, s.namespace, s.reason, s.category) for s in d.scores()] == [
        ("category", "", "", "Storage"),
        ("reason", "shop", "FailedMount", "Storage"),
    ]
    assert all(isinstance(s, AnomalyScore) and s.score >= 4 for s in d.scores())
    assert d.active == 2
    assert d.active_counts() == [("category", 1), ("reason", 1)]
    assert d.transition_counts == {"anomalous": 2}
    d.expire(31 * M)
    assert (d.scores(), d.active, d.active_counts()) == ([], 0, [])


def test_quiet_series_are_forgotten_and_max_series_evicts() -> None:
    d = detector(idle_ns=3600 * S)
    d.observe(occ(0, reason="A"))
    d.observe(occ(10, reason="B"))
    assert len(d) == 3  # two reasons, one category
    d.expire(3600 * S + 5 * S)
    assert len(d) == 2  # A was forgotten; B and the category remain
    small = AnomalyDetector(PatternRules(), max_series=3)
    for i in range(5):
        small.observe(occ(i, reason=f"R{i}"))
    assert (len(small), small.evicted) == (3, 3)


def test_max_series_evicts_the_least_recently_updated_series() -> None:
    d = AnomalyDetector(PatternRules(), max_series=3)
    d.observe(occ(0, reason="A"))  # least recently updated first: A, the category
    d.observe(occ(1, reason="B"))  # A, B, the category
    d.observe(occ(2, reason="A"))  # B, A, the category
    d.observe(occ(3, reason="C"))  # C evicts B
    assert [d.baseline(("reason", "shop", r)) is not None for r in "ABC"] == [True, False, True]
    assert d.baseline(("category", Category.STORAGE)) is not None
    assert d.evicted == 1


def test_rules_can_turn_anomalies_off() -> None:
    d = detector(anomalies=False)
    assert replay(d, [*quiet(60), 100]) == []
    assert len(d) == 0


def test_late_occurrences_are_counted_not_scored() -> None:
    d = detector()
    d.observe(occ(600))
    d.observe(occ(10, n=5))
    assert d.late == 5


def test_the_same_input_gives_the_same_anomalies() -> None:
    per_minute = [*quiet(60), 40, 3, 0, 80, *quiet(30), 25]
    assert replay(detector(), per_minute) == replay(detector(), per_minute)


def test_an_anomalous_bucket_closes_when_any_event_moves_time_on() -> None:
    d = detector()
    replay(d, [*quiet(30), 20])
    assert d.active == 2
    d.observe(occ(31 * 60 + 5, reason="Other", namespace="db"))
    assert (d.active, d.scores()) == (0, [])
