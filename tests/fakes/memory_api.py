"""An in-memory :class:`~kubevents.source.kubeapi.ListWatch`: a store to list, a feed to watch.

No sockets and no threads of its own: the runner's watch threads call it as they
would call the apiserver. ``store`` is what a list returns (paginated like the
apiserver, ``metadata.continue``); ``send`` stores an update and queues it for the
watch that is open or the next one. Every request is logged in ``calls``, so a
test can tell a resumed watch from a relist.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

import orjson

from kubevents.source.kubeapi import EVENTS_V1, ListPage

WATCH_IDLE_S = 0.05
"""A watch with nothing to send ends after this (as the apiserver's ``timeoutSeconds``
would, much later): the watch loop then opens the next one from where it is."""


class MemoryEventsApi:
    """Events of one API version, kept in memory; ``calls`` records each request."""

    def __init__(self, api_version: str = EVENTS_V1, resource: str = "events") -> None:
        self.api_version = api_version
        self.resource = resource
        self.calls: list[tuple[str, str]] = []
        """("list", continue token) or ("watch", resourceVersion), in order."""
        self._objects: dict[str, dict[str, Any]] = {}
        self._feed: queue.Queue[bytes] = queue.Queue()
        self._lock = threading.Lock()
        self._rv = "0"

    def store(self, obj: dict[str, Any]) -> None:
        """Keep ``obj`` for the next list (as if it were there before the watch began)."""
        with self._lock:
            self._objects[obj["metadata"]["uid"]] = obj
            self._rv = max(self._rv, obj["metadata"]["resourceVersion"], key=int)

    def send(self, watch_type: str, obj: dict[str, Any]) -> None:
        """An update the watch reports (and later lists include, unless DELETED)."""
        with self._lock:
            if watch_type == "DELETED":
                self._objects.pop(obj["metadata"]["uid"], None)
            else:
                self._objects[obj["metadata"]["uid"]] = obj
            self._rv = max(self._rv, obj["metadata"]["resourceVersion"], key=int)
        self._feed.put(orjson.dumps({"type": watch_type, "object": obj}))

    def watches(self) -> list[str]:
        """The resourceVersion each watch so far started from."""
        return [rv for what, rv in self.calls if what == "watch"]

    def lists(self) -> int:
        """Lists begun so far (first pages)."""
        return sum(1 for what, token in self.calls if what == "list" and not token)

    def list_page(
        self, *, namespace: str, field_selector: str, limit: int, continue_token: str
    ) -> ListPage:
        self.calls.append(("list", continue_token))
        with self._lock:
            items = [
                o
                for o in self._objects.values()
                if not namespace or o["metadata"].get("namespace") == namespace
            ]
            rv = self._rv
        items.sort(key=lambda o: int(o["metadata"]["resourceVersion"]))
        start = int(continue_token or 0)
        end = start + limit
        meta: dict[str, Any] = {"resourceVersion": rv}
        if end < len(items):
            meta["continue"] = str(end)
        body = {"kind": "EventList", "metadata": meta, "items": items[start:end]}
        return ListPage(body, len(orjson.dumps(body)))

    def watch_batches(
        self,
        *,
        namespace: str,
        field_selector: str,
        resource_version: str,
        timeout_s: int,
        inactivity_timeout_s: float,
    ) -> Iterator[list[bytes]]:
        self.calls.append(("watch", resource_version))
        return self._batches()

    def _batches(self) -> Iterator[list[bytes]]:
        """What was sent since the last read, a list per read (as a socket read takes
        whatever lines have arrived)."""
        while True:
            try:
                batch = [self._feed.get(timeout=WATCH_IDLE_S)]
            except queue.Empty:
                return
            while True:
                try:
                    batch.append(self._feed.get_nowait())
                except queue.Empty:
                    break
            yield batch
