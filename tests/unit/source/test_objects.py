"""The object cache answers owner and node questions, bounded in size."""

from __future__ import annotations

from kubevents.model import ObjectRef
from kubevents.source.objects import ObjectCache


def obj(name: str, ns: str = "shop", owner: tuple[str, str] | None = None, node: str = "",
        extra_owner: bool = False) -> dict[str, object]:
    refs = []
    if extra_owner:
        refs.append({"kind": "Other", "name": "not-the-controller"})
    if owner:
        refs.append({"kind": owner[0], "name": owner[1], "controller": True})
    return {"metadata": {"name": name, "namespace": ns, "ownerReferences": refs}, "spec": {"nodeName": node}}


def filled() -> ObjectCache:
    cache = ObjectCache()
    cache.update("Pod", obj("web-abc-x1", owner=("ReplicaSet", "web-abc"), node="node-2", extra_owner=True))
    cache.update("ReplicaSet", obj("web-abc", owner=("Deployment", "web")))
    cache.update("Pod", obj("report-1-x", ns="batch", owner=("Job", "report-1"), node="node-1"))
    cache.update("Job", obj("report-1", ns="batch", owner=("CronJob", "report")))
    cache.update("Pod", obj("bare", node=""))
    return cache


def test_owner_chains() -> None:
    cache = filled()
    assert cache.owner_chain(ObjectRef(kind="Pod", namespace="shop", name="web-abc-x1")) == (
        ObjectRef(kind="ReplicaSet", namespace="shop", name="web-abc"),
        ObjectRef(kind="Deployment", namespace="shop", name="web"),
    )
    assert cache.owner_chain(ObjectRef(kind="Pod", namespace="batch", name="report-1-x")) == (
        ObjectRef(kind="Job", namespace="batch", name="report-1"),
        ObjectRef(kind="CronJob", namespace="batch", name="report"),
    )
    assert cache.owner_chain(ObjectRef(kind="Pod", namespace="shop", name="bare")) == ()
    assert cache.owner_chain(ObjectRef(kind="Pod", namespace="shop", name="unknown")) is None
    assert cache.owner_chain(ObjectRef(kind="Node", name="node-1")) is None


def test_pod_nodes() -> None:
    cache = filled()
    assert cache.pod_node("shop", "web-abc-x1") == "node-2"
    assert cache.pod_node("shop", "bare") is None
    assert cache.pod_node("shop", "unknown") is None


def test_bounded_per_kind_oldest_first() -> None:
    cache = ObjectCache(max_per_kind=2)
    for name in ("a", "b", "c"):
        cache.update("Pod", obj(name, node="n"))
    assert (cache.pod_node("shop", "a"), cache.pod_node("shop", "c"), cache.evicted) == (None, "n", 1)
