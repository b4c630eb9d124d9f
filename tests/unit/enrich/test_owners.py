"""Owner and node resolution: the object cache, what Events said, and naming conventions."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubevents.enrich import owners as owners_module
from kubevents.enrich.owners import (
    OWNED_KINDS,
    LearnedTable,
    OwnerResolver,
    conventional_owners,
    is_cronjob_job_name,
    is_template_hash,
)
from kubevents.enrich.sharing import SharedStrings
from kubevents.model import KubeEvent, ObjectRef
from kubevents.source.objects import ObjectCache
from tests.support.events import ev

S = 1_000_000_000
T0 = 1_795_000_000 * S


def ref(kind: str, name: str, ns: str = "shop") -> ObjectRef:
    return ObjectRef(kind=kind, namespace="" if kind == "Node" else ns, name=name)


def chain(*pairs: str) -> tuple[ObjectRef, ...]:
    """``chain("ReplicaSet/web-7d9f8c6b5d", "Deployment/web")`` in namespace shop."""
    return tuple(ref(*pair.split("/", 1)) for pair in pairs)


def event(
    kind: str,
    name: str,
    *,
    reason: str = "BackOff",
    message: str = "",
    controller: str = "",
    instance: str = "",
    host: str = "",
    ns: str = "shop",
    t: int = 0,
) -> KubeEvent:
    return ev(t, reason, name, kind=kind, ns=ns, message=message, controller=controller,
              instance=instance, host=host)


# -- naming conventions (no cache, nothing learned) ---------------------------------------

CONVENTIONS = [
    # Deployment pods: <deployment>-<pod-template-hash>-<5 random>.
    ("Pod", "web-7d9f8c6b5d-x2k4p", chain("ReplicaSet/web-7d9f8c6b5d", "Deployment/web")),
    ("Pod", "api-gateway-5c7d9b8f6d-q8r7m", chain("ReplicaSet/api-gateway-5c7d9b8f6d", "Deployment/api-gateway")),
    ("Pod", "web-849cd8f5b-x2k4p", chain("ReplicaSet/web-849cd8f5b", "Deployment/web")),  # 9-digit hash
    ("Pod", "tiny-45678b-x2k4p", chain("ReplicaSet/tiny-45678b", "Deployment/tiny")),  # 6: the shortest
    # Names that merely look hashed: nothing is guessed.
    ("Pod", "checkout-5c7d9b8f6d-m3n4p", ()),  # '3' is not in the random alphabet
    ("Pod", "worker-5d4c3b2a19-t7v8x", ()),  # '3', '2', 'a', '1': not a template hash
    ("Pod", "web-abcdefgh-x2k4p", ()),  # letters a hash never has
    ("Pod", "web-7d9f8-x2k4p", ()),  # 5 characters: too short for a hash
    ("Pod", "web-7d9f8c6b5d4-x2k4p", ()),  # 11 characters: too long
    ("Pod", "web-7d9f8c6b5d-x2k4", ()),  # 4-character suffix
    ("Pod", "web-7d9f8c6b5d-X2K4P", ()),  # upper case is never generated
    ("Pod", "my-app-v2-x2k4p", ()),
    # DaemonSet, ReplicationController, bare ReplicaSet or Job: the name cannot tell.
    ("Pod", "fluentd-x2k4p", ()),
    ("Pod", "node-exporter-q8r7m", ()),
    # A generated name of 63 characters may have had its prefix cut short.
    ("Pod", "a" * 46 + "-7d9f8c6b5d-x2k4p", ()),  # 63 characters
    ("Pod", "a" * 45 + "-7d9f8c6b5d-x2k4p", chain(f"ReplicaSet/{'a' * 45}-7d9f8c6b5d", f"Deployment/{'a' * 45}")),
    # StatefulSet pods: <statefulset>-<ordinal>.
    ("Pod", "db-0", chain("StatefulSet/db")),
    ("Pod", "kafka-broker-12", chain("StatefulSet/kafka-broker")),
    ("Pod", "db-01", ()),  # leading zero: not an ordinal
    ("Pod", "web-123456", ()),  # six digits: not an ordinal kubevents believes
    ("Pod", "standalone", ()),
    ("Pod", "-0", ()),
    # CronJob pods: <cronjob>-<scheduled minute>-<5 random>, also Indexed (<job>-<index>-<random>).
    ("Pod", "report-29412360-x2k4p", chain("Job/report-29412360", "CronJob/report")),
    ("Pod", "report-29412360-3-x2k4p", chain("Job/report-29412360", "CronJob/report")),
    ("Pod", "backup-20240101-x2k4p", ()),  # a date: minute 20240101 is in 2008
    ("Pod", "nightly-1736935800-x2k4p", ()),  # seconds, not minutes
    ("Pod", "migrate-x2k4p", ()),  # a Job, a DaemonSet or a ReplicaSet: unknown
    ("ReplicaSet", "web-7d9f8c6b5d", chain("Deployment/web")),
    ("ReplicaSet", "frontend", ()),
    ("ReplicaSet", "frontend-v2", ()),
    ("ReplicaSet", "worker-5d4c3b2a19", ()),
    ("Job", "report-29412360", chain("CronJob/report")),
    ("Job", "migrate-42", ()),
    ("Job", "backup-20240101", ()),
    ("Deployment", "web-7d9f8c6b5d", ()),
    ("Node", "node-1", ()),
    ("Pod", "", ()),
]


@pytest.mark.parametrize(("kind", "name", "expected"), CONVENTIONS)
def test_naming_conventions(kind: str, name: str, expected: tuple[ObjectRef, ...]) -> None:
    assert conventional_owners(kind, "shop", name) == expected
    assert OwnerResolver().owners(ref(kind, name)) == expected


def test_one_resolver_gives_every_name_its_own_chain_whatever_came_before() -> None:
    # One resolver keeps chains by object and by a generated name's base: names that share
    # a base but not its kind of suffix (an ordinal made of random-alphabet digits, a
    # random suffix, an upper-case one) or a namespace must each keep their own answer.
    same_base = [
        ("Pod", "web-24567", chain("StatefulSet/web")),  # digits of the random alphabet
        ("Pod", "web-x2k4p", ()),
        ("Pod", "web-7d9f8c6b5d-x2k4p", chain("ReplicaSet/web-7d9f8c6b5d", "Deployment/web")),
        ("Pod", "web-7d9f8c6b5d-q8r7m", chain("ReplicaSet/web-7d9f8c6b5d", "Deployment/web")),
        ("Pod", "web-7d9f8c6b5d-X2K4P", ()),
        ("Pod", "web-7d9f8c6b5d-24567", chain("StatefulSet/web-7d9f8c6b5d")),
    ]
    cases = [*CONVENTIONS, *same_base]
    resolver = OwnerResolver()
    for kind, name, expected in [*cases, *reversed(cases), *cases]:
        assert resolver.owners(ref(kind, name)) == expected, name
        other = ref(kind, name, ns="other")
        assert resolver.owners(other) == tuple(dataclasses.replace(o, namespace="other") for o in expected)


# Names made of pieces of generated names (random suffixes, hashes, ordinals, minutes,
# dashes), and characters around them.
_PIECES = st.sampled_from(
    ["-", "web", "x2k4p", "24567", "7d9f8c6b5d", "29412360", "0", "3", "X2K4P", "a", "/", "é"]
)


@given(st.lists(st.tuples(st.lists(_PIECES, max_size=8).map("".join), st.sampled_from(["shop", "", "a/b"]))))
def test_the_resolver_gives_every_pod_name_the_chain_its_name_proves(names: list[tuple[str, str]]) -> None:
    # One resolver for all: what its caches keep for one name is never another's answer.
    resolver = OwnerResolver()
    for name, ns in [*names, *names]:
        pod = ObjectRef(kind="Pod", namespace=ns, name=name)
        assert resolver.owners(pod) == owners_module._conventional_owners("Pod", ns, name)


@pytest.mark.parametrize(
    ("text", "ok"),
    [("7d9f8c6b5d", True), ("456789", True), ("bcdfbcdfbc", True), ("45678", False),
     ("7d9f8c6b5d4", False), ("7d9f8c6b5a", False), ("7d9f8c6b52", False), ("", False)],
)
def test_template_hash_alphabet(text: str, ok: bool) -> None:
    assert is_template_hash(text) is ok


@pytest.mark.parametrize(
    ("name", "ok"),
    [("report-29412360", True), ("report-23667841", True), ("report-68374079", True),
     ("report-23667839", False), ("report-68400000", False), ("29412360", False),
     ("report-2941236", False), ("report-x9412360", False)],
)
def test_cronjob_job_names(name: str, ok: bool) -> None:
    assert is_cronjob_job_name(name) is ok


# -- the object cache ---------------------------------------------------------------------


def cache() -> ObjectCache:
    def obj(name: str, owner: tuple[str, str] | None = None, node: str = "") -> dict[str, object]:
        refs = [{"kind": owner[0], "name": owner[1], "controller": True}] if owner else []
        return {"metadata": {"name": name, "namespace": "shop", "ownerReferences": refs},
                "spec": {"nodeName": node}}

    c = ObjectCache()
    c.update("Pod", obj("fluentd-x2k4p", ("DaemonSet", "fluentd"), "node-2"))
    c.update("Pod", obj("web-7d9f8c6b5d-x2k4p", ("ReplicaSet", "web-7d9f8c6b5d"), "node-1"))
    c.update("ReplicaSet", obj("web-7d9f8c6b5d", ("Deployment", "web")))
    c.update("Pod", obj("api-6c9b8d7f5c-k4m2p", ("ReplicaSet", "api-6c9b8d7f5c"), "node-3"))
    c.update("Pod", obj("bare-7d9f8c6b5d-q8r7m"))  # looks hashed, but the cache says: no owner
    c.update("Pod", obj("report-29412360-x2k4p", ("Job", "report-29412360")))
    c.update("Job", obj("report-29412360", ("CronJob", "report")))
    c.update("ReplicaSet", obj("rollout-7d9f8c6b5d", ("Rollout", "rollout")))
    c.update("Pod", obj("rollout-7d9f8c6b5d-z5n2w", ("ReplicaSet", "rollout-7d9f8c6b5d")))
    return c


WITH_CACHE = [
    ("fluentd-x2k4p", chain("DaemonSet/fluentd")),  # ambiguous by name, known by the cache
    ("web-7d9f8c6b5d-x2k4p", chain("ReplicaSet/web-7d9f8c6b5d", "Deployment/web")),
    # The cache knows the Pod, not its ReplicaSet: conventions go on from there.
    ("api-6c9b8d7f5c-k4m2p", chain("ReplicaSet/api-6c9b8d7f5c", "Deployment/api")),
    ("bare-7d9f8c6b5d-q8r7m", ()),  # the cache wins over a name that looks hashed
    ("report-29412360-x2k4p", chain("Job/report-29412360", "CronJob/report")),
    ("rollout-7d9f8c6b5d-z5n2w", chain("ReplicaSet/rollout-7d9f8c6b5d", "Rollout/rollout")),
    # Unknown to the cache: conventions.
    ("cart-5f8d9c7b46-h2j4k", chain("ReplicaSet/cart-5f8d9c7b46", "Deployment/cart")),
    ("other-x2k4p", ()),
]


@pytest.mark.parametrize(("pod", "expected"), WITH_CACHE)
def test_owner_chains_with_the_object_cache(pod: str, expected: tuple[ObjectRef, ...]) -> None:
    assert OwnerResolver(cache()).owners(ref("Pod", pod)) == expected


def test_nodes_from_the_object_cache_for_any_reporter() -> None:
    resolver = OwnerResolver(cache())
    attach = event("Pod", "fluentd-x2k4p", reason="FailedAttachVolume", controller="attachdetach-controller")
    assert resolver.node(attach) == "node-2"
    assert resolver.node(event("Pod", "unknown-0", controller="attachdetach-controller")) == ""


# -- what controller Events say ------------------------------------------------------------

LEARNED = [
    # (involved kind, involved name, reason, message) -> (child kind, child name, its chain)
    ("DaemonSet", "fluentd", "SuccessfulCreate", "Created pod: fluentd-x2k4p",
     ("Pod", "fluentd-x2k4p", chain("DaemonSet/fluentd"))),
    ("ReplicaSet", "frontend", "SuccessfulCreate", "Created pod: frontend-q8r7m",
     ("Pod", "frontend-q8r7m", chain("ReplicaSet/frontend"))),
    ("ReplicationController", "legacy", "SuccessfulDelete", "Deleted pod: legacy-z5n2w",
     ("Pod", "legacy-z5n2w", chain("ReplicationController/legacy"))),
    ("Job", "migrate", "SuccessfulCreate", "Created pod: migrate-x2k4p",
     ("Pod", "migrate-x2k4p", chain("Job/migrate"))),
    ("StatefulSet", "kafka", "SuccessfulCreate", "create Pod kafka-0 in StatefulSet kafka successful",
     ("Pod", "kafka-0", chain("StatefulSet/kafka"))),
    ("StatefulSet", "zk", "FailedCreate",
     "create Pod zk-1 in StatefulSet zk failed error: pods \"zk-1\" is forbidden: exceeded quota",
     ("Pod", "zk-1", chain("StatefulSet/zk"))),
    ("CronJob", "backup", "SuccessfulCreate", "Created job backup-manual-1",
     ("Job", "backup-manual-1", chain("CronJob/backup"))),
    ("CronJob", "backup", "SawCompletedJob", "Saw completed job: backup-manual-2, status: Complete",
     ("Job", "backup-manual-2", chain("CronJob/backup"))),
    # An old-style ReplicaSet name (no template hash) is still learned from its Deployment.
    ("Deployment", "legacy", "ScalingReplicaSet", "Scaled up replica set legacy-2035384211 to 3",
     ("ReplicaSet", "legacy-2035384211", chain("Deployment/legacy"))),
    ("Deployment", "web", "ScalingReplicaSet", "Scaled down replica set web-old to 1 from 2",
     ("ReplicaSet", "web-old", chain("Deployment/web"))),
    ("Deployment", "web", "ScalingReplicaSet", "Scaled up replica set web-new from 0 to 3",
     ("ReplicaSet", "web-new", chain("Deployment/web"))),
]


@pytest.mark.parametrize(("kind", "name", "reason", "message", "expected"), LEARNED)
def test_controller_events_teach_owners(
    kind: str, name: str, reason: str, message: str, expected: tuple[str, str, tuple[ObjectRef, ...]]
) -> None:
    resolver = OwnerResolver()
    child_kind, child_name, owners = expected
    resolver.learn(event(kind, name, reason=reason, message=message))
    assert len(resolver) == 1
    assert resolver.owners(ref(child_kind, child_name)) == owners


def test_a_controller_event_said_again_keeps_its_owner_and_another_owner_replaces_it() -> None:
    resolver = OwnerResolver()
    created = {"reason": "SuccessfulCreate", "message": "Created pod: worker-q8r7m"}
    for parent in ["jobs-a", "jobs-a", "jobs-b", "jobs-b", "jobs-a"]:
        resolver.learn(event("ReplicationController", parent, **created))
        assert resolver.owners(ref("Pod", "worker-q8r7m")) == chain(f"ReplicationController/{parent}")
    # The same names in another namespace, and another kind of parent, are another owner.
    resolver.learn(event("ReplicationController", "jobs-a", ns="other", **created))
    assert resolver.owners(ref("Pod", "worker-q8r7m", ns="other")) == (
        ObjectRef(kind="ReplicationController", namespace="other", name="jobs-a"),
    )
    resolver.learn(event("DaemonSet", "jobs-a", **created))
    assert resolver.owners(ref("Pod", "worker-q8r7m")) == chain("DaemonSet/jobs-a")
    assert len(resolver) == 2


def test_learned_links_chain_up_to_conventions() -> None:
    resolver = OwnerResolver()
    resolver.learn(event("ReplicaSet", "web-7d9f8c6b5d", reason="SuccessfulCreate",
                         message="Created pod: web-7d9f8c6b5d-3ab"))  # not a generated name
    assert resolver.owners(ref("Pod", "web-7d9f8c6b5d-3ab")) == chain(
        "ReplicaSet/web-7d9f8c6b5d", "Deployment/web"
    )
    resolver.learn(event("CronJob", "report", reason="SuccessfulCreate", message="Created job report-manual"))
    resolver.learn(event("Job", "report-manual", reason="SuccessfulCreate", message="Created pod: report-manual-x"))
    assert resolver.owners(ref("Pod", "report-manual-x")) == chain(
        "Job/report-manual", "CronJob/report"
    )


@pytest.mark.parametrize(
    ("kind", "reason", "message"),
    [
        ("ReplicaSet", "FailedCreate", "Error creating: pods \"web-\" is forbidden: exceeded quota"),
        ("ReplicaSet", "SuccessfulCreate", "Created pods"),
        ("Pod", "SuccessfulCreate", "Created pod: x"),  # a Pod owns nothing
        ("Deployment", "ScalingReplicaSet", "Scaling replica set web-x"),
        ("Deployment", "DeploymentRollback", "Rolled back deployment \"web\" to revision 2"),
    ],
)
def test_other_controller_messages_teach_nothing(kind: str, reason: str, message: str) -> None:
    resolver = OwnerResolver()
    resolver.learn(event(kind, "web", reason=reason, message=message))
    assert len(resolver) == 0


# -- nodes ---------------------------------------------------------------------------------

NODES = [
    # (event, node)
    (event("Node", "node-5", reason="NodeHasDiskPressure", controller="kubelet", instance="node-5"), "node-5"),
    (event("Node", "node-5", reason="NodeNotReady", controller="node-controller"), "node-5"),
    (event("Pod", "db-0", reason="FailedMount", controller="kubelet", instance="node-3"), "node-3"),
    (event("Pod", "db-0", reason="FailedMount", controller="kubelet", host="node-3"), "node-3"),
    # source.host of another reporter is where it runs, not where the Pod is.
    (event("Pod", "db-0", reason="FailedAttachVolume", controller="attachdetach-controller",
           instance="cp-1", host="cp-1"), ""),
    (event("Pod", "web-x", reason="Scheduled", controller="default-scheduler",
           message="Successfully assigned shop/web-x to node-7"), "node-7"),
    (event("Pod", "web-x", reason="Scheduled", controller="default-scheduler",
           message="Successfully assigned shop/other to node-7"), ""),
    (event("Deployment", "web", reason="ScalingReplicaSet", controller="deployment-controller",
           instance="cp-1"), ""),
    (event("PersistentVolumeClaim", "data-db-0", reason="ProvisioningFailed",
           controller="persistentvolume-controller"), ""),
]


@pytest.mark.parametrize(("ev", "node"), NODES)
def test_node_of_an_event(ev: KubeEvent, node: str) -> None:
    resolver = OwnerResolver()
    resolver.learn(ev)
    assert resolver.node(ev) == node


def test_a_pod_node_learned_from_the_kubelet_or_the_scheduler_serves_other_reporters() -> None:
    resolver = OwnerResolver()
    later = event("Pod", "db-0", reason="FailedAttachVolume", controller="attachdetach-controller")
    assert resolver.node(later) == ""
    resolver.node(event("Pod", "db-0", reason="FailedMount", controller="kubelet", instance="node-3"))
    assert resolver.node(later) == "node-3"
    scheduled = event("Pod", "api-0", reason="Scheduled", controller="default-scheduler",
                      message="Successfully assigned shop/api-0 to node-9")
    resolver.learn(scheduled)
    taint = event("Pod", "api-0", reason="TaintManagerEviction", controller="taint-eviction-controller")
    assert resolver.node(taint) == "node-9"


def test_the_reporting_kubelet_wins_over_a_stale_cache() -> None:
    resolver = OwnerResolver(cache())  # the cache still says node-1
    moved = event("Pod", "web-7d9f8c6b5d-x2k4p", controller="kubelet", instance="node-8")
    assert resolver.node(moved) == "node-8"


# -- bounds ------------------------------------------------------------------------------


def test_learned_entries_are_bounded_by_count_and_counted() -> None:
    resolver = OwnerResolver(max_entries=3)
    for i in range(5):
        resolver.node(event("Pod", f"p-{i}", controller="kubelet", instance="node-1", t=i))
    assert len(resolver) == 3
    assert resolver.evicted == 2
    assert resolver.node(event("Pod", "p-0", controller="x", t=6)) == ""
    assert resolver.node(event("Pod", "p-4", controller="x", t=6)) == "node-1"


def test_learned_entries_age_out_in_event_time() -> None:
    resolver = OwnerResolver(ttl_s=600)
    resolver.node(event("Pod", "old", controller="kubelet", instance="node-1", t=0))
    resolver.node(event("Pod", "new", controller="kubelet", instance="node-1", t=601))
    assert resolver.node(event("Pod", "old", controller="x", t=602)) == ""
    assert resolver.node(event("Pod", "new", controller="x", t=602)) == "node-1"
    assert resolver.evicted == 0  # age is not eviction


def test_an_entry_lives_between_half_the_ttl_and_the_ttl_after_it_was_last_learned() -> None:
    table: LearnedTable[str, str] = LearnedTable(max_entries=100, ttl_ns=600 * S)

    def present(t: int) -> set[str]:
        table.put("clock", "tick", T0 + t * S)  # moves event time to t
        return {key for key in ("a", "b", "c") if table.get(key) is not None}

    table.put("a", "node-1", T0)
    table.put("b", "node-1", T0 + 299 * S)
    assert present(300) == {"a", "b"}  # the first turn keeps both, a now 300 s old
    table.put("a", "node-1", T0 + 450 * S)  # a refresh keeps a young
    table.put("c", "node-2", T0 + 450 * S)
    assert present(600) == {"a", "c"}  # b went 301 s after it was learned
    assert present(899) == {"a", "c"}
    assert present(900) == set()  # a and c went 450 s after they were last learned
    table.put("b", "node-3", T0 + 2000 * S)  # a gap past the whole ttl forgets everything
    assert (table.get("b"), len(table)) == ("node-3", 1)
    assert table.evicted == 0


def test_the_cap_drops_the_old_generation_first_in_the_order_first_learned() -> None:
    table: LearnedTable[str, str] = LearnedTable(max_entries=3, ttl_ns=600 * S)
    table.put("a", "x", T0)
    table.put("b", "x", T0)
    table.put("c", "x", T0 + 300 * S)  # turn: a and b are old, c young
    table.put("d", "x", T0 + 301 * S)
    assert (table.get("a"), table.get("b"), table.evicted) == (None, "x", 1)
    table.put("b", "x", T0 + 302 * S)  # refreshed: young again
    table.put("e", "x", T0 + 303 * S)
    assert [k for k in "abcde" if table.get(k) is not None] == ["b", "d", "e"]
    assert table.evicted == 2


# -- what the tables hold ----------------------------------------------------------------


def copy(text: str) -> str:
    """An equal string that is another object, as each parsed Event brings."""
    return "".join(list(text))


def test_learned_tables_share_one_copy_of_each_namespace_and_node() -> None:
    resolver = OwnerResolver()
    for pod in ("db-0", "db-1"):
        resolver.node(event("Pod", pod, ns=copy("shop"), controller="kubelet", instance=copy("node-3")))
    first, second = (resolver.node(event("Pod", pod, controller="x")) for pod in ("db-0", "db-1"))
    assert first == "node-3" and first is second


def test_a_learned_owner_keeps_kind_namespace_and_name_only() -> None:
    resolver = OwnerResolver()
    created = event("ReplicaSet", "frontend", reason="SuccessfulCreate", message="Created pod: frontend-q8r7m")
    full = dataclasses.replace(created.regarding, uid="rs-uid", api_version="apps/v1", resource_version="7")
    resolver.learn(dataclasses.replace(created, regarding=full))
    assert resolver.owners(ref("Pod", "frontend-q8r7m")) == chain("ReplicaSet/frontend")


def test_shared_strings_are_bounded_and_give_back_equal_text() -> None:
    share = SharedStrings(max_entries=2)
    names = [copy(name) for name in ("a", "b", "c", "a")]
    assert [share(name) for name in names] == ["a", "b", "c", "a"]
    assert len(share) <= 2
    assert share(copy("c")) is names[2]  # kept since the table started over


def test_only_the_owned_kinds_can_have_owners_without_a_cache() -> None:
    # What controller Events teach is about these kinds' objects only, and so is what
    # names prove: the resolver answers () at once for any other kind.
    assert {kind for kind, _ in owners_module._CHILD_PARSERS.values()} <= OWNED_KINDS
    resolver = OwnerResolver()
    for kind in ("Node", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim"):
        assert resolver.owners(ObjectRef(kind, "shop", "web-7d9f8c6b5d-x2k4p")) == ()
    assert resolver.owners(ObjectRef("Pod", "shop", "web-7d9f8c6b5d-x2k4p")) != ()
