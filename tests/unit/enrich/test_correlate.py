"""Correlator: correlation IDs, incident grouping, root causes, lifecycle, bounds, determinism."""

from __future__ import annotations

import dataclasses
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubevents.conventions import Category, Severity
from kubevents.enrich import links as links_module
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import (
    CausalRule,
    CorrelationDefaults,
    CorrelationRules,
    Side,
    load_correlation_rules,
)
from kubevents.enrich.incidents import IncidentState, IncidentTransition, incident_id
from kubevents.enrich.links import VOLUME_MESSAGES, Cause, LinkIndex, Traced, volume_keys
from kubevents.model import CategorySeverity, Correlation, KubeEvent
from kubevents.ruletesting.correlation import run_correlation_test_file
from tests.support.events import T0, S, ev

ROOT = Path(__file__).resolve().parents[3]
M = 60 * S
SHIPPED = load_correlation_rules()
CLASSIFIER = load_classifier()




class Run:
    """A Correlator fed one Event at a time, remembering what it said."""

    def __init__(self, rules: CorrelationRules = SHIPPED, **limits: int) -> None:
        self.correlator = Correlator(rules, **limits)
        self.ids: dict[str, set[str]] = {}
        self.transitions: list[IncidentTransition] = []

    def feed(self, *events: KubeEvent, severity: Severity | None = None) -> list[Correlation]:
        out = []
        for event in events:
            cls = CLASSIFIER.classify(event)
            if severity is not None:
                cls = dataclasses.replace(cls, severity=severity)
            correlation = self.correlator.correlate(event, cls, 1)
            if correlation.incident_id:
                self.ids.setdefault(correlation.incident_id, set()).add(event.key)
            self.transitions += self.correlator.transitions()
            out.append(correlation)
        return out

    def expire(self, t: float) -> None:
        self.correlator.expire(T0 + int(t * S))
        self.transitions += self.correlator.transitions()

    def states(self) -> list[tuple[str, float]]:
        return [(tr.state.value, (tr.time_ns - T0) / S) for tr in self.transitions]


BACKOFF = "Back-off restarting failed container app in pod x_shop(1)"
READINESS = "Readiness probe failed: HTTP probe failed with statuscode: 503"
MOUNT = "Unable to attach or mount volumes: unmounted volumes=[data]: timed out waiting for the condition"


# -- correlation IDs -----------------------------------------------------------------------


def test_routine_events_get_object_workload_and_node_but_no_incident() -> None:
    run = Run()
    (c,) = run.feed(ev(0, "Pulled", "web-7d9f8c6b5d-x2k4p", node="node-1", type_="Normal"))
    assert c.object == "shop/Pod/web-7d9f8c6b5d-x2k4p"
    assert [o.key for o in c.owners] == ["shop/ReplicaSet/web-7d9f8c6b5d", "shop/Deployment/web"]
    assert c.workload is not None and c.workload.key == "shop/Deployment/web"
    assert (c.node, c.incident_id, c.root_cause) == ("node-1", "", False)
    assert run.transitions == []


def test_an_event_about_a_workload_is_its_own_workload() -> None:
    run = Run()
    (deployment, rs, pod) = run.feed(
        ev(0, "ScalingReplicaSet", "web", kind="Deployment", type_="Normal",
           message="Scaled up replica set web-7d9f8c6b5d to 3 from 1"),
        ev(1, "SuccessfulCreate", "web-7d9f8c6b5d", kind="ReplicaSet", type_="Normal",
           message="Created pod: web-7d9f8c6b5d-x2k4p"),
        ev(2, "Started", "bare", type_="Normal", node="node-1"),
    )
    assert deployment.workload is not None and deployment.workload.key == "shop/Deployment/web"
    assert deployment.owners == ()
    assert rs.workload is not None and rs.workload.key == "shop/Deployment/web"
    assert pod.workload is None


def test_a_routine_correlation_is_reused_for_the_same_object() -> None:
    run = Run()
    first, second = run.feed(
        ev(0, "Pulled", "web-7d9f8c6b5d-x2k4p", node="node-1", type_="Normal"),
        ev(1, "Created", "web-7d9f8c6b5d-x2k4p", node="node-1", type_="Normal"),
    )
    assert first is second
    (moved,) = run.feed(ev(2, "Started", "web-7d9f8c6b5d-x2k4p", node="node-2", type_="Normal"))
    assert moved.node == "node-2"


def test_the_events_of_one_workload_keep_one_copy_of_its_key() -> None:
    # Each Event brings its own copy of the workload key (ObjectRef.key makes a new
    # string); what the correlator keeps of two lone warnings is one copy.
    run = Run()
    run.feed(
        ev(0, "BackOff", "web-7d9f8c6b5d-x2k4p", node="node-1", message=BACKOFF),
        ev(700, "BackOff", "web-7d9f8c6b5d-z6g9m", node="node-2", message=BACKOFF),
    )
    kept = [
        link.target.workload
        for table in run.correlator._links._tables.values()
        for link in table.values()
        if isinstance(link.target, Cause)
    ]
    assert len(kept) >= 2 and set(kept) == {"shop/Deployment/web"}
    assert all(workload is kept[0] for workload in kept)


# -- opening incidents ---------------------------------------------------------------------


def test_a_lone_warning_is_no_incident_until_a_second_one_of_the_same_scope() -> None:
    run = Run()
    (first,) = run.feed(ev(0, "BackOff", "web-0", node="node-1", message=BACKOFF))
    assert first.incident_id == "" and run.transitions == []
    (second,) = run.feed(ev(40, "BackOff", "web-0", node="node-1", message=BACKOFF, count=2))
    assert second.incident_id == incident_id("web-0:BackOff", T0)
    assert not second.root_cause  # the root is the first occurrence, already emitted
    (started,) = run.transitions
    assert started.state is IncidentState.STARTED
    assert (started.time_ns, started.first_seen_ns) == (T0 + 40 * S, T0)
    assert (started.events, started.root.uid) == (2, "web-0:BackOff")


def test_a_cause_opens_an_incident_at_once_and_is_flagged() -> None:
    run = Run()
    (c,) = run.feed(ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT))
    assert c.incident_id and c.root_cause
    assert run.states() == [("started", 0.0)]
    assert run.transitions[0].namespace == "payments"


def test_a_latent_normal_cause_becomes_the_root_of_what_follows() -> None:
    run = Run()
    rollout, failed = run.feed(
        ev(0, "ScalingReplicaSet", "web", kind="Deployment", type_="Normal",
           message="Scaled up replica set web-7d9f8c6b5d to 1"),
        ev(5, "Failed", "web-7d9f8c6b5d-x2k4p", node="node-1",
           message='Failed to pull image "web:2": rpc error: code = NotFound'),
    )
    assert rollout.incident_id == ""  # emitted before anything went wrong
    assert failed.incident_id == incident_id("web:ScalingReplicaSet", T0)
    (started,) = run.transitions
    assert (started.root.reason, started.root.object) == ("ScalingReplicaSet", "shop/Deployment/web")
    assert started.events == 2  # the root counts
    assert started.root.category is Category.WORKLOAD


def test_routine_events_never_open_incidents() -> None:
    run = Run()
    run.feed(*(ev(i, "Killing", "web-0", node="node-1", type_="Normal", message="Stopping container")
               for i in range(5)))
    assert run.ids == {} and run.transitions == []


# -- joining -------------------------------------------------------------------------------


def test_effects_join_their_cause_only_in_its_scope_and_window() -> None:
    run = Run()
    run.feed(
        ev(0, "OOMKilling", "node-4", kind="Node", node="node-4", controller="kernel-monitor",
           message="Memory cgroup out of memory: Killed process 4242 (java)"),
        ev(60, "BackOff", "ledger-5f6c8d7b9c-b6c7d", ns="payments", node="node-4", message=BACKOFF),
        ev(60, "BackOff", "cart-5f8d9c7b46-h2j4k", node="node-1", message=BACKOFF),  # other node
        ev(301, "BackOff", "api-6c9b8d7f5c-k4m2p", node="node-4", message=BACKOFF),  # after 5m
    )
    (oom,) = [ids for ids in run.ids.values() if "node-4:OOMKilling" in ids]
    assert oom == {"node-4:OOMKilling", "ledger-5f6c8d7b9c-b6c7d:BackOff"}
    assert run.correlator.joins == {"oom-kill": 1}


def test_the_window_slides_with_each_cause_occurrence() -> None:
    run = Run()
    for t in (0, 240, 480):  # a FailedMount every 4 minutes keeps the link alive
        run.feed(ev(t, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT, count=t // 240 + 1))
    (c,) = run.feed(ev(480 + 14 * 60, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF))
    assert c.incident_id == incident_id("db-0:FailedMount", T0)


def test_of_two_incidents_the_one_whose_cause_came_first_wins() -> None:
    run = Run()
    run.feed(
        ev(0, "FailedCreatePodSandBox", "a-7d9f8c6b5d-x2k4p", node="node-2",
           message='Failed to create pod sandbox: rpc error: failed to setup network for sandbox "1": plugin type="calico" failed (add)'),
        ev(10, "OOMKilling", "node-2", kind="Node", node="node-2", controller="kernel-monitor",
           message="Memory cgroup out of memory: Killed process 1 (x)"),
    )
    sandbox = incident_id("a-7d9f8c6b5d-x2k4p:FailedCreatePodSandBox", T0)
    assert set(run.ids) == {sandbox, incident_id("node-2:OOMKilling", T0 + 10 * S)}
    (c,) = run.feed(ev(20, "BackOff", "b-6c9b8d7f5c-k4m2p", node="node-2", message=BACKOFF))
    assert c.incident_id == sandbox


def test_a_cause_does_not_become_the_symptom_of_a_lone_warning() -> None:
    run = Run()
    lone, mount = run.feed(
        ev(0, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF),
        ev(10, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT),
    )
    assert lone.incident_id == ""
    assert mount.root_cause and mount.incident_id == incident_id("db-0:FailedMount", T0 + 10 * S)


# -- lifecycle -----------------------------------------------------------------------------


def test_ongoing_only_when_the_scope_grows_then_resolved_after_the_quiet_period() -> None:
    run = Run()
    run.feed(ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT))
    run.feed(*(ev(60 * k, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT, count=k + 1)
               for k in range(1, 4)))
    assert run.states() == [("started", 0.0)]
    run.feed(ev(300, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF))  # a category
    run.feed(ev(320, "BackOff", "db-1", ns="payments", node="node-4", message=BACKOFF))  # a node
    run.feed(ev(330, "BackOff", "db-1", ns="payments", node="node-4", message=BACKOFF, count=2))
    assert run.states() == [("started", 0.0), ("ongoing", 300.0), ("ongoing", 320.0)]
    grown = run.transitions[-1]
    assert grown.workloads == ("payments/StatefulSet/db",)
    assert grown.nodes == ("node-3", "node-4")
    assert grown.namespaces == ("payments",) and grown.namespace == "payments"
    assert grown.categories == (("Lifecycle", 2), ("Storage", 4))  # as it stood at 320 s
    # Quiet for 15 minutes of event time after the last Event (330 s): resolved at 1230 s.
    run.feed(ev(1230, "Pulled", "x", node="node-9", type_="Normal"))
    assert run.states()[-1] == ("ongoing", 320.0)
    run.feed(ev(1231, "Pulled", "x", node="node-9", type_="Normal"))
    assert run.states()[-1] == ("resolved", 1230.0)
    resolved = run.transitions[-1]
    assert (resolved.events, resolved.occurrences, resolved.last_seen_ns) == (7, 7, T0 + 330 * S)
    assert run.correlator.open_incidents == 0


def test_expire_resolves_with_the_injected_clock_and_links_to_closed_incidents_are_dead() -> None:
    run = Run()
    run.feed(ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT))
    run.expire(900)
    assert run.states() == [("started", 0.0)]
    run.expire(901)
    assert run.states() == [("started", 0.0), ("resolved", 900.0)]
    (c,) = run.feed(ev(901, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF))
    assert c.incident_id == ""


def test_current_lists_open_incidents_as_they_stand() -> None:
    run = Run()
    run.feed(ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT),
             ev(30, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF))
    (now,) = run.correlator.current()
    assert (now.state, now.events, now.time_ns) == (IncidentState.ONGOING, 2, T0 + 30 * S)


def test_open_counts_group_open_incidents_by_root_category_and_severity() -> None:
    run = Run()
    run.feed(ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT),
             ev(30, "BackOff", "db-0", ns="payments", node="node-3", message=BACKOFF))
    (now,) = run.correlator.current()
    assert run.correlator.open_counts() == [
        (CategorySeverity(now.root.category, now.severity), 1)
    ]
    run.expire(3600)
    assert run.correlator.open_counts() == []


# -- bounds --------------------------------------------------------------------------------


def test_open_incidents_are_capped_the_oldest_resolved_early_and_counted() -> None:
    run = Run(max_incidents=2)
    for i in range(3):
        run.feed(ev(i, "FailedMount", f"db{i}-0", ns="payments", node=f"node-{i}", message=MOUNT))
    assert run.correlator.open_incidents == 2
    assert run.correlator.evicted_incidents == 1
    assert [s for s, _ in run.states()] == ["started", "started", "resolved", "started"]


def test_links_are_capped_least_recently_used_first_and_counted() -> None:
    run = Run(max_links=4)
    for i in range(4):
        run.feed(ev(i, "FailedMount", f"db-{i}", ns="payments", node=f"node-{i}", message=MOUNT))
    assert run.correlator.links == 4
    assert run.correlator.evicted_links > 0
    # Which ones go: the least recently updated, a refreshed link counting as new.
    index = LinkIndex(max_entries=3)
    targets = {n: Traced([]) for n in range(5)}
    key = {n: (0, "node", f"node-{n}") for n in range(5)}
    for n in range(4):
        index.put(key[n], T0 + n * S, 60 * S, targets[n])
    assert [n for n in range(4) if index.get(key[n])] == [1, 2, 3]
    index.put(key[1], T0 + 10 * S, 60 * S, targets[1])  # node-1 again: it slides
    index.put(key[4], T0 + 11 * S, 60 * S, targets[4])
    assert [n for n in range(5) if index.get(key[n])] == [1, 3, 4]
    assert index.evicted == 2
    assert len(index) == 3


def test_links_expire_after_the_longest_window() -> None:
    run = Run()
    run.feed(ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT))
    assert run.correlator.links > 0
    run.feed(ev(SHIPPED.max_window_ns / S + 1, "Pulled", "x", node="node-9", type_="Normal"))
    assert run.correlator.links == 0


def test_volume_keys_come_from_claims_and_quoted_volume_names_only() -> None:
    assert volume_keys(ev(0, "FailedAttachVolume", "db-0", message=(
        'AttachVolume.Attach failed for volume "pvc-4b1e" : timed out'))) == ("shop/pvc-4b1e",)
    assert volume_keys(ev(0, "FailedMount", "db-0", message=MOUNT)) == ()
    assert volume_keys(ev(0, "ProvisioningFailed", "data-db-0", kind="PersistentVolumeClaim",
                          message='storageclass "x" not found')) == ("shop/data-db-0",)
    assert volume_keys(ev(0, "FailedScheduling", "db-0", message=(
        'persistentvolumeclaim "data-db-0" not found'))) == ("shop/data-db-0",)


ATTACH = 'AttachVolume.Attach failed for volume "pvc-4b1e" : timed out'


def test_volume_names_are_remembered_per_message_and_keyed_per_namespace() -> None:
    for ns in ("shop", "payments", "shop"):  # the same text in two namespaces, then again
        event = ev(0, "FailedAttachVolume", "db-0", ns=ns, message=ATTACH)
        assert volume_keys(event) == (f"{ns}/pvc-4b1e",)


def test_the_remembered_volume_names_stay_bounded() -> None:
    for i in range(VOLUME_MESSAGES + 10):
        message = ATTACH.replace("pvc-4b1e", f"pvc-{i}")
        assert volume_keys(ev(0, "FailedAttachVolume", "db-0", message=message)) == (f"shop/pvc-{i}",)
    assert len(links_module._volume_memo) <= VOLUME_MESSAGES

# -- the shipped rules, one case at a time --------------------------------------------------

CASES = run_correlation_test_file(ROOT / "rules" / "tests" / "correlation_test.yaml")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_shipped_rule_case(case) -> None:  # type: ignore[no-untyped-def]
    assert case.failure is None, case.failure


def test_every_shipped_rule_links_something_in_its_tests() -> None:
    joined: dict[str, int] = {}
    import kubevents.ruletesting.correlation as runner

    original = runner.correlate_timeline

    def spy(correlator: Correlator, *args, **kwargs):  # type: ignore[no-untyped-def]
        outcome = original(correlator, *args, **kwargs)
        for rule, n in correlator.joins.items():
            joined[rule] = joined.get(rule, 0) + n
        return outcome

    runner.correlate_timeline = spy  # type: ignore[assignment]
    try:
        run_correlation_test_file(ROOT / "rules" / "tests" / "correlation_test.yaml")
    finally:
        runner.correlate_timeline = original  # type: ignore[assignment]
    # The core rules; each pack's rules are checked against its own tests (test_packs.py).
    core = {rule for rule in SHIPPED.rules_by_id if "." not in rule}
    assert sorted(core - set(joined)) == []


# -- determinism ---------------------------------------------------------------------------

STORY = [
    ev(0, "FailedAttachVolume", "db-0", ns="payments", controller="attachdetach-controller",
       message='AttachVolume.Attach failed for volume "pvc-4b1e" : timed out waiting for external-attacher'),
    ev(60, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT),
    ev(120, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT, count=2),
    ev(300, "BackOff", "api-6c9b8d7f5c-k4m2p", node="node-3", message=BACKOFF),
    ev(300, "Unhealthy", "worker-7b9c8d6f54-t7v8x", node="node-3", message=READINESS),
    ev(340, "BackOff", "api-6c9b8d7f5c-k4m2p", node="node-3", message=BACKOFF, count=2),
    ev(360, "Killing", "db-0", ns="payments", node="node-3", type_="Normal", message="Stopping container db"),
]

UNRELATED_REASONS = [
    ("BackOff", "Warning", BACKOFF),
    ("Unhealthy", "Warning", READINESS),
    ("FailedMount", "Warning", MOUNT),
    ("OOMKilling", "Warning", "Memory cgroup out of memory"),
    ("Pulled", "Normal", 'Container image "x" already present on machine'),
    ("Killing", "Normal", "Stopping container app"),
    ("FailedScheduling", "Warning", "0/3 nodes are available: 3 Insufficient cpu."),
]


def unrelated(draw_reason: int, name: int, t: int, node: int) -> KubeEvent:
    reason, type_, message = UNRELATED_REASONS[draw_reason]
    kind = "Node" if reason == "OOMKilling" else "Pod"
    obj = f"node-x{node}" if kind == "Node" else f"other-{name}"
    return ev(t, reason, obj, ns=f"elsewhere-{name % 3}", kind=kind, node=f"node-x{node}",
              type_=type_, message=message, uid=f"u-{reason}-{name}-{t}")


def ids_by_uid(events: list[KubeEvent]) -> dict[str, str]:
    run = Run()
    out = {}
    for event in events:
        (c,) = run.feed(event)
        out[event.key] = c.incident_id
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(UNRELATED_REASONS) - 1), st.integers(0, 5),
                  st.sampled_from([0, 60, 120, 300, 340, 360, 400]), st.integers(0, 2)),
        max_size=25,
    ),
    st.randoms(use_true_random=False),
)
def test_story_ids_do_not_depend_on_unrelated_events_or_their_order(
    noise: list[tuple[int, int, int, int]], rng: random.Random
) -> None:
    alone = ids_by_uid(STORY)
    others = [unrelated(*n) for n in noise]
    mixed = STORY + others
    rng.shuffle(mixed)
    mixed.sort(key=lambda e: e.time_ns)  # stable: ties in any order, as a replay may see them
    with_noise = ids_by_uid(mixed)
    assert {uid: with_noise[uid] for uid in alone} == alone
    assert alone["db-0:Killing"] == incident_id("db-0:FailedAttachVolume", T0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(UNRELATED_REASONS) - 1), st.integers(0, 5),
                  st.integers(0, 3600), st.integers(0, 2)),
        max_size=40,
    )
)
def test_the_same_events_give_the_same_ids_and_transitions(noise: list[tuple[int, int, int, int]]) -> None:
    events = sorted(STORY + [unrelated(*n) for n in noise], key=lambda e: e.time_ns)
    first, second = Run(), Run()
    assert [c.incident_id for c in first.feed(*events)] == [c.incident_id for c in second.feed(*events)]
    assert first.transitions == second.transitions


def test_custom_rules_and_defaults() -> None:
    rules = CorrelationRules(
        [CausalRule(id="reboot", index=0, cause=Side(frozenset({"Rebooted"})),
                    effect=Side(frozenset({"Started"})), join=("node",), window_ns=M)],
        CorrelationDefaults(quiet_ns=2 * M, group=(), min_severity=Severity.ERROR),
    )
    run = Run(rules)
    run.feed(ev(0, "Rebooted", "node-1", kind="Node", node="node-1", message="Node node-1 has been rebooted"),
             severity=Severity.ERROR)
    run.feed(ev(30, "Started", "web-0", node="node-1", type_="Normal"), ev(90, "Started", "api-0", node="node-1", type_="Normal"))
    assert list(run.ids.values()) == [{"node-1:Rebooted", "web-0:Started"}]
    run.feed(ev(10 * 60, "BackOff", "web-0", node="node-1", message=BACKOFF),
             ev(10 * 60 + 1, "BackOff", "web-0", node="node-1", message=BACKOFF, count=2))
    assert len(run.ids) == 1  # warnings are below min_severity here, and nothing groups
    assert run.states() == [("started", 0.0), ("ongoing", 30.0), ("resolved", 150.0)]


def test_a_message_condition_answers_alike_for_a_message_seen_before_and_a_new_one() -> None:
    # The matching rules of a message are remembered (a bounded memo per reason, kind...):
    # more distinct messages than it keeps, each seen twice, far apart and close together.
    from kubevents.enrich.correlate import PLAN_MESSAGES

    rules = CorrelationRules(
        [CausalRule(id="quota", index=0, cause=Side(frozenset({"FailedCreate"})),
                    effect=Side(frozenset({"BackOff"}), message=re.compile("(?i)exceeded quota")),
                    join=("object",), window_ns=60 * M)],
        CorrelationDefaults(window_ns=60 * M, quiet_ns=120 * M, group=("object",), min_severity=Severity.WARNING),
    )
    run = Run(rules)
    run.feed(ev(0, "FailedCreate", "web-0", message="pods is forbidden"))
    messages = [f"try {i}: {'Exceeded Quota' if i % 3 == 0 else 'crashed'}" for i in range(3 * PLAN_MESSAGES)]
    order = [*messages, *reversed(messages), *(m for pair in zip(messages, messages, strict=True) for m in pair)]
    found = run.feed(*(ev(1 + i / 1000, "BackOff", "web-0", message=m, uid=f"u{i}") for i, m in enumerate(order)))
    assert [c.rule for c in found] == ["quota" if "Quota" in m else "group" for m in order]
