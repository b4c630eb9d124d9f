"""Checkpoints: where a restarted (or failed-over) kubevents resumes.

A checkpoint holds, per watch scope, the last resourceVersion whose Events
every sink has settled (delivered or deliberately dropped), and the count
already emitted for each Event still within the Event TTL. On restart the
watch resumes from the resourceVersion; if that has expired, the relist is
filtered through the emitted counts, so nothing is lost and nothing settled
is repeated. Only what was processed after the last save can repeat: with
the default 1 s interval, at most one second of Events. A record held for a
late cause keeps the resourceVersions behind it (for up to
``correlation.settle_s``), not the emitted counts of the Events delivered
meanwhile: a restart brings those again and lets only the held ones through.

Stores are small: :class:`FileCheckpointStore` (atomic replace of a JSON
file) and, in a cluster, an annotation on the leader-election Lease (see
``leader.py``), so the next leader continues where the last one stopped.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import zlib
from collections import deque
from collections.abc import Container
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from kubevents.errors import SourceError

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """Settled progress: resume points per scope and emitted counts per Event."""

    api_version: str
    resource_versions: dict[str, str]
    """Watch scope (``*`` or a namespace) -> last settled resourceVersion."""
    emitted: dict[str, int]
    """Event key (uid) -> occurrences count already emitted and settled."""
    saved_ns: int = 0
    event_time_ns: int = 0
    """The newest Event time seen when saved; restored entries age from it."""

    def to_bytes(self) -> bytes:
        return orjson.dumps(
            {
                "version": FORMAT_VERSION,
                "api_version": self.api_version,
                "resource_versions": self.resource_versions,
                "emitted": self.emitted,
                "saved_ns": self.saved_ns,
                "event_time_ns": self.event_time_ns,
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes, *, where: str) -> Checkpoint:
        """Parse a stored checkpoint; a damaged one is an error naming ``where``."""
        try:
            raw = orjson.loads(data)
            if raw.get("version") != FORMAT_VERSION:
                raise ValueError(f"unsupported checkpoint version {raw.get('version')!r}")
            return cls(
                api_version=str(raw["api_version"]),
                resource_versions={str(k): str(v) for k, v in raw["resource_versions"].items()},
                emitted={str(k): int(v) for k, v in raw["emitted"].items()},
                saved_ns=int(raw.get("saved_ns", 0)),
                event_time_ns=int(raw.get("event_time_ns", 0)),
            )
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise SourceError(f"{where}: damaged checkpoint: {e}") from e

    def to_annotation(self, limit: int = 200_000) -> str:
        """Compressed, base64 text for a Lease annotation, trimmed to ``limit`` characters.

        Annotations share a 256 KiB budget per object: when the emitted map does
        not fit, the oldest half is dropped until it does (they are the entries
        closest to TTL expiry; a relist may then repeat them once).
        """
        checkpoint = self
        while True:
            text = base64.b64encode(zlib.compress(checkpoint.to_bytes(), 6)).decode()
            if len(text) <= limit or not checkpoint.emitted:
                return text
            keep = dict(list(checkpoint.emitted.items())[len(checkpoint.emitted) // 2 :])
            logger.warning(
                "checkpoint too large for the Lease: keeping the newest %d Events", len(keep)
            )
            checkpoint = Checkpoint(
                self.api_version, self.resource_versions, keep, self.saved_ns, self.event_time_ns
            )

    @classmethod
    def from_annotation(cls, text: str, *, where: str) -> Checkpoint:
        try:
            data = zlib.decompress(base64.b64decode(text))
        except (ValueError, zlib.error) as e:
            raise SourceError(f"{where}: damaged checkpoint annotation: {e}") from e
        return cls.from_bytes(data, where=where)


class CheckpointStore(Protocol):
    """Where checkpoints live."""

    def load(self) -> Checkpoint | None:
        """The last saved checkpoint, or None on a first start."""
        ...

    def save(self, checkpoint: Checkpoint) -> None:
        """Persist ``checkpoint``; raises SourceError when it could not.

        The checkpoint's maps may be the caller's live state (see
        :meth:`SettledProgress.checkpoint`): a store that keeps the checkpoint
        beyond the call keeps a copy.
        """
        ...


class FileCheckpointStore:
    """A JSON file, replaced atomically (write, fsync, rename)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> Checkpoint | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SourceError(f"{self.path}: cannot read checkpoint: {e.strerror or e}") from e
        return Checkpoint.from_bytes(data, where=str(self.path))

    def save(self, checkpoint: Checkpoint) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(checkpoint.to_bytes())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as e:
            raise SourceError(f"{self.path}: cannot write checkpoint: {e.strerror or e}") from e


class MemoryCheckpointStore:
    """Keeps the checkpoint in memory (tests, and runs without --checkpoint)."""

    def __init__(self, checkpoint: Checkpoint | None = None) -> None:
        self.checkpoint = checkpoint
        self.saves = 0

    def load(self) -> Checkpoint | None:
        return self.checkpoint

    def save(self, checkpoint: Checkpoint) -> None:
        # A copy: the maps of the checkpoint handed in go on changing (SettledProgress).
        self.checkpoint = dataclasses.replace(
            checkpoint,
            resource_versions=dict(checkpoint.resource_versions),
            emitted=dict(checkpoint.emitted),
        )
        self.saves += 1


@dataclass(slots=True)
class _Pending:
    records_after: int
    scope: str
    resource_version: str
    key: str
    count: int
    exported_after: int = 0
    """The records exported when it was processed, held ones not counted (its own
    record is among them unless it is held)."""
    held: bool = False
    """Its record is held for a late cause: exported later, at an index not known yet."""
    counted: bool = False


@dataclass
class SettledProgress:
    """Tracks what the sinks have settled, to build checkpoints that lose nothing.

    The pipeline thread calls :meth:`processed` after each watch item with the
    running total of records handed to the sinks; :meth:`settle` then moves
    every item whose records are all settled into the checkpointable state.
    """

    api_version: str
    resource_versions: dict[str, str] = field(default_factory=dict)
    emitted: dict[str, int] = field(default_factory=dict)
    _pending: deque[_Pending] = field(default_factory=deque)
    """Every item not yet behind the resume points, in order."""
    _uncounted: deque[_Pending] = field(default_factory=deque)
    """The same items, until their emitted counts are settled (see :meth:`settle`)."""
    _held_keys: dict[str, int] = field(default_factory=dict)
    """Event key -> items of it whose record is held and not yet settled."""
    changes: int = 0
    """Goes up whenever the resume points or the emitted counts may have changed: a
    checkpoint with the same ``changes`` as the last one saved holds the same progress
    (the runner does not save it again at rest)."""

    def processed(
        self,
        *,
        records_after: int,
        scope: str,
        resource_version: str,
        key: str = "",
        count: int = 0,
        exported_after: int | None = None,
        held: bool = False,
    ) -> None:
        """An item was processed; its records are the first ``records_after`` (exported and
        held), its own record among the first ``exported_after`` exported unless ``held``."""
        item = _Pending(
            records_after,
            scope,
            resource_version,
            key,
            count,
            records_after if exported_after is None else exported_after,
            held,
        )
        self._pending.append(item)
        self._uncounted.append(item)
        if held and key:
            self._held_keys[key] = self._held_keys.get(key, 0) + 1

    def settle(self, settled_records: int, delivered_records: int | None = None) -> None:
        """Every record before ``settled_records`` is delivered or deliberately dropped,
        held ones included: the resume points move past the items before it.

        ``delivered_records`` (at least ``settled_records``) is how far the sinks have
        settled the records exported so far, past records still held for a late cause.
        The items whose own record is among them count as emitted already, so that a
        restart does not repeat them while a held record keeps the resume points back
        (for as long as ``correlation.settle_s``): the relist or the resumed watch
        brings them again and the emitted counts let only the held ones through.
        Items of an Event with a held record wait for it: a count of a later update
        would otherwise cover the held one.
        """
        pending, uncounted = self._pending, self._uncounted
        before = len(pending) + len(uncounted)
        while pending and pending[0].records_after <= settled_records:
            item = pending.popleft()
            if item.resource_version:
                self.resource_versions[item.scope] = item.resource_version
            if item.held and item.key:
                left = self._held_keys[item.key] - 1
                if left:
                    self._held_keys[item.key] = left
                else:
                    del self._held_keys[item.key]
            self._count(item)
        delivered = settled_records if delivered_records is None else delivered_records
        held_keys = self._held_keys
        while uncounted and (uncounted[0].counted or uncounted[0].exported_after <= delivered):
            item = uncounted.popleft()
            if not item.held and item.key not in held_keys:
                self._count(item)  # else counted once the resume points pass it
        if len(pending) + len(uncounted) != before:
            self.changes += 1  # items settled (conservative: the maps may hold the same)

    def _count(self, item: _Pending) -> None:
        if not item.counted:
            item.counted = True
            if item.key and item.count > self.emitted.get(item.key, 0):
                self.emitted[item.key] = item.count

    def forget(self, key: str) -> None:
        """An Event was deleted (TTL): it will not come back, drop its count."""
        if self.emitted.pop(key, None) is not None:
            self.changes += 1

    def pending(self) -> int:
        return len(self._pending)

    def checkpoint(
        self, saved_ns: int, *, keep: Container[str] | None = None, event_time_ns: int = 0
    ) -> Checkpoint:
        """The checkpoint of settled progress; ``keep`` (the Events still remembered, e.g.
        the series tracker) limits emitted to live keys.

        Its maps are this object's own, not copies (a copy of the emitted counts is a
        second map as large as the first at every save): save it before the next
        :meth:`settle`, and copy it to keep it (as :class:`MemoryCheckpointStore` does).
        """
        if keep is not None:
            # Bounded like the tracker: Events it forgot (TTL, size cap) are dropped here too,
            # in place (a filtered copy would be a second map while the first is alive).
            forgotten = [key for key in self.emitted if key not in keep]
            for key in forgotten:
                del self.emitted[key]
            if forgotten:
                self.changes += 1
        return Checkpoint(
            self.api_version,
            self.resource_versions,
            self.emitted,
            saved_ns,
            event_time_ns,
        )

    @classmethod
    def resume(cls, checkpoint: Checkpoint) -> SettledProgress:
        return cls(
            checkpoint.api_version, dict(checkpoint.resource_versions), dict(checkpoint.emitted)
        )


def describe(checkpoint: Checkpoint | None) -> dict[str, Any]:
    """A short summary for logs."""
    if checkpoint is None:
        return {"checkpoint": None}
    return {"resource_versions": checkpoint.resource_versions, "events": len(checkpoint.emitted)}
