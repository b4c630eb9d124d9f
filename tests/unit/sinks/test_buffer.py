"""The two Buffers keep the same promises: export order, a batch in flight put back at the
head, what drop_oldest gives up counted once, settled never past a record still held."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from kubevents.records import OutputRecord
from kubevents.sinks.buffer import Buffer, MemoryBuffer, SpoolBuffer
from kubevents.sinks.spool import Spool
from tests.support.records import records


def bodies(batch: list[OutputRecord]) -> list[str]:
    return [r.body for r in batch]


def memory(_: Path) -> Buffer:
    return MemoryBuffer(100)


def spool(directory: Path) -> Buffer:
    return SpoolBuffer(Spool(directory, max_bytes=1 << 20), frame_records=5)


BUFFERS = [pytest.param(memory, id="memory"), pytest.param(spool, id="spool")]


def fill(buffer: Buffer, n: int) -> None:
    rest = records(0, n)
    while rest:
        rest = rest[buffer.put(rest) :]


@pytest.mark.parametrize("make", BUFFERS)
def test_batches_come_out_in_order_and_settle_on_ack(
    tmp_path: Path, make: Callable[[Path], Buffer]
) -> None:
    buffer = make(tmp_path)
    fill(buffer, 10)
    assert buffer.pending == 10
    assert bodies(buffer.take(5)) == bodies(records(0, 5))
    assert buffer.pending == 10  # the batch in flight is still held
    assert buffer.ack()
    assert bodies(buffer.take(5)) == bodies(records(5, 5))
    assert buffer.ack()
    assert buffer.pending == 0 and buffer.take(5) == []
    assert buffer.settled() == 10


@pytest.mark.parametrize("make", BUFFERS)
def test_a_requeued_batch_comes_out_first(tmp_path: Path, make: Callable[[Path], Buffer]) -> None:
    buffer = make(tmp_path)
    fill(buffer, 10)
    buffer.take(5)
    assert buffer.requeue() == 0
    assert bodies(buffer.take(5)) == bodies(records(0, 5))


def test_memory_gives_up_the_head_in_flight_first_and_trims_it_once() -> None:
    buffer = MemoryBuffer(10)
    fill(buffer, 10)
    buffer.take(4)
    assert buffer.put(records(10, 3)) == 0  # full
    dropped = buffer.drop_oldest(3)
    assert (dropped.lost, dropped.given_up) == (0, 3)
    assert buffer.settled() == 3  # given up: settled
    assert buffer.put(records(10, 3)) == 3
    assert buffer.trim() == 3 and buffer.trim() == 0
    assert bodies(buffer.in_flight) == ["r3"]
    assert buffer.close() == 10 and buffer.pending == 0
    assert not buffer.ack()  # written off: a late answer is not counted
    assert buffer.settled() == 3  # never past what was written off


def test_spool_gives_up_the_batch_in_flight_with_its_segment_only(tmp_path: Path) -> None:
    buffer = SpoolBuffer(Spool(tmp_path, max_bytes=1 << 20), frame_records=10)
    big = [
        OutputRecord(
            timestamp_ns=r.timestamp_ns,
            observed_ns=0,
            severity_number=9,
            severity_text="Normal",
            event_name="k8s.event",
            body="x" * 2000,
            namespace="ns",
            attributes={},
        )
        for r in records(0, 600)
    ]
    rest = big
    while rest:
        rest = rest[buffer.put(rest, force=True) :]
    batch = buffer.take(10)
    first = buffer.drop_oldest(1)
    assert first.given_up == len(batch) and first.lost > 0
    held = buffer.pending
    second = buffer.drop_oldest(1)
    assert second.given_up == 0
    assert held - buffer.pending == second.lost  # every record of that segment counted
    assert buffer.trim() == len(batch) and buffer.in_flight == []
