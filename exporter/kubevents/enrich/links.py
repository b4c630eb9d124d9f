"""Links: what earlier Events left behind for later ones to join.

A link is keyed by (rule index, scope, key): ``(3, "node", "node-4")`` is
"rule 3 saw a cause on node-4", ``(GROUP, "workload", "shop/Deployment/web")``
is "an incident holds an Event of that workload". It points to an open
incident, or, when none exists yet, to a *latent* cause: the Event that will
be the root cause if something follows it (see ``correlate.py``).

:class:`LinkIndex` keeps them in plain dicts updated in place, one per rule
and scope (an ``OrderedDict`` kept in update order cost about 50 bytes more
per link):
links whose window has passed are swept in one pass when the correlator asks
(every 64th of the longest window of event time; a link found before that is
checked against its window anyway), and the count cap drops the 64th of the
links updated longest ago at once (what it drops is counted). It tells, per
rule, whether it holds any link at all: a rule with no live cause is skipped
without building a single key, which is the usual case.
"""

from __future__ import annotations

import heapq
import re
from typing import Final

from kubevents.enrich.incidents import Incident, RootCause
from kubevents.model import KubeEvent

GROUP: Final = -1
"""The rule index of group links."""


def trace_index(rule_index: int) -> int:
    """The index of the *traces* of a rule: its effects, kept for a cause that comes late.

    Traces live in the same index as links, under a negative rule index
    (``-2`` for rule 0, ``-3`` for rule 1...), so one sweep and one cap cover both.
    """
    return -2 - rule_index


SCOPE_RANK: Final = {"object": 0, "volume": 1, "workload": 2, "node": 3, "namespace": 4}
"""Narrower scopes first: of two links, the narrower one explains an Event better."""

LinkKey = tuple[int, str, str]
"""(rule index or :data:`GROUP`, scope, key)."""

_VOLUME = re.compile(r'(?i)\b(?:volume|persistentvolumeclaim|claim) "([^"\s]+)"')


class Cause:
    """An Event that is no incident's member (yet): a latent cause, a lone problem
    Event, an effect whose cause has not come, or an incident's root.

    Links to it are *latent*: they lead to its incident once it has one. Its
    record may be *held* by the pipeline for a short settle time, so that a
    cause arriving late still puts it in an incident before it leaves.

    A plain class rather than a dataclass, like :class:`Link` and :class:`Traced`:
    one is made for most problem Events, and in the compiled build a dataclass's
    generated ``__init__`` stays interpreted Python, this one is compiled.
    """

    __slots__ = (
        "held",
        "incident",
        "is_cause",
        "node",
        "occurrences",
        "root",
        "rule",
        "scope",
        "workload",
    )

    def __init__(
        self, root: RootCause, occurrences: int, workload: str, node: str, is_cause: bool
    ) -> None:
        self.root = root
        self.occurrences = occurrences
        self.workload = workload
        self.node = node
        self.is_cause = is_cause
        """It matched a rule's cause; else it is a lone problem Event or a rule's effect."""
        self.incident: Incident | None = None
        """The incident it opened, was the root of, or was adopted into."""
        self.held = False
        """Its record is held by the pipeline until it settles."""
        self.rule = ""
        """The rule that adopted it into its incident (empty for a root)."""
        self.scope = ""
        """The scope of the link or trace that adopted it."""


MAX_TRACED: Final = 32
"""Effects one trace remembers (the newest; a node with more unexplained effects in one
window keeps the latest 32)."""


class Traced:
    """The Events no cause explains yet, of one rule's effect side in one scope (two or
    more: a trace of one points to its :class:`Cause`)."""

    __slots__ = ("causes",)

    def __init__(self, causes: list[Cause]) -> None:
        self.causes = causes


class Link:
    """Where a later Event of the same rule and scope goes."""

    __slots__ = ("seq", "target", "time_ns")

    def __init__(self, time_ns: int, target: Incident | Cause | Traced, seq: int) -> None:
        self.time_ns = time_ns
        """Event time of the latest Event that left or refreshed the link."""
        self.target = target
        """The open incident, or the latent :class:`Cause` while there is none.

        One field for the two: a link points to one or the other, and a field
        less makes each of up to ``max_links`` links 16 bytes smaller."""
        self.seq = seq
        """When its key came into the index: of links updated at the same time, the
        count cap drops the one whose key came first."""

    @property
    def latent(self) -> bool:
        """True while the link points to a cause that opened no incident (yet)."""
        return isinstance(self.target, Cause) and self.target.incident is None


class LinkIndex:
    """Links by key, capped by count (the least recently updated go first).

    One table per (rule index, scope), keyed by the key alone: a dict keyed by
    the whole (rule index, scope, key) tuple kept a tuple of 64 bytes per link
    (and, for a trace index below -5, an int of 28 more), about 8 MiB of the
    118,000 links on the 100k-object stream.
    """

    def __init__(self, *, max_entries: int) -> None:
        self.max_entries = max_entries
        self._tables: dict[tuple[int, str], dict[str, Link]] = {}
        self._count = 0
        self._seq = 0
        self._oldest_ns: int | None = None
        """No link was updated before this (a lower bound; None while empty)."""
        self.live: dict[int, int] = {}
        """Links held per rule index (read it directly on the hot path; only this class writes)."""
        self.evicted = 0
        """Links dropped because of ``max_entries`` before their window ended."""

    def __len__(self) -> int:
        return self._count

    def has(self, index: int) -> bool:
        """True when rule ``index`` (or :data:`GROUP`) holds any link."""
        return bool(self.live.get(index))

    def get(self, key: LinkKey) -> Link | None:
        """The link under ``key``, if any."""
        table = self._tables.get((key[0], key[1]))
        return table.get(key[2]) if table is not None else None

    def table(self, index: int, scope: str) -> dict[str, Link]:
        """The links of rule ``index`` in ``scope``, by key (made empty when there is none).

        A table lives as long as the index: the correlator keeps the tables of
        each rule and looks keys up in them directly (read only; write through
        :meth:`put_in` and :meth:`trace_in`), without making a key tuple per lookup.
        """
        table = self._tables.get((index, scope))
        if table is None:
            table = self._tables[(index, scope)] = {}
        return table

    def put(
        self, key: LinkKey, time_ns: int, window_ns: int, target: Incident | Cause | Traced
    ) -> None:
        """Leave a link to ``target`` (an incident, or a latent cause) under ``key``.

        A link to the same incident (or any latent link, when ``target`` is
        latent) still within its window slides: it keeps its first cause and
        takes the newer time.
        """
        index, scope, value = key
        self.put_in(self.table(index, scope), index, value, time_ns, window_ns, target)

    def put_in(
        self,
        table: dict[str, Link],
        index: int,
        value: str,
        time_ns: int,
        window_ns: int,
        target: Incident | Cause | Traced,
    ) -> None:
        """:meth:`put` into ``table``, :meth:`table` ``(index, scope)``, under ``value``."""
        link = table.get(value)
        if (
            link is not None
            and (
                link.target is target
                or (link.latent and isinstance(target, Cause))
                or (isinstance(link.target, Cause) and link.target.incident is target)
            )
            and abs(time_ns - link.time_ns) <= window_ns
        ):
            if time_ns > link.time_ns:
                link.time_ns = time_ns
                current = link.target
                if (
                    isinstance(target, Cause)
                    and isinstance(current, Cause)
                    and current.incident is None
                    and target.is_cause
                    and current.is_cause
                    and current.root.uid != target.root.uid
                ):
                    # A newer latent cause of the same rule (the Deployment's next
                    # scale-up) is the nearer explanation of what follows.
                    link.target = target
            return
        if self._oldest_ns is None or time_ns < self._oldest_ns:
            self._oldest_ns = time_ns
        if link is None:
            self.live[index] = self.live.get(index, 0) + 1
            self._count += 1
            self._seq += 1
            table[value] = Link(time_ns, target, self._seq)
        else:  # the key keeps its place
            table[value] = Link(time_ns, target, link.seq)
        if self._count > self.max_entries:
            self._evict(self._count - self.max_entries + self.max_entries // 64)

    def trace(self, key: LinkKey, time_ns: int, cause: Cause) -> None:
        """Remember ``cause`` (an Event no cause explains yet) under a trace ``key``.

        A trace of one Event points to its :class:`Cause` itself (most traces
        hold one: a list and its holder cost about 100 bytes more each); the
        second Event makes it a :class:`Traced`.
        """
        index, scope, value = key
        self.trace_in(self.table(index, scope), index, value, time_ns, cause)

    def trace_in(
        self, table: dict[str, Link], index: int, value: str, time_ns: int, cause: Cause
    ) -> None:
        """:meth:`trace` into ``table``, :meth:`table` ``(index, scope)``, under ``value``."""
        link = table.get(value)
        if link is None:
            self.put_in(table, index, value, time_ns, 0, cause)
            return
        target = link.target
        if isinstance(target, Traced):
            causes = target.causes
            if causes[-1] is not cause:  # identity: one Event traces once per key
                causes.append(cause)
                if len(causes) > MAX_TRACED:
                    del causes[0]
        elif target is not cause:
            link.target = Traced([target, cause]) if isinstance(target, Cause) else Traced([cause])
        if time_ns > link.time_ns:
            link.time_ns = time_ns

    def expire(self, cutoff_ns: int) -> None:
        """Forget the links not updated since ``cutoff_ns`` (one pass, when there are any)."""
        if self._oldest_ns is None or self._oldest_ns >= cutoff_ns:
            return
        oldest: int | None = None
        for (index, _), table in self._tables.items():
            expired = [value for value, link in table.items() if link.time_ns < cutoff_ns]
            for value in expired:
                del table[value]
            self._forget(index, len(expired))
            for link in table.values():
                if oldest is None or link.time_ns < oldest:
                    oldest = link.time_ns
        self._oldest_ns = oldest

    def _evict(self, n: int) -> None:
        """Drop the ``n`` links updated longest ago (ties: the key that came first)."""
        entries = (  # a generator: nsmallest keeps only the n it returns
            (link.time_ns, link.seq, table_key, value)
            for table_key, table in self._tables.items()
            for value, link in table.items()
        )
        oldest = heapq.nsmallest(n, entries)
        for _, _, (index, scope), value in oldest:
            del self._tables[(index, scope)][value]
            self._forget(index, 1)
        self.evicted += len(oldest)

    def _forget(self, index: int, n: int) -> None:
        """Count ``n`` dropped links of rule ``index`` out of :attr:`live`."""
        if n:
            self.live[index] -= n
            self._count -= n


def volume_keys(event: KubeEvent) -> tuple[str, ...]:
    """``namespace/name`` of the volumes and claims an Event is about.

    The PersistentVolumeClaim itself for Events about one, and every
    ``volume "X"`` / ``persistentvolumeclaim "X"`` its message names. A Pod's
    own volume names (``unmounted volumes=[data]``) are local to the Pod and
    not used: the object scope covers them.
    """
    ref = event.regarding
    namespace = ref.namespace or event.namespace
    message = event.message
    # Substring tests first: the regex runs only on messages that name a volume or claim
    # (and a message with no quote at all, most of them, is looked through once).
    names = (
        _volume_names(message)
        if '"' in message and ('olume "' in message or 'laim "' in message)
        else ()
    )
    if ref.kind == "PersistentVolumeClaim" and ref.name:
        names = (*names, ref.name)
    if not names:  # most Events
        return ()
    if len(names) == 1:
        return (f"{namespace}/{names[0]}",)
    return tuple(sorted({f"{namespace}/{name}" for name in names}))


VOLUME_MESSAGES: Final = 256
"""Messages whose volume names :func:`_volume_names` keeps (emptied when full)."""
_volume_memo: Final[dict[str, tuple[str, ...]]] = {}


def _volume_names(message: str) -> tuple[str, ...]:
    """The names :data:`_VOLUME` finds in ``message``, remembered for the next Event that
    says the same: the kubelet repeats its mount failures (on the bench's stream 2,615
    messages that name a volume were 926 distinct texts), and the case-insensitive search
    of a long message was most of the cost of :func:`volume_keys`."""
    names = _volume_memo.get(message)
    if names is None:
        if len(_volume_memo) >= VOLUME_MESSAGES:
            _volume_memo.clear()
        names = _volume_memo[message] = tuple(_VOLUME.findall(message))
    return names


def scope_keys(
    keys: dict[str, tuple[str, ...]],
    event: KubeEvent,
    obj: str,
    workload: str,
    node: str,
    *,
    volumes: bool,
) -> None:
    """Set ``keys`` to the keys of one Event in each scope (none when unknown); volumes
    only when asked.

    The correlator fills the same dict for every Event (it keeps none past the call): a
    dict made and freed per Event was a few percent of its time.
    """
    namespace = event.regarding.namespace
    keys["object"] = (obj,) if event.regarding.name else ()
    keys["workload"] = (workload,) if workload else ()
    keys["node"] = (node,) if node else ()
    keys["namespace"] = (namespace,) if namespace else ()
    keys["volume"] = volume_keys(event) if volumes else ()
