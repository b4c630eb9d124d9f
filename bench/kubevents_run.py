"""``kubevents run`` (``app.run_cluster``) in its own process, pinned to one core.

Run as ``python -m bench.kubevents_run --cpus N SETTINGS_JSON``: the JSON
object holds setting overrides by dotted path (as ``load_settings`` takes
them). Stops on SIGTERM; then prints ``RUSAGE <user_s> <system_s> <peak_rss_kib>``.
``BENCH_MODULES=path`` writes the names of the modules it imported there at exit
(what the idle section's RSS is made of; docs/performance.md, "At rest").
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource

from kubevents import app
from kubevents.settings import load_settings


def _profile_threads(path: str) -> None:
    """cProfile every thread (``BENCH_PROFILE=path``): stats merged into ``path`` at exit."""
    import atexit
    import cProfile
    import pstats
    import threading

    profiles: list[cProfile.Profile] = []
    original = threading.Thread.run

    def run(self: threading.Thread) -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.runcall(original, self)

    threading.Thread.run = run  # type: ignore[method-assign]
    main_profile = cProfile.Profile()
    main_profile.enable()
    profiles.append(main_profile)

    def dump() -> None:
        main_profile.disable()
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            try:
                stats.add(profile)
            except TypeError:  # a thread still running
                continue
        stats.dump_stats(path)

    atexit.register(dump)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cpus", default="")
    parser.add_argument("settings")
    args = parser.parse_args()
    if args.cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in args.cpus.split(",")})
    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("BENCH_PROFILE"):
        _profile_threads(os.environ["BENCH_PROFILE"])
    overrides = json.loads(args.settings)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    settings = load_settings(None, env={}, overrides=overrides)
    print("READY", flush=True)
    app.run_cluster(settings)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    hwm = usage.ru_maxrss  # carried over exec from the parent: VmHWM is this process's own
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    print(f"RUSAGE {usage.ru_utime} {usage.ru_stime} {hwm}", flush=True)
    if os.environ.get("BENCH_MODULES"):
        import sys

        with open(os.environ["BENCH_MODULES"], "w") as f:
            f.writelines(f"{name}\n" for name in sorted(sys.modules))


if __name__ == "__main__":
    main()
