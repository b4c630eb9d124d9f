"""The report of a 100k-Event dump: time to generate, file size, time to first render.

The dump is the bench mix (bench/mix.py) at 50 Events/s of event time, so
100,000 watch lines span about half an hour, as an outage's dump would.
``kubevents report`` runs as a separate process (the build under test, as
``make bench`` sets ``PYTHONPATH``; its peak RSS is reported too, the ``VmHWM`` of
its own address space: Linux carries ``ru_maxrss`` over ``exec`` from the parent, the
bench process holding the whole mix); the page is then opened in headless
Chromium over the DevTools protocol (tests/browser/cdp.py): navigate to the
load event, and the page's own first-contentful-paint entry.

Run alone: ``python -m bench.report [--lines N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import mix as mixmod
from bench.procs import PYTHON, ROOT

RATE = 50.0
"""Events per second of event time in the dump."""


def write_dump(lines: int) -> Path:
    fd, name = tempfile.mkstemp(prefix="kubevents-report-bench-", suffix=".jsonl")
    with os.fdopen(fd, "wb") as f:
        for event in mixmod.EventMix(objects=lines // 2, lines=lines, rate=RATE).generate_iter():
            f.write(mixmod.orjson.dumps(event) + b"\n")
    return Path(name)


_CHILD = """
import sys
from kubevents.cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(f"VmHWM {hwm}", file=sys.stderr)
sys.exit(code)
"""
"""``kubevents report``, then its own peak RSS (kB) on stderr's last line."""


def generate(dump: Path, page: Path) -> tuple[float, str, float]:
    """Run ``kubevents report``; wall seconds, its stderr line and its peak RSS in MiB."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = time.perf_counter()
    proc = subprocess.run(
        [PYTHON, "-c", _CHILD, "report", str(dump), "-o", str(page)],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"kubevents report failed: {proc.stderr[-2000:]}")
    *said, hwm = proc.stderr.strip().splitlines()
    return seconds, said[-1], int(hwm.split()[1]) / 1024


def render(page: Path, runs: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.browser.cdp import Chromium

    loads, paints = [], []
    with Chromium() as browser:
        for _ in range(runs):
            session = browser.new_page()
            load = browser.load(page, session, settle_s=0.2)
            if load.errors or load.requests:
                raise RuntimeError(f"the page misbehaved: {load.errors} {load.requests}")
            loads.append(load.load_s)
            paints.append(load.first_contentful_paint_ms or 0.0)
            browser.close_page(session)
    return {
        "load_s": statistics.median(loads),
        "first_contentful_paint_ms": statistics.median(paints),
        "runs_load_s": loads,
    }


def run(lines: int, runs: int) -> dict[str, Any]:
    """Generate the dump, the report (``runs`` times) and render it."""
    dump = write_dump(lines)
    page = dump.with_suffix(".html")
    try:
        times, peaks, said = [], [], ""
        for _ in range(runs):
            seconds, said, peak_mib = generate(dump, page)
            times.append(seconds)
            peaks.append(peak_mib)
        rendered = render(page, runs)
        return {
            "lines": lines,
            "rate_per_s": RATE,
            "dump_mib": dump.stat().st_size / 2**20,
            "generate_s": statistics.median(times),
            "runs_generate_s": times,
            "page_kib": page.stat().st_size / 1024,
            "peak_rss_mib": max(peaks),
            "runs_peak_rss_mib": peaks,
            "cli": said,
            **rendered,
        }
    finally:
        dump.unlink()
        page.unlink(missing_ok=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(run(args.lines, args.runs), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
