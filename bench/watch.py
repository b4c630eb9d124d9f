"""The watch path: fake apiserver process -> ``kubevents run`` process -> receiver process.

* :func:`watch_throughput`: ``kubevents run`` is watching an empty fake
  apiserver; the fake then takes the whole mix as fast as it can write it
  (creates for ADDED, updates for MODIFIED); timed from the first write to
  the last k8s.event record at the receiver. The CPU time of the kubevents
  process (its rusage at exit) gives the rate per CPU-second too.
* :func:`watch_fast_throughput`: the same against ``bench.fastserver``,
  which writes the mix as prepared bytes as fast as the socket takes them (it
  cannot be the bound); timed from its first byte to the last occurrence at
  the receiver. ``BENCH_PYSPY=path`` records the kubevents process with
  py-spy meanwhile (collapsed stacks of every thread, ``--idle`` left out);
  ``BENCH_OVERRIDES`` (a JSON object of settings) changes kubevents' settings
  for an experiment.
* :func:`watch_latency`: the same three processes, the fake writing the mix at
  a steady rate (default 2,000 Events/s); latency of each record from the
  moment the fake writes its watch line to the moment the receiver gets it
  (same host clock, ``time.time_ns``), for the lines written in the steady
  part of the stream (after its first second, up to 2 s before its end).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import collector, mix
from bench.procs import PYTHON, ROOT, ApiServer, FastServer, Receiver, measured_cpu


@dataclass
class WatchRun:
    seconds: float
    cpu_s: float
    exported: int
    expected: int
    maxrss_kib: int
    load_s: float
    """How long the fake took to write everything into its store."""


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    return cpu_ticks(pid) / os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    """User + system CPU of process ``pid`` so far, in clock ticks (``/proc/PID/stat``:
    the threads that ended included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_run_ns(pid: int, tid: int | str) -> int:
    """Thread ``tid``'s run time so far, ns (``/proc/PID/task/TID/schedstat``: the
    scheduler's own, finer than a tick). Raises OSError once the thread has ended."""
    return int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])


def threads_run_ns(pid: int) -> dict[int, int]:
    """Each live thread's run time so far, by thread id (ns, :func:`thread_run_ns`)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            out[int(tid)] = thread_run_ns(pid, tid)
        except OSError:
            continue
    return out


class KubeventsRun:
    """``python -m bench.kubevents_run`` on the measured core."""

    def __init__(self, overrides: dict[str, object], env: dict[str, str] | None = None) -> None:
        """``env``: variables over this process's (``PYTHONPATH`` among them: the build)."""
        env = {**os.environ, **(env or {})}
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.kubevents_run", "--cpus", str(measured_cpu()), json.dumps(overrides)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # READY
        self.ready_at = time.monotonic()
        """When the command starts: kubevents imported and its settings loaded, as they are
        for a replay run inside the bench process."""

    def stop(self) -> tuple[float, int]:
        """SIGTERM, wait; returns (CPU seconds, peak RSS KiB)."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.stdout is not None
        out, _ = self.proc.communicate(timeout=60)
        for line in out.splitlines():
            if line.startswith("RUSAGE"):
                _, user, system, rss = line.split()
                return float(user) + float(system), int(rss)
        return float("nan"), 0


def _overrides(kubeconfig: Path, endpoint: str) -> dict[str, object]:
    return {
        "watch.kubeconfig": str(kubeconfig),
        "sinks": [f"otlp:{endpoint}"],
        "metrics.otlp": False,
        "cluster_name": "bench",
        "instance_id": "bench-0",
    }


def _wait_for_watch(api: ApiServer | FastServer, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if int(api.ask("watches").split()[1]) >= 1:
            return
        time.sleep(0.05)
    raise RuntimeError("kubevents did not start watching")


def _run(mix_file: Path, rate: float, expected: int, *, latency: bool, workdir: Path) -> tuple[WatchRun, list[float]]:
    with ApiServer(latency=latency) as api, Receiver(latency=latency) as receiver:
        kubeconfig = workdir / "kubeconfig"
        api.ask(f"kubeconfig {kubeconfig}")
        kubevents = KubeventsRun(_overrides(kubeconfig, receiver.endpoint))
        try:
            _wait_for_watch(api)
            time.sleep(0.5)  # the object cache watches start too
            cpu0 = _cpu_s(kubevents.proc.pid)
            loaded = api.ask(f"load {mix_file} {rate}").split()
            t0 = int(loaded[1])
            got = receiver.wait_occurrences(expected, timeout_s=max(120.0, expected / 500))
            t1 = time.time_ns()
            cpu_s = _cpu_s(kubevents.proc.pid) - cpu0
        finally:
            _, rss = kubevents.stop()
        lat: list[float] = []
        if latency:
            writes_path, arrivals_path = workdir / "writes.txt", workdir / "arrivals.txt"
            api.ask(f"dump {writes_path}")
            receiver.ask(f"dump {arrivals_path}")
            writes = {key: int(t) for key, t in (line.split() for line in writes_path.read_text().splitlines())}
            # Steady state: lines written after the first second and at least 2 s before the
            # stream ends (a real stream does not end: its last partial batch would not wait
            # for the batch timeout).
            first, last = min(writes.values(), default=0), max(writes.values(), default=0)
            lo, hi = first + 1_000_000_000, last - 2_000_000_000
            for line in arrivals_path.read_text().splitlines():
                key, arrived = line.split()
                written = writes.get(key)
                if written is not None and lo <= written <= hi:
                    lat.append((int(arrived) - written) / 1e9)
        return WatchRun((t1 - t0) / 1e9, cpu_s, got, expected, rss, (int(loaded[2]) - t0) / 1e9), lat


def _pyspy(pid: int) -> subprocess.Popen[bytes] | None:
    path = os.environ.get("BENCH_PYSPY")
    if not path:
        return None
    return subprocess.Popen(
        [str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(pid), "--threads", "--rate", "200",
         "--format", "raw", "--output", path, "--nonblocking"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def watch_fast_throughput(mix_file: Path, expected: int) -> WatchRun:
    """``kubevents run`` against bench.fastserver: the mix written as fast as the socket takes it."""
    with tempfile.TemporaryDirectory(prefix="kubevents-bench-") as tmp, FastServer(str(mix_file)) as api, \
            Receiver() as receiver:
        kubeconfig = Path(tmp) / "kubeconfig"
        api.ask(f"kubeconfig {kubeconfig}")
        # A finite stream ends on a partial batch, which would wait for the batch timeout (1 s)
        # that an unending stream never reaches: 0.25 s, still far more than the 512 records of
        # a full batch take at these rates.
        overrides = {**_overrides(kubeconfig, receiver.endpoint), "delivery.batch_timeout_s": 0.25,
                     **json.loads(os.environ.get("BENCH_OVERRIDES") or "{}")}
        kubevents = KubeventsRun(overrides)
        spy = None
        try:
            _wait_for_watch(api)
            time.sleep(0.5)  # the object cache watches start too
            spy = _pyspy(kubevents.proc.pid)
            cpu0 = _cpu_s(kubevents.proc.pid)
            sent = api.ask("go 0").split()
            t0 = int(sent[1])
            got = receiver.wait_occurrences(expected, timeout_s=max(120.0, expected / 500))
            t1 = time.time_ns()
            cpu_s = _cpu_s(kubevents.proc.pid) - cpu0
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            _, rss = kubevents.stop()
    return WatchRun((t1 - t0) / 1e9, cpu_s, got, expected, rss, (int(sent[2]) - t0) / 1e9)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(url: str, timeout_s: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5.0):
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer within {timeout_s:g} s") from None
            time.sleep(0.05)


def _core_ticks(cpu: int) -> tuple[int, int]:
    """Core ``cpu``'s busy and total clock ticks so far (``/proc/stat``; steal counts as busy)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in line.split()[1:9])
            busy = user + nice + system + irq + softirq + steal
            return busy, busy + idle + iowait
    return 0, 0


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def idle_cost(mix_file: Path, endpoint: str, *, seconds: float, per_minute: float,
              accepted: Callable[[], int], sink: str = "otlp",
              overrides: dict[str, object] | None = None) -> dict[str, Any]:
    """``kubevents run`` at rest: a quiet cluster writing ``per_minute`` Events a minute.

    Default settings (every stage, the object cache, the metrics server and the
    OTLP metrics export on) with the OTLP/gRPC sink to ``endpoint`` (a
    Collector: it takes the metrics too), or ``sink`` (``otlp+http``) and
    settings ``overrides``. Once kubevents watches and has
    settled (5 s), bench.fastserver writes the first lines of ``mix_file``
    one at a time at that rate for ``seconds``. Returns the CPU share of one
    core over the window, the RSS at its end and the peak RSS since start.
    """
    lines = max(int(seconds * per_minute / 60), 1)
    with tempfile.TemporaryDirectory(prefix="kubevents-bench-") as tmp:
        head = Path(tmp) / "mix.jsonl"
        with open(mix_file, "rb") as f:
            head.write_bytes(b"".join(f.readline() for _ in range(lines)))
        with FastServer(str(head)) as api:
            kubeconfig = Path(tmp) / "kubeconfig"
            api.ask(f"kubeconfig {kubeconfig}")
            overrides = {
                "watch.kubeconfig": str(kubeconfig),
                "sinks": [f"{sink}:{endpoint}"],
                "metrics.port": _free_port(),
                "metrics.host": "127.0.0.1",
                "cluster_name": "bench",
                "instance_id": "bench-0",
                **(overrides or {}),
            }
            kubevents = KubeventsRun(overrides)
            try:
                _wait_for_watch(api)
                # The watch starts before the rest is built (rules, sinks, the object cache,
                # the collector's freeze); the metrics server comes last, just before the
                # pipeline thread runs. Pure Python on a loaded machine takes more than 5 s
                # to get there, and the window then measured the start-up's tail.
                _wait_for_http(f"http://127.0.0.1:{overrides['metrics.port']}/healthz")
                time.sleep(5.0)  # settled: caches listed, the list's checkpoints taken
                before = accepted()
                rss_start = _status_kib(kubevents.proc.pid, "VmRSS")
                threads0, core0, own0 = threads_run_ns(kubevents.proc.pid), _core_ticks(measured_cpu()), os.times()
                cpu0, t0 = _cpu_s(kubevents.proc.pid), time.monotonic()
                api.ask(f"go {per_minute / 60}")
                time.sleep(max(t0 + seconds - time.monotonic(), 0.0))
                cpu_s, wall = _cpu_s(kubevents.proc.pid) - cpu0, time.monotonic() - t0
                threads1, core1, own1 = threads_run_ns(kubevents.proc.pid), _core_ticks(measured_cpu()), os.times()
                rss = _status_kib(kubevents.proc.pid, "VmRSS")
                arrived = accepted() - before
            finally:
                _, hwm = kubevents.stop()
    # Where the window's CPU went: kubevents' threads (in the order they started), the
    # measured core as a whole (every process on it) and the bench process itself.
    threads_ms = [round((threads1[t] - threads0.get(t, 0)) / 1e6, 1) for t in sorted(threads1)]
    core_busy = (core1[0] - core0[0]) / max(core1[1] - core0[1], 1)
    bench_cpu = (own1.user + own1.system - own0.user - own0.system) / wall
    return {"lines": lines, "seconds": wall, "cpu_share": cpu_s / wall, "rss_start_mib": rss_start / 1024,
            "rss_mib": rss / 1024, "peak_rss_mib": hwm / 1024, "records_arrived": arrived,
            "threads_ms": threads_ms, "measured_core_busy_share": core_busy, "bench_cpu_share": bench_cpu}


@dataclass
class IdleRun:
    """``kubevents run`` at rest, as :func:`idle_run` started it."""

    api: FastServer
    kubevents: KubeventsRun
    metrics_port: int
    started: float
    """``time.monotonic()`` just before the command was started."""


@contextmanager
def idle_run(*, seconds: float, per_minute: float, mix_lines: int) -> Iterator[IdleRun]:
    """The idle case of :func:`idle_cost` for a tool that reads the process itself
    (``bench.idle_threads``, ``bench.idle_timeline``): default settings, the OTLP/gRPC
    sink and the metrics export to the real Collector, the metrics server on a free
    port; the prepared-bytes server holds the lines of ``seconds`` at ``per_minute``
    (the first of the bench mix of ``mix_lines`` lines), sent once the caller asks it
    (``go``). ``kubevents run`` is stopped at the end.

    Raises:
        SystemExit: the Collector is not built.
    """
    binary = collector.binary()
    if binary is None:
        raise SystemExit("otelcol is not built (make servers)")
    events = mix.EventMix(objects=100_000, lines=mix_lines).generate()[:100]
    lines = max(int(seconds * per_minute / 60), 1)
    with (
        tempfile.TemporaryDirectory(prefix="kubevents-bench-") as tmp,
        collector.Collector(binary) as col,
    ):
        head = write_mix_file(events[:lines], tmp)
        with FastServer(str(head)) as api:
            kubeconfig = Path(tmp) / "kubeconfig"
            api.ask(f"kubeconfig {kubeconfig}")
            port = _free_port()
            started = time.monotonic()
            kubevents = KubeventsRun(
                {
                    "watch.kubeconfig": str(kubeconfig),
                    "sinks": [f"otlp:{col.endpoint}"],
                    "metrics.port": port,
                    "metrics.host": "127.0.0.1",
                    "cluster_name": "bench",
                    "instance_id": "bench-0",
                }
            )
            try:
                yield IdleRun(api, kubevents, port, started)
            finally:
                kubevents.stop()


def write_mix_file(events: list[dict[str, object]], directory: str | None = None) -> Path:
    import orjson

    path = Path(tempfile.mkstemp(suffix=".jsonl", prefix="kubevents-watch-", dir=directory)[1])
    path.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    return path


def watch_throughput(mix_file: Path, expected: int) -> WatchRun:
    with tempfile.TemporaryDirectory(prefix="kubevents-bench-") as tmp:
        run, _ = _run(mix_file, 0.0, expected, latency=False, workdir=Path(tmp))
    return run


def watch_latency(mix_file: Path, expected: int, rate: float) -> tuple[WatchRun, dict[str, float]]:
    with tempfile.TemporaryDirectory(prefix="kubevents-bench-") as tmp:
        run, lat = _run(mix_file, rate, expected, latency=True, workdir=Path(tmp))
    lat.sort()
    if not lat:
        return run, {"p50_s": float("nan"), "p99_s": float("nan"), "max_s": float("nan"), "matched": 0}
    return run, {
        "p50_s": statistics.median(lat),
        "p99_s": lat[min(int(len(lat) * 0.99), len(lat) - 1)],
        "max_s": lat[-1],
        "matched": len(lat),
    }
