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
from kubevents.enrich.links import GROUP, Cause, Link, LinkIndex, LinkKey, scope_keys
from kubevents.enrich.owners import LEARNING_REASONS, WORKLOAD_KINDS, OwnerLookup, OwnerResolver
from kubevents.model import Classification, Correlation, KubeEvent, ObjectRef

PLAIN_MEMO: Final = 8192
"""Correlations of routine Events kept for reuse (about 600 B each, with their key)."""
_SECOND: Final = 1_000_000_000


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
    ) -> None:
        self.rules = rules
        self.owners = OwnerResolver(lookup, max_entries=max_owners)
        self.max_incidents = max_incidents
        self._open: dict[str, Incident] = {}
        """Open incidents by id, oldest first."""
        self._by_root: dict[str, Incident] = {}
        """Open incidents by root cause uid: latent links find what their cause opened."""
        self._deadlines: list[tuple[int, int, str]] = []
        self._links = LinkIndex(max_entries=max_links)
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
        self.transition_counts: dict[str, int] = {state.value: 0 for state in IncidentState}
        """Transitions emitted so far, by state."""
        self.joins: dict[str, int] = {}
        """Events that joined an incident (or opened one from a latent link), by the rule
        of the link they followed (``group`` for group links)."""

    @property
    def open_incidents(self) -> int:
        """Incidents currently open."""
        return len(self._open)

    def open_counts(self) -> list[tuple[dict[str, str], int]]:
        """Open incidents by root-cause category and incident severity: any thread.

        A copy of the open set is taken first (atomic under the GIL), so a scrape
        never iterates the dict the pipeline thread is changing.
        """
        counts: dict[tuple[str, str], int] = {}
        for incident in list(self._open.values()):
            key = (incident.root.category.value, incident.severity.value)
            counts[key] = counts.get(key, 0) + 1
        return [
            ({"kubevents_category": category, "kubevents_severity": severity}, n)
            for (category, severity), n in sorted(counts.items())
        ]

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
        """The correlation IDs of one Event update; may open or grow an incident."""
        t = event.time_ns
        if t > self.high_water_ns:
            self._advance(t)
        resolver = self.owners
        reason = event.reason
        if reason in LEARNING_REASONS:
            resolver.learn(event)
        ref = event.regarding
        owners = resolver.owners(ref)
        node = resolver.node(event)
        subject = ref if not owners and ref.kind in WORKLOAD_KINDS and ref.name else None
        rules = self.rules
        causes = rules.causes_by_reason.get(reason)
        effects = rules.effects_by_reason.get(reason)
        severity = classification.severity
        problem = severity in rules.problem_severities
        if not problem and causes is None and effects is None:
            # The common case: routine, and no rule names it. Its IDs are those of the
            # last such Event about the same object, most of the time: reuse them.
            memo_key = (ref.namespace, ref.kind, ref.name, node)
            plain = self._plain.get(memo_key)
            if plain is None or plain.owners is not owners:
                plain = self._memoize(ref, node, owners, subject)
            return plain
        obj = ref.key
        top = owners[-1] if owners else subject
        workload = top.key if top is not None else ""
        keys = scope_keys(
            event,
            obj,
            workload,
            node,
            volumes=reason in rules.volume_reasons or (problem and rules.group_volumes),
        )
        category = classification.category
        cause_links: list[tuple[LinkKey, int]] = []
        is_cause = False
        for rule in causes or ():
            if rule.cause.matches(event, category) and rule.cause.matches_message(event.message):
                is_cause = True
                cause_links += [
                    ((rule.index, scope, key), rule.window_ns)
                    for scope in rule.join
                    for key in keys[scope]
                ]
        window = rules.defaults.window_ns
        group_links = [
            ((GROUP, scope, key), window) for scope in rules.defaults.group for key in keys[scope]
        ]
        chosen, index, lone = self._follow(
            event, keys, category, effects, cause_links, group_links, problem
        )
        incident: Incident | None = None
        opened = is_root = False
        if chosen is None and problem and not is_cause:
            chosen = lone  # a second problem Event of the same scope: the first is the root
        if chosen is not None:
            via = rules.ids_by_index.get(index, "group")
            self.joins[via] = self.joins.get(via, 0) + 1
            followed = chosen.target
            if isinstance(followed, Incident):
                incident = followed
            else:  # a latent link: open its incident now
                incident = self._open_incident(followed)
                opened = True
        elif problem and is_cause:
            root = self._root(event, classification)
            incident = self._open_incident(Cause(root, 0, "", "", True), counted=False)
            opened = is_root = True
        target: Incident | Cause | None = incident
        if incident is not None:
            grew = incident.add(
                time_ns=t,
                occurrences=occurrences,
                category=category,
                severity=severity,
                workload=workload,
                node=node,
                namespace=resolver.share(ref.namespace),  # kept while the incident is open
            )
            if opened:
                self._emit(incident.transition(IncidentState.STARTED, t))
            elif grew:
                self._emit(incident.transition(IncidentState.ONGOING, t))
        elif cause_links or problem:
            target = Cause(self._root(event, classification), occurrences, workload, node, is_cause)
        if target is not None:
            links = self._links
            for key, link_window in cause_links:
                links.put(key, t, link_window, target)
            if incident is not None or problem:
                for key, link_window in group_links:
                    links.put(key, t, link_window, target)
        return Correlation(
            object=obj,
            owners=owners,
            node=node,
            incident_id=incident.id if incident is not None else "",
            root_cause=is_root,
            subject=subject,
        )

    def _memoize(
        self, ref: ObjectRef, node: str, owners: tuple[ObjectRef, ...], subject: ObjectRef | None
    ) -> Correlation:
        """The IDs of a routine Event, remembered for the next one about the same object.

        The memo holds thousands of entries, so its namespace, kind and node
        names are shared copies (``sharing.py``) rather than the Event's own.
        """
        if len(self._plain) >= PLAIN_MEMO:
            self._plain.clear()
        share = self.owners.share
        node = share(node)
        plain = Correlation(object=ref.key, owners=owners, node=node, subject=subject)
        self._plain[(share(ref.namespace), share(ref.kind), ref.name, node)] = plain
        return plain

    def expire(self, now_ns: int) -> None:
        """Move "now" to ``now_ns`` (the pipeline's clock): resolve what has been quiet."""
        if now_ns > self.high_water_ns:
            self._advance(now_ns)

    def transitions(self) -> list[IncidentTransition]:
        """Drain the transitions produced since the last call, in order."""
        pending, self._pending = self._pending, []
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
        category: Category,
        effects: tuple[CausalRule, ...] | None,
        cause_links: list[tuple[LinkKey, int]],
        group_links: list[tuple[LinkKey, int]],
        problem: bool,
    ) -> tuple[Link | None, int, Link | None]:
        """The link to follow (and its rule index), and the earliest lone problem Event.

        The link to follow leads to an open incident or to a latent cause; of
        several, the one whose cause came first. A lone problem Event of the
        same scope (a latent group link) is returned apart: it only opens an
        incident for an Event that is not a cause itself.
        """
        links = self._links
        live = links.live
        candidates: list[tuple[Link, int, int]] = []
        for rule in effects or ():
            if not live.get(rule.index):
                continue
            found = [
                (link, rule.window_ns, rule.index)
                for scope in rule.join
                for key in keys[scope]
                if (link := links.get((rule.index, scope, key))) is not None
            ]
            # The side's conditions (and its message regex) only run when a link exists.
            if (
                found
                and rule.effect.matches(event, category)
                and rule.effect.matches_message(event.message)
            ):
                candidates += found
        for link_key, window in (*cause_links, *group_links) if problem else cause_links:
            if live.get(link_key[0]):
                link = links.get(link_key)
                if link is not None:
                    candidates.append((link, window, link_key[0]))
        t = event.time_ns
        best = lone = None
        best_index = GROUP
        best_rank = lone_rank = (0, "")
        for link, window, index in candidates:
            if abs(t - link.time_ns) > window:
                continue
            target = link.target
            if isinstance(target, Cause):
                opened = self._by_root.get(target.root.uid)
                if opened is not None:  # its Event opened an incident since
                    link.target = target = opened
            if isinstance(target, Incident):
                if target.closed:
                    continue
                rank = (target.first_seen_ns, target.id)
            elif problem:
                rank = (target.root.time_ns, target.root.uid)
                if not target.is_cause:
                    if lone is None or rank < lone_rank:
                        lone, lone_rank = link, rank
                    continue
            else:
                continue
            if best is None or rank < best_rank:
                best, best_rank, best_index = link, rank, index
        return best, best_index, lone

    def _open_incident(self, cause: Cause, *, counted: bool = True) -> Incident:
        """Open an incident rooted at ``cause``; ``counted``: the root is not this Event."""
        root = cause.root
        if len(self._open) >= self.max_incidents:
            oldest = next(iter(self._open.values()))
            self.evicted_incidents += 1
            self._resolve(oldest, self.high_water_ns)
        incident = Incident(
            id=incident_id(root.uid, root.time_ns),
            root=root,
            first_seen_ns=root.time_ns,
            last_seen_ns=root.time_ns,
            severity=root.severity,
        )
        if counted:
            incident.add(
                time_ns=root.time_ns,
                occurrences=cause.occurrences,
                category=root.category,
                severity=root.severity,
                workload=cause.workload,
                node=cause.node,
                namespace=root.namespace,
            )
        self._open[incident.id] = incident
        self._by_root[root.uid] = incident
        self._push_deadline(incident)
        return incident

    # -- time --------------------------------------------------------------------------

    def _push_deadline(self, incident: Incident) -> None:
        self._seq += 1
        due = incident.last_seen_ns + self.rules.defaults.quiet_ns
        heapq.heappush(self._deadlines, (due, self._seq, incident.id))

    def _advance(self, now_ns: int) -> None:
        self.high_water_ns = now_ns
        quiet = self.rules.defaults.quiet_ns
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
            self._links.expire(now_ns - self.rules.max_window_ns)

    def _resolve(self, incident: Incident, time_ns: int) -> None:
        incident.closed = True
        del self._open[incident.id]
        if self._by_root.get(incident.root.uid) is incident:
            del self._by_root[incident.root.uid]
        self._emit(incident.transition(IncidentState.RESOLVED, time_ns))

    def _root(self, event: KubeEvent, classification: Classification) -> RootCause:
        """``event`` as a root cause candidate.

        A candidate may be kept for the life of its incident or latent link:
        its reason and namespace are shared copies (``sharing.py``).
        """
        ref = event.regarding
        share = self.owners.share
        return RootCause(
            uid=event.key,
            reason=share(event.reason),
            object=ref.key,
            namespace=share(ref.namespace),
            time_ns=event.time_ns,
            category=classification.category,
            severity=classification.severity,
        )

    def _emit(self, transition: IncidentTransition) -> None:
        self.transition_counts[transition.state.value] += 1
        self._pending.append(transition)
