"""What a network sink's transport promises: send one batch, report what happened.

The delivery layer (:mod:`delivery`) owns queues, batching and retries; a
transport (:mod:`otlp_grpc`, :mod:`otlp_http`, :mod:`loki_push`) only turns
one batch into one request and its answer into a :class:`Sent` or a
:class:`TransportError` carrying the facts the retry policy decides on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class EncodingTransport(Transport, Protocol):
    """A transport whose request can be encoded ahead of its send, on another thread.

    :class:`~kubevents.sinks.delivery.DeliverySink` encodes a batch on the pipeline thread
    as it takes it, while its records are still in the processor's caches, and the worker
    sends those bytes when its batch is exactly those records; ``send`` stays the same as
    ``send_encoded(records, encode(records))``.
    """

    def encode(self, records: Sequence[OutputRecord]) -> bytes:
        """The request for ``records``, as ``send`` would make it."""
        ...

    def encode_within(
        self, records: Sequence[OutputRecord], max_body_bytes: int, max_attribute_bytes: int
    ) -> bytes | None:
        """:meth:`encode` of ``records`` if the content limits would leave them as they are
        (:func:`~kubevents.sinks.limits.limit_records`), checked as they are encoded; else
        None (and the caller applies the limits first)."""
        ...

    def send_encoded(self, records: Sequence[OutputRecord], request: bytes) -> Sent:
        """Send ``request``, made by :meth:`encode` of ``records``, as one request.

        Raises:
            TransportError: the request failed (with what the server said).
        """
        ...


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
