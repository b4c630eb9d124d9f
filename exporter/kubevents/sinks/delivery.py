"""Delivery for network sinks: a bounded queue, one worker thread, batches, retries.

Every network sink (OTLP/gRPC, OTLP/HTTP, Loki) is a :class:`DeliverySink`
around a :class:`Transport` that only knows how to send one batch. The sink
gives all of them the same guarantees (``docs/sinks.md``):

* ``export`` (the pipeline thread) cleans the records (:mod:`limits`) and
  queues them; it never does network I/O. A whole batch that the worker will take
  as it is, it also encodes, while the records are fresh in the caches (a transport
  that can: :class:`~kubevents.sinks.transport.EncodingTransport`), and checks the
  limits as it writes the request, so that such a batch is walked once. When the queue
  is full the policy
  decides: ``block`` waits for room (backpressure: the watch slows down and
  the API server keeps what it has not read), up to ``block_timeout_s`` if set,
  then drops the oldest; ``drop_oldest`` makes room at once. Drops are
  counted by reason (``queue_full``) and logged.
* One worker thread sends batches of up to ``batch_size`` records, as soon as
  a batch is full or its oldest record has waited ``batch_timeout_s``.
  Batches are delivered in export order: a batch that fails is retried (see
  :mod:`retry`) before anything after it is sent.
* A failure the specifications call final (HTTP 400, INVALID_ARGUMENT, Loki's
  "too old") drops the batch on purpose: logged once per kind with its cause,
  counted. A retryable failure is retried until it succeeds, the optional
  ``retry_max_elapsed_s`` passes, or kubevents stops. Waits are on events,
  never ``time.sleep``, so shutdown never sits out a backoff.
* :meth:`DeliverySink.settled` counts records, in export order, that the
  backend accepted or that were dropped on purpose (or, with a spool, that are
  safely on disk). The watch's checkpoint never passes an unsettled record,
  so a crash during an outage loses nothing still in the API server.
* At shutdown, what could not be delivered in time stays in the spool, or
  without one is counted as dropped (``shutdown``) but NOT settled: the last
  checkpoint stays before it and the next start reads it again.

The records themselves are kept by a :class:`~kubevents.sinks.buffer.Buffer`, in memory
or in the spool; the sink owns the worker, the lock and the retries, and counts each
record once: exported, or dropped by reason (:meth:`DeliverySink._settle` is the one place
a batch's fate is counted, and a batch written off at shutdown is not counted again when
a late request ends).

The sink reports on itself through plain counters (:class:`DeliveryStats`)
that the metrics layer reads at collection time, plus one callback per
request for the latency and size histograms: no metrics call per record.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from kubevents.errors import ConfigError, clip
from kubevents.records import OutputRecord
from kubevents.settings import DeliverySettings
from kubevents.sinks.base import DeliverySnapshot, ExportResult
from kubevents.sinks.buffer import Buffer, MemoryBuffer, SpoolBuffer
from kubevents.sinks.limits import limit_records
from kubevents.sinks.otlp_encode import StagedRecords
from kubevents.sinks.retry import Action, RetryPolicy, decide
from kubevents.sinks.spool import Spool
from kubevents.sinks.transport import (
    DeliveryStats,
    EncodingTransport,
    RequestReport,
    Sent,
    Transport,
    TransportError,
)

logger = logging.getLogger(__name__)

WORKER_STOP_S = 1.0
"""Longest the worker is waited for after the flush timeout (a request in flight is cut
by its own timeout; the thread is a daemon)."""

ENCODED_AHEAD = 4
"""Batches ``export`` encodes ahead of the worker at most (each request held beside its
records, about a batch's bytes): a sink further behind encodes in its worker, and the
pipeline stages nothing for it meanwhile (``StagedRecords.drop``)."""

REPEAT_LOG_S = 60.0
"""A transient failure of the same kind is logged at most once per minute."""


_ENCODE_FAILED: Final = b""
"""What :meth:`DeliverySink._encode_within` gives when the encoder raised (a request is
never empty)."""


class DeliverySink:
    """A sink that queues records and delivers them in the background (see module docstring).

    The shape of OpenTelemetry's batch processor (``export`` queues, one worker sends
    batches, ``force_flush`` and ``shutdown`` wait for it) plus a retry loop; the records
    themselves are kept by a :class:`~kubevents.sinks.buffer.Buffer` (memory or spool).
    """

    def __init__(
        self,
        name: str,
        transport: Transport,
        settings: DeliverySettings,
        *,
        spool_dir: str = "",
        stop: threading.Event | None = None,
        jitter: Callable[[], float] | None = None,
        on_request: Callable[[RequestReport], None] | None = None,
        prepare: Callable[[list[OutputRecord]], list[OutputRecord]] | None = None,
    ) -> None:
        """
        Args:
            name: the ``sink`` label (``otlp``, ``otlp+http``, ``loki``).
            transport: sends one batch.
            settings: queue, batching, retry and limits.
            spool_dir: spool directory (this sink uses ``<dir>/<name>``); "" for memory only.
            stop: kubevents' stop event: once set, a full queue no longer blocks ``export``.
            jitter: returns a number in [-1, 1] (tests pass ``lambda: 0.0``).
            on_request: called after every request (from the worker thread).
            prepare: applied once to records as the sink takes them, in export order
                (before the queue and the spool, so retries send the same bytes).
        """
        self.name = name
        self.transport = transport
        self.settings = settings
        self.stats = DeliveryStats()
        self.on_request = on_request
        self._prepare = prepare
        self._policy = RetryPolicy(
            base_s=settings.backoff_base_s,
            cap_s=settings.backoff_cap_s,
            max_elapsed_s=settings.retry_max_elapsed_s,
        )
        rng = random.Random()
        self._jitter = jitter or (lambda: rng.uniform(-1.0, 1.0))
        self._stop = stop or threading.Event()
        self._cond = threading.Condition()
        self._spool: Spool | None = None
        self._buffer: Buffer
        if spool_dir:
            directory = Path(spool_dir) / name.replace("+", "_")
            try:
                self._spool = Spool(directory, max_bytes=settings.spool_max_bytes)
            except OSError as e:
                raise ConfigError(
                    f"delivery -> spool_dir: cannot use {directory}: {e.strerror or e}"
                ) from e
            self._buffer = SpoolBuffer(self._spool, frame_records=settings.batch_size)
        else:
            self._buffer = MemoryBuffer(settings.queue_size)
        self._encoder: EncodingTransport | None = None
        """The transport, when ``export`` encodes a batch ahead of its send (in memory only:
        a batch read back from the spool is other objects)."""
        if isinstance(transport, EncodingTransport) and self._spool is None and prepare is None:
            self._encoder = transport
        self.staged: StagedRecords | None = None
        """Where the pipeline hands each record as it makes it, encoded then, when the
        transport can (OTLP/gRPC): a batch that is exactly those records is sent as they
        were encoded (:meth:`_encode_within`)."""
        staging = getattr(self._encoder, "staging", None)
        if staging is not None:
            self.staged = staging(
                settings.max_body_bytes, settings.max_attribute_bytes, settings.batch_size
            )
        self._encoded: deque[tuple[int, list[OutputRecord], bytes]] = deque()
        """The batches ``export`` encoded, oldest first, up to :data:`ENCODED_AHEAD`: the
        buffer's number of each one's first record, the records and their request, until
        the worker's batch reaches them; sent as they are if it is those very records,
        else dropped."""
        self._oldest_at = 0.0
        self._flushing = 0
        self._hurry = False
        """Set by :meth:`send_now`: what is queued goes without waiting for its batch to
        fill, until the queue is empty."""
        self._closing = False
        self._closed = False
        self._abort = threading.Event()
        self._wake = threading.Event()
        """Ends a retry wait early: set by a flush (try again now), by ``drop_oldest``
        giving up the batch being retried, and by shutdown."""
        self._logged: dict[str, float] = {}
        self._worker = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._worker.start()

    # -- the pipeline side ---------------------------------------------------------

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        """Clean and queue ``records``; may wait for room (``block``). Never sends."""
        if self._closed:
            return ExportResult.FAILURE
        s = self.settings
        request = self._encode_within(records)
        if not request:
            clean, truncated = limit_records(
                records, max_body_bytes=s.max_body_bytes, max_attribute_bytes=s.max_attribute_bytes
            )
            self.stats.truncated += truncated
        else:
            clean = list(records)  # the limits leave them as they are
        with self._cond:
            if self._prepare is not None:
                clean = self._prepare(clean)
            if request:
                if self._ahead(len(clean)):  # still (another thread may have queued some)
                    self._hold_encoded(clean, request)
            elif request is None and self._encoder is not None:
                self._encode_ahead(clean)
            self._put(clean)
            if not self._oldest_at:
                self._oldest_at = time.monotonic()
            self._cond.notify_all()
        return ExportResult.SUCCESS

    def _ahead(self, n: int) -> bool:
        """Whether ``n`` records queued now are to be a batch of the worker's as they are,
        worth encoding here: a whole batch, room for all, and fewer than
        :data:`ENCODED_AHEAD` batches encoded and not yet taken (lock held). What is queued
        before them goes in batches that end where they begin (:meth:`_batch_limit`)."""
        buffer = self._buffer
        assert isinstance(buffer, MemoryBuffer)
        return (
            n == self.settings.batch_size
            and buffer.room >= n
            and len(self._encoded) < ENCODED_AHEAD
        )

    def _hold_encoded(self, records: list[OutputRecord], request: bytes) -> None:
        """Keep ``request`` for ``records``, about to be queued (lock held; memory only)."""
        buffer = self._buffer
        assert isinstance(buffer, MemoryBuffer)
        self._encoded.append((buffer.tail, records, request))

    def _encode_within(self, records: Sequence[OutputRecord]) -> bytes | None:
        """The request for ``records``, if they are to be the worker's next batch as they
        are and the content limits leave them as they are: the limits are checked as the
        request is written, so the records are walked once, not once for the limits and
        again for the request. None otherwise (the limits apply, then
        :meth:`_encode_ahead`); ``_ENCODE_FAILED`` when the encoder raised (the limits
        apply and the worker encodes the batch: its encode reports what failed)."""
        encoder = self._encoder
        if encoder is None:
            return None
        staged = self.staged
        with self._cond:
            if not self._ahead(len(records)):
                if staged is not None:
                    staged.drop()
                return None
        if staged is not None:
            request = staged.take(records)
            if request is not None:
                return request
        s = self.settings
        try:
            return encoder.encode_within(records, s.max_body_bytes, s.max_attribute_bytes)
        except Exception:
            return _ENCODE_FAILED

    def _encode_ahead(self, records: list[OutputRecord]) -> None:
        """Encode ``records`` now if they are to be a batch of the worker's as they are: a
        whole batch, room for all (lock held).

        Here, right after the limits walked them, their objects are still in the
        processor's caches; the worker would read them a batch's worth of work later, and
        the encode cost it about twice as much. The request is the same bytes either way
        (:meth:`_take_encoded` checks that the batch is those very records)."""
        assert self._encoder is not None
        if not self._ahead(len(records)):
            return
        try:
            request = self._encoder.encode(records)
        except Exception:  # the worker's own encode of the batch reports it (and drops it)
            return
        self._hold_encoded(records, request)

    def _take_encoded(self, batch: list[OutputRecord] | None) -> bytes | None:
        """The request ``export`` made for ``batch``, the one the worker just took, if it
        made one for these very records (lock held). Each is given out once; those the
        batch passed are dropped, those after it kept."""
        encoded = self._encoded
        if batch is None or not encoded:
            encoded.clear()
            return None
        buffer = self._buffer
        assert isinstance(buffer, MemoryBuffer)  # only a memory queue encodes ahead
        first = buffer.in_flight_first
        end = first + len(batch)
        while encoded:
            start, records, request = encoded[0]
            if start >= end:
                return None  # the records before them, in a batch of their own
            encoded.popleft()
            if start == first:
                if len(records) == len(batch) and all(
                    a is b for a, b in zip(records, batch, strict=True)
                ):
                    return request
                return None
            if start > first:
                return None  # cut otherwise (records dropped meanwhile): encoded again
        return None

    def _batch_limit(self) -> int:
        """How many records the worker's next batch takes at most: a batch, and, when
        records ``export`` encoded are queued behind others, only those others, so that
        a batch after them is exactly the encoded records (lock held)."""
        limit = self.settings.batch_size
        if self._encoded and isinstance(self._buffer, MemoryBuffer):
            before = self._encoded[0][0] - self._buffer.head
            if 0 < before < limit:
                return before
        return limit

    def _put(self, records: list[OutputRecord]) -> None:
        """Store ``records`` as room allows, in pieces the worker can take meanwhile;
        when full, apply the queue-full policy (lock held)."""
        buffer = self._buffer
        rest: Sequence[OutputRecord] = records
        deadline: float | None = None
        """With ``block``: until when this wait for room lasts (inf: no limit)."""
        while rest:
            taken = buffer.put(rest)
            if taken:
                deadline = None
            elif self._blocks(deadline):
                if deadline is None:
                    timeout = self.settings.block_timeout_s
                    deadline = time.monotonic() + timeout if timeout > 0 else math.inf
                    self._log_once(
                        "queue_full",
                        logging.WARNING,
                        "queue full: waiting for %s",
                        self.transport.endpoint,
                    )
                self._cond.wait(max(min(deadline - time.monotonic(), 0.2), 0.0))
                continue
            elif self._stopping():
                taken = buffer.put(rest, force=True)  # over capacity, for the final flush
            else:
                dropped = buffer.drop_oldest(len(rest))
                self.stats.add(self.stats.dropped, "queue_full", dropped.lost)
                if dropped.given_up:
                    self._wake.set()  # end the backoff wait of the batch given up
                if not (dropped.lost or dropped.given_up):
                    taken = buffer.put(rest, force=True)  # nothing left to drop
                else:
                    self._log_once(
                        "dropped:queue_full",
                        logging.WARNING,
                        "queue full: dropping the oldest records (policy %s)",
                        self.settings.queue_full,
                    )
                    continue
            rest = rest[taken:]
            self._cond.notify_all()

    def _stopping(self) -> bool:
        """With ``block``, a full queue no longer waits: kubevents or this sink stops."""
        return self.settings.queue_full == "block" and (self._stop.is_set() or self._closing)

    def _blocks(self, deadline: float | None) -> bool:
        """Whether a full queue should (still) wait for room."""
        if self.settings.queue_full != "block" or self._stopping():
            return False
        return deadline is None or time.monotonic() < deadline

    def settled(self) -> int:
        """Records, in export order, accepted by the backend or deliberately dropped
        (with a spool: safely on disk)."""
        with self._cond:
            return self._buffer.settled()

    @property
    def queue_size(self) -> int:
        """Records waiting (in memory or in the spool), the batch in flight included."""
        with self._cond:  # re-entrant: also read by the metrics thread
            return self._buffer.pending

    @property
    def queue_capacity(self) -> int | None:
        """Records the memory queue holds; None with a spool (its cap is in bytes)."""
        return self._buffer.capacity

    @property
    def spool_capacity(self) -> int | None:
        return self.settings.spool_max_bytes if self._spool is not None else None

    @property
    def spool_bytes(self) -> int | None:
        """Bytes in the spool; None without one."""
        with self._cond:
            return self._spool.size_bytes if self._spool is not None else None

    def snapshot(self) -> DeliverySnapshot:
        """Counts and queue now, for the metrics (:class:`~kubevents.sinks.base.ObservableSink`)."""
        stats = self.stats
        return DeliverySnapshot(
            exported=stats.exported,
            bytes_sent=stats.bytes_sent,
            truncated=stats.truncated,
            failed=dict(stats.failed),
            retried=dict(stats.retried),
            dropped=dict(stats.dropped),
            queue_size=self.queue_size,
            queue_capacity=self.queue_capacity,
            spool_bytes=self.spool_bytes,
            spool_capacity=self.spool_capacity,
        )

    def send_now(self) -> None:
        """Send what is queued now, not after the batch timeout, without waiting for it
        (the end of a list: the snapshot is complete and nothing else is coming at once)."""
        with self._cond:
            if self._buffer.pending:
                self._hurry = True
                self._cond.notify_all()

    def force_flush(self, timeout_s: float) -> bool:
        """Send what is queued now; True if everything was delivered within ``timeout_s``
        (at most ``delivery.flush_timeout_s``)."""
        deadline = time.monotonic() + min(timeout_s, self.settings.flush_timeout_s)
        with self._cond:
            self._flushing += 1
            self._wake.set()  # cut a backoff short: try again now
            self._cond.notify_all()
            try:
                while self._buffer.pending:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or not self._worker.is_alive():
                        return False
                    self._cond.wait(min(remaining, 0.5))
                return True
            finally:
                self._flushing -= 1

    def shutdown(self, timeout_s: float) -> None:
        """Flush for up to ``timeout_s``, then stop the worker; later exports fail."""
        if self._closed:
            return
        timeout_s = min(timeout_s, self.settings.flush_timeout_s)
        deadline = time.monotonic() + timeout_s
        if self.queue_size:
            self.force_flush(timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._abort.set()
        self._wake.set()
        self._worker.join(max(deadline - time.monotonic(), 0.0) + WORKER_STOP_S)
        with self._cond:
            self._closed = True
            left = self._buffer.pending
            # Without a spool, what is left (a request still in flight included) is counted
            # once, as dropped: it leaves the queue, and a late answer is not counted again.
            # It is not settled: the checkpoint stays before it and the next start reads it.
            lost = self._buffer.close()
            if lost:
                self.stats.add(self.stats.dropped, "shutdown", lost)
                logger.error(
                    "sink %s: %d records not delivered to %s before shutdown",
                    self.name,
                    lost,
                    self.transport.endpoint,
                )
            elif left:
                logger.warning(
                    "sink %s: %d records stay in the spool for the next start", self.name, left
                )
        self.transport.close()

    # -- the worker ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
                request = self._take_encoded(batch)
            if batch is None:
                return
            self._deliver(batch, request)
            with self._cond:
                self._cond.notify_all()

    def _next_batch(self) -> list[OutputRecord] | None:
        """Wait for a batch worth sending (size, age, flush or shutdown) and take it from
        the buffer; lock held. Returns None when the worker should stop."""
        s = self.settings
        buffer = self._buffer
        while not self._abort.is_set():
            waiting = buffer.pending
            if not waiting:
                self._oldest_at = 0.0
                self._hurry = False
                if self._closing:
                    return None
                self._cond.wait()
                continue
            age = time.monotonic() - (self._oldest_at or time.monotonic())
            full = buffer.capacity is not None and waiting >= buffer.capacity
            due = waiting >= s.batch_size or full or self._flushing or self._closing or self._hurry
            if not due and age < s.batch_timeout_s:
                self._cond.wait(s.batch_timeout_s - age)
                continue
            batch = buffer.take(self._batch_limit())
            if batch:
                self._oldest_at = time.monotonic() if buffer.pending > len(batch) else 0.0
                return batch
            self._cond.wait(0.1)  # nothing readable yet (cannot happen; never spin)
        return None

    def _deliver(self, batch: list[OutputRecord], request: bytes | None = None) -> None:
        """Send the batch in flight until it is settled (accepted, dropped) or, when
        kubevents stops first, put it back. ``request``: the batch already encoded (its
        first attempt sends it; a retry encodes what is left of the batch again)."""
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            n = len(batch)
            t0 = time.perf_counter()
            encoder = self._encoder
            try:
                if request is not None and encoder is not None:
                    sent = encoder.send_encoded(batch, request)
                else:
                    sent = self.transport.send(batch)
            except TransportError as e:
                failure, sent_bytes = e.failure, e.sent_bytes
            except Exception:  # a bug (e.g. in an encoder): drop, never kill the worker
                logger.exception("sink %s: cannot send a batch of %d records", self.name, n)
                self._report(n, 0, time.perf_counter() - t0, "failure")
                self._settle(dropped=n, reason="internal_error")
                return
            else:
                self._report(n, sent.bytes, time.perf_counter() - t0, "success")
                if self._settle(
                    exported=n - sent.rejected, dropped=sent.rejected, reason=sent.reason
                ):
                    self._log_delivered(sent, n, attempt)
                return
            self._report(n, sent_bytes, time.perf_counter() - t0, "failure")
            request = None
            reason = failure.reason
            self.stats.add(self.stats.failed, reason, n)
            batch = self._trim()
            n = len(batch)
            if not n:
                self._settle()
                return
            decision = decide(
                failure,
                attempt,
                policy=self._policy,
                jitter=self._jitter(),
                elapsed_s=time.monotonic() - started,
            )
            if decision.action is Action.DROP:
                dropped_as = reason if decision.why == "not retryable" else "retry_deadline"
                if self._settle(dropped=n, reason=dropped_as):
                    self._log_once(
                        f"dropped:{dropped_as}",
                        logging.ERROR,
                        "%s: dropped a batch of %d records (%s, %s): %s",
                        self.transport.endpoint,
                        n,
                        reason,
                        decision.why,
                        failure.detail or failure.code,
                        repeat=False,
                    )
                return
            if self._abort.is_set():
                self._requeue()
                return
            self.stats.add(self.stats.retried, reason, n)
            self._log_once(
                f"retry:{reason}",
                logging.WARNING,
                "%s: %s (%s); retrying %d records in %.1fs",
                self.transport.endpoint,
                reason,
                failure.detail or failure.code,
                n,
                decision.delay_s,
            )
            # Interruptible: shutdown ends the wait, a flush cuts it short (try again now).
            self._wake.clear()
            if not self._abort.is_set():
                self._wake.wait(decision.delay_s)
            if self._abort.is_set():
                self._requeue()
                return
            batch = self._trim()
            if not batch:
                self._settle()
                return

    def _trim(self) -> list[OutputRecord]:
        """The batch in flight without what ``drop_oldest`` gave up meanwhile (counted
        as dropped now: the attempt that still carried them failed)."""
        with self._cond:
            self._count_given_up(self._buffer.trim())
            return self._buffer.in_flight

    def _settle(self, *, exported: int = 0, dropped: int = 0, reason: str = "") -> bool:
        """The batch in flight is done: count it, once, and acknowledge it. False (nothing
        counted) when shutdown already counted it."""
        with self._cond:
            if not self._buffer.ack():
                return False
            self.stats.exported += exported
            if dropped:
                self.stats.add(self.stats.dropped, reason, dropped)
            return True

    def _requeue(self) -> None:
        """kubevents stops: the batch in flight goes back to the head (not settled)."""
        with self._cond:
            self._count_given_up(self._buffer.requeue())

    def _count_given_up(self, n: int) -> None:
        if n:
            self.stats.add(self.stats.dropped, "queue_full", n)

    def _log_delivered(self, sent: Sent, n: int, attempt: int) -> None:
        if sent.rejected:
            self._log_once(
                f"dropped:{sent.reason}",
                logging.ERROR,
                "%s rejected %d of %d records: %s",
                self.transport.endpoint,
                sent.rejected,
                n,
                clip(sent.message) or "(no message)",
                repeat=False,
            )
        if attempt > 1:
            logger.info("sink %s: delivered after %d attempts", self.name, attempt)

    def _report(self, records: int, sent_bytes: int, seconds: float, result: str) -> None:
        self.stats.requests += 1
        self.stats.bytes_sent += sent_bytes
        if self.on_request is not None:
            self.on_request(RequestReport(records, sent_bytes, seconds, result))

    def _log_once(
        self, kind: str, level: int, msg: str, *args: object, repeat: bool = True
    ) -> None:
        """Log ``kind`` at ``level`` the first time, then (``repeat``) at most once a
        minute; every other occurrence goes to DEBUG."""
        now = time.monotonic()
        last = self._logged.get(kind)
        if last is None or (repeat and now - last >= REPEAT_LOG_S):
            self._logged[kind] = now
            logger.log(level, "sink %s: " + msg, self.name, *args)
        else:
            logger.debug("sink %s: " + msg, self.name, *args)
