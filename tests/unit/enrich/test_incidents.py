"""Incidents as records: ids, the one-sentence body, and the attribute contract."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevents import conventions as c
from kubevents.conventions import Category, Severity
from kubevents.enrich.incidents import (
    MAX_SCOPE,
    Incident,
    IncidentState,
    IncidentTransition,
    RootCause,
    format_duration,
    incident_id,
)
from kubevents.model import Classification, Correlation, Enriched, KubeEvent, ObjectRef
from kubevents.records import event_record, format_rfc3339, incident_record

S = 1_000_000_000
T0 = 1_795_000_000 * S
DB = RootCause(
    uid="u-mount",
    reason="FailedMount",
    object="payments/Pod/db-0",
    namespace="payments",
    time_ns=T0,
    category=Category.STORAGE,
    severity=Severity.ERROR,
)


def transition(
    *,
    state: IncidentState = IncidentState.STARTED,
    root: RootCause = DB,
    events: int = 1,
    workloads: tuple[str, ...] = (),
    nodes: tuple[str, ...] = (),
    namespaces: tuple[str, ...] = ("payments",),
    namespace: str = "payments",
    last: int = 0,
) -> IncidentTransition:
    return IncidentTransition(
        incident_id=incident_id(root.uid, root.time_ns),
        state=state,
        time_ns=T0 + last * S,
        root=root,
        first_seen_ns=root.time_ns,
        last_seen_ns=T0 + last * S,
        events=events,
        occurrences=events + 2,
        workloads=workloads,
        nodes=nodes,
        namespaces=namespaces,
        categories=(("Lifecycle", events - 1), ("Storage", 1)) if events > 1 else (("Storage", 1),),
        severity=Severity.CRITICAL,
        namespace=namespace,
    )


def test_ids_are_short_stable_and_differ_by_root_and_time() -> None:
    first = incident_id("u-mount", T0)
    assert re.fullmatch(r"inc-[0-9a-f]{12}", first)
    assert first == incident_id("u-mount", T0)
    assert first != incident_id("u-mount", T0 + 1)
    assert first != incident_id("u-other", T0)


@pytest.mark.parametrize(
    ("kwargs", "body"),
    [
        ({}, "Storage incident on node node-3: FailedMount (payments/Pod/db-0)"),
        (
            {"events": 15, "workloads": ("payments/StatefulSet/db", "shop/Deployment/api", "shop/Deployment/web"),
             "last": 600},
            "Storage incident on node node-3: FailedMount (payments/Pod/db-0) then 14 events across 3 workloads",
        ),
        (
            {"events": 2, "workloads": ("payments/StatefulSet/db",), "nodes": ("node-3", "node-4")},
            "Storage incident on payments/StatefulSet/db: FailedMount (payments/Pod/db-0) then 1 event across 1 workload",
        ),
        (
            {"state": IncidentState.RESOLVED, "events": 3, "last": 750, "nodes": ("node-1", "node-2")},
            "Storage incident on namespace payments: FailedMount (payments/Pod/db-0) then 2 events;"
            " resolved after 12m without new events",
        ),
        (
            {"root": RootCause("n", "NodeNotReady", "Node/node-7", "", T0, Category.NODE, Severity.CRITICAL),
             "workloads": ("a/Deployment/x",), "nodes": ("node-7",), "events": 4},
            "Node incident on node node-7: NodeNotReady (Node/node-7) then 3 events across 1 workload",
        ),
        (
            {"namespaces": ("a", "b"), "nodes": ("node-1", "node-2"), "events": 3},
            "Storage incident on 2 nodes: FailedMount (payments/Pod/db-0) then 2 events",
        ),
    ],
)
def test_the_body_is_one_sentence(kwargs: dict[str, object], body: str) -> None:
    defaults: dict[str, object] = {"nodes": ("node-3",)}
    assert transition(**{**defaults, **kwargs}).describe() == body  # type: ignore[arg-type]


@pytest.mark.parametrize(("ns", "text"), [(5 * S, "5s"), (125 * S, "2m"), (3900 * S, "1h05m")])
def test_durations(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_incident_record_attributes() -> None:
    t = transition(
        state=IncidentState.ONGOING,
        events=3,
        workloads=("shop/Deployment/api", "payments/StatefulSet/db"),
        nodes=("node-3",),
        namespaces=("payments", "shop"),
        namespace="",
        last=120,
    )
    record = incident_record(t, observed_ns=T0 + 999 * S)
    assert record.event_name == c.EVENT_NAME_INCIDENT == "kubevents.incident"
    assert (record.timestamp_ns, record.observed_ns) == (T0 + 120 * S, T0 + 999 * S)
    assert (record.severity_number, record.severity_text) == (21, "critical")
    assert record.namespace == ""
    assert record.body == t.describe()
    assert record.attributes == {
        "kubevents.incident.id": t.incident_id,
        "kubevents.incident.state": "ongoing",
        "kubevents.incident.root_cause.reason": "FailedMount",
        "kubevents.incident.root_cause.object": "payments/Pod/db-0",
        "kubevents.incident.root_cause.uid": "u-mount",
        "kubevents.incident.workloads": "shop/Deployment/api,payments/StatefulSet/db",
        "kubevents.incident.nodes": "node-3",
        "kubevents.incident.namespaces": "payments,shop",
        "kubevents.incident.categories": "Lifecycle=2,Storage=1",
        "kubevents.incident.events": 3,
        "kubevents.incident.occurrences": 5,
        "kubevents.incident.first_seen": format_rfc3339(T0),
        "kubevents.incident.last_seen": format_rfc3339(T0 + 120 * S),
        "kubevents.category": "Storage",
        "kubevents.severity": "critical",
    }


def test_the_resource_namespace_is_the_roots_when_everything_is_in_it() -> None:
    incident = Incident(id="inc-1", root=DB, first_seen_ns=T0, last_seen_ns=T0, severity=Severity.ERROR)

    def add(namespace: str, workload: str = "") -> None:
        incident.add(time_ns=T0, occurrences=1, category=Category.STORAGE, severity=Severity.WARNING,
                     workload=workload, node="node-3", namespace=namespace)

    add("payments")
    assert incident.transition(IncidentState.STARTED, T0).namespace == "payments"
    add("")  # a Node Event: cluster-scoped
    assert incident.transition(IncidentState.ONGOING, T0).namespace == ""
    assert incident.severity is Severity.ERROR  # the highest so far


def test_scope_sets_are_capped_and_the_rest_counted() -> None:
    incident = Incident(id="inc-1", root=DB, first_seen_ns=T0, last_seen_ns=T0, severity=Severity.ERROR)
    grew = [
        incident.add(time_ns=T0, occurrences=1, category=Category.STORAGE, severity=Severity.ERROR,
                     workload=f"ns/Deployment/w{i}", node="node-3", namespace="ns")
        for i in range(MAX_SCOPE + 5)
    ]
    assert len(incident.workloads) == MAX_SCOPE and incident.overflow == 5
    assert grew[-1] is False  # no ongoing transition for what is not kept


def event(correlation: Correlation | None) -> Enriched:
    ev = KubeEvent(
        uid="u1", name="web.1", namespace="shop", reason="BackOff", type="Warning", message="m",
        regarding=ObjectRef(kind="Pod", namespace="shop", name="web-7d9f8c6b5d-x2k4p"),
        time_ns=T0, first_time_ns=T0,
    )
    cls = Classification(Category.LIFECYCLE, Severity.ERROR, "crash-loop-backoff")
    return Enriched(ev, 1, T0, cls, correlation)


def test_event_records_carry_the_correlation_ids_and_the_owner_chain() -> None:
    owners = (ObjectRef(kind="ReplicaSet", namespace="shop", name="web-7d9f8c6b5d"),
              ObjectRef(kind="Deployment", namespace="shop", name="web"))
    correlation = Correlation(object="shop/Pod/web-7d9f8c6b5d-x2k4p", owners=owners, node="node-1",
                              incident_id="inc-0123456789ab", root_cause=True)
    attrs = event_record(event(correlation)).attributes
    assert {k: v for k, v in attrs.items() if k.startswith(("kubevents.", "k8s.node", "k8s.deploy",
                                                             "k8s.replica", "k8s.pod"))} == {
        "k8s.pod.name": "web-7d9f8c6b5d-x2k4p",
        "k8s.replicaset.name": "web-7d9f8c6b5d",
        "k8s.deployment.name": "web",
        "k8s.node.name": "node-1",
        "kubevents.object": "shop/Pod/web-7d9f8c6b5d-x2k4p",
        "kubevents.workload": "shop/Deployment/web",
        "kubevents.node": "node-1",
        "kubevents.incident.id": "inc-0123456789ab",
        "kubevents.incident.root_cause": True,
        "kubevents.category": "Lifecycle",
        "kubevents.severity": "error",
        "kubevents.rule": "crash-loop-backoff",
        "kubevents.occurrences": 1,
    }


def test_event_records_omit_what_is_unknown() -> None:
    attrs = event_record(event(Correlation(object="shop/Pod/x", incident_id="inc-1"))).attributes
    assert attrs[c.KV_OBJECT] == "shop/Pod/x"
    assert attrs[c.KV_INCIDENT_ID] == "inc-1"
    for key in (c.KV_WORKLOAD, c.KV_NODE, c.K8S_NODE_NAME, c.KV_INCIDENT_ROOT_CAUSE):
        assert key not in attrs
    assert c.KV_OBJECT not in event_record(event(None)).attributes


# A few more distinct names than a scope keeps, and the empty name (no scope value).
_NAMES = st.sampled_from(["", *(f"v{k}" for k in range(MAX_SCOPE + 3))])


@given(
    st.lists(
        st.tuples(st.sampled_from([Category.STORAGE, Category.HEALTH, Category.NODE]), _NAMES, _NAMES, _NAMES),
        max_size=4 * MAX_SCOPE,
    ),
)
def test_scope_tuples_count_like_the_sets_and_dict_they_stand_for(
    adds: list[tuple[Category, str, str, str]],
) -> None:
    """The scope values and category counts are tuples (small); they must behave as sets
    capped at MAX_SCOPE and a dict of counts would."""
    incident = Incident(id="inc-1", root=DB, first_seen_ns=T0, last_seen_ns=T0, severity=Severity.ERROR)
    scopes: dict[str, set[str]] = {"workloads": set(), "nodes": set(), "namespaces": set()}
    categories: dict[str, int] = {}
    overflow = 0
    for category, workload, node, namespace in adds:
        grew = incident.add(time_ns=T0, occurrences=1, category=category, severity=Severity.ERROR,
                            workload=workload, node=node, namespace=namespace)
        expected_growth = category not in categories
        categories[category] = categories.get(category, 0) + 1
        for name, value in (("workloads", workload), ("nodes", node), ("namespaces", namespace)):
            if value and value not in scopes[name]:
                if len(scopes[name]) >= MAX_SCOPE:
                    overflow += 1
                else:
                    scopes[name].add(value)
                    expected_growth = True
        assert grew == expected_growth
        # Every transition tells the sets as they are now (the sorted ones it keeps
        # between transitions included).
        t = incident.transition(IncidentState.ONGOING, T0)
        assert (t.workloads, t.nodes, t.namespaces) == tuple(tuple(sorted(s)) for s in scopes.values())
    t = incident.transition(IncidentState.ONGOING, T0)
    assert (t.workloads, t.nodes, t.namespaces) == tuple(tuple(sorted(s)) for s in scopes.values())
    assert t.categories == tuple(sorted(categories.items()))
    assert t.overflow == overflow



@given(
    st.lists(st.tuples(_NAMES, _NAMES, _NAMES), max_size=2 * MAX_SCOPE),
    st.lists(st.tuples(_NAMES, _NAMES, _NAMES), max_size=2 * MAX_SCOPE),
)
def test_an_absorbed_incident_widens_the_scopes_as_its_values_joining_would(
    first: list[tuple[str, str, str]], second: list[tuple[str, str, str]],
) -> None:
    """After a merge the survivor holds its own values, then the other's new ones (capped,
    the rest counted), and tells a known value from a new one as before (the sets long
    scopes keep beside their tuples follow the merge)."""
    def incident(adds: list[tuple[str, str, str]]) -> Incident:
        found = Incident(id="inc-1", root=DB, first_seen_ns=T0, last_seen_ns=T0, severity=Severity.ERROR)
        for workload, node, namespace in adds:
            found.add(time_ns=T0, occurrences=1, category=Category.STORAGE, severity=Severity.ERROR,
                      workload=workload, node=node, namespace=namespace)
        return found

    def capped(values: list[str]) -> tuple[list[str], int]:
        kept: list[str] = []
        overflow = 0
        for value in values:
            if value and value not in kept:
                if len(kept) >= MAX_SCOPE:
                    overflow += 1
                else:
                    kept.append(value)
        return kept, overflow

    keep, other = incident(first), incident(second)
    expected_overflow = keep.overflow + other.overflow
    expected = []
    for mine, theirs in [
        (keep.workloads, other.workloads), (keep.nodes, other.nodes), (keep.namespaces, other.namespaces)
    ]:
        kept, overflow = capped([*mine, *theirs])
        expected.append(tuple(kept))
        expected_overflow += overflow
    keep.transition(IncidentState.ONGOING, T0)  # its sorted sets, kept until they change
    keep.absorb(other)
    assert (keep.workloads, keep.nodes, keep.namespaces) == tuple(expected)
    t = keep.transition(IncidentState.ONGOING, T0)
    assert (t.workloads, t.nodes, t.namespaces) == tuple(tuple(sorted(e)) for e in expected)
    assert keep.overflow == expected_overflow
    for workload, node, namespace in [*first, *second]:
        keep.add(time_ns=T0, occurrences=1, category=Category.STORAGE, severity=Severity.ERROR,
                 workload=workload, node=node, namespace=namespace)
    assert (keep.workloads, keep.nodes, keep.namespaces) == tuple(expected)
