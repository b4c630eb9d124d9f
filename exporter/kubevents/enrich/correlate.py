"""Correlation: correlation IDs for every Event, and incidents that link causes to symptoms.

For each Event update :meth:`Correlator.correlate` answers, in this order:

1. **object, workload, node** (``owners.py``): the involved object, its
   top-level owner as far as it is certain, and the node it is about.
2. **incident**: which open incident the Event belongs to, found through
   *links*, each a (rule, scope, key) remembered from earlier Events:

   * *causal links*: an Event matching a rule's ``cause`` leaves a link under
     each of the rule's ``join`` scopes (its object, workload, node,
     volumes or namespace). A later Event matching the rule's ``effect``
     (or its ``cause`` again) in the same scope within the rule's window
     follows the link;
   * *group links*: every Event of an incident leaves a link under the
     ``defaults.group`` scopes (object and workload); a later problem Event
     (severity at least ``defaults.min_severity``) of the same scope within
     ``defaults.window`` follows it.

   Of several links the one whose cause came first wins (earliest first
   seen, then id): incidents never merge, and an Event already emitted never
   changes incident.

3. **opening**: without a link to follow,

   * a problem Event that matches a rule's ``cause`` opens an incident at
     once and is its root cause (``root_cause`` on its record);
   * any other problem Event is *lone*: it opens nothing but leaves a latent
     group link; a second problem Event of the same object or workload within
     the window opens the incident, rooted at the first. A single warning that
     is nobody's cause and nobody's effect is not an incident;
   * a cause below ``min_severity`` (a rollout's ``ScalingReplicaSet``) opens
     nothing either, but leaves a latent causal link: the first problem
     Event that follows it through its rule opens the incident, rooted at it;
   * an Event below ``min_severity`` never opens anything; it joins only as
     a rule's effect.

   A latent root's record was emitted before its incident existed: it
   carries no incident id, and the incident record names it
   (``root_cause.uid``).

Incidents resolve once event time passes their last Event by
``defaults.quiet`` (or at :meth:`Correlator.expire`, with the pipeline's
clock). Links expire after their window of event time.

Memory is bounded: at most ``max_incidents`` open incidents (the oldest is
resolved early, :attr:`Correlator.evicted_incidents`), at most ``max_links``
links (the least recently updated dropped, :attr:`Correlator.evicted_links`), and
the owner resolver's own bounds. The common Event (Normal, named by no rule)
costs a few dict lookups: no regex, no hashing, and usually its
:class:`~kubevents.model.Correlation` is the one of the previous such Event
about the same object.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Final

from kubevents.conventions import Category
from kubevents.enrich.correlation_rules import CausalRule, CorrelationRules
from kubevents.enrich.incidents import (
    Incident,
    IncidentState,
    IncidentTransition,
    RootCause,
    incident_id,
)
from kubevents.enrich.links import (
    GROUP,
    SCOPE_RANK,
    Cause,
    Link,
    LinkIndex,
    Traced,
    scope_keys,
    trace_index,
)
from kubevents.enrich.owners import LEARNING_REASONS, WORKLOAD_KINDS, OwnerLookup, OwnerResolver
from kubevents.enrich.sharing import SharedStrings
from kubevents.model import CategorySeverity, Classification, Correlation, KubeEvent, ObjectRef

PLAIN_MEMO: Final = 2048
"""Correlations of routine Events kept for reuse (about 600 B each, with their key).

The reuse is short-range (the next Event about the same object): on the 100k-object
stream 8192 entries missed 70,140 times in 212,862 Events, 2048 missed 70,749 (and
256 about as often), for 3.7 MiB less at its fullest."""
WORKLOAD_KEYS: Final = 16_384
"""Distinct workload keys the correlator shares one copy of (see :meth:`Correlator.correlate`)."""
WORKLOAD_TOPS: Final = 4096
"""Top owners whose workload key the correlator keeps by identity (rebuilt when full)."""
_SECOND: Final = 1_000_000_000
UNPLACED: Final = "?"
"""The node key of the traces of Pods whose node is unknown (``sole_node`` rules)."""
PLAN_MESSAGES: Final = 128
"""Messages whose matching rules a plan remembers (see :meth:`_Plan.matching`), rebuilt
when full. Events repeat their messages (one FailedScheduling text for every Pod
waiting on the same nodes): on the bench's stream 58% of the message tests were of a
message tested shortly before, and a case-insensitive search of a long message is
the costliest test a rule makes."""
MAX_PLANS: Final = 4096
"""Rule plans kept (see :class:`_Plan`; one per reason, type, kind, category and
component that a rule names the reason of: a few dozen in practice)."""


class _Rule:
    """A causal rule as the hot path reads it.

    The same facts as its :class:`CausalRule`, as plain attributes of a class of this
    module: in the compiled build they are struct fields, where a ``CausalRule`` (a
    dataclass of an interpreted module) is read by attribute name, and its sides'
    ``matches`` is an interpreted call.
    """

    def __init__(self, rule: CausalRule, links: LinkIndex) -> None:
        self.rule = rule
        self.id = rule.id
        self.index = rule.index
        self.trace = trace_index(rule.index)
        self.join = rule.join
        self.window_ns = rule.window_ns
        self.sole_node = rule.sole_node
        self.opens = rule.opens
        self.cause_reasons = rule.cause.reasons
        self.cause_message = rule.cause.message
        self.effect_message = rule.effect.message
        self.scope_rank = min(SCOPE_RANK[scope] for scope in rule.join)
        """Its narrowest join scope's rank (of two causes, the narrower explains first)."""
        self.tables = tuple((scope, links.table(rule.index, scope)) for scope in rule.join)
        """Its links' table in each join scope (see :meth:`LinkIndex.table`)."""
        self.trace_tables = tuple((scope, links.table(self.trace, scope)) for scope in rule.join)
        """Its traces' table in each join scope."""


class _Plan:
    """The rules that can match an Event of one reason, type, kind, category and
    component: every condition of their side but the message is met (these are all
    the Event's, so the answer is the same for every such Event)."""

    def __init__(self, causes: list[_Rule], effects: list[_Rule]) -> None:
        self.causes = causes
        self.effects = effects
        self.cause_regex = any(rule.cause_message is not None for rule in causes)
        """Some cause has a message condition (else ``causes`` is the answer as is)."""
        self.effect_regex = any(rule.effect_message is not None for rule in effects)
        self._causes_by_message: dict[str, list[_Rule]] = {}
        self._effects_by_message: dict[str, list[_Rule]] = {}

    def matching_causes(self, message: str) -> list[_Rule]:
        """The causes whose message condition ``message`` meets (shared: read only)."""
        found = self._causes_by_message.get(message)
        if found is None:
            found = _remember(self._causes_by_message, self.causes, message, effect=False)
        return found

    def matching_effects(self, message: str) -> list[_Rule]:
        """The effects whose message condition ``message`` meets (shared: read only)."""
        found = self._effects_by_message.get(message)
        if found is None:
            found = _remember(self._effects_by_message, self.effects, message, effect=True)
        return found


def _remember(
    memo: dict[str, list[_Rule]], rules: list[_Rule], message: str, *, effect: bool
) -> list[_Rule]:
    """:func:`_matching`, kept in ``memo`` (emptied when it holds PLAN_MESSAGES)."""
    if len(memo) >= PLAN_MESSAGES:
        memo.clear()
    found = memo[message] = _matching(rules, message, effect=effect)
    return found


def _matching(rules: list[_Rule], message: str, *, effect: bool) -> list[_Rule]:
    """Those of ``rules`` whose side's message condition ``message`` meets."""
    found = []
    for rule in rules:
        pattern: re.Pattern[str] | None = rule.effect_message if effect else rule.cause_message
        if pattern is None or pattern.search(message) is not None:
            found.append(rule)
    return found


class Correlator:
    """Correlation IDs and incidents; pure, single-threaded, time from the Events."""

    def __init__(
        self,
        rules: CorrelationRules,
        *,
        lookup: OwnerLookup | None = None,
        max_incidents: int = 10_000,
        max_links: int = 200_000,
        max_owners: int = 100_000,
        settle_ns: int = 0,
    ) -> None:
        self.rules = rules
        # What the hot path reads of the rules, as attributes of this (compiled) class.
        self._causes_by_reason = rules.causes_by_reason
        self._effects_by_reason = rules.effects_by_reason
        self._problem = rules.problem_severities
        self._volume_reasons = rules.volume_reasons
        self._group_volumes = rules.group_volumes
        self._sole_node_rules = bool(rules.sole_node_rules)
        self._window_ns = rules.defaults.window_ns
        self._group = rules.defaults.group
        self._ids_by_index = rules.ids_by_index
        self._overcome_by_reason = rules.overcome_by_reason
        self._max_window_ns = rules.max_window_ns
        self._quiet_ns = rules.defaults.quiet_ns
        self._plans: dict[tuple[str, str, str, Category, str], _Plan] = {}
        self.owners = OwnerResolver(lookup, max_entries=max_owners)
        self.max_incidents = max_incidents
        self._open: dict[str, Incident] = {}
        """Open incidents by id, oldest first."""
        self._deadlines: list[tuple[int, int, str]] = []
        self._links = LinkIndex(max_entries=max_links)
        self._hot = {rule.index: _Rule(rule, self._links) for rule in rules.rules}
        self._group_tables = tuple(
            (scope, self._links.table(GROUP, scope)) for scope in self._group
        )
        """The group links' table in each ``defaults.group`` scope."""
        self._links_expired_ns = 0
        self._links_sweep_ns = max(_SECOND, rules.max_window_ns // 64)
        """Links are swept this often in event time (one found before its sweep is checked
        against its own window in _follow)."""
        self._plain: dict[tuple[str, str, str, str], Correlation] = {}
        """The IDs of Events in no incident, by object and node (bounded, rebuilt when full)."""
        self._pending: list[IncidentTransition] = []
        self._seq = 0
        self.high_water_ns = 0
        """The latest event time seen (or passed to :meth:`expire`)."""
        self.evicted_incidents = 0
        """Incidents resolved early because ``max_incidents`` were open."""
        self.transition_counts: dict[IncidentState, int] = dict.fromkeys(IncidentState, 0)
        """Transitions emitted so far, by state."""
        self.merges = 0
        """Incidents merged into another because one late cause explained both."""
        self.reroots = 0
        """Incidents whose root a cause that came late took over."""
        self.settle_ns = settle_ns
        """How long the pipeline holds the record of an Event that may still join an
        incident (0: never held)."""
        self.hold: Cause | None = None
        """Set by :meth:`correlate` when the Event's record should be held."""
        self._found: list[Cause] = []
        self._late_found: list[tuple[Cause, str, str]] = []
        """:meth:`_late`'s list, empty between calls (handed out when it is not)."""
        self._late_seen: set[int] = set()
        self._sole: dict[int, tuple[str, int, int]] = {}
        """Per ``sole_node`` rule: (the latest node with its cause, its time, the latest
        time another node had it) (see :meth:`_place`)."""
        self._lone_scope = ""
        self._keys: dict[str, tuple[str, ...]] = {}
        """The current Event's keys in each scope (``scope_keys``; refilled per Event)."""
        # What _follow and _weigh keep while they weigh an Event's links (fields rather than
        # tuples made per link: see _weigh).
        self._best: Link | None = None
        self._best_group = False
        self._best_rank = 0
        self._best_general = False
        self._best_ns = 0
        self._best_name = ""
        self._best_index = GROUP
        self._best_scope = ""
        self._best_effect = False
        self._lone: Link | None = None
        self._lone_ns = 0
        self._lone_uid = ""
        self._overcome: tuple[frozenset[str], frozenset[str]] | None = None
        self._first = self._last = 0
        """The Event's first and last time (a series spans them)."""
        self._weighing_problem = False
        self._workloads = SharedStrings(max_entries=WORKLOAD_KEYS)
        """One copy of each workload key (``top.key`` makes a new one for every Event)."""
        self._workload_of: dict[int, tuple[ObjectRef, str]] = {}
        """The workload key of each top owner seen lately, by the owner's identity (the
        entry holds the owner, so its id is not reused while it is here; see
        :meth:`_workload_key`)."""
        self.joins: dict[str, int] = {}
        """Events that joined an incident (or opened one from a latent link), by the rule
        of the link they followed (``group`` for group links)."""

    @property
    def open_incidents(self) -> int:
        """Incidents currently open."""
        return len(self._open)

    def open_counts(self) -> list[tuple[CategorySeverity, int]]:
        """Open incidents by root-cause category and incident severity, sorted: any thread.

        A copy of the open set is taken first, in one builtin call (see
        :mod:`kubevents.telemetry`), so a scrape never iterates the dict the pipeline
        thread is changing.
        """
        counts: dict[CategorySeverity, int] = {}
        for incident in list(self._open.values()):
            key = CategorySeverity(incident.root.category, incident.severity)
            counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items())

    @property
    def links(self) -> int:
        """Links currently remembered."""
        return len(self._links)

    @property
    def evicted_links(self) -> int:
        """Links dropped because of ``max_links`` before their window ended."""
        return self._links.evicted

    def correlate(
        self, event: KubeEvent, classification: Classification, occurrences: int
    ) -> Correlation:
        """The correlation IDs of one Event update; may open, grow or merge incidents.

        When the Event is in no incident and might still join one (a rule's
        effect whose cause has not come, a lone problem Event, a latent cause),
        :attr:`hold` is set to its :class:`Cause` after the call: the pipeline
        holds its record until :meth:`settled_holds` returns it or the settle
        time passes (:meth:`release` gives its final IDs).
        """
        t = event.time_ns
        # A series seen for the first time spans [first, last]: what was open during it
        # must still be open for it, so time moves to its first occurrence only.
        horizon = min(t, event.first_time_ns or t)
        if horizon > self.high_water_ns:
            self._advance(horizon)
        self.hold = None
        resolver = self.owners
        reason = event.reason
        if reason in LEARNING_REASONS:
            resolver.learn(event)
        ref = event.regarding
        obj = ref.key  # made once: the owners' cache, the links and the IDs use it
        owners = resolver.owners(ref, obj)
        node = resolver.node(event, obj)
        subject = ref if not owners and ref.kind in WORKLOAD_KINDS and ref.name else None
        causes = self._causes_by_reason.get(reason)
        effects = self._effects_by_reason.get(reason)
        severity = classification.severity
        problem = severity in self._problem
        if not problem and causes is None and effects is None:
            # The common case: routine, and no rule names it. Its IDs are those of the
            # last such Event about the same object, most of the time: reuse them.
            memo_key = (ref.namespace, ref.kind, ref.name, node)
            plain = self._plain.get(memo_key)
            if plain is None or plain.owners is not owners:
                plain = self._memoize(ref, obj, node, owners, subject)
            return plain
        if owners:
            top = owners[-1]
            # The top owner is an object of a chain the resolver shares between Events
            # (every Pod of a ReplicaSet or Job has the same): its key, by identity.
            known = self._workload_of.get(id(top))
            if known is not None and known[0] is top:
                workload = known[1]
            else:
                workload = self._workload_key(top)
        elif subject is not None:
            workload = self._workloads.copy_of(subject.key)
        else:
            workload = ""
        keys = self._keys
        scope_keys(
            keys,
            event,
            obj,
            workload,
            node,
            volumes=reason in self._volume_reasons or (problem and self._group_volumes),
        )
        category = classification.category
        message = event.message
        plan_key = (reason, event.type, ref.kind, category, event.reporting_controller)
        plan = self._plans.get(plan_key)
        if plan is None:
            plan = self._plan(plan_key, event, category, causes, effects)
        cause_rules = plan.matching_causes(message) if plan.cause_regex else plan.causes
        effect_rules = plan.matching_effects(message) if plan.effect_regex else plan.effects
        is_cause = bool(cause_rules)
        unplaced = False  # a Pod whose node is unknown, for a rule that can place it
        if self._sole_node_rules:
            if node:
                self._note_sole(cause_rules, node, t)
            elif ref.kind == "Pod" and effect_rules:
                unplaced = self._place(effect_rules, keys, t)
        # The links the Event's causes leave (and follow): no list of them is made, the
        # rules' tables are walked again where they are needed.
        cause_keys = False
        for rule in cause_rules:
            for scope in rule.join:
                if keys[scope]:
                    cause_keys = True
        chosen, index, via_scope, as_effect, lone = self._follow(
            event, keys, effect_rules, cause_rules, problem
        )
        incident: Incident | None = None
        opened = is_root = False
        changed = False  # the root changed, or another incident merged into this one
        via_rule = ""
        # A cause that opens nothing alone (a crash loop's back-off) is a lone Event here.
        opening = is_cause and any(rule.opens for rule in cause_rules)
        if chosen is None and problem and not opening and lone is not None:
            chosen, index, via_scope = lone, GROUP, self._lone_scope
        if chosen is not None:
            via_rule = self._ids_by_index.get(index, "group")
            self.joins[via_rule] = self.joins.get(via_rule, 0) + 1
            followed = chosen.target
            if isinstance(followed, Incident):
                incident = followed
            elif isinstance(followed, Cause):  # a latent link: open its incident now
                incident = self._open_incident(followed)
                opened = True
        # The Event as a possible root: only a cause, or an Event in no incident, needs it
        # (most Events of an incident are plain members: a crash loop's next BackOff).
        own = (
            # is_cause: only a cause that opens incidents; one that opens nothing alone is lone
            Cause(self._root(event, classification, obj), occurrences, workload, node, opening)
            if is_cause or incident is None
            else None
        )
        if own is not None and is_cause:
            late = self._late(event, cause_rules, keys)
            if late:
                # A Node's condition explains the same condition told about a Pod on it
                # (the node controller's NodeNotReady on each Pod), even though the rule
                # also lists it as that Pod Event's effect.
                node_over_pod = (
                    ref.kind == "Node"
                    and incident is not None
                    and not incident.root.object.startswith("Node/")
                )
                incident, grew_root = self._explain(
                    own, late, incident, causal=as_effect and not node_over_pod
                )
                if grew_root:
                    is_root = changed = True
                    via_rule = via_scope = ""
        if own is not None and incident is None and problem and opening:
            incident = self._open_incident(own, counted=False)
            opened = is_root = True
        elif (
            own is not None
            and incident is not None
            and is_cause
            and not is_root
            and not any(  # not a mere symptom of what the root is
                rule not in cause_rules and incident.root.reason in rule.cause_reasons
                for rule in effect_rules
            )
            and own.root.first_ns < incident.root.first_ns
            and own.root.object == incident.root.object
        ):
            # The same object's cause, seen again as a series that began before the
            # root did: the earliest cause-side Event is the root.
            self._reroot(incident, own)
            is_root = changed = True
            via_rule = via_scope = ""
        target: Incident | Cause | None = incident
        if incident is not None:
            grew = incident.add(
                time_ns=t,
                occurrences=occurrences,
                category=category,
                severity=severity,
                workload=workload,
                node=node,
                namespace=resolver.share.copy_of(ref.namespace),  # kept while the incident is open
            )
            if opened:
                self._emit(incident.transition(IncidentState.STARTED, t))
            elif grew or changed:
                self._emit(incident.transition(IncidentState.ONGOING, t))
        elif own is not None and (cause_keys or problem or effect_rules):
            target = own
            if self.settle_ns and (problem or effect_rules):
                # A latent cause below min_severity is not held: most are routine (a
                # rollout's ScalingReplicaSet, a Pod's Scheduled), and when a problem does
                # follow, the incident records name it as root.
                own.held = True
                self.hold = own
        links = self._links
        if target is not None:
            for rule in cause_rules:
                link_index = rule.index
                link_window = rule.window_ns
                for scope, table in rule.tables:
                    for key in keys[scope]:
                        links.put_in(table, link_index, key, t, link_window, target)
            if incident is not None or problem:
                window = self._window_ns
                for scope, table in self._group_tables:
                    for key in keys[scope]:
                        links.put_in(table, GROUP, key, t, window, target)
        if (
            own is not None
            and effect_rules
            and (incident is None or is_root)
            and (problem or own.held)
        ):
            # Traces: a cause of these effects that comes later still finds this Event.
            # Only what no cause explains yet leaves them (a member has its cause), and
            # only what a late cause can still use: a problem Event (it may be or become a
            # root), or a held record (its Event can still be adopted).
            for rule in effect_rules:
                trace = rule.trace
                for scope, table in rule.trace_tables:
                    for value in keys[scope]:
                        links.trace_in(table, trace, value, t, own)
                if unplaced and rule.sole_node:
                    links.trace_in(links.table(trace, "node"), trace, UNPLACED, t, own)
        return Correlation(
            object=obj,
            owners=owners,
            node=node,
            incident_id=incident.id if incident is not None else "",
            root_cause=is_root,
            subject=subject,
            rule=via_rule if incident is not None else "",
            scope=via_scope if incident is not None and via_rule else "",
        )

    def _plan(
        self,
        key: tuple[str, str, str, Category, str],
        event: KubeEvent,
        category: Category,
        causes: tuple[CausalRule, ...] | None,
        effects: tuple[CausalRule, ...] | None,
    ) -> _Plan:
        """The rules of ``event``'s reason whose side matches it but for the message
        (remembered under ``key``: the facts ``Side.matches`` reads)."""
        if len(self._plans) >= MAX_PLANS:
            self._plans.clear()
        hot = self._hot
        plan = _Plan(
            [hot[rule.index] for rule in causes or () if rule.cause.matches(event, category)],
            [hot[rule.index] for rule in effects or () if rule.effect.matches(event, category)],
        )
        self._plans[key] = plan
        return plan

    def _workload_key(self, top: ObjectRef) -> str:
        """The shared workload key of ``top``, kept by its identity for the next Event.

        The resolver hands out one chain, the same objects, to every Pod of a ReplicaSet
        or Job and to every Event of an object whose owners it learned, but the Events
        of the stream interleave: on the bench's stream 37,582 of 39,972 Events that
        needed a workload key had a top owner other than the Event before's. Formatting
        ``top.key`` and looking it up among the shared keys was most of the cost of
        :attr:`ObjectRef.key` on the correlator's path.
        """
        workload = self._workloads.copy_of(top.key)
        known = self._workload_of
        if len(known) >= WORKLOAD_TOPS:
            known.clear()
        known[id(top)] = (top, workload)
        return workload

    def release(self, cause: Cause, correlation: Correlation) -> Correlation:
        """The final IDs of a held Event: its incident (if it found one), rule and scope."""
        cause.held = False
        incident = cause.incident.survivor() if cause.incident is not None else None
        if incident is None:
            return correlation
        root = incident.root.uid == cause.root.uid
        return replace(
            correlation,
            incident_id=incident.id,
            root_cause=root,
            rule="" if root else cause.rule,
            scope="" if root else cause.scope,
        )

    def settled_holds(self) -> list[Cause]:
        """Drain the held Events that found their incident since the last call."""
        found, self._found = self._found, []
        return found

    def _memoize(
        self,
        ref: ObjectRef,
        obj: str,
        node: str,
        owners: tuple[ObjectRef, ...],
        subject: ObjectRef | None,
    ) -> Correlation:
        """The IDs of a routine Event, remembered for the next one about the same object.

        The memo holds thousands of entries, so its namespace, kind and node
        names are shared copies (``sharing.py``) rather than the Event's own.
        """
        if len(self._plain) >= PLAIN_MEMO:
            self._plain.clear()
        share = self.owners.share
        node = share.copy_of(node)
        plain = Correlation(object=obj, owners=owners, node=node, subject=subject)
        self._plain[(share.copy_of(ref.namespace), share.copy_of(ref.kind), ref.name, node)] = plain
        return plain

    def expire(self, now_ns: int) -> None:
        """Move "now" to ``now_ns`` (the pipeline's clock): resolve what has been quiet."""
        if now_ns > self.high_water_ns:
            self._advance(now_ns)

    def transitions(self) -> Sequence[IncidentTransition]:
        """Drain the transitions produced since the last call, in order.

        Called once per record, and nearly always with nothing: then it returns a
        shared empty tuple rather than a new list."""
        pending = self._pending
        if not pending:
            return ()
        self._pending = []
        return pending

    def current(self) -> list[IncidentTransition]:
        """Every open incident as it stands now (state ``ongoing``), oldest first."""
        return [
            incident.transition(IncidentState.ONGOING, self.high_water_ns)
            for incident in self._open.values()
        ]

    # -- finding the incident ----------------------------------------------------------

    def _follow(
        self,
        event: KubeEvent,
        keys: dict[str, tuple[str, ...]],
        effect_rules: list[_Rule],
        cause_rules: list[_Rule],
        problem: bool,
    ) -> tuple[Link | None, int, str, bool, Link | None]:
        """The link to follow (its rule index and scope, and whether the Event follows it
        as the rule's effect), and the earliest lone problem Event.

        The link to follow leads to an open incident or to a latent cause. Of
        several, a rule's link beats a group link (a rule says why), a narrower
        scope beats a wider one (the Pod's own image pull explains its back-off
        better than a problem somewhere on its node), then the cause that came
        first. A lone problem Event of the same scope (a latent group link) is
        returned apart: it only opens an incident for an Event that is not a
        cause itself.

        The links are weighed as they are found (:meth:`_weigh`), in this order: the
        effect rules' links, the cause rules' links, the group links; of two that rank
        the same, the first found wins.
        """
        live = self._links.live
        self._start_weighing(event, problem)
        for rule in effect_rules:
            if not live.get(rule.index):
                continue
            # A rule whose effect names the message (a quota refusal, not any FailedCreate)
            # explains the Event better than one that takes any Event of the reason.
            specific = rule.effect_message is not None
            for scope, table in rule.tables:
                for key in keys[scope]:
                    link = table.get(key)
                    if link is not None:
                        self._weigh(link, rule.window_ns, rule.index, scope, True, specific)
        for rule in cause_rules:
            if not live.get(rule.index):
                continue
            for scope, table in rule.tables:
                for key in keys[scope]:
                    link = table.get(key)
                    if link is not None:
                        self._weigh(link, rule.window_ns, rule.index, scope, False, False)
        if problem and live.get(GROUP):
            window = self._window_ns
            for scope, table in self._group_tables:
                for key in keys[scope]:
                    link = table.get(key)
                    if link is not None:
                        self._weigh(link, window, GROUP, scope, False, False)
        return self._best, self._best_index, self._best_scope, self._best_effect, self._lone

    def _start_weighing(self, event: KubeEvent, problem: bool) -> None:
        """Forget the last Event's best link: :meth:`_weigh` weighs ``event``'s now.

        A method of its own: were ``_best`` set to None in :meth:`_follow`, the type
        checker would take it to be None still where ``_follow`` returns it (the calls to
        ``_weigh`` between do not undo that), and the compiled build would check so.
        """
        self._best = self._lone = None
        self._best_index = GROUP
        self._best_scope = ""
        self._best_effect = False
        # An Event that shows the failure before it is over (a controller's next stage
        # failing) does not group with it: a new failure, not its symptom.
        self._overcome = self._overcome_by_reason.get(event.reason) if problem else None
        self._first = min(event.first_time_ns, event.time_ns)
        self._last = event.time_ns
        self._weighing_problem = problem

    def _weigh(
        self, link: Link, window: int, index: int, scope: str, effect: bool, specific: bool
    ) -> None:
        """Take ``link`` as the best so far (or the earliest lone Event) if it ranks first.

        Its rank: a group link after a rule's, the narrower scope first, a rule that
        names the message first, then the earliest cause (first seen, then id); compared
        part by part, as the tuple of them would be.
        """
        # A series Event spans [first, last]: a cause during it, or within the
        # window around it, explains it.
        if link.time_ns < self._first - window or link.time_ns > self._last + window:
            return
        target = link.target
        if isinstance(target, Traced):  # pragma: no cover - traces have their own keys
            return
        if isinstance(target, Cause) and target.incident is not None:
            link.target = target = target.incident  # its Event is in an incident since
        if isinstance(target, Incident):
            if target.merged_into is not None:
                link.target = target = target.survivor()
            if target.closed:
                return
            overcome = self._overcome
            if overcome is not None and _overcome(overcome, index, scope, target.root):
                return
            seen_ns = target.first_seen_ns
            name = target.id
        elif self._weighing_problem:
            overcome = self._overcome
            if overcome is not None and _overcome(overcome, index, scope, target.root):
                return
            root = target.root
            if not target.is_cause:
                lone = self._lone
                if lone is None or (root.time_ns, root.uid) < (self._lone_ns, self._lone_uid):
                    self._lone = link
                    self._lone_ns = root.time_ns
                    self._lone_uid = root.uid
                    self._lone_scope = scope
                return
            seen_ns = root.time_ns
            name = root.uid
        else:
            return
        group = index == GROUP
        rank = SCOPE_RANK[scope]
        general = not specific
        if self._best is not None:
            # rank < best rank, part by part: (group, scope rank, general, seen, name)
            if group != self._best_group:
                if group:
                    return
            elif rank != self._best_rank:
                if rank > self._best_rank:
                    return
            elif general != self._best_general:
                if general:
                    return
            elif seen_ns != self._best_ns:
                if seen_ns > self._best_ns:
                    return
            elif not name < self._best_name:
                return
        self._best = link
        self._best_group = group
        self._best_rank = rank
        self._best_general = general
        self._best_ns = seen_ns
        self._best_name = name
        self._best_index = index
        self._best_scope = scope
        self._best_effect = effect

    def _late(
        self, event: KubeEvent, cause_rules: list[_Rule], keys: dict[str, tuple[str, ...]]
    ) -> list[tuple[Cause, str, str]]:
        """Earlier Events that ``event``, a cause, explains: the traces its rules left.

        Each is an Event in no incident, or the root of one (a member of an
        incident already has its cause); with the rule and scope that found it.
        """
        links = self._links
        live = links.live
        t = event.time_ns
        first = min(t, event.first_time_ns or t)
        # Most causes explain nothing late: the list and set are the correlator's own,
        # empty between calls, and a new list is made only when this one is handed out.
        found = self._late_found
        seen = self._late_seen
        uid = event.key
        # The keys are looked up as they are walked (no list of them is made per rule).
        for rule in _by_scope_rank(cause_rules):
            trace = rule.trace
            if not live.get(trace):
                continue
            low = first - rule.window_ns
            high = t + rule.window_ns
            for scope, table in rule.trace_tables:
                for key in keys[scope]:
                    link = table.get(key)
                    if link is not None:
                        _gather(found, seen, link.target, low, high, uid, rule.id, scope)
            if rule.sole_node and self._sole_at(rule, keys["node"], first, t):
                # The Pods no Event placed: on this node.
                link = links.table(trace, "node").get(UNPLACED)
                if link is not None:
                    _gather(found, seen, link.target, low, high, uid, rule.id, "node")
        if not found:
            return found
        seen.clear()
        self._late_found = []
        if len(found) > 1:
            found.sort(key=lambda item: SCOPE_RANK[item[2]])  # the narrowest says best why
        return found

    def _explain(
        self,
        own: Cause,
        late: list[tuple[Cause, str, str]],
        incident: Incident | None,
        *,
        causal: bool,
    ) -> tuple[Incident | None, bool]:
        """A cause that came after its effects: take them into its incident.

        ``incident`` is the one the cause joined (or None); ``causal``: it joined
        through a rule, as an effect of that incident's root, so it cannot be
        the root. Effects in no incident are adopted (when their record is still
        held); incidents rooted at one of the effects are explained by this
        cause: the oldest goes on with this cause as root, the others merge
        into it. Returns the cause's incident, and whether the cause became its root.
        """
        rooted: list[Incident] = []
        loose: list[tuple[Cause, str, str]] = []
        for cause, rule, scope in late:
            if cause.incident is None:
                if cause.held:
                    loose.append((cause, rule, scope))
                continue
            found = cause.incident.survivor()
            if not found.closed and found.root.uid == cause.root.uid and found not in rooted:
                rooted.append(found)
        became_root = False
        if incident is not None:
            if incident in rooted and not causal:
                self._reroot(incident, own)
                became_root = True
            for other in rooted:
                if other is not incident:
                    incident = self._merge(incident, other)
        elif rooted:
            rooted.sort(key=lambda found: found.seq)
            incident = rooted[0]
            self._reroot(incident, own)
            became_root = True
            for other in rooted[1:]:
                incident = self._merge(incident, other)
        elif loose and (
            own.root.severity in self._problem
            or any(cause.root.severity in self._problem for cause, _, _ in loose)
        ):
            incident = self._open_incident(own, counted=False)
            self._emit(incident.transition(IncidentState.STARTED, own.root.time_ns))
            became_root = True
        if incident is None:
            return None, False
        for cause, rule, scope in loose:
            self._adopt(incident, cause, rule, scope)
        own.incident = incident
        return incident, became_root

    def _adopt(self, incident: Incident, cause: Cause, rule: str, scope: str) -> None:
        """Put a held Event in ``incident`` (its record leaves with the incident's id)."""
        root = cause.root
        cause.incident, cause.rule, cause.scope = incident, rule, scope
        _count(incident, cause)
        if root.time_ns < incident.first_seen_ns:
            incident.first_seen_ns = root.time_ns
        self.joins[rule] = self.joins.get(rule, 0) + 1
        self._found.append(cause)

    def _reroot(self, incident: Incident, cause: Cause) -> None:
        """``cause`` explains ``incident``'s root: it becomes the root, the id stays."""
        incident.root = cause.root
        cause.incident = incident
        if cause.root.time_ns < incident.first_seen_ns:
            incident.first_seen_ns = cause.root.time_ns
        self.reroots += 1

    def _merge(self, keep: Incident, other: Incident) -> Incident:
        """Merge two incidents one cause explains; the one opened first keeps its id.

        The root is ``keep``'s (the cause's incident). The other is announced as
        ``merged`` into the survivor, so every id already seen leads to it.
        """
        root = keep.root
        if other.seq < keep.seq:
            keep, other = other, keep
        keep.absorb(other)
        keep.root = root
        self._open.pop(other.id, None)
        self.merges += 1
        self._emit(other.transition(IncidentState.MERGED, self.high_water_ns))
        return keep

    def _open_incident(self, cause: Cause, *, counted: bool = True) -> Incident:
        """Open an incident rooted at ``cause``; ``counted``: the root is not this Event."""
        root = cause.root
        if len(self._open) >= self.max_incidents:
            oldest = next(iter(self._open.values()))
            self.evicted_incidents += 1
            self._resolve(oldest, self.high_water_ns)
        self._seq += 1
        incident = Incident(
            id=incident_id(root.uid, root.time_ns),
            root=root,
            first_seen_ns=root.time_ns,
            last_seen_ns=root.time_ns,
            severity=root.severity,
            seq=self._seq,
        )
        if counted:
            _count(incident, cause)
        self._open[incident.id] = incident
        cause.incident = incident
        if cause.held:
            self._found.append(cause)
        self._push_deadline(incident)
        return incident

    # -- Pods whose node is unknown ----------------------------------------------------

    def _note_sole(self, cause_rules: list[_Rule], node: str, t: int) -> None:
        """Remember the latest node with a cause of each ``sole_node`` rule, and when another
        node last had one."""
        for rule in cause_rules:
            if not rule.sole_node:
                continue
            state = self._sole.get(rule.index)
            if state is None:
                state = (node, t, -(1 << 62))
            elif state[0] == node:
                state = (node, max(state[1], t), state[2])
            elif t >= state[1]:
                state = (node, t, state[1])
            else:
                state = (state[0], state[1], max(state[2], t))
            self._sole[rule.index] = state

    def _sole_node(self, rule: _Rule, first: int, last: int) -> str:
        """The only node that had ``rule``'s cause within its window around [first, last],
        or "" (none, or more than one)."""
        state = self._sole.get(rule.index)
        if state is None:
            return ""
        node, latest, other = state
        window = rule.window_ns
        if latest < first - window or latest > last + window or other >= first - window:
            return ""
        return node

    def _sole_at(self, rule: _Rule, nodes: tuple[str, ...], first: int, last: int) -> bool:
        """True when the cause's node is the only one with ``rule``'s cause in the window."""
        return bool(nodes) and self._sole_node(rule, first, last) == nodes[0]

    def _place(self, effect_rules: list[_Rule], keys: dict[str, tuple[str, ...]], t: int) -> bool:
        """Give a Pod whose node is unknown the node its effect says it is on, if it can.

        Returns True when a ``sole_node`` rule could place it but no node (or more than
        one) had its cause yet: its traces then wait for the cause under :data:`UNPLACED`.
        """
        waiting = False
        for rule in effect_rules:
            if rule.sole_node:
                found = self._sole_node(rule, t, t)
                if found:
                    keys["node"] = (found,)
                    return False
                waiting = True
        return waiting

    # -- time --------------------------------------------------------------------------

    def _push_deadline(self, incident: Incident) -> None:
        self._seq += 1
        due = incident.last_seen_ns + self._quiet_ns
        heapq.heappush(self._deadlines, (due, self._seq, incident.id))

    def _advance(self, now_ns: int) -> None:
        self.high_water_ns = now_ns
        quiet = self._quiet_ns
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] < now_ns:
            _, _, incident_key = heapq.heappop(deadlines)
            incident = self._open.get(incident_key)
            if incident is None:
                continue
            due = incident.last_seen_ns + quiet
            if due >= now_ns:
                self._push_deadline(incident)
            else:
                self._resolve(incident, due)
        if now_ns - self._links_expired_ns >= self._links_sweep_ns:
            self._links_expired_ns = now_ns
            self._links.expire(now_ns - self._max_window_ns)

    def _resolve(self, incident: Incident, time_ns: int) -> None:
        incident.closed = True
        del self._open[incident.id]
        self._emit(incident.transition(IncidentState.RESOLVED, time_ns))

    def _root(self, event: KubeEvent, classification: Classification, obj: str) -> RootCause:
        """``event`` as a root cause candidate; ``obj`` is its object's key.

        A candidate may be kept for the life of its incident or latent link:
        its reason and namespace are shared copies (``sharing.py``), and its
        object the same string as the keys of the links it leaves (``ref.key``
        makes a new one at each call: about 85 bytes a candidate).
        """
        ref = event.regarding
        share = self.owners.share
        return RootCause(
            uid=event.key,
            reason=share.copy_of(event.reason),
            object=obj,
            namespace=share.copy_of(ref.namespace),
            time_ns=event.time_ns,
            category=classification.category,
            severity=classification.severity,
            first_ns=min(event.time_ns, event.first_time_ns or event.time_ns),
        )

    def _emit(self, transition: IncidentTransition) -> None:
        self.transition_counts[transition.state] += 1
        self._pending.append(transition)


def _scope_rank(rule: _Rule) -> int:
    return rule.scope_rank


def _by_scope_rank(rules: list[_Rule]) -> list[_Rule]:
    """``rules`` sorted by their narrowest scope, stably: ``rules`` itself when it is so
    already (most lists of a plan are: a call to ``sorted`` with a key function was 2% of
    the correlate stage, one per cause Event)."""
    for i in range(1, len(rules)):
        if rules[i].scope_rank < rules[i - 1].scope_rank:
            return sorted(rules, key=_scope_rank)
    return rules


def _gather(
    found: list[tuple[Cause, str, str]],
    seen: set[int],
    traced: Incident | Cause | Traced,
    low: int,
    high: int,
    uid: str,
    rule: str,
    scope: str,
) -> None:
    """Add to ``found`` the Events of a trace that a cause explains (see
    :meth:`Correlator._late`): seen between ``low`` and ``high``, not the cause's own Event
    (``uid``), and not found already (``seen``: their ids)."""
    if isinstance(traced, Traced):
        for cause in traced.causes:
            _take(found, seen, cause, low, high, uid, rule, scope)
    elif isinstance(traced, Cause):
        _take(found, seen, traced, low, high, uid, rule, scope)


def _take(
    found: list[tuple[Cause, str, str]],
    seen: set[int],
    cause: Cause,
    low: int,
    high: int,
    uid: str,
    rule: str,
    scope: str,
) -> None:
    """One Event of a trace, for :func:`_gather`."""
    root = cause.root
    if low <= root.time_ns <= high and root.uid != uid and id(cause) not in seen:
        seen.add(id(cause))
        found.append((cause, rule, scope))


def _overcome(
    overcome: tuple[frozenset[str], frozenset[str]], index: int, scope: str, root: RootCause
) -> bool:
    """True when a group link in ``scope`` leads to a root the Event shows to be over."""
    reasons, scopes = overcome
    return index == GROUP and scope in scopes and root.reason in reasons


def _count(incident: Incident, cause: Cause) -> None:
    """Count an Event that was seen before (a latent root, a held Event) in ``incident``."""
    root = cause.root
    incident.add(
        time_ns=root.time_ns,
        occurrences=cause.occurrences,
        category=root.category,
        severity=root.severity,
        workload=cause.workload,
        node=cause.node,
        namespace=root.namespace,
    )
