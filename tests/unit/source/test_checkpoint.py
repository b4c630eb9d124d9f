"""Checkpoints: round trips, damage, size limits, and only settled progress."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from kubevents.errors import SourceError
from kubevents.source.checkpoint import (
    Checkpoint,
    FileCheckpointStore,
    MemoryCheckpointStore,
    SettledProgress,
)

CP = Checkpoint("events.k8s.io/v1", {"*": "1234"}, {"uid-1": 3, "uid-2": 1}, saved_ns=42, event_time_ns=7)


def test_file_store_round_trip_and_first_start(tmp_path: Path) -> None:
    store = FileCheckpointStore(tmp_path / "sub" / "cp.json")
    assert store.load() is None
    store.save(CP)
    assert store.load() == CP
    assert not (tmp_path / "sub" / "cp.json.tmp").exists()


@pytest.mark.parametrize("content", [b"", b"{", b'{"version": 9}', b'{"version": 1}', b"[1]"])
def test_damaged_file_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "cp.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=f"{path}: damaged checkpoint"):
        FileCheckpointStore(path).load()


def test_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SourceError, match="cannot write checkpoint"):
        FileCheckpointStore(tmp_path / "file" / "cp.json").save(CP)


def test_annotation_round_trip() -> None:
    assert Checkpoint.from_annotation(CP.to_annotation(), where="Lease x") == CP


def test_annotation_keeps_the_newest_events_when_too_large() -> None:
    big = Checkpoint("v1", {"*": "9"}, {f"uid-{i:06d}-{'x' * 20}": i for i in range(50_000)})
    text = big.to_annotation(limit=100_000)
    assert len(text) <= 100_000
    back = Checkpoint.from_annotation(text, where="Lease x")
    assert back.resource_versions == {"*": "9"}
    assert 0 < len(back.emitted) < 50_000
    assert "uid-049999-" + "x" * 20 in back.emitted  # the newest survive


def test_settled_progress_only_advances_past_settled_records() -> None:
    progress = SettledProgress("v1")
    progress.processed(records_after=1, scope="*", resource_version="10", key="a", count=1)
    progress.processed(records_after=1, scope="*", resource_version="11", key="b", count=0)  # skipped update
    progress.processed(records_after=3, scope="*", resource_version="12", key="c", count=2)
    progress.settle(2)  # records 1..2 delivered; c's second record is still in flight
    cp = progress.checkpoint(0)
    assert cp.resource_versions == {"*": "11"}
    assert cp.emitted == {"a": 1}
    progress.settle(3)
    assert progress.checkpoint(0).resource_versions == {"*": "12"}
    assert progress.checkpoint(0).emitted == {"a": 1, "c": 2}


def test_a_held_record_keeps_the_resume_point_back_not_the_counts_delivered_after_it() -> None:
    # "a" is held for a late cause (its record is not exported yet); "b" and "c" come after
    # it and their records are delivered; "c" again, then "a" again while "a" is held.
    progress = SettledProgress("v1")
    progress.processed(records_after=1, scope="*", resource_version="10", key="a", count=1,
                       exported_after=0, held=True)  # fmt: skip
    progress.processed(records_after=2, scope="*", resource_version="11", key="b", count=1,
                       exported_after=1)  # fmt: skip
    progress.processed(records_after=3, scope="*", resource_version="12", key="c", count=1,
                       exported_after=2)  # fmt: skip
    progress.processed(records_after=4, scope="*", resource_version="13", key="a", count=2,
                       exported_after=3)  # fmt: skip
    progress.settle(0, 3)  # the floor is at the held record; three exported, all delivered
    cp = progress.checkpoint(0)
    assert cp.resource_versions == {}  # a restart resumes before the held record
    # b and c are not repeated; a's later update waits: its count would cover the held one
    assert cp.emitted == {"b": 1, "c": 1}
    progress.settle(4, 4)  # a was let out and delivered
    cp = progress.checkpoint(0)
    assert cp.resource_versions == {"*": "13"} and cp.emitted == {"a": 2, "b": 1, "c": 1}


def test_settled_progress_drops_forgotten_and_untracked_keys() -> None:
    progress = SettledProgress.resume(CP)
    progress.forget("uid-1")
    assert progress.checkpoint(0, keep={"uid-2", "other"}).emitted == {"uid-2": 1}


def test_settled_progress_carries_the_event_time_high_water() -> None:
    assert SettledProgress("v1").checkpoint(1, event_time_ns=99).event_time_ns == 99


def _peak_bytes(fn: Callable[[], object]) -> int:
    """What ``fn`` allocates at its peak beyond what was allocated before it."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def _progress_of(events: int) -> SettledProgress:
    progress = SettledProgress("v1")
    for i in range(events):
        progress.processed(
            records_after=i + 1, scope="*", resource_version=str(i), key=f"{i:08d}-uid-of-an-event", count=2
        )
    progress.settle(events)
    return progress


def test_a_checkpoint_shares_the_counts_and_the_memory_store_copies_them() -> None:
    # No second map of 100,000 counts at every save (it would be about 5 MiB)...
    progress = _progress_of(100_000)
    keep = {f"{i:08d}-uid-of-an-event" for i in range(1, 100_000)}
    assert _peak_bytes(lambda: progress.checkpoint(1, keep=keep)) < 1 << 20
    assert len(progress.checkpoint(1).emitted) == 99_999
    # ... so the store that keeps a checkpoint keeps a copy, unchanged by later progress.
    store = MemoryCheckpointStore()
    store.save(progress.checkpoint(1))
    progress.processed(records_after=100_001, scope="*", resource_version="x", key="new", count=1)
    progress.settle(100_001)
    progress.forget("00000001-uid-of-an-event")
    assert store.checkpoint is not None
    assert "new" not in store.checkpoint.emitted
    assert "00000001-uid-of-an-event" in store.checkpoint.emitted
    assert store.checkpoint.resource_versions == {"*": "99999"}
