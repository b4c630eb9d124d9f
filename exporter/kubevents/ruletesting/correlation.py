"""Correlation rule unit tests: a timeline of Events in, the incidents out.

Like ``patterns_test`` files (``patterns.py``), each case is a short timeline; the
expectation is the grouping: every incident, by its root cause, with all of
its Events::

    version: 1
    kind: correlation_test
    rule_files: [../correlation.yaml]     # relative to this file; default: the configured rules
    tests:
      - name: a mount timeout on node-3 explains a crash loop of another workload there
        events:
          - {at: 0s, reason: FailedMount, namespace: payments, name: db-0, node: node-3,
             message: 'Unable to attach or mount volumes: ...: timed out waiting for the condition'}
          - {at: 7m, every: 40s, times: 3, reason: BackOff, namespace: shop,
             name: api-6c9b8d7f5c-k4m2p, node: node-3, message: 'Back-off restarting failed container'}
          - {at: 8m, reason: BackOff, name: other-0, node: node-1}
        expect:
          - root_cause: db-0:FailedMount
            events: [db-0:FailedMount, api-6c9b8d7f5c-k4m2p:BackOff]
            nodes: [node-3]
          - {root_cause: other-0:BackOff, events: [other-0:BackOff]}

Event shorthand: the keys of a classification test (``reason`` required,
``type`` Warning, ``kind`` Pod, ``namespace`` default, ``name`` test,
``component``, ``message``) plus ``at`` (offset, required), ``every`` +
``times`` (repeats of the same Event, its count growing), ``uid`` (default
``name:reason``), ``node`` (reported by the kubelet of that node),
``instance`` (reportingInstance), ``category`` and ``severity`` (default:
what the classification rules say). Node objects are cluster-scoped.

``expect`` lists **every** incident: ``root_cause`` (a uid) and ``events``
(the uids of all its Events, the root cause's included, in any order), and
optionally ``workloads``, ``nodes``, ``namespaces`` (exact, sorted or not),
``state`` and ``resolved_at``. An Event in no listed incident must be in
none. ``expire_at`` advances "now" after the Events, as the pipeline's
clock would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from kubevents.enrich.classify import Classifier, load_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import (
    CorrelationRules,
    compile_correlation_rules,
    load_correlation_rules,
)
from kubevents.enrich.incidents import IncidentState, IncidentTransition
from kubevents.enrich.pattern_rules import parse_duration
from kubevents.enrich.rules import check_keys
from kubevents.errors import RulesError
from kubevents.model import Classification, KubeEvent
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

CASE_KEYS: Final = ("name", "events", "expire_at", "expect")
TIMELINE_KEYS: Final = (
    *EVENT_KEYS,
    "at",
    "every",
    "times",
    "uid",
    "node",
    "instance",
    "category",
    "severity",
)
EXPECT_KEYS: Final = (
    "root_cause",
    "events",
    "workloads",
    "nodes",
    "namespaces",
    "state",
    "resolved_at",
)
CLUSTER_SCOPED: Final = frozenset({"Node", "PersistentVolume", "Namespace", "StorageClass"})


def run_correlation_test_file(
    path: Path,
    *,
    default_rules: Callable[[], CorrelationRules] = load_correlation_rules,
    default_classifier: Callable[[], Classifier] = load_classifier,
) -> list[CaseResult]:
    """Run every case in one ``correlation_test`` file.

    Raises:
        RulesError: the test file (or a rule file it names) is invalid.
    """
    rules, cases = open_test_file(
        path,
        kind="correlation_test",
        rule_kind="correlation",
        compile_rules=compile_correlation_rules,
        default_rules=default_rules,
    )
    classify = lazily(default_classifier)  # loaded on first need
    return [_run_case(case, path, rules, classify) for case in cases]


@dataclasses.dataclass(slots=True)
class _Outcome:
    """What the correlator made of a timeline."""

    members: dict[str, set[str]]
    """Incident id -> uids of its Events (the root cause's included)."""
    latest: dict[str, IncidentTransition]
    """Incident id -> its latest transition."""


def _run_case(
    case: object, path: Path, rules: CorrelationRules, classify: Callable[[], Classifier]
) -> CaseResult:
    data, where, events, expect = timeline_case(case, path, CASE_KEYS)
    timeline = sorted(
        (item for raw in events for item in _expand(raw, where, classify)),
        key=lambda item: item[0].time_ns,
    )
    timeline = _number_repeats(timeline)
    expire_at = None
    if "expire_at" in data:
        expire_at = T0_NS + parse_duration(data["expire_at"], where=f"{where}: expire_at")
    outcome = correlate_timeline(Correlator(rules), timeline, expire_at=expire_at)
    failures = _compare(expect, outcome, where)
    return CaseResult(where, str(data["name"]), "; ".join(failures) if failures else None)


def correlate_timeline(
    correlator: Correlator,
    timeline: list[tuple[KubeEvent, Classification]],
    *,
    expire_at: int | None = None,
) -> _Outcome:
    """Feed ``timeline`` (in order) and collect each incident's Events and latest state.

    As a replay does: an Event the correlator holds counts in the incident it
    found by the end, and incidents merged into another count as that one.
    """
    if not correlator.settle_ns:
        correlator.settle_ns = correlator.rules.max_window_ns
    members: dict[str, set[str]] = {}
    latest: dict[str, IncidentTransition] = {}
    merged: dict[str, str] = {}
    held = []

    def drain() -> None:
        for transition in correlator.transitions():
            if transition.state is IncidentState.MERGED:
                merged[transition.incident_id] = transition.merged_into
                latest.pop(transition.incident_id, None)
                continue
            latest[transition.incident_id] = transition
            members.setdefault(transition.incident_id, set()).add(transition.root.uid)

    for event, classification in timeline:
        correlation = correlator.correlate(event, classification, 1)
        if correlator.hold is not None:
            held.append((correlator.hold, correlation, event.key))
        drain()
        if correlation.incident_id:
            members.setdefault(correlation.incident_id, set()).add(event.key)
    if expire_at is not None:
        correlator.expire(expire_at)
        drain()
    for cause, correlation, key in held:
        released = correlator.release(cause, correlation)
        if released.incident_id:
            members.setdefault(released.incident_id, set()).add(key)

    def survivor(incident_id: str) -> str:
        while incident_id in merged:
            incident_id = merged[incident_id]
        return incident_id

    final: dict[str, set[str]] = {}
    for incident_id, uids in members.items():
        final.setdefault(survivor(incident_id), set()).update(uids)
    return _Outcome(final, latest)


def _expand(
    raw: object, where: str, classify: Callable[[], Classifier]
) -> list[tuple[KubeEvent, Classification]]:
    """One timeline entry as Event updates (several with ``every``/``times``)."""
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: each event must be a mapping")
    at = f"{where}: event"
    check_keys(raw, allowed=TIMELINE_KEYS, required=("reason", "at"), where=at)
    times = repeat_times(raw, at)
    base = shorthand_event({k: v for k, v in raw.items() if k in EVENT_KEYS}, where)
    name = str(raw.get("name", "test"))
    node = str(raw.get("node", ""))
    ref = base.regarding
    if ref.kind in CLUSTER_SCOPED:
        ref = dataclasses.replace(ref, namespace="")
    base = dataclasses.replace(
        base,
        uid=str(raw.get("uid", f"{name}:{base.reason}")),
        regarding=ref,
        reporting_controller=base.reporting_controller or ("kubelet" if node else ""),
        reporting_instance=str(raw.get("instance", node)),
        source_host=node,
    )
    cls = classification_of(raw, base, at, classify)
    out = []
    for t in times:
        out.append((dataclasses.replace(base, time_ns=t, first_time_ns=t), cls))
    return out


def _number_repeats(
    timeline: list[tuple[KubeEvent, Classification]],
) -> list[tuple[KubeEvent, Classification]]:
    """Give each repeat of an Event (same uid) its growing count, as the API does."""
    counts: dict[str, int] = {}
    firsts: dict[str, int] = {}
    out = []
    for event, cls in timeline:
        count = counts[event.key] = counts.get(event.key, 0) + 1
        first = firsts.setdefault(event.key, event.time_ns)
        out.append((dataclasses.replace(event, count=count, first_time_ns=first), cls))
    return out


def _uids(value: object, where: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where}: must be a list of strings")
    return set(value)


def _compare(expect: list[Any], outcome: _Outcome, where: str) -> list[str]:
    by_root = {t.root.uid: incident for incident, t in outcome.latest.items()}
    failures = []
    matched: set[str] = set()
    for i, wanted in enumerate(expect):
        at = f"{where}: expect[{i}]"
        if not isinstance(wanted, dict):
            raise RulesError(f"{at}: each expected incident must be a mapping")
        check_keys(wanted, allowed=EXPECT_KEYS, required=("root_cause", "events"), where=at)
        root = str(wanted["root_cause"])
        events = _uids(wanted["events"], f"{at}.events")
        incident = by_root.get(root)
        if incident is None:
            failures.append(f"no incident rooted at {root}")
            continue
        matched.add(incident)
        got = outcome.members.get(incident, set())
        if got != events:
            failures.append(
                f"incident rooted at {root}: expected events {sorted(events)}, got {sorted(got)}"
            )
        transition = outcome.latest[incident]
        for key in ("workloads", "nodes", "namespaces"):
            if key not in wanted:
                continue
            expected, scope = _uids(wanted[key], f"{at}.{key}"), getattr(transition, key)
            if expected != set(scope):
                failures.append(
                    f"incident rooted at {root}: expected {key} {sorted(expected)}, got {list(scope)}"
                )
        state = transition.state.value
        if "state" in wanted and wanted["state"] != state:
            failures.append(
                f"incident rooted at {root}: expected state {wanted['state']!r}, got {state!r}"
            )
        if "resolved_at" in wanted:
            due = T0_NS + parse_duration(
                wanted["resolved_at"], where=f"{at}.resolved_at", allow_zero=True
            )
            if transition.state is not IncidentState.RESOLVED or transition.time_ns != due:
                state = f"{transition.state.value} at {offset(transition.time_ns)}"
                failures.append(
                    f"incident rooted at {root}: expected resolved at {offset(due)}, got {state}"
                )
    for incident, transition in sorted(outcome.latest.items(), key=lambda kv: kv[1].first_seen_ns):
        if incident not in matched:
            members = sorted(outcome.members.get(incident, set()))
            failures.append(f"unexpected incident rooted at {transition.root.uid}: {members}")
    return failures
