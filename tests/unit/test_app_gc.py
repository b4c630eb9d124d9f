"""The collector tuning of ``app``: what lives for good is frozen, the young generation is
collected less often, and ``replay`` tunes once it holds its whole input."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevents import app
from kubevents.config import load_settings
from kubevents.model import KubeEvent
from kubevents.normalize import normalize

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


def test_replay_tunes_once_after_its_first_pass_before_any_event_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    normalized: list[int] = []

    def counting_normalize(obj: dict[str, object]) -> KubeEvent:
        normalized.append(1)
        return normalize(obj)

    tuned_after: list[int] = []
    monkeypatch.setattr(app, "normalize", counting_normalize)
    monkeypatch.setattr(app, "tune_gc", lambda: tuned_after.append(len(normalized)))
    settings = load_settings(
        None,
        env={},
        overrides={"sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",), "replay.summary": False},
    )
    assert app.replay(settings, [str(DEMO)]) == 0
    assert normalized
    # Once: the first pass has read the file (keeping only times), the second builds the Events.
    assert tuned_after == [0]
