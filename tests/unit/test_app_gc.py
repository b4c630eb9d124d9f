"""The collector tuning of ``app``: what lives for good is frozen, the young generation is
collected less often, and ``replay`` tunes once it holds its whole input (its first pass
already collects less often)."""

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


def test_replay_tunes_once_after_its_first_pass_before_any_event_is_built(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Replay tunes once, after its first pass, which keeps only each Event's time: when it
    tunes, none of the input's Events has been built yet (they are built, and collected,
    as the second pass streams them through the pipeline)."""
    real_tune = app.tune_gc
    seen: list[tuple[int, int]] = []

    def alive() -> int:
        return sum(isinstance(o, KubeEvent) for o in gc.get_objects())

    tuned: list[tuple[int, int, int]] = []

    def observed_tune(threshold: tuple[int, int, int] = app.GC_THRESHOLD) -> None:
        held = alive()
        frozen_before = gc.get_freeze_count()
        real_tune(threshold)
        seen.append((held, gc.get_freeze_count() - frozen_before))
        tuned.append(gc.get_threshold())

    monkeypatch.setattr(app, "tune_gc", observed_tune)
    settings = load_settings(
        None,
        env={},
        overrides={"sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",), "replay.summary": False},
    )
    gc.unfreeze()
    before = alive()
    assert app.replay(settings, [str(DEMO)]) == 0
    assert len(seen) == 1
    held, frozen = seen[0]
    events = sum(1 for line in DEMO.read_bytes().splitlines() if line.strip())
    assert events > 500
    assert held <= before  # none of the demo's Events was alive when it tuned
    assert frozen > 0  # what was alive then (rules, settings) left the collected generations
    assert tuned == [app.GC_THRESHOLD]


def test_replay_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    """Nothing stays frozen after a replay and the thresholds are the caller's again, so
    that its stages' tables (entries linked both ways, which only the collector frees) do
    not outlive it: ``kubevents report`` builds its page after a replay, in one process."""
    from kubevents.enrich.patterns import PatternDetector

    def detectors_alive() -> int:
        gc.collect()
        return sum(isinstance(o, PatternDetector) for o in gc.get_objects())

    settings = load_settings(
        None,
        env={},
        overrides={"sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",), "replay.summary": False},
    )
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    before = detectors_alive()
    for _ in range(2):
        assert app.replay(settings, [str(DEMO)]) == 0
        assert gc.get_freeze_count() == 0
        assert gc.get_threshold() == (700, 10, 10)
        assert gc.isenabled()
        assert detectors_alive() == before  # the replay's detector and its tables are gone

    def failing(*args: object, **kwargs: object) -> Iterator[KubeEvent]:
        yield from ()
        raise OSError("disk gone")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(app, "_in_order", failing)
        with pytest.raises(OSError, match="disk gone"):
            app.replay(settings, [str(DEMO)])
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == (700, 10, 10)


def test_replay_s_first_pass_collects_at_the_tuned_thresholds(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The first pass parses every line before anything is frozen: at Python's default
    thresholds (700) it would collect hundreds of times over a large input for nothing."""
    real_scan = app._scan_files
    seen: list[tuple[int, int, int]] = []

    def observed_scan(*args: object, **kwargs: object) -> object:
        seen.append(gc.get_threshold())
        return real_scan(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app, "_scan_files", observed_scan)
    gc.set_threshold(700, 10, 10)
    settings = load_settings(
        None,
        env={},
        overrides={"sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",), "replay.summary": False},
    )
    assert app.replay(settings, [str(DEMO)]) == 0
    assert seen == [app.GC_THRESHOLD]


def test_replay_s_second_pass_runs_without_the_collector_and_turns_it_back_on(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The collector is off while the files' Events go through the pipeline (it would walk
    only what lives on: the held records, the stages' tables), on in the first pass and
    once they are through, also when the replay fails."""
    real_scan, real_in_order = app._scan_files, app._in_order
    first: list[bool] = []
    second: list[bool] = []

    def observed_scan(*args: object, **kwargs: object) -> object:
        first.append(gc.isenabled())
        return real_scan(*args, **kwargs)  # type: ignore[arg-type]

    def observed_in_order(*args: object, **kwargs: object) -> Iterator[KubeEvent]:
        for event in real_in_order(*args, **kwargs):  # type: ignore[arg-type]
            second.append(gc.isenabled())
            yield event

    monkeypatch.setattr(app, "_scan_files", observed_scan)
    monkeypatch.setattr(app, "_in_order", observed_in_order)
    settings = load_settings(
        None,
        env={},
        overrides={"sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",), "replay.summary": False},
    )
    assert app.replay(settings, [str(DEMO)]) == 0
    assert first == [True]
    assert len(second) > 500 and not any(second)
    assert gc.isenabled()

    def broken_in_order(*args: object, **kwargs: object) -> Iterator[KubeEvent]:
        yield from ()
        raise OSError("disk gone")

    monkeypatch.setattr(app, "_in_order", broken_in_order)
    with pytest.raises(OSError, match="disk gone"):
        app.replay(settings, [str(DEMO)])
    assert gc.isenabled()


def test_the_console_script_freezes_what_it_holds_before_the_process_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``kubevents replay`` as a process: the interpreter's last collections would free the
    tables the replay left to the collector object by object; frozen, they are not walked.
    A command line run in this process (``main(argv)``) leaves nothing frozen."""
    from kubevents import cli

    command = ["replay", str(DEMO), "--sink", f"jsonl:{tmp_path / 'out.jsonl'}"]
    gc.unfreeze()
    assert cli.main(command) == 0
    assert gc.get_freeze_count() == 0
    monkeypatch.setattr("sys.argv", ["kubevents", *command])
    assert cli.main() == 0
    assert gc.get_freeze_count() > 0
