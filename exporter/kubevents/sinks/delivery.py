"""Delivery for network sinks: a bounded queue, one worker thread, batches, retries.

Every network sink (OTLP/gRPC, OTLP/HTTP, Loki) is a :class:`DeliverySink`
around a :class:`Transport` that only knows how to send one batch. The sink
gives all of them the same guarantees (``docs/sinks.md``):

* ``export`` (the pipeline thread) cleans the records (:mod:`limits`) and
  queues them; it never does network I/O. When the queue is full the policy
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

The sink reports on itself through plain counters (:class:`DeliveryStats`)
that the metrics layer reads at collection time, plus one callback per
request for the latency and size histograms: no metrics call per record.
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from kubevents.config import DeliverySettings
from kubevents.errors import ConfigError, clip
from kubevents.records import OutputRecord
from kubevents.sinks.base import DeliverySnapshot, ExportResult
from kubevents.sinks.limits import limit_record
from kubevents.sinks.retry import Action, RetryPolicy, decide
from kubevents.sinks.spool import Spool, SpoolBatch
from kubevents.sinks.transport import DeliveryStats, RequestReport, Transport, TransportError

logger = logging.getLogger(__name__)

WORKER_STOP_S = 1.0
"""Longest the worker is waited for after the flush timeout (a request in flight is cut
by its own timeout; the thread is a daemon)."""

REPEAT_LOG_S = 60.0
"""A transient failure of the same kind is logged at most once per minute."""


class _MemoryBuffer:
    """Records waiting in memory; the worker takes a batch out while sending it.

    Records are numbered in export order: ``queue[0]`` is number ``head_seq``,
    the batch in flight starts at ``in_flight_seq`` (below ``head_seq``).
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.queue: deque[OutputRecord] = deque()
        self.head_seq = 0
        self.in_flight: list[OutputRecord] | None = None
        self.in_flight_seq = 0
        self.given_up = 0
        """Leading records of the batch in flight given up (``drop_oldest``): settled
        whatever its request does, and no longer taking room."""

    def __len__(self) -> int:
        waiting = len(self.queue)
        if self.in_flight:
            waiting += len(self.in_flight) - self.given_up
        return waiting

    def settled(self) -> int:
        if self.in_flight is None:
            return self.head_seq
        return self.in_flight_seq + self.given_up

    def drop_queued(self, n: int) -> int:
        """Drop up to ``n`` of the oldest queued records; returns how many."""
        k = min(n, len(self.queue))
        for _ in range(k):
            self.queue.popleft()
        self.head_seq += k
        return k


class DeliverySink:
    """A sink that queues records and delivers them in the background (see module docstring)."""

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
        self._memory = _MemoryBuffer(settings.queue_size)
        self._spool: Spool | None = None
        self._spool_in_flight: SpoolBatch | None = None
        if spool_dir:
            directory = Path(spool_dir) / name.replace("+", "_")
            try:
                self._spool = Spool(directory, max_bytes=settings.spool_max_bytes)
            except OSError as e:
                raise ConfigError(
                    f"delivery -> spool_dir: cannot use {directory}: {e.strerror or e}"
                ) from e
        self._oldest_at = 0.0
        self._given_up = 0
        """Leading records of the batch in flight given up (``drop_oldest``) while it is
        being retried; the worker drops them after its current attempt."""
        self._flushing = 0
        self._closing = False
        self._closed = False
        self._abort = threading.Event()
        self._wake = threading.Event()
        """Ends a retry wait early: set by a flush (try again now) and by shutdown."""
        self._logged: dict[str, float] = {}
        self._worker = threading.Thread(target=self._run, name=f"sink-{name}", daemon=True)
        self._worker.start()

    # -- the pipeline side ---------------------------------------------------------

    def export(self, records: Sequence[OutputRecord]) -> ExportResult:
        """Clean and queue ``records``; may wait for room (``block``). Never sends."""
        if self._closed:
            return ExportResult.FAILURE
        s = self.settings
        clean = [
            limit_record(
                r, max_body_bytes=s.max_body_bytes, max_attribute_bytes=s.max_attribute_bytes
            )
            for r in records
        ]
        self.stats.truncated += sum(1 for a, b in zip(clean, records, strict=True) if a is not b)
        with self._cond:
            if self._prepare is not None:
                clean = self._prepare(clean)
            if self._spool is not None:
                self._put_spool(clean)
            else:
                self._put_memory(clean)
            if not self._oldest_at:
                self._oldest_at = time.monotonic()
            self._cond.notify_all()
        return ExportResult.SUCCESS

    def _put_memory(self, records: list[OutputRecord]) -> None:
        """Queue ``records`` as room allows (big exports go in pieces the worker can take)."""
        buffer = self._memory
        rest = records
        while rest:
            free = buffer.capacity - len(buffer)
            if free <= 0:
                wanted = min(len(rest), buffer.capacity)
                self._make_room(
                    lambda: buffer.capacity > len(buffer),
                    functools.partial(self._drop_oldest_memory, wanted),
                )
                # Still none: kubevents is stopping (or all of it is in flight): take it all.
                free = max(buffer.capacity - len(buffer), 0) or len(rest)
            buffer.queue.extend(rest[:free])
            rest = rest[free:]
            self._cond.notify_all()

    def _put_spool(self, records: list[OutputRecord]) -> None:
        spool = self._spool
        assert spool is not None
        size = self.settings.batch_size
        for start in range(0, len(records), size):
            chunk = records[start : start + size]
            frame = spool.encode(chunk)
            self._make_room(functools.partial(spool.has_room, len(frame)), self._drop_oldest_spool)
            spool.append(frame, len(chunk))
            self._cond.notify_all()

    def _make_room(self, has_room: Callable[[], bool], drop: Callable[[], int]) -> None:
        """Apply the queue-full policy until ``has_room()`` (called with the lock held)."""
        if has_room():
            return
        s = self.settings
        if s.queue_full == "block":
            deadline = time.monotonic() + s.block_timeout_s if s.block_timeout_s > 0 else None
            self._log_once(
                "queue_full", logging.WARNING, "queue full: waiting for %s", self.transport.endpoint
            )
            while not has_room() and not self._stop.is_set() and not self._closing:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._cond.wait(0.2 if remaining is None else min(remaining, 0.2))
            if has_room() or self._stop.is_set() or self._closing:
                return  # stopping: take it anyway, over capacity, so the final flush can try it
        while not has_room():
            lost = drop()
            if not lost:
                break
            self._log_once(
                "dropped:queue_full",
                logging.WARNING,
                "queue full: dropping the oldest records (policy %s)",
                s.queue_full,
            )

    def _give_up_in_flight(self, n: int) -> int:
        """Give up the ``n`` oldest records of the batch in flight (the oldest records of
        all): the worker drops them after its current attempt, unless that attempt
        succeeds. Returns how many were given up."""
        batch = self._in_flight_batch()
        k = min(n, len(batch) - self._given_up) if batch else 0
        if k > 0:
            self._given_up += k
            self._memory.given_up = self._given_up if self._spool is None else 0
            self._wake.set()  # end its backoff wait
        return k

    def _in_flight_batch(self) -> list[OutputRecord] | None:
        if self._spool is not None:
            return self._spool_in_flight.records if self._spool_in_flight else None
        return self._memory.in_flight

    def _drop_oldest_memory(self, wanted: int) -> int:
        """Make room for ``wanted`` records, oldest first: the batch in flight, then the
        head of the queue."""
        needed = wanted - (self._memory.capacity - len(self._memory))
        given_up = self._give_up_in_flight(needed)
        lost = self._memory.drop_queued(needed - given_up)
        self.stats.add(self.stats.dropped, "queue_full", lost)
        return given_up + lost

    def _drop_oldest_spool(self) -> int:
        """Delete the oldest segment; a batch in flight from it is given up whole."""
        assert self._spool is not None
        in_flight = self._spool_in_flight
        given_up = 0
        if in_flight is not None and in_flight.start.segment == self._spool.oldest_segment:
            given_up = self._give_up_in_flight(len(in_flight.records))
        lost = self._spool.drop_oldest(in_flight=len(in_flight.records) if in_flight else 0)
        self.stats.add(self.stats.dropped, "queue_full", lost)
        return given_up + lost

    def _trim_given_up(self, batch: list[OutputRecord]) -> list[OutputRecord]:
        """``batch`` without what ``drop_oldest`` gave up meanwhile (counted as dropped)."""
        with self._cond:
            k, self._given_up = self._given_up, 0
            if not k:
                return batch
            self.stats.add(self.stats.dropped, "queue_full", k)
            if self._spool is not None:
                return []  # a spool batch is given up whole (its segment is gone)
            buffer = self._memory
            buffer.in_flight = batch[k:]
            buffer.in_flight_seq += k
            buffer.given_up = 0
            return buffer.in_flight

    def settled(self) -> int:
        """Records, in export order, accepted by the backend or deliberately dropped
        (with a spool: safely on disk)."""
        with self._cond:
            if self._spool is not None:
                return self._spool.sync()
            return self._memory.settled()

    @property
    def queue_size(self) -> int:
        """Records waiting (in memory or in the spool), the batch in flight included."""
        with self._cond:  # re-entrant: also read by the metrics thread
            return self._spool.pending if self._spool is not None else len(self._memory)

    @property
    def queue_capacity(self) -> int | None:
        """Records the memory queue holds; None with a spool (its cap is in bytes)."""
        return None if self._spool is not None else self.settings.queue_size

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

    def force_flush(self, timeout_s: float) -> bool:
        """Send what is queued now; True if everything was delivered within ``timeout_s``
        (at most ``delivery.flush_timeout_s``)."""
        deadline = time.monotonic() + min(timeout_s, self.settings.flush_timeout_s)
        with self._cond:
            self._flushing += 1
            self._wake.set()  # cut a backoff short: try again now
            self._cond.notify_all()
            try:
                while self.queue_size:
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
            left = self.queue_size
            if self._spool is not None:
                self._spool.close()
                if left:
                    logger.warning(
                        "sink %s: %d records stay in the spool for the next start", self.name, left
                    )
            elif left:
                # Counted, but not settled: the checkpoint stays before them. They leave
                # the queue (counted once: dropped, no longer queued); the sequence
                # numbers stay, so settled() does not move past them.
                self.stats.add(self.stats.dropped, "shutdown", left)
                self._memory.queue.clear()
                if self._memory.in_flight is not None:
                    self._memory.in_flight = []
                logger.error(
                    "sink %s: %d records not delivered to %s before shutdown",
                    self.name,
                    left,
                    self.transport.endpoint,
                )
        self.transport.close()

    # -- the worker ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                batch = self._take()
            if batch is None:
                return
            delivered = self._deliver(batch)
            with self._cond:
                self._finish(delivered)
                self._cond.notify_all()

    def _take(self) -> list[OutputRecord] | None:
        """Wait for a batch worth sending (size, age, flush or shutdown); lock held.

        Returns None when the worker should stop.
        """
        s = self.settings
        while not self._abort.is_set():
            waiting = self.queue_size
            if not waiting:
                self._oldest_at = 0.0
                if self._closing:
                    return None
                self._cond.wait()
                continue
            age = time.monotonic() - (self._oldest_at or time.monotonic())
            full = self._spool is None and waiting >= self._memory.capacity
            due = waiting >= s.batch_size or full or self._flushing or self._closing
            if not due and age < s.batch_timeout_s:
                self._cond.wait(s.batch_timeout_s - age)
                continue
            batch = self._take_batch(s.batch_size)
            if batch:
                self._oldest_at = time.monotonic() if self.queue_size > len(batch) else 0.0
                return batch
            self._cond.wait(0.1)  # nothing readable yet (cannot happen; never spin)
        return None

    def _take_batch(self, size: int) -> list[OutputRecord]:
        if self._spool is not None:
            peeked = self._spool.peek(size)
            if peeked is None:
                return []
            self._spool_in_flight = peeked
            return peeked.records
        buffer = self._memory
        n = min(len(buffer.queue), size)
        buffer.in_flight = [buffer.queue.popleft() for _ in range(n)]
        buffer.in_flight_seq = buffer.head_seq
        buffer.head_seq += n
        return buffer.in_flight

    def _finish(self, settled: bool) -> None:
        """After a batch: acknowledge it (delivered or dropped) or put it back (shutdown)."""
        if self._spool is not None:
            self._given_up = 0
            batch, self._spool_in_flight = self._spool_in_flight, None
            if settled and batch is not None:
                self._spool.ack(batch)
            return
        buffer = self._memory
        if not settled and buffer.in_flight:
            back = self._trim_given_up(buffer.in_flight)  # what drop_oldest gave up stays dropped
            buffer.queue.extendleft(reversed(back))
            buffer.head_seq = buffer.in_flight_seq
        self._given_up = buffer.given_up = 0
        buffer.in_flight = None

    def _deliver(self, batch: list[OutputRecord]) -> bool:
        """Send ``batch`` until accepted or given up; False only when stopped first."""
        attempt = 0
        started = time.monotonic()
        n = len(batch)
        while True:
            attempt += 1
            t0 = time.perf_counter()
            try:
                sent = self.transport.send(batch)
            except TransportError as e:
                failure, sent_bytes = e.failure, e.sent_bytes
            except Exception:  # a bug (e.g. in an encoder): drop, never kill the worker
                logger.exception("sink %s: cannot send a batch of %d records", self.name, n)
                self.stats.add(self.stats.dropped, "internal_error", n)
                self._report(n, 0, time.perf_counter() - t0, "failure")
                return True
            else:
                self._report(n, sent.bytes, time.perf_counter() - t0, "success")
                self.stats.exported += n - sent.rejected
                if sent.rejected:
                    self.stats.add(self.stats.dropped, sent.reason, sent.rejected)
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
                return True
            self._report(n, sent_bytes, time.perf_counter() - t0, "failure")
            reason = failure.reason
            self.stats.add(self.stats.failed, reason, n)
            batch = self._trim_given_up(batch)
            n = len(batch)
            if not n:
                return True
            decision = decide(
                failure,
                attempt,
                policy=self._policy,
                jitter=self._jitter(),
                elapsed_s=time.monotonic() - started,
            )
            if decision.action is Action.DROP:
                dropped_as = reason if decision.why == "not retryable" else "retry_deadline"
                self.stats.add(self.stats.dropped, dropped_as, n)
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
                return True
            if self._abort.is_set():
                return False
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
            if self._abort.is_set():
                return False
            self._wake.wait(decision.delay_s)
            if self._abort.is_set():
                return False
            batch = self._trim_given_up(batch)
            n = len(batch)
            if not n:
                return True

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
