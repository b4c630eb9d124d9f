"""Replay order in bounded memory: Events sorted by occurrence time, whatever the input's size.

A replayed file is read twice. The first pass keeps only each update's occurrence time
(:func:`occurrence_ns`, orjson's parse and no Event built) and checks whether the file is
*nearly in order*: whether a reorder window of :data:`WINDOW` Events puts it in sorted
order (:class:`WindowCheck`; a watch dump is, in arrival order). Those two, and each pass's
loop over a watch dump's lines, are compiled code in ``dumplines``: this module's constants
stay patchable by tests. The second pass reads
the Events again and streams them through that window (:func:`windowed`), so no more
than :data:`WINDOW` Events are held. A file that is not nearly in order is sorted on
disk instead (:func:`sorted_on_disk`): sorted runs of :data:`RUN` Events in a temporary
file, merged. Both give exactly the order of a stable sort by ``time_ns``: Events of the
same time keep their order in the file.
"""

from __future__ import annotations

import dataclasses
import heapq
import marshal
import tempfile
from collections.abc import Iterable, Iterator
from typing import IO, Any

from kubevents.model import KubeEvent, ObjectRef
from kubevents.source.dumplines import WindowCheck, occurrence_ns

__all__ = [
    "BLOCK",
    "FAN_IN",
    "RUN",
    "WINDOW",
    "Spool",
    "WindowCheck",
    "occurrence_ns",
    "sorted_on_disk",
    "windowed",
]

WINDOW = 4096
"""Events a nearly-in-order file may be out of place by (about 6 MiB of Events)."""

RUN = 8192
"""Events sorted in memory at a time when a file is sorted on disk."""

BLOCK = 256
"""Events written and read back at a time from a run on disk."""

FAN_IN = 16
"""Runs merged at once; more are merged into longer runs first."""


def windowed(events: Iterable[KubeEvent], window: int | None = None) -> Iterator[KubeEvent]:
    """``events`` in occurrence order through a window of ``window`` (default
    :data:`WINDOW`; exact when :class:`WindowCheck` said so for their times)."""
    window = WINDOW if window is None else window
    heap: list[tuple[int, int, KubeEvent]] = []
    for seq, event in enumerate(events):
        if len(heap) < window:
            heapq.heappush(heap, (event.time_ns, seq, event))
        else:
            yield heapq.heappushpop(heap, (event.time_ns, seq, event))[2]
    while heap:
        yield heapq.heappop(heap)[2]


_FIELDS = [f.name for f in dataclasses.fields(KubeEvent)]
_REF_FIELDS = [f.name for f in dataclasses.fields(ObjectRef)]
_REFS = {"regarding", "related"}


def _pack(event: KubeEvent) -> tuple[Any, ...]:
    values: list[Any] = []
    for name in _FIELDS:
        value = getattr(event, name)
        if name in _REFS and value is not None:
            value = tuple(getattr(value, f) for f in _REF_FIELDS)
        values.append(value)
    return tuple(values)


def _unpack(values: tuple[Any, ...]) -> KubeEvent:
    fields = dict(zip(_FIELDS, values, strict=True))
    for name in _REFS:
        if fields[name] is not None:
            fields[name] = ObjectRef(*fields[name])
    return KubeEvent(**fields)


class Spool:
    """Events kept in order on disk (a temporary file, gone when closed)."""

    def __init__(self) -> None:
        self._file: IO[bytes] | None = None
        self._block: list[tuple[Any, ...]] = []
        self.count = 0

    def add(self, event: KubeEvent) -> None:
        self._block.append(_pack(event))
        self.count += 1
        if len(self._block) >= BLOCK:
            self._flush()

    def _flush(self) -> None:
        if not self._block:
            return
        if self._file is None:  # made when needed: a file without deletions makes none
            self._file = tempfile.TemporaryFile(prefix="kubevents-replay-")  # noqa: SIM115
        marshal.dump(self._block, self._file)
        self._block = []

    def __iter__(self) -> Iterator[KubeEvent]:
        """The Events, in the order they were added (the spool is closed after)."""
        if self._file is None:
            yield from (_unpack(values) for values in self._block)
            return
        self._flush()
        file = self._file
        file.seek(0)
        with file:
            while True:
                try:
                    block = marshal.load(file)
                except EOFError:
                    return
                for values in block:
                    yield _unpack(values)


def sorted_on_disk(events: Iterable[KubeEvent]) -> Iterator[KubeEvent]:
    """``events`` stably sorted by ``time_ns``, holding about :data:`RUN` Events."""
    runs: list[Spool] = []
    run: list[KubeEvent] = []
    for event in events:
        run.append(event)
        if len(run) >= RUN:
            runs.append(_spooled(run))
            run = []
    if not runs:
        run.sort(key=_time)
        run.reverse()
        while run:  # each Event let go once it is out
            yield run.pop()
        return
    # The last run goes to disk too: merged from memory, all of it stayed alive (a list
    # keeps what has been read from it) until the end of the replay.
    runs.append(_spooled(run))
    del run
    while len(runs) > FAN_IN:
        runs = [
            _spooled(heapq.merge(*runs[i : i + FAN_IN], key=_time))
            for i in range(0, len(runs), FAN_IN)
        ]
    # heapq.merge is stable: on equal times the earlier run (the earlier Event) comes first.
    yield from heapq.merge(*runs, key=_time)


def _spooled(events: Iterable[KubeEvent]) -> Spool:
    spool = Spool()
    for event in sorted(events, key=_time) if isinstance(events, list) else events:
        spool.add(event)
    return spool


def _time(event: KubeEvent) -> int:
    return event.time_ns
