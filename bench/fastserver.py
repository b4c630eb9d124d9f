"""A watch server that cannot be the bound: prepared watch-stream bytes, written as fast as the socket takes them.

Run as ``python -m bench.fastserver --cpus N MIX_FILE`` from the repository
root (``MIX_FILE``: bench.mix JSON watch lines, core/v1 Events with their
resourceVersions). It is a stdlib HTTP/1.1 server that speaks just enough of
the Kubernetes API for ``kubevents run``:

* ``events.k8s.io/v1`` answers 404, so kubevents watches core/v1 Events, which
  is what the mix holds;
* a list (Events, Pods, ReplicaSets, Jobs) answers an empty list at
  resourceVersion 0;
* the first Event watch is held until the ``go`` command, then gets the whole
  mix as one pre-encoded body: one HTTP chunk per watch line, as the
  kube-apiserver frames them (it flushes every watch event), the chunks
  joined beforehand and handed to ``sendall`` in 1 MiB slices; the stream
  then ends as a server timeout would;
* every other watch (the object cache's, a re-watch after the end) stays open
  until the server stops, silent but for a bookmark every :data:`BOOKMARK_S`
  when asked with ``allowWatchBookmarks`` (as the kube-apiserver's watch cache
  sends them, at the watch's own resourceVersion: nothing changed). Without
  them kubevents' watches, which end a stream after 70 s with no data,
  reconnected in the middle of the idle bench's window, which no real
  apiserver makes them do.

The mix's timestamps are moved first, all by one offset, so that its newest
Event happened when the server started (:func:`to_now`).

Unlike the fake apiserver of ``tests/fakes``, it keeps no store and encodes
nothing while it serves: the cost per line on its side is a share of one
``sendall``. It prints ``URL <url>`` and answers one command per stdin line:

* ``kubeconfig <path>``: writes a kubeconfig for it; ``OK``;
* ``watches``: ``WATCHES <n>`` (Event watches waiting for ``go``);
* ``go <rate_per_s>``: sends the mix on the waiting watch, all at once
  (rate 0) or one line at a time at that rate; answers
  ``SENT <t0_ns> <t1_ns> <lines>`` when the last byte was taken;
* ``quit``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

SLICE = 1 << 20
EMPTY_LIST = b'{"kind":"List","apiVersion":"v1","metadata":{"resourceVersion":"0"},"items":[]}'
NOT_FOUND = (b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound",'
             b'"message":"the server could not find the requested resource","code":404}')


STAMPED = ("firstTimestamp", "lastTimestamp")

BOOKMARK_S = 60.0
"""How often a silent watch gets a bookmark: the kube-apiserver's watch cache sends one
about every minute (``bookmarkFrequency`` in its cacher) to a watch that asked for them."""

KINDS = {"events": "Event", "pods": "Pod", "replicasets": "ReplicaSet", "jobs": "Job", "nodes": "Node"}


def bookmark(path: str, resource_version: str) -> bytes:
    """A BOOKMARK watch line for a watch of ``path`` at ``resource_version``."""
    resource = path.rstrip("/").rsplit("/", 1)[-1]
    api_version = "v1" if path.startswith("/api/") else "/".join(path.split("/")[2:4])
    kind = KINDS.get(resource, resource.capitalize())
    return (b'{"type":"BOOKMARK","object":{"kind":"%s","apiVersion":"%s","metadata":'
            b'{"resourceVersion":"%s"}}}' % (kind.encode(), api_version.encode(),
                                             (resource_version or "0").encode()))


def to_now(lines: list[bytes], now_s: int) -> list[bytes]:
    """The lines with every timestamp moved by one offset, so that the newest is ``now_s``.

    The mix's times start at a fixed date; ``kubevents run`` expires what it
    learned by the wall clock, so a mix from weeks ago would be forgotten at
    every checkpoint, which no live cluster does. The replay, whose clock is
    the Events' own time, is not changed by such a shift.
    """
    import calendar

    import orjson

    objects = [orjson.loads(line) for line in lines]
    stamps = [o["object"][f] for o in objects for f in STAMPED if o["object"].get(f)]
    if not stamps:
        return lines

    def seconds(stamp: str) -> int:
        return calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))

    offset = now_s - seconds(max(stamps))
    moved: dict[str, str] = {}

    def move(stamp: str) -> str:
        if stamp not in moved:
            moved[stamp] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds(stamp) + offset))
        return moved[stamp]

    for o in objects:
        obj, meta = o["object"], o["object"].get("metadata") or {}
        for f in STAMPED:
            if obj.get(f):
                obj[f] = move(obj[f])
        if meta.get("creationTimestamp"):
            meta["creationTimestamp"] = move(meta["creationTimestamp"])
    return [orjson.dumps(o) for o in objects]


def chunk(line: bytes) -> bytes:
    """One watch line as one HTTP chunk (the line and its newline)."""
    return b"%x\r\n%s\n\r\n" % (len(line) + 1, line)


class Stream:
    """The prepared body and the hand-over between the ``go`` command and the watch handler."""

    def __init__(self, lines: list[bytes]) -> None:
        self.lines = lines
        self.body = b"".join(chunk(line) for line in lines)
        self.lock = threading.Lock()
        self.armed = True
        """The next Event watch gets the mix; later ones stay silent."""
        self.waiting = 0
        self.go = threading.Event()
        self.rate = 0.0
        self.done = threading.Event()
        self.t0 = self.t1 = 0
        self.stopping = threading.Event()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stream: Stream  # set on the class by main()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path.startswith("/apis/events.k8s.io/"):
            self._answer(404, NOT_FOUND)
            return
        if query.get("watch") != ["true"]:
            self._answer(200, EMPTY_LIST)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        stream = self.stream
        with stream.lock:
            mine = url.path == "/api/v1/events" and stream.armed
            if mine:
                stream.armed = False
                stream.waiting += 1
        if not mine:
            line = bookmark(url.path, query.get("resourceVersion", [""])[0])
            wants = query.get("allowWatchBookmarks") == ["true"]
            while not stream.stopping.wait(BOOKMARK_S if wants else None):
                try:
                    self.connection.sendall(chunk(line))
                except OSError:
                    break  # the client went away
            self.close_connection = True
            return
        stream.go.wait()
        with stream.lock:
            stream.waiting -= 1
        sock = self.connection
        stream.t0 = time.time_ns()
        if stream.rate:
            start = time.perf_counter()
            for i, line in enumerate(stream.lines):
                delay = start + i / stream.rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                sock.sendall(chunk(line))
        else:
            body = memoryview(stream.body)
            for offset in range(0, len(body), SLICE):
                sock.sendall(body[offset : offset + SLICE])
        stream.t1 = time.time_ns()
        sock.sendall(b"0\r\n\r\n")
        stream.done.set()
        self.close_connection = True


def write_kubeconfig(path: str, url: str) -> None:
    Path(path).write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: bench\n  cluster:\n    server: {url}\n"
        "users:\n- name: bench\n  user:\n    token: bench\n"
        "contexts:\n- name: bench\n  context:\n    cluster: bench\n    user: bench\n"
        "current-context: bench\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpus", default="")
    parser.add_argument("mix_file")
    args = parser.parse_args()
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    lines = [line.rstrip(b"\n") for line in Path(args.mix_file).read_bytes().splitlines() if line.strip()]
    stream = Stream(to_now(lines, int(time.time())))
    Handler.stream = stream
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    print(f"URL {url}", flush=True)
    for command in sys.stdin:
        cmd, *rest = command.split()
        if cmd == "kubeconfig":
            write_kubeconfig(rest[0], url)
            print("OK", flush=True)
        elif cmd == "watches":
            with stream.lock:
                print(f"WATCHES {stream.waiting}", flush=True)
        elif cmd == "go":
            stream.rate = float(rest[0]) if rest else 0.0
            stream.go.set()
            stream.done.wait()
            print(f"SENT {stream.t0} {stream.t1} {len(stream.lines)}", flush=True)
        elif cmd == "quit":
            break
    stream.stopping.set()
    server.shutdown()


if __name__ == "__main__":
    main()
