"""The on-disk spool: a size-capped, crash-safe queue of output records for one sink.

Without a spool, a network sink buffers in memory; with one (``--spool DIR``)
every record a sink takes is first appended to ``DIR/<sink>/``, and the
sink's worker sends from there. So a backend outage may last as long as the
disk cap allows, and records not yet acknowledged survive a restart: they are
sent again when kubevents starts (at least once: a batch in flight when the
process died is sent twice).

Layout::

    DIR/<sink>/00000000000000000001.seg   segments, appended in order
    DIR/<sink>/00000000000000000002.seg
    DIR/<sink>/ack                        {"segment": 2, "offset": 4096, "records": 17}

A segment is a sequence of frames ``[length u32][crc32 u32][records u32]
[payload]``, the payload one JSON array of records (``orjson``). A frame torn
by a crash (short, or a bad CRC) ends the segment: it and what follows are
cut off when the spool is opened. The ``ack`` file is the first frame not yet
acknowledged; it is replaced atomically (write, rename) after each delivered
batch; losing an update only means a batch is sent again. Whole segments are
deleted once acknowledged, so the cap (``delivery.spool_max_bytes``) is
enforced by segment: each is at most an eighth of it.

Durability: appends reach the OS at once (``flush``) and the disk on
:meth:`Spool.sync`, which the sink calls when the watch asks what is settled
(once per checkpoint): a record counts as settled only after that ``fsync``.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import orjson

from kubevents.records import OutputRecord

logger = logging.getLogger(__name__)

_HEADER: Final = struct.Struct(">III")  # payload length, crc32 of the payload, record count
SEGMENT_SUFFIX: Final = ".seg"
MIN_SEGMENT_BYTES: Final = 64 * 1024
MAX_SEGMENT_BYTES: Final = 16 * 1024 * 1024


def to_row(record: OutputRecord) -> list[Any]:
    """A record as a JSON array (field order is the spool format: never reorder)."""
    return [
        record.timestamp_ns,
        record.observed_ns,
        record.severity_number,
        record.severity_text,
        record.event_name,
        record.body,
        record.namespace,
        record.attributes,
    ]


def from_row(row: list[Any]) -> OutputRecord:
    return OutputRecord(
        timestamp_ns=row[0],
        observed_ns=row[1],
        severity_number=row[2],
        severity_text=row[3],
        event_name=row[4],
        body=row[5],
        namespace=row[6],
        attributes=row[7],
    )


@dataclass(slots=True)
class _Segment:
    records: int = 0
    size: int = 0


@dataclass(frozen=True, slots=True)
class Cursor:
    """A position in the spool: the frame at ``offset`` of ``segment``."""

    segment: int
    offset: int
    records: int
    """Records of that segment before ``offset`` (to count what a drop loses)."""


@dataclass(frozen=True, slots=True)
class SpoolBatch:
    records: list[OutputRecord]
    start: Cursor
    end: Cursor


class Spool:
    """The spool of one sink. Not thread-safe: the owning sink serializes calls."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = min(max(max_bytes // 8, MIN_SEGMENT_BYTES), MAX_SEGMENT_BYTES)
        directory.mkdir(parents=True, exist_ok=True)
        self._segments: OrderedDict[int, _Segment] = OrderedDict()
        self._writer: IO[bytes] | None = None
        self._dirty = False
        self.written = 0
        """Records appended since this process opened the spool."""
        self.synced = 0
        """Of those, records on disk (fsync'd)."""
        self.recovered = 0
        """Records found unacknowledged when the spool was opened."""
        self._ack = Cursor(0, 0, 0)
        self._open()

    # -- opening -----------------------------------------------------------------

    def _open(self) -> None:
        ids = sorted(
            int(p.name.removesuffix(SEGMENT_SUFFIX))
            for p in self.directory.glob("*" + SEGMENT_SUFFIX)
            if p.name.removesuffix(SEGMENT_SUFFIX).isdigit()
        )
        ack = self._read_ack()
        for seg_id in ids:
            if ack is not None and seg_id < ack.segment:
                self._path(seg_id).unlink(missing_ok=True)  # acknowledged, not yet deleted
                continue
            self._segments[seg_id] = self._scan(seg_id)
        first = next(iter(self._segments), 0)
        if ack is None or ack.segment not in self._segments:
            self._ack = Cursor(first, 0, 0)
        else:
            self._ack = ack
        self.recovered = self.pending
        if self.recovered:
            logger.info(
                "spool %s: %d records not yet acknowledged will be sent again",
                self.directory,
                self.recovered,
            )

    def _read_ack(self) -> Cursor | None:
        try:
            data = orjson.loads((self.directory / "ack").read_bytes())
            return Cursor(int(data["segment"]), int(data["offset"]), int(data["records"]))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as e:
            logger.warning(
                "spool %s: unreadable ack file (%s): sending it all again", self.directory, e
            )
            return None

    def _scan(self, seg_id: int) -> _Segment:
        """Count a segment's frames; cut off a torn tail."""
        path = self._path(seg_id)
        info = _Segment()
        with path.open("r+b") as f:
            while True:
                header = f.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    break
                length, crc, count = _HEADER.unpack(header)
                payload = f.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                info.records += count
                info.size += _HEADER.size + length
            if f.seek(0, os.SEEK_END) != info.size:
                logger.warning("spool %s: cutting a torn frame at byte %d", path, info.size)
                f.truncate(info.size)
        return info

    def _path(self, seg_id: int) -> Path:
        return self.directory / f"{seg_id:020d}{SEGMENT_SUFFIX}"

    # -- state -------------------------------------------------------------------

    @property
    def size_bytes(self) -> int:
        return sum(s.size for s in self._segments.values())

    @property
    def oldest_segment(self) -> int | None:
        return next(iter(self._segments), None)

    @property
    def pending(self) -> int:
        """Records not yet acknowledged."""
        return sum(s.records for s in self._segments.values()) - self._ack.records

    def has_room(self, size: int) -> bool:
        return self.size_bytes + size <= self.max_bytes or self.pending == 0

    # -- writing -----------------------------------------------------------------

    def encode(self, records: Sequence[OutputRecord]) -> bytes:
        """One frame holding ``records``."""
        payload = orjson.dumps([to_row(r) for r in records])
        return _HEADER.pack(len(payload), zlib.crc32(payload), len(records)) + payload

    def append(self, frame: bytes, records: int) -> None:
        """Append one frame (from :meth:`encode`); flushed to the OS, not yet synced."""
        last = next(reversed(self._segments), None)
        if last is None or self._writer is None or self._segments[last].size >= self.segment_bytes:
            self._roll()
            last = next(reversed(self._segments))
        assert self._writer is not None
        self._writer.write(frame)
        self._writer.flush()
        segment = self._segments[last]
        segment.records += records
        segment.size += len(frame)
        self.written += records
        self._dirty = True

    def _roll(self) -> None:
        if self._writer is not None:
            self._writer.close()
        seg_id = next(reversed(self._segments), 0) + 1
        self._segments[seg_id] = _Segment()
        self._writer = self._path(seg_id).open("ab")
        if len(self._segments) == 1:
            self._ack = Cursor(seg_id, 0, 0)

    def sync(self) -> int:
        """fsync what was appended; returns the records now on disk."""
        if self._dirty and self._writer is not None:
            os.fsync(self._writer.fileno())
            self._dirty = False
        self.synced = self.written
        return self.synced

    # -- reading -----------------------------------------------------------------

    def peek(self, max_records: int) -> SpoolBatch | None:
        """The next frames from the acknowledged position: up to ``max_records`` (at
        least one frame), never across a segment boundary."""
        start = self._ack
        segment = self._segments.get(start.segment)
        if segment is None:
            return None
        if start.offset >= segment.size:
            later = [s for s in self._segments if s > start.segment]
            if not later:
                return None
            # The acknowledged segment is complete: continue in the next one.
            self._delete(start.segment)
            self._ack = start = Cursor(later[0], 0, 0)
            segment = self._segments[start.segment]
            if not segment.size:
                return None
        records: list[OutputRecord] = []
        offset, before = start.offset, start.records
        with self._path(start.segment).open("rb") as f:
            f.seek(offset)
            while offset < segment.size:
                length, _, count = _HEADER.unpack(f.read(_HEADER.size))
                if records and len(records) + count > max_records:
                    break
                records.extend(from_row(row) for row in orjson.loads(f.read(length)))
                offset += _HEADER.size + length
                before += count
                if len(records) >= max_records:
                    break
        return SpoolBatch(records, start, Cursor(start.segment, offset, before))

    def ack(self, batch: SpoolBatch) -> None:
        """``batch`` was delivered (or deliberately dropped): move past it, delete old segments."""
        if batch.start != self._ack:
            return  # its segment was dropped meanwhile (drop_oldest): already accounted for
        self._ack = batch.end
        for seg_id in [s for s in self._segments if s < batch.end.segment]:
            self._delete(seg_id)
        self._write_ack()

    def _write_ack(self) -> None:
        tmp = self.directory / "ack.tmp"
        tmp.write_bytes(
            orjson.dumps(
                {
                    "segment": self._ack.segment,
                    "offset": self._ack.offset,
                    "records": self._ack.records,
                }
            )
        )
        tmp.replace(self.directory / "ack")

    def _delete(self, seg_id: int) -> None:
        del self._segments[seg_id]
        self._path(seg_id).unlink(missing_ok=True)

    def drop_oldest(self, *, in_flight: int = 0) -> int:
        """Delete the oldest segment to make room; returns the unacknowledged records lost.

        ``in_flight`` records (a batch the worker is sending, always from the
        oldest segment) are not counted as lost: they are being delivered, and
        their acknowledgement will be ignored.
        """
        if not self._segments:
            return 0
        oldest = next(iter(self._segments))
        if oldest == next(reversed(self._segments)):
            self._roll()  # never delete the segment being written without a new one
        acked = self._ack.records if self._ack.segment == oldest else 0
        lost = max(self._segments[oldest].records - acked - in_flight, 0)
        self._delete(oldest)
        if self._ack.segment <= oldest:
            self._ack = Cursor(next(iter(self._segments)), 0, 0)
            self._write_ack()
        return lost

    def close(self) -> None:
        self.sync()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
