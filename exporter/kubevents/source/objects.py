"""A watched, memory-bounded cache of the objects correlation needs.

Correlation asks two questions the Events cannot answer alone: who owns this
Pod (Pod -> ReplicaSet -> Deployment, Pod -> Job -> CronJob), and which node
it runs on. This cache watches Pods, ReplicaSets and Jobs with the same
list+watch loop as the Events, and keeps only what answers those questions:
a few short strings per object, in insertion order, capped per kind (the
oldest are evicted and counted).

Deleted objects are kept until evicted: Events about a Pod often arrive
after the Pod is gone (``Killing``, ``FailedKillPod``), and its owner and
node are still what the user wants to see.

If RBAC denies access to a kind, the cache logs one clear error and keeps
working with the kinds it can read; correlation falls back on naming
conventions for the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubevents.model import ObjectRef
from kubevents.source.kubeapi import CORE_V1, ListWatchApi
from kubevents.source.kubeclient import KubeClient
from kubevents.source.watching import EventWatcher, Watched, WatchOptions, WatchStats

logger = logging.getLogger(__name__)

# kind -> (api version, resource) for what the cache watches.
WATCHED = {
    "Pod": (CORE_V1, "pods"),
    "ReplicaSet": ("apps/v1", "replicasets"),
    "Job": ("batch/v1", "jobs"),
}


@dataclass(frozen=True, slots=True)
class _Entry:
    owner_kind: str
    owner_name: str
    node: str


class ObjectCache:
    """Owners and nodes of Pods, ReplicaSets and Jobs, kept current by watches."""

    def __init__(self, *, max_per_kind: int = 200_000) -> None:
        self._max = max_per_kind
        self._objects: dict[str, dict[tuple[str, str], _Entry]] = {kind: {} for kind in WATCHED}
        self.evicted = 0
        self.stats: dict[str, WatchStats] = {}

    def __len__(self) -> int:
        return sum(len(objects) for objects in self._objects.values())

    # -- the OwnerLookup protocol used by correlation --

    def owner_chain(self, ref: ObjectRef) -> tuple[ObjectRef, ...] | None:
        """Owners of ``ref`` from the nearest up to the top; None when ``ref`` is unknown."""
        if (
            ref.kind not in self._objects
            or (ref.namespace, ref.name) not in self._objects[ref.kind]
        ):
            return None
        chain: list[ObjectRef] = []
        kind, name = ref.kind, ref.name
        for _ in range(4):  # Pod -> ReplicaSet -> Deployment is the deepest chain watched
            entry = self._objects.get(kind, {}).get((ref.namespace, name))
            if entry is None or not entry.owner_kind:
                break
            kind, name = entry.owner_kind, entry.owner_name
            chain.append(ObjectRef(kind=kind, namespace=ref.namespace, name=name))
        return tuple(chain)

    def pod_node(self, namespace: str, name: str) -> str | None:
        """The node a Pod is (or was) scheduled on, or None when unknown or unscheduled."""
        entry = self._objects["Pod"].get((namespace, name))
        return entry.node or None if entry else None

    def watch_stats_by_resource(self) -> dict[str, Callable[[], list[WatchStats]]]:
        """The watch loops' counters by resource (``pods``, ...), for the metrics."""
        return {resource: self._stats_of(kind) for kind, (_, resource) in WATCHED.items()}

    def _stats_of(self, kind: str) -> Callable[[], list[WatchStats]]:
        prefix = kind + "/"
        return lambda: [stats for key, stats in list(self.stats.items()) if key.startswith(prefix)]

    # -- updates, from the watch threads --

    def update(self, kind: str, obj: dict[str, Any]) -> None:
        """Remember the owner (and node, for Pods) of one object."""
        meta = obj.get("metadata") or {}
        key = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        owner = _controller(meta.get("ownerReferences"))
        node = str((obj.get("spec") or {}).get("nodeName") or "") if kind == "Pod" else ""
        objects = self._objects[kind]
        objects.pop(key, None)  # re-insert: most recently updated last
        objects[key] = _Entry(owner[0], owner[1], node)
        while len(objects) > self._max:
            del objects[next(iter(objects))]
            self.evicted += 1

    def start(
        self,
        *,
        api_client: KubeClient,
        stop: threading.Event,
        options: WatchOptions,
        namespaces: tuple[str, ...] = (),
    ) -> list[threading.Thread]:
        """Start one watch thread per kind (and namespace); returns the threads."""
        threads = []
        for kind, (version, resource) in WATCHED.items():
            for namespace in namespaces or ("",):
                watcher = EventWatcher(
                    api=ListWatchApi(api_client, version, resource),
                    handler=_CacheHandler(self, kind),
                    stop=stop,
                    options=options,
                    namespace=namespace,
                )
                self.stats[f"{kind}/{namespace or '*'}"] = watcher.stats
                thread = threading.Thread(
                    target=watcher.run, name=f"cache-{resource}-{watcher.scope}", daemon=True
                )
                thread.start()
                threads.append(thread)
        return threads


class _CacheHandler:
    def __init__(self, cache: ObjectCache, kind: str) -> None:
        self._cache, self._kind = cache, kind

    def on_watched(self, events: list[Watched], *, scope: str, nbytes: int) -> None:
        # DELETED is an update too: the last state is what late Events refer to.
        for _, obj, _ in events:
            self._cache.update(self._kind, obj)

    def on_listed(self, objs: list[dict[str, Any]], *, scope: str, nbytes: int) -> None:
        for obj in objs:
            self._cache.update(self._kind, obj)

    def on_progress(self, *, scope: str, resource_version: str) -> None:
        return None


def _controller(refs: object) -> tuple[str, str]:
    """(kind, name) of the controlling owner reference, else the first one, else empty."""
    if not isinstance(refs, list) or not refs:
        return ("", "")
    chosen = next((r for r in refs if isinstance(r, dict) and r.get("controller")), refs[0])
    if not isinstance(chosen, dict):
        return ("", "")
    return (str(chosen.get("kind") or ""), str(chosen.get("name") or ""))
