"""Where ``kubevents run`` spends its CPU at rest, thread by thread.

``python -m bench.idle_threads [SECONDS]`` runs the idle case of
``bench/watch.py`` (default settings, the OTLP/gRPC sink and the metrics
export to the real Collector, 10 Events a minute from the prepared-bytes
server) and reads every thread's run time (``/proc/PID/task/TID/schedstat``,
the scheduler's own nanoseconds) and voluntary context switches (one per
wait that blocked) every 0.5 s of the window. It prints, per thread: the CPU
over the window, the largest 0.5 s sample and the wake-ups; thread names
come from the threads themselves (``py-spy dump``) when py-spy is found.
Used for docs/performance.md, "At rest". The build is whatever ``kubevents``
imports (``PYTHONPATH``, as for ``python -m bench``).
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import watch

PER_MINUTE = 10.0


def _threads(pid: int) -> dict[int, tuple[int, int]]:
    """Thread id -> (run time ns, voluntary context switches)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            run_ns = watch.thread_run_ns(pid, tid)
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:
            continue  # the thread ended
        found = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M)
        switches = int(found.group(1)) if found else 0
        out[int(tid)] = (run_ns, switches)
    return out


def _names(pid: int, spy: str = "") -> dict[int, str]:
    spy = spy or shutil.which("py-spy") or "/tmp/pyspy/bin/py-spy"
    if not Path(spy).exists():
        return {}
    dump = subprocess.run([spy, "dump", "--pid", str(pid)], capture_output=True, text=True).stdout
    return {
        int(m.group(1)): m.group(2) for m in re.finditer(r'Thread (\d+) \([^)]*\): "([^"]*)"', dump)
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    with watch.idle_run(seconds=seconds, per_minute=PER_MINUTE, mix_lines=2000) as idle:
        api, pid, port = idle.api, idle.kubevents.proc.pid, idle.metrics_port
        watch._wait_for_watch(api)
        watch._wait_for_http(f"http://127.0.0.1:{port}/healthz")
        time.sleep(5.0)
        names = _names(pid)
        samples: list[dict[int, tuple[int, int]]] = [_threads(pid)]
        t0 = time.monotonic()

        def sample() -> None:
            while time.monotonic() < t0 + seconds:
                time.sleep(0.5)
                samples.append(_threads(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        api.ask(f"go {PER_MINUTE / 60}")
        sampler.join()
    total = 0
    print(f"{'thread':36} {'CPU ms':>8} {'max 0.5 s':>10} {'wake-ups':>9}")
    for tid in sorted(samples[-1]):
        steps = [
            (b[tid][0] - a[tid][0], b[tid][1] - a[tid][1])
            for a, b in itertools.pairwise(samples)
            if tid in a and tid in b
        ]
        cpu = sum(ns for ns, _ in steps)
        total += cpu
        print(
            f"{names.get(tid, str(tid)):36} {cpu / 1e6:8.1f} {max((ns for ns, _ in steps), default=0) / 1e6:10.1f}"
            f" {sum(n for _, n in steps):9d}"
        )
    print(
        f"{'all':36} {total / 1e6:8.1f}   ({total / 1e9 / seconds:.3%} of a core over {seconds:g} s)"
    )


if __name__ == "__main__":
    main()
