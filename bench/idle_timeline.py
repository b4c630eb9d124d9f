"""``kubevents run`` at rest, second by second, thread by thread, from its start.

``python -m bench.idle_timeline [SECONDS]`` starts the idle case of
``bench/watch.py`` (default settings, the OTLP/gRPC sink and the metrics
export to the real Collector, 10 Events a minute from the prepared-bytes
server, the lines sent from 5 s after ``/healthz`` answers, as ``idle_cost``
does) and reads, every second from the command's start for ``SECONDS``
(default 90), every thread's CPU (``/proc/PID/task/TID/stat`` utime +
stime, in clock ticks) and the whole process's (``/proc/PID/stat``, which
keeps the time of threads that ended). It prints one row per second: the
process's CPU in ms, then each thread's, with the moments the watch
connected, ``/healthz`` answered and the bench's window began. Thread names
come from ``py-spy dump`` (when found) taken after ``/healthz``; a thread
started later shows by its id. ``--spy`` also records the process with
``py-spy record --native --threads`` in windows of 5 s (``py-spy-<t>.txt``
in the current directory), to name what a burst runs; ``--strace`` writes the
system calls of the window's 60 s (``strace -f -tt``) into ``strace-idle.txt``.
Used for docs/performance.md, "At rest".
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import watch
from bench.idle_threads import _names
from bench.procs import helper_cpus

PER_MINUTE = 10.0
TICK = os.sysconf("SC_CLK_TCK")


def _sample(pid: int) -> tuple[int, dict[int, int]]:
    """The process's CPU (ms, clock ticks: threads that ended included) and each live
    thread's run time (ns, ``schedstat``: the scheduler's own, finer than a tick)."""
    return watch.cpu_ticks(pid) * 1000 // TICK, watch.threads_run_ns(pid)


def _spy_path() -> str:
    return shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")


def _spy(pid: int, seconds: float, t0: float) -> None:
    spy = _spy_path()
    if not Path(spy).exists():
        return
    end = t0 + seconds
    while time.monotonic() < end - 1:
        at = time.monotonic() - t0
        subprocess.run(
            [spy, "record", "--native", "--threads", "-r", "150", "-f", "raw", "-d", "5",
             "-o", f"py-spy-{at:03.0f}.txt", "--pid", str(pid)],
            capture_output=True,
        )


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    seconds = float(args[0]) if args else 90.0
    marks: dict[str, float] = {}
    samples: list[tuple[float, int, dict[int, int]]] = []
    # The mix of the bench's idle case (run_idle).
    with watch.idle_run(seconds=seconds, per_minute=PER_MINUTE, mix_lines=150_000) as idle:
        api, pid, port, t0 = idle.api, idle.kubevents.proc.pid, idle.metrics_port, idle.started
        marks["ready"] = idle.kubevents.ready_at - t0
        done = threading.Event()

        def sample() -> None:
            k = 0
            while not done.is_set() and time.monotonic() < t0 + seconds:
                samples.append((time.monotonic() - t0, *_sample(pid)))
                k += 1
                time.sleep(max(t0 + k - time.monotonic(), 0.0))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        if "--spy" in sys.argv:
            os.sched_setaffinity(0, helper_cpus())
            threading.Thread(target=_spy, args=(pid, seconds, t0), daemon=True).start()
        names: dict[int, str] = {}
        try:
            watch._wait_for_watch(api)
            marks["watch"] = time.monotonic() - t0
            watch._wait_for_http(f"http://127.0.0.1:{port}/healthz")
            marks["healthz"] = time.monotonic() - t0
            time.sleep(5.0)
            marks["window"] = time.monotonic() - t0
            if "--strace" in sys.argv:
                tracer = subprocess.Popen(
                    ["strace", "-f", "-tt", "-o", "strace-idle.txt", "-p", str(pid)]
                )
                threading.Timer(60.0, tracer.send_signal, (signal.SIGINT,)).start()
            api.ask(f"go {PER_MINUTE / 60}")  # answers once every line is sent
            names = _names(pid, _spy_path())
            sampler.join()
        finally:
            done.set()
    tids = sorted({tid for _, _, threads in samples for tid in threads})
    label = {tid: names.get(tid, str(tid))[:14] for tid in tids}
    print("marks: " + ", ".join(f"{k} {v:.1f} s" for k, v in marks.items()))
    print(f"{'t s':>5} {'all ms':>7} {'threads':>8} " + " ".join(f"{label[t]:>14}" for t in tids))
    for (_, a_all, a), (t, b_all, b) in itertools.pairwise(samples):
        steps = {tid: (b[tid] - a.get(tid, 0)) / 1e6 for tid in tids if tid in b}
        row = [f"{steps[tid]:14.1f}" if tid in steps else f"{'':14}" for tid in tids]
        print(f"{t:5.1f} {b_all - a_all:7d} {sum(steps.values()):8.1f} " + " ".join(row))
    w0 = marks["window"]
    inside = [(t, c, th) for t, c, th in samples if w0 <= t <= w0 + 60]
    if len(inside) > 1:
        (ta, ca, tha), (tb, cb, thb) = inside[0], inside[-1]
        ns = sum(thb[tid] - tha.get(tid, 0) for tid in thb)
        print(f"window {ta:.1f}-{tb:.1f} s: {(cb - ca) / 1000 / (tb - ta):.3%} of a core"
              f" (/proc/PID/stat), {ns / 1e9 / (tb - ta):.3%} by the live threads' schedstat")


if __name__ == "__main__":
    main()
