"""The sink interface.

A sink receives batches of :class:`~kubevents.records.OutputRecord`. The
pipeline calls ``export`` from its one thread; a sink that talks to the
network hides its own queue and worker thread behind the same three methods.

Who catches what: ``export`` never raises for a delivery failure, it returns
``ExportResult.FAILURE`` (and counts and logs it); it raises only for a bug.

A sink that has something to report about its delivery (every network sink)
is also an :class:`ObservableSink`: kubevents' telemetry reads its
:class:`DeliverySnapshot` when a scrape or an OTLP export collects, and sets
its ``on_request`` hook for the request histograms. The sinks name no metric;
``kubevents.telemetry`` does.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kubevents.records import OutputRecord
from kubevents.sinks.transport import RequestReport


class ExportResult(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"


class Sink(Protocol):
    """Anything that can take output records."""

    name: str

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        """Deliver (or enqueue) ``records``; never raises for a delivery failure."""
        ...

    def force_flush(self, timeout_s: float) -> bool:
        """Deliver what is buffered; True if everything went out in time."""
        ...

    def shutdown(self, timeout_s: float) -> None:
        """Flush and release resources; later exports are refused."""
        ...

    def settled(self) -> int:
        """How many records, in export order, are settled: accepted by the backend or
        deliberately dropped (a sink that writes synchronously: every record exported).
        The watch's checkpoint never moves past a record some sink has not settled."""
        ...


@dataclass(frozen=True, slots=True)
class DeliverySnapshot:
    """What a network sink reports about its delivery at one moment (a copy)."""

    exported: int
    """Records the backend accepted."""
    bytes_sent: int
    """Request bytes sent, after compression."""
    truncated: int
    """Records whose body or attributes were cut to the limits."""
    failed: Mapping[str, int]
    """Records in failed requests, by reason (a retried batch counts each time)."""
    retried: Mapping[str, int]
    """Records queued for another attempt after a failure, by reason."""
    dropped: Mapping[str, int]
    """Records given up on purpose, by reason."""
    queue_size: int
    """Records waiting (in memory or in the spool), the batch in flight included."""
    queue_capacity: int | None
    """Records the memory queue holds; None with a spool (its cap is in bytes)."""
    spool_bytes: int | None
    """Bytes in the spool; None without one."""
    spool_capacity: int | None
    """The spool's size cap; None without one."""


@runtime_checkable
class ObservableSink(Protocol):
    """A sink that reports on its delivery; :meth:`snapshot` may be called from any thread."""

    name: str
    on_request: Callable[[RequestReport], None] | None
    """Called after every request (from the sink's worker thread), if set."""

    def snapshot(self) -> DeliverySnapshot:
        """The sink's counts and queue now."""
        ...


class InMemorySink:
    """Keeps every record in a list: a real sink for tests and embedding."""

    name = "memory"

    def __init__(self) -> None:
        self.records: list[OutputRecord] = []
        self.closed = False

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        if self.closed:
            return ExportResult.FAILURE
        self.records.extend(records)
        return ExportResult.SUCCESS

    def force_flush(self, timeout_s: float) -> bool:
        return True

    def shutdown(self, timeout_s: float) -> None:
        self.closed = True

    def settled(self) -> int:
        return len(self.records)
