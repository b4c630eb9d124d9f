"""Runner probes: /healthz fails when the pipeline loop stops coming round."""

from __future__ import annotations

import threading
import time

from kubevents.clock import SystemClock
from kubevents.running import STALL_S, Runner
from kubevents.settings import load_settings
from kubevents.source.checkpoint import MemoryCheckpointStore


def runner() -> Runner:
    return Runner(
        load_settings(None, env={}),
        pipeline_factory=lambda tracker: None,  # type: ignore[arg-type,return-value]
        api=None,  # type: ignore[arg-type]  # never called: no term is started
        store=MemoryCheckpointStore(),
        clock=SystemClock(),
        stop=threading.Event(),
    )


def test_healthy_while_the_loop_turns_and_not_once_it_stalls() -> None:
    r = runner()
    assert r.healthy() == (True, "starting")
    r._loop_at = time.monotonic()  # what each turn of Runner.run stamps
    assert r.healthy() == (True, "ok")
    r._loop_at = time.monotonic() - STALL_S - 5
    ok, why = r.healthy()
    assert not ok and why.startswith("pipeline thread stalled for 6")


def test_ready_only_when_leading_and_watching_or_on_standby() -> None:
    r = runner()
    assert r.ready() == (True, "standby")
    r.start_leading()
    assert r.ready() == (False, "watch not established")
