"""The collector tuning of ``app``: what lives for good is frozen, the young generation is
collected less often, and ``replay`` tunes once it holds its whole input."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevents import app
from kubevents.model import KubeEvent
from kubevents.settings import load_settings

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo" / "events.jsonl"


@pytest.fixture(autouse=True)
def restored_gc() -> Iterator[None]:
    """The collector as it was: other tests must not run under a tuned one."""
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_what_is_alive_and_collects_less_often() -> None:
    kept = [{"n": n} for n in range(1_000)]
    assert any(o is kept for o in gc.get_objects())
    app.tune_gc()
    assert gc.get_freeze_count() >= len(kept)
    assert not any(o is kept for o in gc.get_objects())  # out of every generation
    assert gc.get_threshold() == app.GC_THRESHOLD
    assert app.GC_THRESHOLD[0] >= 10_000  # the default is 700
    assert gc.isenabled()


def test_replay_freezes_its_whole_input_and_runs_tuned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """When replay tunes, every Event of its input is alive and leaves the collected
    generations: none is walked by a collection while the pipeline runs."""
    real_tune = app.tune_gc
    seen: list[tuple[int, int, int]] = []

    def observed_tune() -> None:
        held = sum(isinstance(o, KubeEvent) for o in gc.get_objects())
        frozen_before = gc.get_freeze_count()
        real_tune()
        left = sum(isinstance(o, KubeEvent) for o in gc.get_objects())
        seen.append((held, left, gc.get_freeze_count() - frozen_before))

    monkeypatch.setattr(app, "tune_gc", observed_tune)
    settings = load_settings(
        None,
        env={},
        overrides={"sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",), "replay.summary": False},
    )
    events = sum(1 for line in DEMO.read_bytes().splitlines() if line.strip())
    gc.unfreeze()
    assert app.replay(settings, [str(DEMO)]) == 0
    assert len(seen) == 1
    held, left, frozen = seen[0]
    assert held >= events  # the whole input was read before the collector was tuned
    assert left == 0  # and none of it is in a collected generation any more
    assert frozen >= held
    assert gc.get_threshold() == app.GC_THRESHOLD
