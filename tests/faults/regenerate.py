"""Run the fault suite and rewrite the figures table of docs/reliability.md.

    python tests/faults/regenerate.py            # the long form (make chaos), ~20 min
    python tests/faults/regenerate.py --short    # the short form (what make test runs)
    python tests/faults/regenerate.py --from DIR # only rewrite the table from figures in DIR

The table sits between the ``<!-- figures:begin -->`` and ``<!-- figures:end -->`` markers;
the rest of the page is left as it is; the long form's JSON is kept in
``tests/faults/figures/``. The exit code is pytest's (the table is rewritten
even when a scenario failed, so the failure shows in the figures).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
KEPT = Path(__file__).resolve().parent / "figures"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"

ORDER = [
    "watch_dropped_every_n_events",
    "410_storms",
    "apiserver_down",
    "collector_down-memory",
    "collector_down-spool",
    "loki_429_with_retry_after",
    "kill_9_at_random_points",
    "leader_failover_under_load",
    "slow_receiver_backpressure",
    "malformed_and_oversized_events_mixed_in",
]


def run(form: str, out: Path) -> int:
    env = {**os.environ, "KUBEVENTS_FAULTS_RESULTS": str(out)}
    if form == "long":
        env["KUBEVENTS_CHAOS"] = "1"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rA", "tests/faults"]
    return subprocess.call(cmd, cwd=ROOT, env=env)


def machine() -> str:
    cpus = os.cpu_count() or 0
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} CPUs ({model or platform.machine()}), Python {platform.python_version()}"


def _notes(notes: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in notes.items()).replace("|", "\\|")


def table(figures: list[dict[str, Any]]) -> str:
    forms = sorted({f["form"] for f in figures})
    head = [
        f"Form: **{'/'.join(forms)}**, measured {dt.date.today().isoformat()} on {machine()}.",
        "",
        "| scenario | generated | exported | lost | duplicated | seconds | details |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    rank = {name: i for i, name in enumerate(ORDER)}
    rows = [
        f"| {f['scenario']} | {f['generated']} | {f['exported']} | {f['lost']} | "
        f"{f['duplicated']} | {f['seconds']} | {_notes(f['notes'])} |"
        for f in sorted(figures, key=lambda f: rank.get(f["scenario"], len(ORDER)))
    ]
    return "\n".join(head + rows)


def rewrite(directory: Path) -> None:
    figures = [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]
    if not figures:
        raise SystemExit(f"no figures in {directory}")
    text = DOC.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    DOC.write_text(text[:start] + "\n" + table(figures) + "\n" + text[end:])
    print(f"rewrote the table of {DOC.relative_to(ROOT)} from {len(figures)} scenarios")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="run the short form")
    parser.add_argument("--from", dest="source", type=Path, help="figures directory to use")
    args = parser.parse_args()
    if args.source:
        rewrite(args.source)
        return 0
    with tempfile.TemporaryDirectory(prefix="kubevents-faults-") as tmp:
        code = run("short" if args.short else "long", Path(tmp))
        rewrite(Path(tmp))
        if not args.short:  # keep the long form's figures beside the suite
            KEPT.mkdir(exist_ok=True)
            for path in Path(tmp).glob("*.json"):
                (KEPT / path.name).write_text(path.read_text())
    return code


if __name__ == "__main__":
    sys.exit(main())
