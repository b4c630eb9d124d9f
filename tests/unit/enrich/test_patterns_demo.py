"""The demo recording's image-pull storm and probe-failure loop come out as patterns.

The demo goes through the real core, in time order, as a replay does: read,
normalize, occurrences (SeriesTracker), the shipped classification rules, and
the shipped pattern rules.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevents.conventions import Category
from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.pattern_rules import load_pattern_rules
from kubevents.enrich.patterns import PatternDetector, PatternState, Transition
from kubevents.model import Enriched, KubeEvent
from kubevents.normalize import NotAnEvent, normalize
from kubevents.series import SeriesTracker
from kubevents.source.replaying import Problem, read_items

DEMO = Path(__file__).resolve().parents[3] / "tests" / "data" / "demo" / "events.jsonl"


def demo_updates() -> list[Enriched]:
    """Every demo update that adds occurrences, enriched, in occurrence-time order."""
    problems: list[Problem] = []
    events: list[KubeEvent] = []
    for item in read_items(str(DEMO), problems.append):
        if item.watch_type == "DELETED":
            continue
        try:
            events.append(normalize(item.obj))
        except NotAnEvent:
            continue
    events.sort(key=lambda e: e.time_ns)  # stable, like `kubevents replay`
    tracker, classifier = SeriesTracker(), load_classifier()
    out = []
    for event in events:
        occurrences = tracker.observe(event)
        if occurrences is not None:
            out.append(Enriched(event, occurrences, event.time_ns, classifier.classify(event)))
    return out


def replay() -> tuple[list[Transition], list[str]]:
    """All pattern and anomaly transitions, and the pattern id returned per update."""
    rules = load_pattern_rules()
    patterns, anomalies = PatternDetector(rules), AnomalyDetector(rules)
    transitions: list[Transition] = []
    ids = []
    for enriched in demo_updates():
        ids.append(patterns.observe(enriched))
        anomalies.observe(enriched)
        transitions += [*patterns.transitions(), *anomalies.transitions()]
    transitions += [*patterns.active_patterns()]
    return transitions, ids


@pytest.fixture(scope="module")
def demo() -> tuple[list[Transition], list[str]]:
    assert DEMO.exists(), f"{DEMO} is missing: the demo recording is part of the repository"
    return replay()


def started(transitions: list[Transition]) -> list[Transition]:
    return [t for t in transitions if t.state is PatternState.STARTED]


def test_the_image_pull_storm_is_a_pattern(demo: tuple[list[Transition], list[str]]) -> None:
    image = [t for t in started(demo[0]) if t.category is Category.IMAGE]
    assert image, "no Image pattern started"
    assert all(t.rule_id == "image-pull-failures" for t in image)
    assert max(t.count for t in image) >= 3


def test_the_probe_failure_loop_is_a_pattern(demo: tuple[list[Transition], list[str]]) -> None:
    probes = [t for t in started(demo[0]) if dict(t.fields).get("reason") == "Unhealthy"]
    assert probes, "no probe-failure pattern started"
    assert all(t.rule_id == "probe-failures" and t.category is Category.HEALTH for t in probes)


def test_events_of_a_pattern_carry_its_id(demo: tuple[list[Transition], list[str]]) -> None:
    transitions, ids = demo
    assert {t.pattern_id for t in started(transitions)} <= set(ids)


def test_replaying_the_demo_twice_gives_the_same_patterns(
    demo: tuple[list[Transition], list[str]],
) -> None:
    assert replay() == demo
