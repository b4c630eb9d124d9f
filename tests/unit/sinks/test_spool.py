"""The on-disk spool: append, read, acknowledge, survive a restart and a torn write, stay capped."""

from __future__ import annotations

from pathlib import Path

from kubevents.records import OutputRecord
from kubevents.sinks.spool import MIN_SEGMENT_BYTES, Spool


def records(start: int, n: int, *, body: str = "m") -> list[OutputRecord]:
    return [
        OutputRecord(
            timestamp_ns=i,
            observed_ns=i + 1,
            severity_number=9,
            severity_text="Normal",
            event_name="k8s.event",
            body=f"{body}-{i}",
            namespace="shop",
            attributes={"k8s.event.reason": "Started", "k8s.event.count": i, "ok": True, "r": 0.5},
        )
        for i in range(start, start + n)
    ]


def put(spool: Spool, batch: list[OutputRecord]) -> None:
    spool.append(spool.encode(batch), len(batch))


def bodies(batch: list[OutputRecord]) -> list[str]:
    return [r.body for r in batch]


def test_records_come_back_identical_and_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    put(spool, records(0, 3))
    put(spool, records(3, 2))
    batch = spool.peek(10)
    assert batch is not None and batch.records == records(0, 5)
    assert spool.pending == 5


def test_peek_stops_at_whole_frames(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    put(spool, records(0, 3))
    put(spool, records(3, 3))
    first = spool.peek(4)
    assert first is not None and bodies(first.records) == bodies(records(0, 3))
    spool.ack(first)
    second = spool.peek(4)
    assert second is not None and bodies(second.records) == bodies(records(3, 3))
    spool.ack(second)
    assert spool.peek(4) is None and spool.pending == 0


def test_a_restart_reads_only_what_was_not_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    put(spool, records(0, 2))
    put(spool, records(2, 2))
    first = spool.peek(2)
    assert first is not None
    spool.ack(first)
    spool.close()
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.recovered == 2
    batch = again.peek(10)
    assert batch is not None and bodies(batch.records) == bodies(records(2, 2))
    put(again, records(4, 1))  # new records go after the recovered ones
    again.ack(batch)
    batch = again.peek(10)
    assert batch is not None and bodies(batch.records) == bodies(records(4, 1))


def test_a_torn_frame_is_cut_off_on_open(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    put(spool, records(0, 2))
    put(spool, records(2, 2))
    spool.close()
    [segment] = list(tmp_path.glob("*.seg"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # the process died in the middle of the second frame
    again = Spool(tmp_path, max_bytes=1 << 20)
    assert again.pending == 2
    batch = again.peek(10)
    assert batch is not None and bodies(batch.records) == bodies(records(0, 2))


def test_an_unreadable_ack_file_sends_everything_again(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    put(spool, records(0, 2))
    batch = spool.peek(1)
    assert batch is not None
    spool.ack(batch)
    spool.close()
    (tmp_path / "ack").write_text("{not json")
    assert Spool(tmp_path, max_bytes=1 << 20).pending == 2


def test_acknowledged_segments_are_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)  # segments of 128 KiB
    for i in range(40):
        put(spool, records(i * 10, 10, body="x" * 1000))
    assert len(list(tmp_path.glob("*.seg"))) > 2
    while (batch := spool.peek(64)) is not None:
        spool.ack(batch)
    assert spool.pending == 0
    assert len(list(tmp_path.glob("*.seg"))) == 1  # the one being written


def test_the_cap_is_reported_and_drop_oldest_counts_what_it_loses(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    assert spool.segment_bytes == max((1 << 20) // 8, MIN_SEGMENT_BYTES)
    while spool.has_room(20_000):
        put(spool, records(0, 10, body="y" * 2000))
    before = spool.pending
    lost = spool.drop_oldest()
    assert lost > 0 and spool.pending == before - lost
    assert spool.has_room(20_000)


def test_dropping_the_segment_in_flight_does_not_count_the_batch_in_flight(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    for _ in range(30):
        put(spool, records(0, 10, body="z" * 2000))
    batch = spool.peek(10)
    assert batch is not None
    lost = spool.drop_oldest(in_flight=len(batch.records))
    spool.ack(batch)  # too late: its segment is gone; ignored
    assert lost > 0
    nxt = spool.peek(10)
    assert nxt is not None and nxt.start.segment > batch.start.segment


def test_sync_reports_what_is_on_disk(tmp_path: Path) -> None:
    spool = Spool(tmp_path, max_bytes=1 << 20)
    put(spool, records(0, 3))
    assert spool.synced == 0
    assert spool.sync() == 3
