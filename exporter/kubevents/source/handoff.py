"""The queue between the watch threads and the pipeline thread, bounded by items and bytes.

A watch thread puts each parsed object on it and waits while it is full, so the
API server keeps what kubevents has not read (backpressure). A count alone does
not bound the memory: a relist fills the 10,000 items of ``watch.queue_size``
at once, about 29 MiB of parsed Events on the bench's mix, and Events with long
messages take more. So the queue also counts the bytes each item came as (its
JSON: the watch line, or the list item) and holds at most
``watch.queue_max_bytes`` of them; parsed, an Event takes about three times its
JSON. One item is always let in, however large, so an Event bigger than the
bound passes alone instead of stopping the watch.

A list page is one item of the queue (one lock round and one wake-up for its
hundreds of Events, on both threads) that counts as the Events it holds
against ``max_items``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class WatchQueue(Generic[T]):
    """A FIFO of at most ``max_items`` Events and ``max_bytes`` bytes (see the module)."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int, int]] = deque()
        self._bytes = 0
        self._count = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self.full_items = 0
        """Puts that found the queue full by its item count (and waited)."""
        self.full_bytes = 0
        """Puts that found the queue full by its bytes (and waited)."""

    def put(self, item: T, nbytes: int, timeout: float, count: int = 1) -> bool:
        """Add ``item`` of ``nbytes`` (``count`` Events: a list page holds many), waiting
        up to ``timeout`` s for room; False if none came."""
        with self._not_full:
            if not self._room(nbytes, count):
                if self._count + count > self.max_items:
                    self.full_items += 1
                else:
                    self.full_bytes += 1
                deadline = time.monotonic() + timeout
                while not self._room(nbytes, count):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._not_full.wait(remaining)
            self._items.append((item, nbytes, count))
            self._bytes += nbytes
            self._count += count
            self._not_empty.notify()
            return True

    def get(self, timeout: float) -> T:
        """The oldest item, waiting up to ``timeout`` s. Raises queue.Empty."""
        with self._not_empty:
            if not self._items:
                self._not_empty.wait(timeout)
                if not self._items:
                    raise queue.Empty
            return self._take()

    def get_nowait(self) -> T:
        """The oldest item. Raises queue.Empty."""
        with self._lock:
            if not self._items:
                raise queue.Empty
            return self._take()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        """Events waiting (a list page counts as the Events it holds)."""
        return self._count

    @property
    def bytes(self) -> int:
        """Bytes of the items waiting (as they came: JSON)."""
        return self._bytes

    def _room(self, nbytes: int, count: int) -> bool:
        if not self._items:
            return True  # one item always fits, however large
        return self._count + count <= self.max_items and self._bytes + nbytes <= self.max_bytes

    def _take(self) -> T:
        item, nbytes, count = self._items.popleft()
        self._bytes -= nbytes
        self._count -= count
        self._not_full.notify()
        return item
