"""Causes that come late, held records, merges, precision: arrival order does not decide.

Message texts are the components' own formats (kubernetes v1.30): the kubelet's
``Back-off restarting failed container %s in pod %s`` (kuberuntime_manager.go),
``%s probe failed: %s`` (prober/prober.go), ``Back-off pulling image %q`` and
``Failed to pull image %q: %v`` (images/image_manager.go), ``MountVolume.SetUp failed
for volume %q : %v`` (volume/util/operationexecutor/operation_generator.go), the eviction
manager's ``The node was low on resource: %v.`` (eviction/helpers.go) and the node
status ``Node %s status is now: %s`` (nodestatus/setters.go).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from kubevents.enrich.classify import load_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import load_correlation_rules
from kubevents.enrich.incidents import IncidentState, IncidentTransition
from kubevents.model import KubeEvent, ObjectRef
from tests.support.events import S, ev

SHIPPED = load_correlation_rules()
CLASSIFIER = load_classifier()




SETTLE = 15 * 60 * S
MOUNT = (
    'MountVolume.SetUp failed for volume "pvc-91c3" : rpc error: code = DeadlineExceeded'
    " desc = context deadline exceeded"
)
READY = "Readiness probe failed: HTTP probe failed with statuscode: 503"
RESTART = "Back-off restarting failed container db in pod db-0_payments(9b1c)"
PULL = 'Failed to pull image "registry.example.com/shop/web:2.4": rpc error: code = NotFound'
PULL_BACKOFF = 'Back-off pulling image "registry.example.com/shop/web:2.4"'
IMAGE_POD = "web-7d9f8c6b5d-x2k4p"


class Lookup:
    """An object cache as ``run`` has it: owners and nodes of the Pods it has seen."""

    def __init__(self, chains: dict[str, tuple[ObjectRef, ...]], nodes: dict[str, str]) -> None:
        self.chains, self.nodes = chains, nodes

    def owner_chain(self, ref: ObjectRef) -> tuple[ObjectRef, ...] | None:
        return self.chains.get(f"{ref.namespace}/{ref.name}")

    def pod_node(self, namespace: str, name: str) -> str | None:
        return self.nodes.get(f"{namespace}/{name}")


def replay(
    events: Sequence[KubeEvent], *, lookup: Lookup | None = None, settle_ns: int = SETTLE
) -> tuple[dict[str, str], list[IncidentTransition]]:
    """Feed ``events`` in the given order as the pipeline does; each uid's final incident id."""
    correlator = Correlator(SHIPPED, lookup=lookup, settle_ns=settle_ns)
    final: dict[str, str] = {}
    held = []
    transitions: list[IncidentTransition] = []
    for event in events:
        correlation = correlator.correlate(event, CLASSIFIER.classify(event), 1)
        if correlator.hold is not None:
            held.append((event.key, correlator.hold, correlation))
        elif correlation.incident_id:
            final[event.key] = correlation.incident_id
        transitions += correlator.transitions()
    for key, cause, correlation in held:
        released = correlator.release(cause, correlation)
        if released.incident_id:
            final[key] = released.incident_id
    merged = {t.incident_id: t.merged_into for t in transitions if t.state is IncidentState.MERGED}
    for key, incident in final.items():
        while incident in merged:
            incident = merged[incident]
        final[key] = incident
    return final, transitions


def groups(final: dict[str, str]) -> set[frozenset[str]]:
    by_incident: dict[str, set[str]] = {}
    for key, incident in final.items():
        by_incident.setdefault(incident, set()).add(key)
    return {frozenset(keys) for keys in by_incident.values()}


# The founding scenario: a volume mount times out, then the same Pod fails its readiness
# probe and restarts; another namespace's Pod on the same node cannot pull its image.
FOUNDING = [
    ev(0, "FailedMount", "db-0", ns="payments", node="node-3", message=MOUNT),
    ev(90, "Unhealthy", "db-0", ns="payments", node="node-3", message=READY),
    ev(100, "BackOff", "db-0", ns="payments", node="node-3", message=RESTART),
    ev(110, "Failed", IMAGE_POD, node="node-3", message=PULL),
    ev(120, "BackOff", IMAGE_POD, node="node-3", message=PULL_BACKOFF),
]
STORAGE = frozenset({"db-0:FailedMount", "db-0:Unhealthy", "db-0:BackOff"})
IMAGE = frozenset({f"{IMAGE_POD}:Failed", f"{IMAGE_POD}:BackOff"})


def test_founding_scenario_without_the_object_cache() -> None:
    final, transitions = replay(FOUNDING)
    assert groups(final) == {STORAGE, IMAGE}
    (started,) = [t for t in transitions if t.incident_id == final["db-0:FailedMount"]][:1]
    assert started.root.uid == "db-0:FailedMount"


def test_founding_scenario_with_the_object_cache() -> None:
    sts = ObjectRef(kind="StatefulSet", namespace="payments", name="db")
    rs = ObjectRef(kind="ReplicaSet", namespace="shop", name="web-7d9f8c6b5d")
    deploy = ObjectRef(kind="Deployment", namespace="shop", name="web")
    lookup = Lookup(
        {"payments/db-0": (sts,), f"shop/{IMAGE_POD}": (rs, deploy)},
        {"payments/db-0": "node-3", f"shop/{IMAGE_POD}": "node-3"},
    )
    final, _ = replay(FOUNDING, lookup=lookup)
    assert groups(final) == {STORAGE, IMAGE}


def test_founding_scenario_with_the_cause_arriving_last() -> None:
    late = [FOUNDING[1], FOUNDING[2], FOUNDING[3], FOUNDING[4], FOUNDING[0]]
    final, transitions = replay(late)
    assert groups(final) == {STORAGE, IMAGE}
    latest = [t for t in transitions if t.incident_id == final["db-0:FailedMount"]][-1]
    assert latest.root.uid == "db-0:FailedMount"  # the late cause became the root


def test_without_a_settle_time_an_early_symptom_stays_where_its_record_went() -> None:
    # A lone warning whose record left at once cannot be told of its incident later.
    final, _ = replay([FOUNDING[1], FOUNDING[0]], settle_ns=0)
    assert "db-0:Unhealthy" not in final
    assert final["db-0:FailedMount"]


EVICTED = "The node was low on resource: ephemeral-storage. "


def test_a_late_node_condition_merges_the_evictions_it_explains() -> None:
    events = [
        ev(0, "Evicted", "cart-6b8d7c9f4d-h2j4k", node="node-5", message=EVICTED),
        ev(2, "Evicted", "api-6c9b8d7f5c-k4m2p", ns="web", node="node-5", message=EVICTED),
        ev(8, "NodeHasDiskPressure", "node-5", kind="Node", node="node-5", type_="Normal",
           message="Node node-5 status is now: NodeHasDiskPressure"),
    ]
    final, transitions = replay(events)
    assert len(set(final.values())) == 1 and len(final) == 3
    (merged,) = [t for t in transitions if t.state is IncidentState.MERGED]
    survivor = final["node-5:NodeHasDiskPressure"]
    assert merged.merged_into == survivor and merged.incident_id != survivor
    latest = [t for t in transitions if t.incident_id == survivor][-1]
    assert latest.root.uid == "node-5:NodeHasDiskPressure"
    assert latest.aliases == (merged.incident_id,)
    assert latest.events == 3


def test_a_normal_effect_before_its_cause_joins_but_never_opens_alone() -> None:
    sandbox = ev(0, "SandboxChanged", "dns-0", ns="kube-system", node="node-1", type_="Normal",
                 message="Pod sandbox changed, it will be killed and re-created.")
    alone, _ = replay([sandbox])
    assert alone == {}
    failed = ev(5, "FailedCreatePodSandBox", "dns-0", ns="kube-system", node="node-1",
                message='Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup'
                ' network for sandbox "cb8a": plugin type="calico" failed (add): connection is unauthorized')
    final, _ = replay([sandbox, failed])
    assert final["dns-0:SandboxChanged"] == final["dns-0:FailedCreatePodSandBox"]


def test_held_events_say_which_rule_and_scope_took_them() -> None:
    correlator = Correlator(SHIPPED, settle_ns=SETTLE)
    ready, mount = FOUNDING[1], FOUNDING[0]
    first = correlator.correlate(ready, CLASSIFIER.classify(ready), 1)
    cause = correlator.hold
    assert cause is not None and first.incident_id == ""
    correlator.correlate(mount, CLASSIFIER.classify(mount), 1)
    assert correlator.settled_holds() == [cause]
    released = correlator.release(cause, first)
    assert (released.rule, released.scope, released.root_cause) == ("volume-attach-mount", "object", False)
    assert released.incident_id


def test_a_crash_loop_on_a_node_with_a_volume_problem_is_not_the_volume_s() -> None:
    neighbour = ev(30, "BackOff", "api-6c9b8d7f5c-k4m2p", node="node-3",
                   message="Back-off restarting failed container api in pod api-6c9b8d7f5c-k4m2p_shop(9e8d)")
    again = ev(70, "BackOff", "api-6c9b8d7f5c-k4m2p", node="node-3", count=2, message=neighbour.message)
    final, _ = replay([FOUNDING[0], neighbour, again])
    assert final["api-6c9b8d7f5c-k4m2p:BackOff"] != final["db-0:FailedMount"]


STORIES = [
    *FOUNDING,
    ev(0, "Evicted", "cart-6b8d7c9f4d-h2j4k", node="node-5", message=EVICTED),
    ev(2, "Evicted", "api-6c9b8d7f5c-k4m2p", ns="web", node="node-5", message=EVICTED),
    ev(8, "NodeHasDiskPressure", "node-5", kind="Node", node="node-5", type_="Normal",
       message="Node node-5 status is now: NodeHasDiskPressure"),
    ev(40, "SandboxChanged", "dns-0", ns="kube-system", node="node-1", type_="Normal",
       message="Pod sandbox changed, it will be killed and re-created."),
    ev(45, "FailedCreatePodSandBox", "dns-0", ns="kube-system", node="node-1",
       message='Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup'
       ' network for sandbox "cb8a": plugin type="calico" failed (add): connection is unauthorized'),
]


@settings(max_examples=60, deadline=None)
@given(st.randoms(use_true_random=False))
def test_shuffling_the_arrival_order_does_not_change_what_ends_up_together(rng: random.Random) -> None:
    expected = groups(replay(sorted(STORIES, key=lambda e: e.time_ns))[0])
    shuffled = list(STORIES)
    rng.shuffle(shuffled)
    assert groups(replay(shuffled)[0]) == expected
