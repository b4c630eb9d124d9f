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
        self.events: list[tuple[list[tuple[str, str, str]], int]] = []
        self.progress: list[str] = []
        self.pages: list[tuple[list[str], int]] = []

    def on_watched(self, events: list[tuple[str, dict[str, Any], str]], *, scope: str,
                   nbytes: int) -> None:
        self.events.append(([(t, o["metadata"]["uid"], rv) for t, o, rv in events], nbytes))

    def on_listed(self, objs: list[dict[str, Any]], *, scope: str, nbytes: int) -> None:
        self.pages.append(([o["metadata"]["uid"] for o in objs], nbytes))

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


def test_a_list_hands_each_page_on_whole_with_the_bytes_it_came_as() -> None:
    api, handler = MemoryEventsApi(), Recorder()
    events = demo_events(7)
    for obj in events:
        api.store(obj)
    watcher = EventWatcher(api=api, handler=handler, stop=threading.Event(),
                           options=WatchOptions(page_size=3, empty_watch_s=0.0))
    watcher._list()
    pages = [api.list_page(namespace="", field_selector="", limit=3, continue_token=token)
             for token in ("", "3", "6")]
    assert [len(p.body["items"]) for p in pages] == [3, 3, 1]
    assert handler.pages == [([o["metadata"]["uid"] for o in p.body["items"]], p.nbytes) for p in pages]
    in_order = sorted(events, key=lambda o: int(o["metadata"]["resourceVersion"]))
    assert [uid for uids, _ in handler.pages for uid in uids] == [o["metadata"]["uid"] for o in in_order]
    assert handler.events == []  # one call per page, none per item
    assert handler.progress == [watcher.resource_version] and watcher.resource_version
