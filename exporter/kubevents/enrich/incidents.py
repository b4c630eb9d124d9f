"""Incidents: one problem seen through many Events, with a root cause candidate.

An incident is the state the :class:`~kubevents.enrich.correlate.Correlator`
keeps for a group of causally related Events; an :class:`IncidentTransition`
is what a ``kubevents.incident`` record says about it::

    started   the Event that opened it (or that linked back to its cause) arrived
    ongoing   its scope grew (a new workload, node, namespace or category: not at
              every Event, so a long crash loop is not a flood of records), or a
              cause that arrived late became its root cause
    merged    a cause that arrived late explained it too: it goes on as the
              incident named by ``merged_into`` (every id seen stays valid)
    resolved  no Event joined it for the quiet period (in event time)

The id is ``inc-`` + 12 hex digits of SHA-1(root cause uid, the root cause's
occurrence time): the same Events give the same ids, whatever else happens
around them. Scope sets are capped (:data:`MAX_SCOPE` each) so one incident
touching the whole cluster stays small; what did not fit is counted.
"""

from __future__ import annotations

import enum
import hashlib
from builtins import object as _object
from dataclasses import dataclass, field
from typing import Final

from kubevents.conventions import Category, Severity
from kubevents.enrich.correlation_rules import SEVERITY_RANK

MAX_SCOPE: Final = 50
"""Entries kept per scope set (workloads, nodes, namespaces) of one incident."""
INDEXED_SCOPE: Final = 8
"""A scope set this long gets a set beside its tuple, for :meth:`Incident.add`'s "is it
new" test: on the bench's stream two in five of the Events that join an incident join
one with 24 scope values or more (one in seven one at the cap: 50 workloads and 50
nodes), and the tuples' scans cost more than the rest of the incident's bookkeeping."""
_NS: Final = 1_000_000_000


class IncidentState(enum.StrEnum):
    """Where an incident is in its lifecycle (``kubevents.incident.state``)."""

    STARTED = "started"
    ONGOING = "ongoing"
    MERGED = "merged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class RootCause:
    """The root cause candidate: the earliest cause-side Event of the chain."""

    uid: str
    """The Event's uid (or namespace/name when it has none)."""
    reason: str
    object: str
    """``namespace/Kind/name`` of its involved object."""
    namespace: str
    """Its involved object's namespace ("" when cluster-scoped)."""
    time_ns: int
    category: Category
    severity: Severity
    first_ns: int = 0
    """Its first occurrence (a series may have begun long before ``time_ns``)."""

    def __init__(
        self,
        uid: str,
        reason: str,
        object: str,
        namespace: str,
        time_ns: int,
        category: Category,
        severity: Severity,
        first_ns: int = 0,
    ) -> None:
        # Written out, as kubevents.model's per-Event classes (see its docstring): one is
        # made for most problem Events. ``_object`` is the builtin the parameter hides.
        _object.__setattr__(self, "uid", uid)
        _object.__setattr__(self, "reason", reason)
        _object.__setattr__(self, "object", object)
        _object.__setattr__(self, "namespace", namespace)
        _object.__setattr__(self, "time_ns", time_ns)
        _object.__setattr__(self, "category", category)
        _object.__setattr__(self, "severity", severity)
        _object.__setattr__(self, "first_ns", first_ns)


def incident_id(root_uid: str, first_seen_ns: int) -> str:
    """``inc-`` + 12 hex digits of SHA-1(root cause uid, first-seen time)."""
    text = f"{root_uid}\x1f{first_seen_ns}"
    return "inc-" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


@dataclass(frozen=True, slots=True)
class IncidentTransition:
    """One change of an incident's state: what a ``kubevents.incident`` record says."""

    incident_id: str
    state: IncidentState
    time_ns: int
    """Event time of the change (for ``resolved``: when the quiet period ended)."""
    root: RootCause
    first_seen_ns: int
    last_seen_ns: int
    events: int
    """Event records in the incident (the root cause's included)."""
    occurrences: int
    workloads: tuple[str, ...]
    nodes: tuple[str, ...]
    namespaces: tuple[str, ...]
    categories: tuple[tuple[str, int], ...]
    """Events by category, sorted by category name."""
    severity: Severity
    """The highest severity of its Events."""
    namespace: str
    """The root cause's namespace when every Event is in it, else ""."""
    overflow: int = 0
    """Scope entries that did not fit in the capped sets."""
    merged_into: str = ""
    """For ``merged``: the id of the incident it goes on as."""
    aliases: tuple[str, ...] = ()
    """The ids of the incidents merged into this one (sorted)."""

    def __init__(
        self,
        incident_id: str,
        state: IncidentState,
        time_ns: int,
        root: RootCause,
        first_seen_ns: int,
        last_seen_ns: int,
        events: int,
        occurrences: int,
        workloads: tuple[str, ...],
        nodes: tuple[str, ...],
        namespaces: tuple[str, ...],
        categories: tuple[tuple[str, int], ...],
        severity: Severity,
        namespace: str,
        overflow: int = 0,
        merged_into: str = "",
        aliases: tuple[str, ...] = (),
    ) -> None:
        # Written out (see RootCause): one is made for every incident record.
        _object.__setattr__(self, "incident_id", incident_id)
        _object.__setattr__(self, "state", state)
        _object.__setattr__(self, "time_ns", time_ns)
        _object.__setattr__(self, "root", root)
        _object.__setattr__(self, "first_seen_ns", first_seen_ns)
        _object.__setattr__(self, "last_seen_ns", last_seen_ns)
        _object.__setattr__(self, "events", events)
        _object.__setattr__(self, "occurrences", occurrences)
        _object.__setattr__(self, "workloads", workloads)
        _object.__setattr__(self, "nodes", nodes)
        _object.__setattr__(self, "namespaces", namespaces)
        _object.__setattr__(self, "categories", categories)
        _object.__setattr__(self, "severity", severity)
        _object.__setattr__(self, "namespace", namespace)
        _object.__setattr__(self, "overflow", overflow)
        _object.__setattr__(self, "merged_into", merged_into)
        _object.__setattr__(self, "aliases", aliases)

    @property
    def duration_ns(self) -> int:
        """From the root cause to the latest Event."""
        return max(self.last_seen_ns - self.first_seen_ns, 0)

    def describe(self) -> str:
        """One human sentence: what happened, where, and how far it spread."""
        where = _where(self)
        spread = self.events - 1
        text = f"{self.root.category.value} incident on {where}: {self.root.reason} ({self.root.object})"
        if spread > 0:
            workloads = len(self.workloads)
            text += f" then {spread} event{'s' * (spread != 1)}"
            if workloads:
                text += f" across {workloads} workload{'s' * (workloads != 1)}"
        if self.state is IncidentState.MERGED:
            return f"{text}; merged into {self.merged_into}"
        if self.state is IncidentState.RESOLVED:
            text += f"; resolved after {format_duration(self.duration_ns)} without new events"
        return text


def _where(t: IncidentTransition) -> str:
    # A node problem is told by its node; otherwise the narrowest scope that holds it all.
    if t.root.object.startswith("Node/") and len(t.nodes) == 1:
        return f"node {t.nodes[0]}"
    if len(t.workloads) == 1:
        return t.workloads[0]
    if len(t.nodes) == 1:
        return f"node {t.nodes[0]}"
    if len(t.namespaces) == 1:
        return f"namespace {t.namespaces[0]}"
    if len(t.nodes) > 1:
        return f"{len(t.nodes)} nodes"
    return t.root.object


def format_duration(ns: int) -> str:
    """``45s``, ``12m``, ``1h05m``: short and whole."""
    seconds = ns // _NS
    if seconds < 60:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass(slots=True)
class Incident:
    """The mutable state of one open incident (owned by the Correlator)."""

    id: str
    root: RootCause
    first_seen_ns: int
    last_seen_ns: int
    severity: Severity
    events: int = 0
    occurrences: int = 0
    workloads: tuple[str, ...] = ()
    """Scope sets as tuples in arrival order: most incidents hold one or two values,
    and 10,000 open incidents with three empty sets each took 6 MiB."""
    nodes: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    categories: tuple[tuple[str, int], ...] = ()
    """Events by category, in arrival order (pairs: a dict would cost 200 bytes more)."""
    cluster_scoped: bool = False
    """Some Event is about a cluster-scoped object (a Node): no single namespace."""
    overflow: int = 0
    closed: bool = False
    """Resolved, evicted or merged: links that still point here are stale."""
    merged_into: Incident | None = None
    """Set when merged: where the links that still point here lead now."""
    aliases: tuple[str, ...] = ()
    """Ids of the incidents merged into this one."""
    seq: int = 0
    """Opening order: of two incidents merged, the one opened first keeps its id."""
    workload_set: set[str] | None = field(default=None, repr=False, compare=False)
    """``workloads`` as a set, once it holds :data:`INDEXED_SCOPE` (None before)."""
    node_set: set[str] | None = field(default=None, repr=False, compare=False)
    namespace_set: set[str] | None = field(default=None, repr=False, compare=False)
    sorted_workloads: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    """``workloads`` sorted, kept for the next transition while it does not change, once it
    has a set beside it (None: not kept). An incident that grows emits a transition, and
    mostly only one of its three sets grew: on the bench's stream 11,293 of 13,482
    transitions were ``ongoing``, most of them of incidents with many workloads and nodes."""
    sorted_nodes: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    sorted_namespaces: tuple[str, ...] | None = field(default=None, repr=False, compare=False)

    def add(
        self,
        *,
        time_ns: int,
        occurrences: int,
        category: Category,
        severity: Severity,
        workload: str,
        node: str,
        namespace: str,
    ) -> bool:
        """Count one Event; True when the scope grew (a new workload, node, namespace or category)."""
        self.events += 1
        self.occurrences += occurrences
        if time_ns > self.last_seen_ns:
            self.last_seen_ns = time_ns
        if severity is not self.severity and SEVERITY_RANK[severity] > SEVERITY_RANK[self.severity]:
            self.severity = severity
        kinds = len(self.categories)
        self.categories = _counted(self.categories, category)
        grew = len(self.categories) > kinds
        if self._widen_workloads(workload):
            grew = True
        if self._widen_nodes(node):
            grew = True
        if self._widen_namespaces(namespace):
            grew = True
        if not namespace:
            self.cluster_scoped = True
        return grew

    # One method per scope set: each reads and writes its own tuple and set (fields of a
    # compiled class, where a shared helper would pass and return them).

    def _widen_workloads(self, value: str) -> bool:
        """Add ``value`` to :attr:`workloads` if new (see :meth:`_widen`); True when added."""
        seen = self.workload_set
        if not value or (value in seen if seen is not None else value in self.workloads):
            return False
        added = self._widen(self.workloads, value)
        if added is None:
            return False
        self.workloads = added
        self.sorted_workloads = None
        if seen is not None:
            seen.add(value)
        elif len(added) >= INDEXED_SCOPE:
            self.workload_set = set(added)
        return True

    def _widen_nodes(self, value: str) -> bool:
        """Add ``value`` to :attr:`nodes` if new (see :meth:`_widen`); True when added."""
        seen = self.node_set
        if not value or (value in seen if seen is not None else value in self.nodes):
            return False
        added = self._widen(self.nodes, value)
        if added is None:
            return False
        self.nodes = added
        self.sorted_nodes = None
        if seen is not None:
            seen.add(value)
        elif len(added) >= INDEXED_SCOPE:
            self.node_set = set(added)
        return True

    def _widen_namespaces(self, value: str) -> bool:
        """Add ``value`` to :attr:`namespaces` if new (see :meth:`_widen`); True when added."""
        seen = self.namespace_set
        if not value or (value in seen if seen is not None else value in self.namespaces):
            return False
        added = self._widen(self.namespaces, value)
        if added is None:
            return False
        self.namespaces = added
        self.sorted_namespaces = None
        if seen is not None:
            seen.add(value)
        elif len(added) >= INDEXED_SCOPE:
            self.namespace_set = set(added)
        return True

    def _widen(self, values: tuple[str, ...], value: str) -> tuple[str, ...] | None:
        """``values`` with ``value`` (not in it) added; past :data:`MAX_SCOPE` it is
        counted instead, and None returned."""
        if len(values) >= MAX_SCOPE:
            self.overflow += 1
            return None
        return (*values, value)

    def transition(self, state: IncidentState, time_ns: int) -> IncidentTransition:
        """This incident's state as a transition record."""
        root_ns = self.root.namespace
        alone = not self.cluster_scoped and all(ns == root_ns for ns in self.namespaces)
        workloads = self.sorted_workloads
        if workloads is None:
            workloads = _sorted(self.workloads)
            if self.workload_set is not None:
                self.sorted_workloads = workloads
        nodes = self.sorted_nodes
        if nodes is None:
            nodes = _sorted(self.nodes)
            if self.node_set is not None:
                self.sorted_nodes = nodes
        namespaces = self.sorted_namespaces
        if namespaces is None:
            namespaces = _sorted(self.namespaces)
            if self.namespace_set is not None:
                self.sorted_namespaces = namespaces
        return IncidentTransition(
            incident_id=self.id,
            state=state,
            time_ns=time_ns,
            root=self.root,
            first_seen_ns=self.first_seen_ns,
            last_seen_ns=self.last_seen_ns,
            events=self.events,
            occurrences=self.occurrences,
            workloads=workloads,
            nodes=nodes,
            namespaces=namespaces,
            categories=self.categories
            if len(self.categories) < 2
            else tuple(sorted(self.categories)),
            severity=self.severity,
            namespace=root_ns if root_ns and alone else "",
            overflow=self.overflow,
            merged_into=self.merged_into.id if self.merged_into is not None else "",
            aliases=_sorted(self.aliases),
        )

    def absorb(self, other: Incident) -> None:
        """Take over ``other``'s Events and scope (``other`` is merged into this one)."""
        self.events += other.events
        self.occurrences += other.occurrences
        self.first_seen_ns = min(self.first_seen_ns, other.first_seen_ns)
        self.last_seen_ns = max(self.last_seen_ns, other.last_seen_ns)
        if SEVERITY_RANK[other.severity] > SEVERITY_RANK[self.severity]:
            self.severity = other.severity
        for name, n in other.categories:
            self.categories = _counted(self.categories, name, n)
        for workload in other.workloads:
            self._widen_workloads(workload)
        for node in other.nodes:
            self._widen_nodes(node)
        for namespace in other.namespaces:
            self._widen_namespaces(namespace)
        self.cluster_scoped = self.cluster_scoped or other.cluster_scoped
        self.overflow += other.overflow
        self.aliases = (*self.aliases, other.id, *other.aliases)
        other.closed = True
        other.merged_into = self

    def survivor(self) -> Incident:
        """The incident this one goes on as (itself unless merged)."""
        incident = self
        while incident.merged_into is not None:
            incident = incident.merged_into
        return incident


def _counted(
    counts: tuple[tuple[str, int], ...], name: str, more: int = 1
) -> tuple[tuple[str, int], ...]:
    """``counts`` with ``more`` added for ``name`` (a new pair at the end when it has none)."""
    for i, (seen, n) in enumerate(counts):
        if seen == name:
            if len(counts) == 1:  # most incidents
                return ((name, n + more),)
            items = list(counts)
            items[i] = (name, n + more)
            return tuple(items)
    return (*counts, (name, more))


def _sorted(values: tuple[str, ...]) -> tuple[str, ...]:
    """``values`` sorted (``values`` itself when it has fewer than two)."""
    return values if len(values) < 2 else tuple(sorted(values))
