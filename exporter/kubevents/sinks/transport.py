"""What a network sink's transport promises: send one batch, report what happened.

The delivery layer (:mod:`delivery`) owns queues, batching and retries; a
transport (:mod:`otlp_grpc`, :mod:`otlp_http`, :mod:`loki_push`) only turns
one batch into one request and its answer into a :class:`Sent` or a
:class:`TransportError` carrying the facts the retry policy decides on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from kubevents.errors import SinkError
from kubevents.records import OutputRecord
from kubevents.sinks.retry import Failure


@dataclass(frozen=True, slots=True)
class Sent:
    """What a transport reports for an accepted request."""

    bytes: int
    rejected: int = 0
    """Records the backend refused inside an accepted request (OTLP partial success,
    Loki's "total ignored")."""
    message: str = ""
    reason: str = "rejected"
    """The ``reason`` label of the rejected records."""


class TransportError(SinkError):
    """A request failed; :attr:`failure` holds the facts the retry policy decides on."""

    def __init__(self, failure: Failure, *, sent_bytes: int = 0) -> None:
        self.failure = failure
        self.sent_bytes = sent_bytes
        super().__init__(f"{failure.reason}: {failure.detail}".rstrip(": "))


class Transport(Protocol):
    """Sends one batch; knows nothing about queues or retries."""

    endpoint: str
    """Where it sends, for log lines (never with credentials)."""

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        """Send ``records`` as one request.

        Raises:
            TransportError: the request failed (with what the server said).
        """
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RequestReport:
    """One request, for the metrics layer's histograms."""

    records: int
    bytes: int
    seconds: float
    result: str
    """``success`` or ``failure``."""


@dataclass
class DeliveryStats:
    """Plain counters of one sink; written by its threads, read by the metrics layer."""

    exported: int = 0
    """Records the backend accepted."""
    failed: dict[str, int] = field(default_factory=dict)
    """Records in failed requests, by reason (a retried batch counts each time)."""
    retried: dict[str, int] = field(default_factory=dict)
    """Records queued for another attempt after a failure, by reason."""
    dropped: dict[str, int] = field(default_factory=dict)
    """Records given up, by reason: a final failure's kind, ``rejected``,
    ``queue_full``, ``retry_deadline``, ``shutdown``."""
    requests: int = 0
    bytes_sent: int = 0
    truncated: int = 0
    """Records whose body or attributes were cut to the limits."""

    def add(self, table: dict[str, int], reason: str, n: int) -> None:
        table[reason] = table.get(reason, 0) + n
