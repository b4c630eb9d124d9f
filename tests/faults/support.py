"""What every fault scenario needs: the real `kubevents run` as a subprocess, traffic in the
fake apiserver, a TCP proxy that can take a server "down", and the accounting of what was
generated, exported, lost and duplicated.

Accounting is per occurrence: an Event with count c stands for occurrences 1..c, and a record
with ``k8s.event.count`` c and ``kubevents.occurrences`` k covers occurrences c-k+1..c. An
occurrence in the API server that no delivered record covers is lost; one covered twice is a
duplicate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.fakes.apiserver import ChunkedWriter, FakeApiServer, make_event
from tests.support.scraping import Samples
from tests.support.scraping import scrape as scrape_url

Covered = Counter[tuple[str, int]]

_names = itertools.count()


def now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


SUITE_VARIABLES = ("KUBEVENTS_CHAOS", "KUBEVENTS_FAULTS_RESULTS")
"""The suite's own settings: kubevents refuses unknown KUBEVENTS_* variables, so a child
process never sees them."""


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SUITE_VARIABLES}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------
# Traffic: Events created and bumped in the fake apiserver
# ---------------------------------------------------------------------------


class Traffic:
    """Creates and bumps Events (current timestamps, several namespaces) at about ``rate``
    operations a second in the background, until stopped or ``limit`` operations are done.

    ``decorate(name, event)`` may change a new Event before it is stored (oversized,
    odd fields); names starting with ``poison-`` are what :func:`corrupt_watch_lines`
    precedes with a malformed line, names starting with ``big-`` are never bumped.
    """

    def __init__(
        self,
        fake: FakeApiServer,
        *,
        rate: float = 100.0,
        limit: int | None = None,
        namespaces: tuple[str, ...] = ("shop", "payments", "kube-system"),
        new_every: int = 5,
        decorate: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None,
        seed: int = 1,
    ) -> None:
        self.fake, self.rate, self.limit = fake, rate, limit
        self.namespaces, self.new_every, self.decorate = namespaces, new_every, decorate
        self.stop_event = threading.Event()
        self.done = threading.Event()
        self.events: list[tuple[str, str]] = []  # (namespace, name)
        self.ops = 0
        self.created = 0
        self._rng = random.Random(seed)
        self.thread = threading.Thread(target=self._run, name="traffic", daemon=True)
        for _ in range(5):
            self._create()

    def _create(self) -> None:
        index = self.created
        ns = self.namespaces[index % len(self.namespaces)]
        name = f"ev-{next(_names)}"
        ts = now_rfc3339()
        event = make_event(
            name,
            namespace=ns,
            reason=self._rng.choice(["BackOff", "Unhealthy", "FailedScheduling", "Pulled"]),
            event_type="Warning",
            message=f"Back-off restarting failed container app-{index}",
            object_name=f"web-{index % 50}",
            first_timestamp=ts,
            last_timestamp=ts,
        )
        if self.decorate is not None:
            event = self.decorate(index, event)
            name = event["metadata"]["name"]
        self.fake.store.create(event)
        self.events.append((ns, name))
        self.created += 1

    def _bump(self) -> None:
        ns, name = self.events[self._rng.randrange(len(self.events))]
        if name.startswith("big-"):  # oversized Events are sent once, not at every bump
            ns, name = self.events[0]
        ts = now_rfc3339()
        self.fake.store.patch(
            name,
            lambda o: {**o, "count": (o.get("count") or 1) + 1, "lastTimestamp": ts},
            namespace=ns,
        )

    def step(self) -> None:
        self.ops += 1
        if self.ops % self.new_every == 0:
            self._create()
        else:
            self._bump()

    def _run(self) -> None:
        interval = 1.0 / self.rate
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            if self.limit is not None and self.ops >= self.limit:
                break
            self.step()
            next_at += interval
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop_event.wait(delay)
            elif delay < -1.0:
                next_at = time.monotonic()  # far behind: do not burst to catch up
        self.done.set()

    def start(self) -> Traffic:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(10)

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def expected(fake: FakeApiServer, exclude: Iterable[str] = ()) -> dict[str, int]:
    """Occurrences per Event uid in the API server now."""
    skip = set(exclude)
    out = {}
    for e in fake.store.objects("events"):
        uid = e["metadata"]["uid"]
        if uid in skip:
            continue
        count = e.get("count")
        out[uid] = count if isinstance(count, int) and count > 0 else 1
    return out


# ---------------------------------------------------------------------------
# What arrived: coverage of occurrences, from each kind of output
# ---------------------------------------------------------------------------


def _cover(covered: Covered, uid: str, count: int, new: int) -> None:
    for n in range(count - new + 1, count + 1):
        covered[(uid, n)] += 1


def jsonl_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    out = []
    for line in path.read_bytes().splitlines():
        if line.endswith(b"}"):  # a line being written by a killed process may be partial
            record = orjson.loads(line)
            if record["event_name"] == "k8s.event":
                out.append(record)
    return out


def coverage_jsonl(records: Iterable[Mapping[str, Any]]) -> Covered:
    covered: Covered = Counter()
    for r in records:
        a = r["attributes"]
        _cover(covered, a["k8s.event.uid"], a["k8s.event.count"], a["kubevents.occurrences"])
    return covered


def coverage_otlp(receiver: Any) -> Covered:
    covered: Covered = Counter()
    for log in receiver.records():
        if log.record.event_name != "k8s.event":
            continue
        a = log.attributes
        _cover(
            covered, a["k8s.event.uid"], int(a["k8s.event.count"]), int(a["kubevents.occurrences"])
        )
    return covered


def coverage_loki(loki: Any) -> Covered:
    covered: Covered = Counter()
    for entry in loki.entries():
        m = entry.structured_metadata
        if m.get("event_name") != "k8s.event":
            continue
        _cover(
            covered,
            m["k8s_event_uid"],
            int(m["k8s_event_count"]),
            int(m["kubevents_occurrences"]),
        )
    return covered


def lost(want: Mapping[str, int], covered: Covered) -> list[tuple[str, int]]:
    return [
        (uid, n)
        for uid, count in want.items()
        for n in range(1, count + 1)
        if not covered[(uid, n)]
    ]


def duplicated(covered: Covered) -> int:
    return sum(times - 1 for times in covered.values() if times > 1)


# ---------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------


@dataclass
class Figures:
    """One scenario's outcome, written as JSON for docs/reliability.md."""

    scenario: str
    form: str
    generated: int = 0
    """Occurrences in the API server at the end (what should have been exported)."""
    exported: int = 0
    """Occurrences delivered at least once."""
    lost: int = 0
    duplicated: int = 0
    """Occurrences delivered more than once (summed over the extra copies)."""
    records: int = 0
    """Event records delivered (duplicates included)."""
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def account(self, want: Mapping[str, int], covered: Covered) -> list[tuple[str, int]]:
        missing = lost(want, covered)
        self.generated = sum(want.values())
        self.lost = len(missing)
        self.exported = self.generated - self.lost
        self.duplicated = duplicated(covered)
        self.records = sum(covered.values())
        return missing

    def line(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.notes.items())
        return (
            f"{self.scenario} [{self.form}]: generated {self.generated}, exported "
            f"{self.exported}, lost {self.lost}, duplicated {self.duplicated} {extra}"
        )

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.scenario}.json"
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")
        return path


# ---------------------------------------------------------------------------
# kubevents run, as a process
# ---------------------------------------------------------------------------


def config(
    fake: FakeApiServer | None,
    tmp_path: Path,
    name: str,
    *,
    sinks: list[str],
    kubeconfig: Path | None = None,
    watch: Mapping[str, Any] | None = None,
    delivery: Mapping[str, Any] | None = None,
    metrics_port: int = 0,
    **extra: Any,
) -> Path:
    """A config file for one replica (fast watch timings; everything else as shipped)."""
    if kubeconfig is None:
        assert fake is not None
        kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    data: dict[str, Any] = {
        "version": 1,
        "instance_id": name,
        "cluster_name": "chaos",
        "sinks": sinks,
        "watch": {
            "kubeconfig": str(kubeconfig),
            "timeout_s": 5,
            "backoff_base_s": 0.05,
            "backoff_cap_s": 0.5,
            "checkpoint_interval_s": 0.2,
            "inactivity_timeout_s": 2.0,
            "object_cache": False,
            **(watch or {}),
        },
        "delivery": {
            "backoff_base_s": 0.05,
            "backoff_cap_s": 0.5,
            "batch_timeout_s": 0.1,
            "flush_timeout_s": 2.0,
            **(delivery or {}),
        },
        "metrics": {"port": metrics_port, "host": "127.0.0.1", "otlp": False},
        **extra,
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Kubevents:
    """One `kubevents run` process; its stderr goes to a file (read with :meth:`log`)."""

    def __init__(self, cfg: Path, *args: str, log: Path | None = None) -> None:
        self.cfg = cfg
        self.log_path = log or cfg.with_suffix(".log")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kubevents.cli", "run", "--config", str(cfg), *args],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=child_env(PYTHONUNBUFFERED="1"),
        )
        self.rusage: Any = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait(10)

    def term(self, timeout: float = 20.0) -> int:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout)
        finally:
            self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextlib.contextmanager
def running(cfg: Path, *args: str) -> Iterator[Kubevents]:
    """A process stopped with SIGTERM at the end (it must exit 0 within 20 s)."""
    kv = Kubevents(cfg, *args)
    try:
        yield kv
    finally:
        if kv.alive():
            code = kv.term()
            assert code == 0, f"kubevents exited {code}:\n{kv.log()[-3000:]}"


def scrape(port: int) -> Samples:
    """Every sample of the /metrics of kubevents listening on ``port``."""
    return scrape_url(f"http://127.0.0.1:{port}")


# ---------------------------------------------------------------------------
# A TCP proxy: "the API server is down" = connections refused and open ones cut
# ---------------------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; :meth:`down` closes the listener and every
    open connection (clients get resets, then "connection refused"); :meth:`up` listens
    again on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        t = threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy")
        t.start()
        self._threads.append(t)
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    def down(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def up(self) -> None:
        self.start()

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.down()


def write_proxy_kubeconfig(fake: FakeApiServer, proxy: TcpProxy, path: Path) -> Path:
    """A kubeconfig for ``fake`` that goes through ``proxy``."""
    fake.write_kubeconfig(path)
    doc = yaml.safe_load(path.read_text())
    doc["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{proxy.port}"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


# ---------------------------------------------------------------------------
# Malformed lines in the watch stream
# ---------------------------------------------------------------------------

GARBAGE_LINES = (
    b'{"type":"ADDED","object":{"kind":"Event","metadata":{"name":"torn',  # torn JSON
    b'{"type":"ADDED","object":[1,2,3]}',  # object of the wrong type
    b'{"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"}}}',
    b'{"object":{"kind":"Event"}}',  # no type
    b"\xff\xfe not json at all \x00\x1b[31m",
)


@dataclass
class Corruption:
    injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def corrupt_watch_lines(monkeypatch: Any) -> Corruption:
    """Make every watch stream of the fake write one malformed line before the ADDED line
    of each Event named ``poison-*`` (the Event itself still arrives, intact)."""
    state = Corruption()
    original = ChunkedWriter.line

    def line(self: ChunkedWriter, event: Mapping[str, Any]) -> None:
        obj = event.get("object")
        if (
            event.get("type") == "ADDED"
            and isinstance(obj, dict)
            and str((obj.get("metadata") or {}).get("name", "")).startswith("poison-")
        ):
            with state.lock:
                garbage = GARBAGE_LINES[state.injected % len(GARBAGE_LINES)]
                state.injected += 1
            self._chunk(garbage + b"\n")
        original(self, event)

    monkeypatch.setattr(ChunkedWriter, "line", line)
    return state
