"""Where the time of a py-spy recording goes: ``python -m bench.stacks FILE [--top N]``.

``FILE`` is py-spy's ``--format raw`` output (collapsed stacks, one
``thread (tid): frame;frame;... count`` line per distinct stack), as
``BENCH_PYSPY`` makes it for the watch benchmarks. Prints the share of the
samples per thread, then per thread the functions with the largest inclusive
share (the function or what it calls) and the largest self share (the
innermost frame). Idle samples are not recorded (py-spy without ``--idle``),
so the shares are of the time a thread was running or waiting for the GIL.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r"^thread \((\w+)\): (.*) (\d+)$")


def _function(frame: str) -> str:
    """``Runner._process (kubevents/running.py:345)`` -> ``Runner._process (kubevents/running.py)``."""
    return re.sub(r":\d+\)$", ")", frame)


def _thread_name(frames: list[str]) -> str:
    """A thread's name from its outermost kubevents frames (py-spy's raw format has no name)."""
    text = ";".join(frames)
    for needle, name in (
        ("EventWatcher.run", "watch"),
        ("Runner.run", "pipeline"),
        ("Delivery", "sink worker"),
        ("_worker", "sink worker"),
    ):
        if needle in text:
            return name
    return frames[0].split(" ")[0] if frames else "?"


def summarize(path: Path, top: int = 15) -> str:
    total = 0
    threads: Counter[str] = Counter()
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    own: dict[str, Counter[str]] = defaultdict(Counter)
    for raw in path.read_text(errors="replace").splitlines():
        match = _LINE.match(raw)
        if not match:
            continue
        frames = match.group(2).split(";")
        if frames and frames[0].startswith("process "):
            frames = frames[1:]
        count = int(match.group(3))
        name = _thread_name(frames)
        total += count
        threads[name] += count
        for function in {_function(f) for f in frames}:
            inclusive[name][function] += count
        if frames:
            own[name][_function(frames[-1])] += count
    out = [f"{total} samples"]
    for name, n in threads.most_common():
        out.append(f"\n== {name}: {n / total:.1%} of the samples")
        out.append("  inclusive:")
        out += [f"    {c / total:6.1%}  {f}" for f, c in inclusive[name].most_common(top)]
        out.append("  self:")
        out += [f"    {c / total:6.1%}  {f}" for f, c in own[name].most_common(top)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stacks")
    parser.add_argument("file")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    print(summarize(Path(args.file), args.top))


if __name__ == "__main__":
    main()
