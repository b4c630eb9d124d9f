"""The fake apiserver of ``tests/fakes`` in its own process, for the watch benchmarks.

Run as ``python -m bench.apiserver [--latency]`` from the repository root. It
prints ``URL <url>`` and answers one command per stdin line:

* ``kubeconfig <path>``: writes a kubeconfig for it; ``OK``;
* ``watches``: ``WATCHES <n>`` (watch streams being served);
* ``load <file> <rate>``: writes the watch lines of ``file`` (bench.mix JSON
  lines) into the store, ADDED as create and MODIFIED as update, at ``rate``
  per second (0: as fast as possible); answers ``LOADED <t0_ns> <t1_ns> <n>``
  when done;
* ``dump <path>``: (``--latency``) writes ``uid/count write_ns`` for every
  Event line a watch wrote, the time taken just before the write; ``OK``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any

import orjson

from tests.fakes import apiserver as fake_module
from tests.fakes.apiserver import FakeApiServer

_writes: list[tuple[str, int]] = []
_lock = threading.Lock()


def _record_writes() -> None:
    """Note the time each watch line is written (just before the write)."""
    original = fake_module.ChunkedWriter.line

    def line(self: Any, event: Mapping[str, Any]) -> None:
        obj = event.get("object") or {}
        if event.get("type") in ("ADDED", "MODIFIED") and obj.get("kind") == "Event":
            count = obj.get("count") or obj.get("deprecatedCount") or (obj.get("series") or {}).get("count") or 1
            key = f"{obj['metadata'].get('uid')}/{count}"
            now = time.time_ns()
            with _lock:
                _writes.append((key, now))
        original(self, event)

    fake_module.ChunkedWriter.line = line  # type: ignore[method-assign]


def load(fake: FakeApiServer, path: str, rate: float) -> tuple[int, int, int]:
    with open(path, "rb") as f:
        lines = [orjson.loads(line) for line in f]
    store = fake.store
    t0 = time.time_ns()
    start = time.perf_counter()
    for i, item in enumerate(lines):
        if rate:
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
        obj = item["object"]
        meta = obj["metadata"]
        meta.pop("resourceVersion", None)
        if item["type"] == "ADDED":
            meta.pop("uid", None)
            store.create(obj)
        else:
            meta.pop("uid", None)
            current = store.get(meta["name"], namespace=meta["namespace"])
            meta["uid"] = current["metadata"]["uid"]
            meta["creationTimestamp"] = current["metadata"].get("creationTimestamp")
            store.update(obj)
    return t0, time.time_ns(), len(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", action="store_true")
    parser.add_argument("--cpus", default="")
    args = parser.parse_args()
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    if args.latency:
        _record_writes()
    fake = FakeApiServer(bookmark_interval=60.0)
    fake.start()
    print(f"URL {fake.url}", flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "kubeconfig":
            fake.write_kubeconfig(rest[0])
            print("OK", flush=True)
        elif cmd == "watches":
            print(f"WATCHES {fake.active_watches}", flush=True)
        elif cmd == "load":
            t0, t1, n = load(fake, rest[0], float(rest[1]))
            print(f"LOADED {t0} {t1} {n}", flush=True)
        elif cmd == "dump":
            with _lock:
                writes = list(_writes)
            with open(rest[0], "w") as f:
                f.writelines(f"{key} {t}\n" for key, t in writes)
            print("OK", flush=True)
        elif cmd == "quit":
            break
    fake.stop()


if __name__ == "__main__":
    main()
