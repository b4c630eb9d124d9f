"""Helper processes of the benchmarks: the OTLP receiver and the fake apiserver.

Each runs in its own interpreter (``python -m bench.<module>``) and is driven
by one-line commands on stdin, one-line answers on stdout. CPU placement:
:func:`pin` puts the measured process on one core; helpers run on the others
(``--cpus``), so "one core" means what it says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def all_cpus() -> set[int]:
    return set(range(os.cpu_count() or 1))


def measured_cpu() -> int:
    """The core the measured process runs on: the last one."""
    return max(all_cpus())


def helper_cpus() -> set[int]:
    """Cores for helper processes: every other core (all of them on a one-core machine)."""
    return all_cpus() - {measured_cpu()} or all_cpus()


def pin(cpus: set[int]) -> None:
    """Restrict this process (and threads it starts from now on) to ``cpus``."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cpus)


class Helper:
    """A helper process speaking the line protocol."""

    def __init__(self, module: str, *args: str, cpus: set[int] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        cpu_arg = ",".join(str(c) for c in sorted(cpus if cpus is not None else helper_cpus()))
        self.proc = subprocess.Popen(
            [PYTHON, "-m", module, "--cpus", cpu_arg, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        self.banner = self.read()

    def read(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"helper {self.proc.args} exited ({self.proc.wait()})")
        return line.strip()

    def ask(self, command: str) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(10)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Receiver(Helper):
    """``bench.receiver``: an OTLP/gRPC logs receiver that acknowledges everything."""

    def __init__(self, *, latency: bool = False) -> None:
        super().__init__("bench.receiver", *(["--latency"] if latency else []))
        self.port = int(self.banner.split()[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def counts(self) -> tuple[int, int, int, int]:
        """Records, k8s.event records, requests, occurrences received so far."""
        _, records, events, requests, occurrences = self.ask("count").split()
        return int(records), int(events), int(requests), int(occurrences)

    def wait_occurrences(self, n: int, timeout_s: float) -> int:
        """Wait until ``n`` occurrences arrived; returns how many did."""
        return int(self.ask(f"wait {n} {timeout_s}").split()[4])

    def reset(self) -> None:
        self.ask("reset")


class ApiServer(Helper):
    """``bench.apiserver``: the fake apiserver of tests/fakes, loaded on command."""

    def __init__(self, *, latency: bool = False) -> None:
        super().__init__("bench.apiserver", *(["--latency"] if latency else []))
        self.url = self.banner.split()[1]


class FastServer(Helper):
    """``bench.fastserver``: prepared watch-stream bytes of ``mix_file``, sent on ``go``."""

    def __init__(self, mix_file: str) -> None:
        super().__init__("bench.fastserver", mix_file)
        self.url = self.banner.split()[1]
