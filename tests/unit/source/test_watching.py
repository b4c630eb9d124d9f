"""EventWatcher's list, over the in-memory API (``tests/fakes/memory_api.py``), with
real Events of the demo recording."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import orjson

from kubevents.source.kubeapi import EVENTS_V1
from kubevents.source.watching import EventWatcher, WatchOptions
from tests.fakes.memory_api import MemoryEventsApi

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "events.jsonl"


class Recorder:
    """A WatchHandler that keeps what it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, bool, int]] = []
        self.progress: list[str] = []

    def on_event(self, watch_type: str, obj: dict[str, Any], *, scope: str,
                 resource_version: str, listed: bool, nbytes: int) -> None:
        self.events.append((watch_type, obj["metadata"]["uid"], listed, nbytes))

    def on_progress(self, *, scope: str, resource_version: str) -> None:
        self.progress.append(resource_version)


def demo_events(n: int) -> list[dict[str, Any]]:
    rows = [orjson.loads(line) for line in DEMO.read_bytes().splitlines() if line.strip()]
    seen: dict[str, dict[str, Any]] = {}
    for row in rows:
        obj = row["object"]
        if row["type"] == "ADDED" and obj["apiVersion"] == EVENTS_V1:
            seen.setdefault(obj["metadata"]["uid"], obj)
    return list(seen.values())[:n]


def test_a_list_hands_every_item_on_with_an_even_share_of_its_pages_bytes() -> None:
    api, handler = MemoryEventsApi(), Recorder()
    events = demo_events(7)
    for obj in events:
        api.store(obj)
    watcher = EventWatcher(api=api, handler=handler, stop=threading.Event(),
                           options=WatchOptions(page_size=3, empty_watch_s=0.0))
    watcher._list()
    assert [uid for _, uid, _, _ in handler.events] == [
        o["metadata"]["uid"] for o in sorted(events, key=lambda o: int(o["metadata"]["resourceVersion"]))]
    assert all(t == "ADDED" and listed for t, _, listed, _ in handler.events)
    pages = [api.list_page(namespace="", field_selector="", limit=3, continue_token=token)
             for token in ("", "3", "6")]
    assert [len(p.body["items"]) for p in pages] == [3, 3, 1]
    shares = [p.nbytes // len(p.body["items"]) for p in pages for _ in p.body["items"]]
    assert [n for _, _, _, n in handler.events] == shares
    # The shares add up to the pages' bytes (but the remainders of the division).
    assert sum(p.nbytes for p in pages) - sum(shares) < 3 * len(pages)
    assert handler.progress == [watcher.resource_version] and watcher.resource_version
