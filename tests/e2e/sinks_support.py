"""Helpers shared by the sink end-to-end tests: run the real CLI, read the jsonl contract.

The expected content of every network sink is derived from the jsonl sink's
output of the *same* run (one replay with several ``--sink``), so the
records carry the same observed timestamps, and each comparison states the
mapping independently of the encoders under test.
"""

from __future__ import annotations

import calendar
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from kubevents import __version__, app
from kubevents.cli import main
from kubevents.settings import Settings, load_settings
from tests.support.scraping import sample

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
FAST = {
    # Keep retries and batching quick in tests; the policies themselves are unchanged.
    "delivery.backoff_base_s": 0.05,
    "delivery.backoff_cap_s": 0.2,
    "delivery.batch_timeout_s": 0.05,
}


def ns_of(rfc3339: str) -> int:
    """``2026-11-20T10:00:01.123456789Z`` -> nanoseconds since the epoch."""
    base, frac = rfc3339.removesuffix("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000 + int(frac)


def replay_cli(*args: str) -> int:
    """The real command line, in-process."""
    return main(["replay", str(DEMO), "--no-summary", "--cluster-name", "demo", *args])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def settings_for(sinks: Sequence[str], **overrides: Any) -> Settings:
    """Settings as the CLI would build them for a replay to ``sinks``."""
    values: dict[str, Any] = {
        "sinks": tuple(sinks),
        "cluster_name": "demo",
        "replay.summary": False,
        **FAST,
    }
    values.update({k.replace("__", "."): v for k, v in overrides.items()})
    return load_settings(None, env={}, overrides=values)


class ReplayThread:
    """``app.replay`` in a thread (the CLI's own function), stoppable, with its metrics URL."""

    def __init__(self, settings: Settings, *, metrics: bool = False) -> None:
        self.stop = threading.Event()
        self.metrics_url = ""
        self._ready = threading.Event()
        self.code: int | None = None
        self.error: BaseException | None = None

        def on_metrics(runtime: Any) -> None:
            self.metrics_url = runtime.server.url
            self._ready.set()

        def target() -> None:
            try:
                self.code = app.replay(
                    settings,
                    [str(DEMO)],
                    metrics_port=0 if metrics else None,
                    on_metrics=on_metrics,
                    stop=self.stop,
                )
            except BaseException as e:  # surfaced by join()
                self.error = e
            finally:
                self._ready.set()

        self.thread = threading.Thread(target=target, name="replay", daemon=True)
        self.thread.start()
        if metrics:
            self._ready.wait(30)

    def join(self, timeout: float = 60.0) -> int:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "replay did not finish"
        if self.error is not None:
            raise self.error
        assert self.code is not None
        return self.code


SCOPE = ("kubevents", __version__)


def settled_all(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], sink: str, total: int
) -> bool:
    """Whether ``sink`` accepted or dropped all ``total`` records (nothing left queued)."""
    dropped = sum(
        value
        for (name, labels), value in samples.items()
        if name == "kubevents_sink_dropped_total" and ("sink", sink) in labels
    )
    exported = sample(samples, "kubevents_sink_exported_total", sink=sink)
    return exported + dropped == total and not sample(
        samples, "kubevents_sink_queue_size", sink=sink
    )
