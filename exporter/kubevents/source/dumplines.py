"""The replay's two passes over a watch dump, a block of lines at a time, compiled.

The replay reads each file twice (``ordering``): the first pass keeps each update's
occurrence time, counts, and checks whether the file is in order (:class:`Scan`); the
second normalizes the Events again, in the file's order (:class:`Normalized`). Nearly every
line of a watch dump is an ADDED, MODIFIED or DELETED of an Event, and both passes used to
take each one through generators and interpreted calls. Here each pass takes the blocks of
lines ``replaying`` reads (a read's lines at a time) in one loop (:class:`Lines`): the
parse, the shape of an update, and the pass's work on it (a method call: native code).
Every other line (invalid JSON, another shape of document) goes the general way,
``replaying``'s, with the same problems. ``replaying``'s own reader of a watch dump's
lines is that loop too (:class:`Entries`).

This module is in ``setup.py``'s ``HOT_PATH``; compiled code reads module constants as
built, so nothing here reads one that a test patches: ``ordering.WINDOW`` is passed in.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import orjson

from kubevents.model import KubeEvent
from kubevents.normalize import NotAnEvent, normalize, parse_time_ns
from kubevents.source.replaying import Entry, Problem, Report, document_entries

_UPDATES = frozenset({"ADDED", "MODIFIED", "DELETED"})
"""The watch types that carry an Event (what ``replaying``'s general way yields of a watch
line)."""

T = TypeVar("T")


def occurrence_ns(raw: dict[str, Any]) -> int:
    """``normalize(raw).time_ns`` without building the Event: ``series.lastObservedTime >
    eventTime > lastTimestamp > firstTimestamp > creationTimestamp`` (the v1 names or
    the core/v1 ones, as ``normalize`` picks them). Absent fields (None) are passed
    over without a call: this runs once per line of every replayed file."""
    series = raw.get("series")
    if isinstance(series, dict) and (found := parse_time_ns(series.get("lastObservedTime"))):
        return found
    value = raw.get("eventTime")
    if value is not None and (found := parse_time_ns(value)):
        return found
    v1 = "regarding" in raw or "note" in raw or raw.get("apiVersion") == "events.k8s.io/v1"
    last, first = (
        ("deprecatedLastTimestamp", "deprecatedFirstTimestamp")
        if v1
        else ("lastTimestamp", "firstTimestamp")
    )
    meta = raw.get("metadata")
    return (
        parse_time_ns(raw.get(last))
        or parse_time_ns(raw.get(first))
        or (parse_time_ns(meta.get("creationTimestamp")) if isinstance(meta, dict) else None)
        or 0
    )


class WindowCheck:
    """Whether a sequence of times, fed one by one, is sorted by a window of ``window``:
    no time comes after a larger one has had to leave the window.

    While the times come in order (a watch dump), only the last ``window + 1`` are kept,
    in a ring: in order, those are the window's heap (a sorted list is a heap) and the
    one that left last, the largest that left. The heap is built from them at the first
    time out of order, and from then on every time goes through it."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._heap: list[int] = []
        self._ring: list[int] = []
        """The last ``window + 1`` times while every time is at least the one before."""
        self._next = 0
        """Where the next time goes in the ring once it is full (its oldest)."""
        self._sorted = True
        self._left = -(1 << 63)
        self._last = -(1 << 63)
        self.ok = True
        self.in_order = True
        """Every time at least the one before: no window needed at all."""

    def add(self, time_ns: int) -> None:
        if self._sorted:
            if time_ns >= self._last:
                self._last = time_ns
                ring = self._ring
                if len(ring) <= self._window:
                    ring.append(time_ns)
                else:
                    ring[self._next] = time_ns
                    self._next = 0 if self._next == self._window else self._next + 1
                return
            self._sorted = False
            kept = self._ring[self._next :] + self._ring[: self._next]  # oldest first
            self._ring = []
            if len(kept) > self._window:
                self._left = kept.pop(0)
            self._heap = kept
        if time_ns < self._last:
            self.in_order = False
        self._last = time_ns
        if time_ns < self._left:
            self.ok = False
        if not self.ok:
            return
        if len(self._heap) < self._window:
            heapq.heappush(self._heap, time_ns)
        else:
            self._left = max(self._left, heapq.heappushpop(self._heap, time_ns))


class Lines(Generic[T]):
    """One loop over a watch dump's lines, a block at a time, for each reader of them: the
    parse, the problem of a line that is not JSON, and the shape of a line that carries
    an update of an Event, which goes to :meth:`update`; every other document goes to
    :meth:`others`. A reader yields what the two give back."""

    def lines(self, blocks: Iterable[list[bytes]], name: str, report: Report) -> Iterator[T]:
        """A watch dump's lines (``replaying.read_file``'s ``lines``)."""
        loads = orjson.loads
        number = 0
        for block in blocks:
            for line in block:
                number += 1
                if not line or line.isspace():  # ``not line.strip()`` without copying the line
                    continue
                try:
                    document = loads(line)
                except orjson.JSONDecodeError as e:
                    report(Problem(f"{name}:{number}", f"invalid JSON: {e}"))
                    continue
                # A watch dump's line, as ``replaying``'s general way takes it, without its
                # calls: an update of an Event. Every other document goes the general way.
                if isinstance(document, dict):
                    obj = document.get("object")
                    watch_type = document.get("type")
                    if (
                        isinstance(obj, dict)
                        and isinstance(watch_type, str)  # a JSON value: may be unhashable
                        and watch_type in _UPDATES
                        and (
                            obj.get("kind") == "Event"
                            or "involvedObject" in obj
                            or "regarding" in obj
                        )
                    ):
                        taken = self.update(obj, watch_type, number)
                        if taken is not None:
                            yield taken
                        continue
                yield from self.others(document, number, name, report)

    def update(self, obj: dict[str, Any], watch_type: str, number: int) -> T | None:
        """An update of an Event on line ``number``: what the reader yields of it, if any."""
        raise NotImplementedError

    def others(self, document: object, number: int, name: str, report: Report) -> Iterable[T]:
        """Any other document, on line ``number``: what the reader yields of its Events."""
        raise NotImplementedError


class Entries(Lines[Entry]):
    """Every Event of a watch dump's lines as ``replaying.read_entries`` gives it: an
    update as ``(obj, watch_type, line number)``, any other document's Events as
    ``replaying.document_entries`` reads them (see :data:`~replaying.Entry`)."""

    def update(self, obj: dict[str, Any], watch_type: str, number: int) -> Entry | None:
        return obj, watch_type, number

    def others(self, document: object, number: int, name: str, report: Report) -> Iterable[Entry]:
        return document_entries(document, number, name, report)


class Scan(Entries):
    """The first pass over one file: its Events counted, its latest occurrence time and
    whether it is in order (``check``). :meth:`lines` takes a watch dump's updates
    itself; the caller gives :meth:`add` every other Event the file holds (what
    :meth:`lines` yields)."""

    def __init__(self, check: WindowCheck, latest_ns: int) -> None:
        self.check = check
        self.latest_ns = latest_ns
        """The latest occurrence time so far (of this file and the ones before it)."""
        self.found = 0
        self.updates = 0
        self.deletions = 0

    def add(self, obj: dict[str, Any], watch_type: str) -> None:
        """One Event of the file (``watch_type``: DELETED, another, or empty)."""
        self.update(obj, watch_type, 0)

    def update(self, obj: dict[str, Any], watch_type: str, number: int) -> Entry | None:
        """:meth:`add`, and nothing to yield (a call less a line than :meth:`add` from it)."""
        self.found += 1
        time_ns = occurrence_ns(obj)
        if time_ns > self.latest_ns:
            self.latest_ns = time_ns
        if watch_type == "DELETED":
            self.deletions += 1
        else:
            self.updates += 1
            self.check.add(time_ns)
        return None


Repaired = Callable[[KubeEvent, "str | int"], None]
"""Told of each Event normalize repaired, with where it came from (an :data:`Entry`'s)."""


class Normalized(Lines[KubeEvent]):
    """The second pass over one file: its Events normalized, in the file's order; the
    deletions go to ``deleted`` (replayed after every update), the updates are yielded
    (:meth:`lines`, a watch dump's lines; :meth:`entries`, the Events of any other file)."""

    def __init__(self, deleted: Callable[[KubeEvent], None], repaired: Repaired) -> None:
        self._deleted = deleted
        self._repaired = repaired

    def update(self, obj: dict[str, Any], watch_type: str, number: int) -> KubeEvent | None:
        event = normalize(obj)
        if event.repairs:
            self._repaired(event, number)
        if watch_type == "DELETED":
            self._deleted(event)
            return None
        return event

    def others(
        self, document: object, number: int, name: str, report: Report
    ) -> Iterable[KubeEvent]:
        return self.entries(document_entries(document, number, name, report))

    def entries(self, entries: Iterable[Entry]) -> Iterator[KubeEvent]:
        """Events read any other way (``replaying.read_file``'s ``entries``); what is not
        an Event is passed over (the first pass reported it)."""
        for obj, watch_type, where in entries:
            try:
                event = normalize(obj)
            except NotAnEvent:
                continue
            if event.repairs:
                self._repaired(event, where)
            if watch_type == "DELETED":
                self._deleted(event)
            else:
                yield event
