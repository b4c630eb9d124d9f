"""Owners and nodes: which workload and which node an Event is about.

An Event names one object (``regarding``). Correlation needs two more facts:
the **owner chain** up to the top-level workload (Pod -> ReplicaSet ->
Deployment, Pod -> Job -> CronJob, Pod -> StatefulSet...) and the **node**.
Three sources answer, most trusted first:

1. an :class:`OwnerLookup` (the watched object cache of ``kubevents run``):
   real ``ownerReferences`` and ``spec.nodeName``;
2. what the Events themselves said earlier (:meth:`OwnerResolver.learn`):
   "Created pod: X" (replicaset, daemonset, job and replication controllers),
   "create Pod X in StatefulSet S successful", "Created job X" (cronjob
   controller), "Scaled up replica set X to 3" (deployment controller), the
   scheduler's "Successfully assigned ns/pod to node", and the node of every
   kubelet that reported about a Pod;
3. the names Kubernetes generates (:func:`conventional_owners`), and only
   where the name proves it:

   * ``web-7d9f8c6b5d-x2k4p`` -> ReplicaSet ``web-7d9f8c6b5d`` -> Deployment
     ``web``: the pod suffix is 5 characters of the random-name alphabet
     ``bcdfghjklmnpqrstvwxz2456789`` and the ReplicaSet suffix is a
     pod-template-hash, which is a 32-bit FNV hash printed in decimal and
     encoded digit by digit into that alphabet, so it can only hold the ten
     characters ``456789bcdf`` and has 6 to 10 of them;
   * ``report-29412360-x2k4p`` -> Job ``report-29412360`` -> CronJob
     ``report``: a CronJob names its Jobs after the scheduled minute since
     the epoch; only minutes between 2015 and 2100 count, so a date such as
     ``backup-20240101`` (minute 20240101 is in 2008) is not mistaken for one;
   * ``db-0`` -> StatefulSet ``db``: an ordinal (``0``, or up to five digits
     without a leading zero).

   A name with a random suffix but nothing else (``fluentd-x2k4p``) belongs
   to a DaemonSet, a ReplicaSet without Deployment, a ReplicationController
   or a Job: which one the name cannot tell, so nothing is guessed. A
   generated name of 63 characters may have had its prefix cut short by
   the apiserver, so it is not parsed either.

Node of an Event: a Node's own name; for a Pod, the kubelet that reported
(its reportingInstance / source.host: the kubelet runs on the Pod's node),
else the cache, else what was learned. ``source.host`` of any other
reporter is never used: it is where the reporter runs, not the Pod.

Everything learned is bounded by count (the entries learned longest ago
dropped first, counted in :attr:`OwnerResolver.evicted`) and by event time
(``ttl_s``, two hours by default: twice the apiserver's Event TTL; an entry
lives between half of it and all of it, see :class:`LearnedTable`). The
tables hold up to 100,000 entries each, so what they store is kept small:
one shared copy of each namespace, node and kind name (``sharing.py``), and
an owner as kind, namespace and name only.
"""

from __future__ import annotations

import calendar
import heapq
import itertools
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import Final, Generic, Protocol, TypeVar

from kubevents.enrich.sharing import SharedStrings
from kubevents.model import KubeEvent, ObjectRef

WORKLOAD_KINDS: Final = frozenset(
    {
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicationController",
    }
)
"""Kinds that are a workload, or part of one: an Event about them joins that workload."""

RANDOM_ALPHABET: Final = frozenset("bcdfghjklmnpqrstvwxz2456789")
"""Characters of the random suffix of generated names (``rand.String``)."""
TEMPLATE_HASH_ALPHABET: Final = frozenset("456789bcdf")
"""What a decimal number becomes in ``SafeEncodeString``: the pod-template-hash alphabet."""
GENERATED_NAME_MAX: Final = 63
"""Length of a generated name whose prefix may have been truncated (58 + 5)."""
CRONJOB_MINUTES: Final = (
    calendar.timegm((2015, 1, 1, 0, 0, 0)) // 60,
    calendar.timegm((2100, 1, 1, 0, 0, 0)) // 60,
)
"""Plausible scheduled minutes of a CronJob's Job name suffix."""
MAX_CHAIN: Final = 4
_NS: Final = 1_000_000_000


class OwnerLookup(Protocol):
    """What a watched object cache can tell (``source.objects.ObjectCache``)."""

    def owner_chain(self, ref: ObjectRef) -> tuple[ObjectRef, ...] | None:
        """Owners of ``ref`` from the nearest to the top; () for none; None when unknown."""
        ...

    def pod_node(self, namespace: str, name: str) -> str | None:
        """The node a Pod is (or was) scheduled on; None when unknown."""
        ...


def _is_random_suffix(text: str) -> bool:
    return len(text) == 5 and all(ch in RANDOM_ALPHABET for ch in text)


def _has_random_tail(name: str) -> bool:
    """True when ``name`` is ``<base>-<suffix>``, ``base`` not empty, ``suffix`` five
    characters of the random-name alphabet, not all digits (an ordinal): what
    ``name.rpartition("-")`` and :func:`_is_random_suffix` tell, without making the
    two strings."""
    n = len(name)
    if n < 7 or name[n - 6] != "-":
        return False
    digits = True
    for i in range(n - 5, n):
        ch = name[i]
        if ch not in RANDOM_ALPHABET:
            return False
        if digits and not ch.isdigit():
            digits = False
    return not digits


def is_template_hash(text: str) -> bool:
    """True when ``text`` can be a pod-template-hash (see the module docstring)."""
    return 6 <= len(text) <= 10 and all(ch in TEMPLATE_HASH_ALPHABET for ch in text)


def is_cronjob_job_name(name: str) -> bool:
    """True when ``name`` ends like the Jobs a CronJob creates: ``<cronjob>-<minute>``."""
    base, _, minute = name.rpartition("-")
    return (
        bool(base)
        and 8 <= len(minute) <= 9
        and minute.isdigit()
        and CRONJOB_MINUTES[0] <= int(minute) < CRONJOB_MINUTES[1]
    )


OWNED_KINDS: Final = frozenset({"Pod", "ReplicaSet", "Job"})
"""The kinds whose owner a generated name can prove (:func:`_conventional_owners`) or a
controller Event can tell (the children :data:`_CHILD_PARSERS` parses): without an
:class:`OwnerLookup`, every other kind's chain is empty."""


def _ref(kind: str, namespace: str, name: str) -> ObjectRef:
    return ObjectRef(kind=kind, namespace=namespace, name=name)


def _conventional_owners(kind: str, namespace: str, name: str) -> tuple[ObjectRef, ...]:
    """:func:`conventional_owners`, uncached."""
    if kind == "Pod":
        base, _, suffix = name.rpartition("-")
        if not base:
            return ()
        if suffix.isdigit():
            if suffix == "0" or (suffix[0] != "0" and len(suffix) <= 5):
                return (_ref("StatefulSet", namespace, base),)
            return ()
        if not _is_random_suffix(suffix) or len(name) >= GENERATED_NAME_MAX:
            return ()
        # An Indexed Job's pods are named <job>-<index>-<random>.
        job = base
        head, _, index = base.rpartition("-")
        if index.isdigit() and is_cronjob_job_name(head):
            job = head
        if is_cronjob_job_name(job):
            return (_ref("Job", namespace, job), *_conventional_owners("Job", namespace, job))
        owner, _, template_hash = base.rpartition("-")
        if owner and is_template_hash(template_hash):
            return (_ref("ReplicaSet", namespace, base), _ref("Deployment", namespace, owner))
        return ()
    if kind == "ReplicaSet":
        owner, _, template_hash = name.rpartition("-")
        if owner and is_template_hash(template_hash):
            return (_ref("Deployment", namespace, owner),)
    elif kind == "Job" and is_cronjob_job_name(name):
        return (_ref("CronJob", namespace, name.rpartition("-")[0]),)
    return ()


conventional_owners = lru_cache(maxsize=4096)(_conventional_owners)
"""The owner chain a generated name proves, nearest first; () when it proves nothing.

Pure and cached: the same name always gives the same answer. A cached entry costs
about 430 bytes (the names, the chain and the cache's own node): 8192 entries held
3.5 MiB at 100k objects for 48% hits, 2048 would hold a quarter for 35%. The
resolver's own path (:meth:`OwnerResolver.owners`) has its cache keyed by the object's
key instead (:data:`NAMED_OWNERS`)."""

NAMED_OWNERS: Final = 2048
"""Chains :meth:`OwnerResolver.owners` keeps per generation (two: up to 4096, the
size of :func:`conventional_owners`'s cache, hit about as often). Keyed by the
object's key, which the correlator has made already: one lookup of a string whose
hash is known, where the ``lru_cache`` call (a call the compiled build makes the slow
way, a key tuple, three hashes, a tuple comparison) cost about 2 µs per Event."""
GENERATED_BASES: Final = 4096
"""Chains of generated Pod names kept by the name's base (``web-7d9f8c6b5d`` of
``web-7d9f8c6b5d-x2k4p``: what the chain depends on), rebuilt when full. Every Pod of a
ReplicaSet or Job has the same chain: on the 100k-object stream 35,193 Pods had 2,791
bases, so a Pod finds its chain here, one shared tuple, instead of parsing its name and
making the chain again; such a Pod is not kept by key in :data:`NAMED_OWNERS` (which two
of its Events in three missed)."""


# -- what controller Events say about other objects ---------------------------------------


def _after(message: str, prefix: str) -> str:
    """The single word after ``prefix``, or ""."""
    if not message.startswith(prefix):
        return ""
    word = message[len(prefix) :].split(" ", 1)[0].rstrip(",")
    return word


def _created_pod(message: str) -> str:
    return _after(message, "Created pod: ") or _after(message, "Deleted pod: ")


def _statefulset_pod(message: str) -> str:
    # "create Pod db-0 in StatefulSet db successful" (also delete / failed).
    for verb in ("create Pod ", "delete Pod "):
        if message.startswith(verb):
            return message[len(verb) :].split(" ", 1)[0]
    return ""


def _cronjob_job(message: str) -> str:
    return (
        _after(message, "Created job ")
        or _after(message, "Deleted job ")
        or _after(message, "Saw completed job: ")
    )


def _scaled_replica_set(message: str) -> str:
    # "Scaled up replica set web-7d9f8c6b5d to 3 from 1" (and older: "... to 3").
    return _after(message, "Scaled up replica set ") or _after(message, "Scaled down replica set ")


_CHILD_PARSERS: Final = {
    # involved (parent) kind -> (child kind, parser of the child's name)
    "ReplicaSet": ("Pod", _created_pod),
    "DaemonSet": ("Pod", _created_pod),
    "Job": ("Pod", _created_pod),
    "ReplicationController": ("Pod", _created_pod),
    "StatefulSet": ("Pod", _statefulset_pod),
    "CronJob": ("Job", _cronjob_job),
    "Deployment": ("ReplicaSet", _scaled_replica_set),
}
LEARNING_REASONS: Final = frozenset(
    {
        "SuccessfulCreate",
        "SuccessfulDelete",
        "FailedCreate",
        "FailedDelete",
        "SawCompletedJob",
        "ScalingReplicaSet",
        "Scheduled",
    }
)
"""Reasons whose message can name another object's owner or a Pod's node."""


def child_of(event: KubeEvent) -> ObjectRef | None:
    """The object a controller Event says its involved object owns, if any."""
    ref = event.regarding
    parser = _CHILD_PARSERS.get(ref.kind)
    if parser is None:
        return None
    kind, parse = parser
    name = parse(event.message)
    return _ref(kind, ref.namespace or event.namespace, name) if name else None


def assigned_node(event: KubeEvent) -> str:
    """The node of a scheduler "Successfully assigned ns/pod to node" message, or ""."""
    message = event.message
    if not message.startswith("Successfully assigned "):
        return ""
    target, sep, node = message[len("Successfully assigned ") :].rpartition(" to ")
    ref = event.regarding
    if not sep or target != f"{ref.namespace}/{ref.name}" or " " in node:
        return ""
    return node


# -- the resolver -------------------------------------------------------------------------


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def evict_oldest(table: dict[K, V], n: int, time_of: Callable[[V], int]) -> list[K]:
    """Delete the ``n`` entries of ``table`` with the oldest ``time_of(value)`` (ties: the
    first inserted); returns their keys. One pass: tables evict a 64th of their size at once."""
    oldest = [
        key for key, _ in heapq.nsmallest(n, table.items(), key=lambda item: time_of(item[1]))
    ]
    for key in oldest:
        del table[key]
    return oldest


class LearnedTable(Generic[K, V]):
    """What Events said, bounded by count and by event time, in two generations.

    Entries learned or refreshed since the table last *turned* are in the
    young dict, the others in the old one. Every ``ttl/2`` of event time the
    table turns: the old generation is forgotten and the young one becomes
    old, so an entry lives between ``ttl/2`` and ``ttl`` after it was last
    learned. No time is kept per entry: a key and its value are all an entry
    costs (the Pod -> node table holds up to 100,000; a (value, time) tuple
    per entry was 5 MiB more). Past ``max_entries`` the 64th of the entries
    first learned longest ago go at once, old generation first (dicts keep
    insertion order).
    """

    def __init__(self, *, max_entries: int, ttl_ns: int) -> None:
        self.max_entries = max_entries
        self.ttl_ns = ttl_ns
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}
        self._turned_ns: int | None = None
        """Event time of the last turn (None until the first entry)."""
        self.evicted = 0
        """Entries dropped because of ``max_entries`` (not age)."""

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def __contains__(self, key: K) -> bool:
        return key in self._young or key in self._old

    def get(self, key: K) -> V | None:
        """The value learned for ``key``, or None."""
        value = self._young.get(key)
        return value if value is not None else self._old.get(key)

    def young_value(self, key: K, time_ns: int) -> V | None:
        """The value learned for ``key`` since the table last turned, or None; time moves to
        ``time_ns`` first, as in :meth:`put` (a value this finds equal, ``put`` would not
        write)."""
        self._advance(time_ns)
        return self._young.get(key)

    def put(self, key: K, value: V, time_ns: int) -> None:
        """Remember ``value`` for ``key``, learned at ``time_ns``.

        Refreshing an unchanged value in the young generation costs one lookup:
        kubelets and controllers repeat themselves.
        """
        self._advance(time_ns)
        young = self._young
        if young.get(key) == value:
            return
        young[key] = value
        self._old.pop(key, None)
        excess = len(young) + len(self._old) - self.max_entries
        if excess > 0:
            self._evict(excess + self.max_entries // 64)

    def _advance(self, time_ns: int) -> None:
        half = self.ttl_ns // 2
        if self._turned_ns is None:
            self._turned_ns = time_ns
        elif time_ns - self._turned_ns >= half:
            turns = (time_ns - self._turned_ns) // half
            self._old = self._young if turns == 1 else {}
            self._young = {}
            self._turned_ns += turns * half

    def _evict(self, n: int) -> None:
        for generation in (self._old, self._young):
            victims = list(itertools.islice(generation, n))
            for key in victims:
                del generation[key]
            self.evicted += len(victims)
            n -= len(victims)
            if n <= 0:
                return


class OwnerResolver:
    """Owner chains and nodes of involved objects, from a cache, Events and names."""

    def __init__(
        self,
        lookup: OwnerLookup | None = None,
        *,
        max_entries: int = 100_000,
        ttl_s: float = 2 * 3600,
    ) -> None:
        self.lookup = lookup
        ttl_ns = int(ttl_s * _NS)
        # Keyed by one string rather than a tuple of names: 48 bytes less per entry
        # (Kubernetes names and namespaces hold no "/", so the keys are unambiguous).
        self.owners_learned: LearnedTable[str, ObjectRef] = LearnedTable(
            max_entries=max_entries, ttl_ns=ttl_ns
        )
        """``ObjectRef.key`` (namespace/Kind/name) -> its owner, as controller Events said."""
        self.nodes_learned: LearnedTable[str, str] = LearnedTable(
            max_entries=max_entries, ttl_ns=ttl_ns
        )
        """``ObjectRef.key`` of a Pod (namespace/Pod/name) -> its node, as the kubelet or the
        scheduler said (the key the correlator has made already for the Event's object)."""
        self.share = SharedStrings()
        """The copy of each namespace, node and kind name the tables store."""
        self._named: dict[str, tuple[ObjectRef, ...]] = {}
        """The chains names proved, by object key: the young generation (see
        :data:`NAMED_OWNERS`; a hit in the old one moves back here)."""
        self._named_old: dict[str, tuple[ObjectRef, ...]] = {}
        self._bases: dict[str, tuple[ObjectRef, ...]] = {}
        """The chains of generated Pod names, by ``namespace/base`` (see
        :data:`GENERATED_BASES`)."""

    def __len__(self) -> int:
        return len(self.owners_learned) + len(self.nodes_learned)

    @property
    def evicted(self) -> int:
        """Learned entries dropped because of ``max_entries`` (not age)."""
        return self.owners_learned.evicted + self.nodes_learned.evicted

    def learn(self, event: KubeEvent) -> None:
        """Remember what a controller or scheduler Event says about another object."""
        if event.reason not in LEARNING_REASONS:
            return
        t = event.time_ns
        if event.reason == "Scheduled":
            node = assigned_node(event)
            if node:
                self._learn_node(event.regarding, node, t)
            return
        parent = event.regarding
        parser = _CHILD_PARSERS.get(parent.kind)
        if parser is None:
            return
        kind, parse = parser
        name = parse(event.message)
        if not name:
            return
        # The child's key (``child_of(event).key``), without the child's ObjectRef.
        namespace = parent.namespace or event.namespace
        key = f"{namespace}/{kind}/{name}" if namespace else f"{kind}/{name}"
        learned = self.owners_learned
        known = learned.young_value(key, t)
        if (
            known is not None
            and known.name == parent.name
            and known.kind == parent.kind
            and known.namespace == namespace
        ):
            # Learned already (controllers repeat themselves): what ``put`` would find.
            return
        share = self.share
        # Kind, namespace and name are all a chain needs: the uid, API version and
        # field path of the Event's object would triple the size of every entry.
        namespace = share.copy_of(namespace)
        owner = _ref(share.copy_of(parent.kind), namespace, parent.name)
        learned.put(key, owner, t)

    def _learn_node(self, pod: ObjectRef, node: str, time_ns: int, key: str | None = None) -> str:
        """Remember ``pod``'s node; return the shared copy of its name (what the table holds)."""
        node = self.share.copy_of(node)
        self.nodes_learned.put(pod.key if key is None else key, node, time_ns)
        return node

    def owners(self, ref: ObjectRef, key: str | None = None) -> tuple[ObjectRef, ...]:
        """Owner chain of ``ref``, nearest first; () when no owner is certain.

        ``key``: ``ref.key``, when the caller has made it already.
        """
        lookup = self.lookup
        if lookup is not None and ref.name:
            chain = lookup.owner_chain(ref)
            if chain is not None:
                if chain and len(chain) < MAX_CHAIN and lookup.owner_chain(chain[-1]) is None:
                    # The cache knows the Pod but not its ReplicaSet: go on from there.
                    return (*chain, *self._chain(chain[-1], MAX_CHAIN - len(chain)))
                return chain
        if ref.kind not in OWNED_KINDS:
            # A Node, Deployment, HPA...: neither names nor Events tell its owner, and its
            # key need not be looked up in the tables of 100,000 entries.
            return ()
        if key is None:
            key = ref.key
        parent = self.owners_learned.get(key)
        if parent is None:
            # The common case: nothing learned, the (cached) conventions answer.
            if ref.kind == "Pod":
                name = ref.name
                if len(name) < GENERATED_NAME_MAX and _has_random_tail(name):
                    return self._generated_pod(ref.namespace, name)
            return self._named_owners(ref, key)
        return self._chain_above(parent, MAX_CHAIN)

    def _named_owners(self, ref: ObjectRef, key: str) -> tuple[ObjectRef, ...]:
        """:func:`conventional_owners` of ``ref`` (whose key is ``key``), cached by key."""
        young = self._named
        chain = young.get(key)
        if chain is None:
            old = self._named_old
            chain = old.get(key)  # get and del: the compiled build calls dict.pop the slow way
            if chain is not None:
                del old[key]
            else:
                chain = self._generated(ref.kind, ref.namespace, ref.name)
            if len(young) >= NAMED_OWNERS:
                self._named_old = young
                self._named = young = {}
            young[key] = chain
        return chain

    def _generated(self, kind: str, namespace: str, name: str) -> tuple[ObjectRef, ...]:
        """:func:`conventional_owners`, the chains of generated Pod names shared by base."""
        if kind == "Pod" and len(name) < GENERATED_NAME_MAX and _has_random_tail(name):
            return self._generated_pod(namespace, name)
        return _conventional_owners(kind, namespace, name)

    def _generated_pod(self, namespace: str, name: str) -> tuple[ObjectRef, ...]:
        """:func:`conventional_owners` of a Pod whose name ends in a random suffix
        (:func:`_has_random_tail`), shared by base.

        What follows the random suffix check in :func:`_conventional_owners` depends on
        the namespace and base only: one chain per base is the same answer. Such a Pod
        is not kept in the chains by object key (:data:`NAMED_OWNERS`): its base finds
        its chain at once, where two Pod Events in three missed the chains by key (each
        Pod has a few Events, spread over the stream) and paid two lookups and an insert
        more.
        """
        key = f"{namespace}/{name[:-6]}"
        bases = self._bases
        chain = bases.get(key)
        if chain is None:
            if len(bases) >= GENERATED_BASES:
                bases.clear()
            chain = bases[key] = _conventional_owners("Pod", namespace, name)
        return chain

    def _chain(self, ref: ObjectRef, limit: int) -> tuple[ObjectRef, ...]:
        parent = self.owners_learned.get(ref.key)
        if parent is None:
            # The common case: nothing learned, the (cached) conventions answer.
            return conventional_owners(ref.kind, ref.namespace, ref.name)[:limit]
        return self._chain_above(parent, limit)

    def _chain_above(self, nearest: ObjectRef, limit: int) -> tuple[ObjectRef, ...]:
        """The chain whose nearest owner is ``nearest`` (learned), up to ``limit`` owners."""
        learned = self.owners_learned
        chain: list[ObjectRef] = []
        parent: ObjectRef | None = nearest
        while parent is not None and len(chain) < limit:
            chain.append(parent)
            current = parent
            parent = learned.get(current.key)
            if parent is None:
                chain += conventional_owners(current.kind, current.namespace, current.name)
        return tuple(chain[:limit])

    def node(self, event: KubeEvent, key: str | None = None) -> str:
        """The node ``event`` is about, or "" (see the module docstring).

        ``key``: ``event.regarding.key``, when the caller has made it already.
        """
        ref = event.regarding
        if ref.kind == "Node":
            return ref.name
        if ref.kind != "Pod" or not ref.name:
            return ""
        if event.reporting_controller == "kubelet":
            host = event.reporting_instance or event.source_host
            if host:
                return self._learn_node(ref, host, event.time_ns, key)
        if self.lookup is not None:
            node = self.lookup.pod_node(ref.namespace, ref.name)
            if node:
                return node
        return self.nodes_learned.get(ref.key if key is None else key) or ""
