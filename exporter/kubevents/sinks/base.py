"""The sink interface.

A sink receives batches of :class:`~kubevents.records.OutputRecord`. The
pipeline calls ``export`` from its one thread; a sink that talks to the
network hides its own queue and worker thread behind the same three methods.

Who catches what: ``export`` never raises for a delivery failure, it returns
``ExportResult.FAILURE`` (and counts and logs it); it raises only for a bug.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Protocol

from kubevents.records import OutputRecord


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
