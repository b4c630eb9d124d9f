"""Where a network sink keeps records until they are settled: in memory or in the spool.

:class:`~kubevents.sinks.delivery.DeliverySink` owns the worker, the lock and
the retries; a :class:`Buffer` owns the records, in export order, and the
one batch the worker is sending (the batch *in flight*). The sink decides
what happens (room or not, send, retry, give up); the buffer only keeps
count, so both implementations give the same guarantees:

* :meth:`Buffer.put` stores what fits; :meth:`Buffer.drop_oldest` makes
  room, oldest first. The oldest records of all may be the head of the batch
  in flight: those are *given up* (no longer taking room, settled) but stay
  in the request being made; if that attempt fails, :meth:`Buffer.trim`
  removes them and says how many, so the sink counts each record once:
  delivered, or dropped.
* :meth:`Buffer.ack` settles the batch in flight, :meth:`Buffer.requeue`
  puts it back at the head (kubevents is stopping).
* :meth:`Buffer.close` gives up what is left; a memory buffer then no longer
  holds the batch a late request may still be sending, so its result is not
  counted a second time.

Not thread-safe: the sink calls every method with its lock held.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from kubevents.records import OutputRecord
from kubevents.sinks.spool import Spool, SpoolBatch


class Dropped(NamedTuple):
    """What :meth:`Buffer.drop_oldest` did to make room."""

    lost: int
    """Queued records deleted (the sink counts them at once)."""
    given_up: int
    """Records of the batch in flight given up (counted by :meth:`Buffer.trim` unless
    the attempt in progress delivers them)."""


class Buffer(Protocol):
    """The records of one sink, in export order, and the batch in flight."""

    @property
    def pending(self) -> int:
        """Records held: queued, plus the batch in flight less what was given up."""
        ...

    @property
    def capacity(self) -> int | None:
        """Records it holds at most; None when the cap is in bytes (the spool)."""
        ...

    def put(self, records: Sequence[OutputRecord], *, force: bool = False) -> int:
        """Store the leading ``records`` there is room for (``force``: all that one store
        takes, room or not); returns how many."""
        ...

    def drop_oldest(self, wanted: int) -> Dropped:
        """Make room for up to ``wanted`` records by dropping the oldest."""
        ...

    def take(self, max_records: int) -> list[OutputRecord]:
        """Start the batch in flight: up to ``max_records`` of the oldest ([] if none)."""
        ...

    def trim(self) -> int:
        """Remove from the batch in flight what was given up since; returns how many."""
        ...

    @property
    def in_flight(self) -> list[OutputRecord]:
        """The batch in flight, as last trimmed."""
        ...

    def ack(self) -> bool:
        """The batch in flight is settled (delivered or dropped on purpose); False when the
        buffer no longer held it (closed meanwhile): its fate was counted already."""
        ...

    def requeue(self) -> int:
        """Put the batch in flight back at the head, trimmed; returns what :meth:`trim` did."""
        ...

    def settled(self) -> int:
        """Records, in export order, that need no more delivery (with a spool: on disk)."""
        ...

    def close(self) -> int:
        """Stop holding records; returns how many are lost (not kept for the next start)."""
        ...


class MemoryBuffer:
    """A bounded queue in memory; records are numbered in export order for :meth:`settled`.

    ``queue[0]`` is number ``head``; the batch in flight starts at ``batch_seq``.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._queue: deque[OutputRecord] = deque()
        self._head = 0
        self._batch: list[OutputRecord] = []
        self._batch_seq = 0
        self._busy = False
        self._given_up = 0
        self._closed = False

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._batch) - self._given_up

    @property
    def capacity(self) -> int | None:
        return self._capacity

    @property
    def queued(self) -> int:
        """Records waiting behind the batch in flight."""
        return len(self._queue)

    @property
    def room(self) -> int:
        """Records :meth:`put` takes now without ``force``."""
        return self._capacity - self.pending

    @property
    def head(self) -> int:
        """The number of the oldest record queued (of the next record put when none is)."""
        return self._head

    @property
    def tail(self) -> int:
        """The number the next record put gets."""
        return self._head + len(self._queue)

    @property
    def in_flight_first(self) -> int:
        """The number of the first record of the batch in flight, as :meth:`take` took it."""
        return self._batch_seq

    def put(self, records: Sequence[OutputRecord], *, force: bool = False) -> int:
        n = len(records) if force else min(len(records), self._capacity - self.pending)
        if n <= 0:
            return 0
        self._queue.extend(records[:n])
        return n

    def drop_oldest(self, wanted: int) -> Dropped:
        needed = min(wanted, self._capacity) - (self._capacity - self.pending)
        given_up = max(min(needed, len(self._batch) - self._given_up), 0)
        self._given_up += given_up
        lost = max(min(needed - given_up, len(self._queue)), 0)
        for _ in range(lost):
            self._queue.popleft()
        self._head += lost
        return Dropped(lost, given_up)

    def take(self, max_records: int) -> list[OutputRecord]:
        n = min(len(self._queue), max_records)
        self._batch = [self._queue.popleft() for _ in range(n)]
        self._batch_seq = self._head
        self._head += n
        self._busy = bool(n)
        return self._batch

    def trim(self) -> int:
        k, self._given_up = self._given_up, 0
        if k:
            self._batch = self._batch[k:]
            self._batch_seq += k
        return k

    @property
    def in_flight(self) -> list[OutputRecord]:
        return self._batch

    def ack(self) -> bool:
        if self._closed:
            return False  # written off: settled() stays before it
        held = self._busy
        self._batch, self._busy, self._given_up = [], False, 0
        return held

    def requeue(self) -> int:
        if self._closed:
            return 0
        k = self.trim()
        self._queue.extendleft(reversed(self._batch))
        self._head = self._batch_seq
        self._batch, self._busy = [], False
        return k

    def settled(self) -> int:
        return self._batch_seq + self._given_up if self._busy else self._head

    def close(self) -> int:
        """Forget every record held; the numbers stay, so :meth:`settled` never passes them."""
        lost = self.pending
        self._queue.clear()
        self._batch, self._given_up, self._closed = [], 0, True
        return lost


class SpoolBuffer:
    """The on-disk spool (:mod:`spool`): one frame per store of up to ``frame_records``.

    Its cap is in bytes; room is made a segment at a time, and a batch in flight from
    the oldest segment is given up whole with it.
    """

    def __init__(self, spool: Spool, *, frame_records: int) -> None:
        self.spool = spool
        self._frame_records = frame_records
        self._batch: SpoolBatch | None = None
        self._given_up = False
        self._frame: tuple[Sequence[OutputRecord], bytes] | None = None
        """The last frame encoded and not stored (a full spool): the sink asks again with
        the same records once there is room."""

    @property
    def pending(self) -> int:
        return self.spool.pending

    @property
    def capacity(self) -> int | None:
        return None

    def put(self, records: Sequence[OutputRecord], *, force: bool = False) -> int:
        if not records:
            return 0
        chunk = records[: self._frame_records]
        cached = self._frame
        if cached is not None and _same(cached[0], chunk):
            frame = cached[1]
        else:
            frame = self.spool.encode(chunk)
        if not force and not self.spool.has_room(len(frame)):
            self._frame = (chunk, frame)
            return 0
        self._frame = None
        self.spool.append(frame, len(chunk))
        return len(chunk)

    def drop_oldest(self, wanted: int) -> Dropped:
        batch = self._batch
        in_oldest = (
            batch is not None
            and not self._given_up
            and batch.start.segment == self.spool.oldest_segment
        )
        in_flight = len(batch.records) if batch is not None and in_oldest else 0
        lost = self.spool.drop_oldest(in_flight=in_flight)
        self._given_up = self._given_up or in_oldest
        return Dropped(lost, in_flight)

    def take(self, max_records: int) -> list[OutputRecord]:
        self._batch = self.spool.peek(max_records)
        self._given_up = False
        return self._batch.records if self._batch is not None else []

    def trim(self) -> int:
        if self._batch is None or not self._given_up:
            return 0
        k = len(self._batch.records)
        self._batch = SpoolBatch([], self._batch.start, self._batch.end)
        return k

    @property
    def in_flight(self) -> list[OutputRecord]:
        return self._batch.records if self._batch is not None else []

    def ack(self) -> bool:
        batch, self._batch = self._batch, None
        if batch is None:
            return False
        if not self._given_up:
            self.spool.ack(batch)
        self._given_up = False
        return True

    def requeue(self) -> int:
        k = self.trim()
        self._batch, self._given_up = None, False  # the next take reads it again
        return k

    def settled(self) -> int:
        return self.spool.sync()

    def close(self) -> int:
        """Sync and close the spool: what it holds is sent at the next start."""
        self.spool.close()
        return 0


def _same(a: Sequence[OutputRecord], b: Sequence[OutputRecord]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))
