"""Pattern rule unit tests: a timeline of Events in, the transitions out.

Like ``classification_test`` files (``classification.py``), but each case is a
short timeline, because a pattern is about frequency::

    version: 1
    kind: patterns_test
    rule_files: [../patterns.yaml]      # relative to this file; default: the configured rules
    tests:
      - name: three image pull failures in a minute start a pattern
        events:
          - {at: 0s, every: 20s, times: 3, reason: Failed, message: 'Failed to pull image "web:1"'}
        expect:
          - {state: started, at: 40s, count: 3, rate_per_minute: 3.0}
      - name: and it resolves after the quiet period
        events:
          - {at: 0s, every: 20s, times: 3, reason: Failed, message: 'Failed to pull image "web:1"'}
        expire_at: 11m                  # advance "now" after the events (the injected clock)
        expect:
          - {state: started, at: 40s}
          - {state: resolved, at: 10m40s, count: 3}

Event shorthand: the keys of a classification test (``reason`` required,
``type`` Warning, ``kind`` Pod, ``namespace`` default, ``name``, ``component``,
``message``) plus ``at`` (offset, required), ``every`` + ``times`` (repeat),
``count`` (occurrences of the update, default 1), ``uid``, ``category`` and
``severity`` (default: what the classification rules say), ``workload``
(``ns/Kind/name``), ``node`` and ``incident``.

``expect`` lists every transition in order; each entry checks only the keys
it names: ``state``, ``at``, ``key``, ``count``, ``rate_per_minute``,
``first_seen``, ``last_seen``, ``category``, ``severity``, ``rule``, ``id``.
``anomalies: true`` also runs the anomaly detector (its transitions follow
the pattern transitions of the same Event).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from kubevents.enrich.anomaly import AnomalyDetector
from kubevents.enrich.classify import Classifier, load_classifier
from kubevents.enrich.pattern_rules import (
    PatternRules,
    compile_pattern_rules,
    load_pattern_rules,
    parse_duration,
)
from kubevents.enrich.patterns import PatternDetector, Transition
from kubevents.enrich.rules import check_keys
from kubevents.errors import RulesError
from kubevents.model import Correlation, Enriched, ObjectRef
from kubevents.ruletesting.cases import (
    EVENT_KEYS,
    T0_NS,
    CaseResult,
    classification_of,
    lazily,
    offset,
    open_test_file,
    repeat_times,
    shorthand_event,
    timeline_case,
)

CASE_KEYS: Final = ("name", "events", "expire_at", "anomalies", "expect")
TIMELINE_KEYS: Final = (
    *EVENT_KEYS,
    "at",
    "every",
    "times",
    "count",
    "uid",
    "category",
    "severity",
    "workload",
    "node",
    "incident",
)
EXPECT_KEYS: Final = (
    "state",
    "at",
    "key",
    "count",
    "rate_per_minute",
    "first_seen",
    "last_seen",
    "category",
    "severity",
    "rule",
    "id",
)
_TIMES: Final = ("at", "first_seen", "last_seen")


def run_patterns_test_file(
    path: Path,
    *,
    default_rules: Callable[[], PatternRules] = load_pattern_rules,
    default_classifier: Callable[[], Classifier] = load_classifier,
) -> list[CaseResult]:
    """Run every case in one ``patterns_test`` file.

    Raises:
        RulesError: the test file (or a rule file it names) is invalid.
    """
    rules, cases = open_test_file(
        path,
        kind="patterns_test",
        rule_kind="patterns",
        compile_rules=compile_pattern_rules,
        default_rules=default_rules,
    )
    classify = lazily(default_classifier)  # loaded on first need
    return [_run_case(case, path, rules, classify) for case in cases]


def _run_case(
    case: object, path: Path, rules: PatternRules, classify: Callable[[], Classifier]
) -> CaseResult:
    data, where, events, expect = timeline_case(case, path, CASE_KEYS)
    timeline = sorted(
        (item for raw in events for item in _expand(raw, where, classify)),
        key=lambda e: e.event.time_ns,
    )
    detector = PatternDetector(rules)
    anomalies = AnomalyDetector(rules) if data.get("anomalies") is True else None
    got: list[Transition] = []
    for enriched in timeline:
        detector.observe(enriched)
        got += detector.transitions()
        if anomalies is not None:
            anomalies.observe(enriched)
            got += anomalies.transitions()
    if "expire_at" in data:
        now = T0_NS + parse_duration(data["expire_at"], where=f"{where}: expire_at")
        detector.expire(now)
        got += detector.transitions()
    failures = _compare(expect, got, where)
    return CaseResult(where, str(data["name"]), "; ".join(failures) if failures else None)


def _expand(raw: object, where: str, classify: Callable[[], Classifier]) -> list[Enriched]:
    """One timeline entry as Enriched updates (several with ``every``/``times``)."""
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: each event must be a mapping")
    at = f"{where}: event"
    check_keys(raw, allowed=TIMELINE_KEYS, required=("reason", "at"), where=at)
    times = repeat_times(raw, at)
    count = raw.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise RulesError(f"{at}: count must be a whole number")
    base = shorthand_event({k: v for k, v in raw.items() if k in EVENT_KEYS}, where)
    base = dataclasses.replace(base, uid=str(raw.get("uid", "")))
    cls = classification_of(raw, base, at, classify)
    correlation = _correlation(raw, base.regarding, at)
    out = []
    for t in times:
        event = dataclasses.replace(base, time_ns=t, first_time_ns=t, count=count or 1)
        out.append(Enriched(event, count, t, cls, correlation))
    return out


def _correlation(raw: dict[str, Any], ref: ObjectRef, where: str) -> Correlation | None:
    if not any(k in raw for k in ("workload", "node", "incident")):
        return None
    owners: tuple[ObjectRef, ...] = ()
    if "workload" in raw:
        parts = str(raw["workload"]).split("/")
        if len(parts) != 3:
            raise RulesError(f"{where}: workload must be namespace/Kind/name")
        owners = (ObjectRef(kind=parts[1], namespace=parts[0], name=parts[2]),)
    return Correlation(
        object=ref.key,
        owners=owners,
        node=str(raw.get("node", "")),
        incident_id=str(raw.get("incident", "")),
    )


def _actual(transition: Transition) -> dict[str, object]:
    return {
        "state": transition.state.value,
        "at": transition.time_ns,
        "key": transition.key,
        "count": transition.count,
        "rate_per_minute": transition.rate_per_minute,
        "first_seen": transition.first_seen_ns,
        "last_seen": transition.last_seen_ns,
        "category": transition.category.value,
        "severity": transition.severity.value,
        "rule": transition.rule_id,
        "id": transition.pattern_id,
    }


def _compare(expect: list[Any], got: list[Transition], where: str) -> list[str]:
    failures = []
    for i, wanted in enumerate(expect):
        if not isinstance(wanted, dict):
            raise RulesError(f"{where}: each expected transition must be a mapping")
        check_keys(wanted, allowed=EXPECT_KEYS, where=f"{where}: expect[{i}]")
        if i >= len(got):
            continue
        actual = _actual(got[i])
        for key, value in wanted.items():
            if key in _TIMES:
                value = T0_NS + parse_duration(
                    value, where=f"{where}: expect[{i}].{key}", allow_zero=True
                )
            got_value = actual[key]
            if isinstance(value, int | float) and isinstance(got_value, float):
                equal = abs(value - got_value) < 1e-6
            else:
                equal = value == actual[key]
            if not equal:
                failures.append(
                    f"transition {i + 1} {key}: expected {_show(key, value)}, got {_show(key, actual[key])}"
                )
    if len(expect) != len(got):
        listed = ", ".join(f"{t.state.value}@{offset(t.time_ns)}" for t in got) or "none"
        failures.append(f"expected {len(expect)} transitions, got {len(got)}: {listed}")
    return failures


def _show(key: str, value: object) -> str:
    if key in _TIMES and isinstance(value, int):
        return offset(value)
    return repr(value)
