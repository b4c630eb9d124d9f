"""The watch path: fake apiserver process -> ``kubevents run`` process -> receiver process.

* :func:`watch_throughput`: ``kubevents run`` is watching an empty fake
  apiserver; the fake then takes the whole mix as fast as it can write it
  (creates for ADDED, updates for MODIFIED); timed from the first write to
  the last k8s.event record at the receiver. The CPU time of the kubevents
  process (its rusage at exit) gives the rate per CPU-second too.
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
from dataclasses import dataclass
from pathlib import Path

from bench.procs import PYTHON, ROOT, ApiServer, Receiver, measured_cpu


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
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class KubeventsRun:
    """``python -m bench.kubevents_run`` on the measured core."""

    def __init__(self, overrides: dict[str, object]) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        self.proc = subprocess.Popen(
            [PYTHON, "-m", "bench.kubevents_run", "--cpus", str(measured_cpu()), json.dumps(overrides)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # READY

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


def _wait_for_watch(api: ApiServer, timeout_s: float = 30.0) -> None:
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
