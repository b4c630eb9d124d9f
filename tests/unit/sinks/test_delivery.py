"""DeliverySink: batching, order, retries, queue-full policies, settled counts, shutdown, spool.

The transport here is a real (in-memory) implementation of the Transport
protocol that answers from a script and can be held at a gate, so each test
controls exactly when a request fails, succeeds or hangs. Waits use events
and conditions, never sleeps, and nothing asserts on wall-clock durations.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest

from kubevents.records import OutputRecord, ResourceInfo
from kubevents.settings import DeliverySettings
from kubevents.sinks import otlp_encode
from kubevents.sinks.base import ExportResult
from kubevents.sinks.delivery import ENCODED_AHEAD, DeliverySink
from kubevents.sinks.retry import Failure
from kubevents.sinks.transport import RequestReport, Sent, TransportError
from tests.support.records import records as numbered_records
from tests.support.waiting import wait_until

FAST = DeliverySettings(
    batch_size=10,
    batch_timeout_s=0.01,
    backoff_base_s=0.001,
    backoff_cap_s=0.002,
    flush_timeout_s=5.0,
)
RESOURCE = ResourceInfo("1.0", "kv-0", cluster_name="test")
UNAVAILABLE = Failure("grpc", "UNAVAILABLE", detail="down")
INVALID = Failure("grpc", "INVALID_ARGUMENT", detail="bad data")


class ScriptedTransport:
    """Answers requests from ``script`` (then success); ``gate`` holds every request."""

    endpoint = "scripted://test"

    def __init__(self, *script: Failure | Sent) -> None:
        self.script = list(script)
        self.requests: list[list[str]] = []
        self.delivered: list[str] = []
        self.gate = threading.Event()
        self.gate.set()
        self.arrived = threading.Condition()
        self.closed = False

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        with self.arrived:
            self.requests.append([r.body for r in records])
            self.arrived.notify_all()
        self.gate.wait()
        with self.arrived:
            answer = self.script.pop(0) if self.script else Sent(len(records))
        if isinstance(answer, Failure):
            raise TransportError(answer)
        self.delivered += [r.body for r in records]
        return answer

    def wait_requests(self, n: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.requests) >= n, 10), self.requests

    def recover(self) -> None:
        """The backend is back: every later request succeeds."""
        with self.arrived:
            self.script.clear()

    def close(self) -> None:
        self.closed = True


records = partial(numbered_records, attributes={"k8s.event.reason": "Started"})


def names(start: int, n: int, body: str = "r") -> list[str]:
    return [f"{body}{i}" for i in range(start, start + n)]


@pytest.fixture
def sinks() -> Iterator[list[DeliverySink]]:
    """Sinks a test made; shut down at teardown (their threads never outlive the test)."""
    made: list[DeliverySink] = []
    yield made
    for sink in made:
        sink.shutdown(0.0)


def make(
    made: list[DeliverySink],
    transport: ScriptedTransport,
    settings: DeliverySettings = FAST,
    **kw: object,
) -> DeliverySink:
    sink = DeliverySink("test", transport, settings, jitter=lambda: 0.0, **kw)  # type: ignore[arg-type]
    made.append(sink)
    return sink


def test_batches_are_delivered_in_export_order(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport()
    sink = make(sinks, transport)
    assert sink.export(records(0, 25)) is ExportResult.SUCCESS
    assert sink.force_flush(5)
    assert transport.delivered == names(0, 25)
    assert all(len(batch) <= 10 for batch in transport.requests)
    assert sink.settled() == 25
    assert sink.stats.exported == 25


def test_a_retryable_failure_is_retried_until_delivered(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport(UNAVAILABLE, UNAVAILABLE)
    sink = make(sinks, transport)
    sink.export(records(0, 5))
    assert sink.force_flush(5)
    assert transport.requests == [names(0, 5)] * 3
    assert transport.delivered == names(0, 5)
    assert sink.stats.failed == {"unavailable": 10}
    assert sink.stats.retried == {"unavailable": 10}
    assert sink.stats.dropped == {}


def test_a_final_failure_drops_the_batch_and_logs_once(
    sinks: list[DeliverySink], caplog: pytest.LogCaptureFixture
) -> None:
    transport = ScriptedTransport(INVALID, INVALID)
    sink = make(sinks, transport)
    with caplog.at_level(logging.DEBUG, logger="kubevents.sinks.delivery"):
        sink.export(records(0, 10))
        sink.export(records(10, 10))
        assert sink.force_flush(5)
    assert transport.requests == [names(0, 10), names(10, 10)]  # never retried
    assert sink.stats.dropped == {"invalid_argument": 20}
    assert sink.settled() == 20  # dropped on purpose: settled
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "bad data" in errors[0].getMessage()


def test_settled_never_passes_a_batch_in_flight(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport()
    transport.gate.clear()
    sink = make(sinks, transport)
    sink.export(records(0, 10))
    transport.wait_requests(1)
    sink.export(records(10, 5))
    assert sink.settled() == 0
    assert sink.queue_size == 15
    transport.gate.set()
    assert sink.force_flush(5)
    assert sink.settled() == 15


def test_partial_success_counts_the_rejected(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport(Sent(100, rejected=2, message="too big"))
    sink = make(sinks, transport)
    sink.export(records(0, 10))
    assert sink.force_flush(5)
    assert (sink.stats.exported, sink.stats.dropped) == (8, {"rejected": 2})
    assert sink.settled() == 10


def test_shutdown_ends_a_backoff_wait_and_does_not_settle_what_is_left(
    sinks: list[DeliverySink],
) -> None:
    transport = ScriptedTransport(*[UNAVAILABLE] * 100)
    slow = replace(FAST, backoff_base_s=600.0, backoff_cap_s=600.0, flush_timeout_s=0.0)
    sink = DeliverySink("test", transport, slow, jitter=lambda: 0.0)
    sink.export(records(0, 10))
    transport.wait_requests(1)
    sink.shutdown(0.0)
    assert not sink._worker.is_alive()  # a 600 s backoff was cut short
    assert sink.stats.dropped == {"shutdown": 10}
    assert sink.settled() == 0  # the checkpoint stays before them
    assert transport.closed
    assert sink.export(records(10, 1)) is ExportResult.FAILURE


def test_block_waits_for_room(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport()
    transport.gate.clear()
    sink = make(sinks, transport, replace(FAST, queue_size=10))
    sink.export(records(0, 10))
    transport.wait_requests(1)  # 10 in flight: full
    done = threading.Event()
    exporter = threading.Thread(target=lambda: (sink.export(records(10, 5)), done.set()))
    exporter.start()
    assert not done.wait(0.2)  # blocked
    transport.gate.set()
    assert done.wait(5)
    exporter.join()
    assert sink.force_flush(5)
    assert transport.delivered == names(0, 15)
    assert sink.stats.dropped == {}


def test_block_stops_waiting_once_kubevents_stops(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport()
    transport.gate.clear()
    stop = threading.Event()
    sink = make(sinks, transport, replace(FAST, queue_size=10), stop=stop)
    sink.export(records(0, 10))
    transport.wait_requests(1)
    done = threading.Event()
    exporter = threading.Thread(target=lambda: (sink.export(records(10, 5)), done.set()))
    exporter.start()
    stop.set()
    assert done.wait(5)
    exporter.join()
    assert sink.queue_size == 15  # taken over capacity, for the final flush to try
    transport.gate.set()


def test_block_with_a_timeout_then_drops_the_oldest(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport(*[UNAVAILABLE] * 1000)
    sink = make(sinks, transport, replace(FAST, queue_size=10, block_timeout_s=0.01))
    sink.export(records(0, 10))
    transport.wait_requests(1)
    sink.export(records(10, 4))  # waits 10 ms, then gives up the 4 oldest (in flight)
    assert sink.queue_size == 10
    wait_until(lambda: sink.stats.dropped.get("queue_full") == 4)
    assert sink.settled() == 4
    transport.recover()  # the backend is back: the 6 left in flight, then the new 4
    assert sink.force_flush(5)
    assert transport.delivered == names(4, 10)


def test_drop_oldest_keeps_the_newest_and_counts_the_rest(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport(*[UNAVAILABLE] * 10_000)
    sink = make(sinks, transport, replace(FAST, queue_size=10, queue_full="drop_oldest"))
    for start in range(0, 50, 5):
        sink.export(records(start, 5))  # never blocks
    assert sink.queue_size <= 10
    transport.recover()  # the backend is back
    assert sink.force_flush(5)
    delivered = transport.delivered
    assert delivered == names(50 - len(delivered), len(delivered))  # the newest, in order
    assert sink.stats.exported + sink.stats.dropped["queue_full"] == 50
    assert sink.settled() == 50


def test_spool_survives_a_restart(tmp_path: Path, sinks: list[DeliverySink]) -> None:
    down = ScriptedTransport(*[UNAVAILABLE] * 10_000)
    settings = replace(FAST, flush_timeout_s=0.0)
    first = DeliverySink("test", down, settings, spool_dir=str(tmp_path), jitter=lambda: 0.0)
    first.export(records(0, 25))
    assert first.settled() == 25  # on disk: settled
    first.shutdown(0.0)
    assert first.stats.dropped == {}  # nothing lost: it stays in the spool
    up = ScriptedTransport()
    second = make(sinks, up, FAST, spool_dir=str(tmp_path))
    second.export(records(25, 3))
    assert second.force_flush(5)
    assert up.delivered == names(0, 28)
    assert list((tmp_path / "test").glob("*.seg"))


def test_spool_drop_oldest_when_full(tmp_path: Path, sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport(*[UNAVAILABLE] * 100_000)
    transport.gate.clear()
    settings = replace(FAST, spool_max_bytes=1 << 20, queue_full="drop_oldest")
    sink = make(sinks, transport, settings, spool_dir=str(tmp_path))
    sink.export(records(0, 10, body="x" * 1000))
    transport.wait_requests(1)  # the first batch is in flight, held
    for start in range(10, 3000, 10):
        sink.export(records(start, 10, body="x" * 1000))
    assert sink.spool_bytes is not None and sink.spool_bytes <= 1 << 20
    kept = sink.queue_size  # the batch in flight was given up with its segment
    assert 0 < kept < 2990
    transport.recover()
    transport.gate.set()  # the held request succeeds: given up, yet delivered
    assert sink.force_flush(5)
    # Exactly the newest records survive, in order, after the batch that was in flight.
    assert transport.delivered == names(0, 10, "x" * 1000) + names(3000 - kept, kept, "x" * 1000)
    assert sink.stats.exported == 10 + kept
    assert sink.stats.dropped == {"queue_full": 3000 - 10 - kept}
    assert sink.settled() == 3000


def accounted(sink: DeliverySink) -> int:
    """Records counted once: exported, dropped, or still queued (docs/metrics.md)."""
    return sink.stats.exported + sum(sink.stats.dropped.values()) + sink.queue_size


def test_a_request_in_flight_at_shutdown_is_counted_once(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport()
    transport.gate.clear()
    sink = DeliverySink("test", transport, replace(FAST, flush_timeout_s=0.0), jitter=lambda: 0.0)
    sink.export(records(0, 10))
    transport.wait_requests(1)
    sink.shutdown(0.0)  # the request outlives the worker's stop timeout
    assert sink.stats.dropped == {"shutdown": 10}
    transport.gate.set()  # then the backend accepts it: not counted a second time
    sink._worker.join(5)
    assert transport.delivered == names(0, 10)
    assert sink.stats.exported == 0
    assert accounted(sink) == 10
    assert sink.settled() == 0  # not checkpointed: read again on the next start


def fill_spool(sink: DeliverySink, transport: ScriptedTransport) -> int:
    """The first batch in flight, then enough records to drop several segments."""
    sink.export(records(0, 10, body="x" * 1000))
    transport.wait_requests(1)
    for start in range(10, 3000, 10):
        sink.export(records(start, 10, body="x" * 1000))
    return 3000


def test_a_spool_batch_given_up_in_flight_is_counted_once(
    tmp_path: Path, sinks: list[DeliverySink]
) -> None:
    """Segments dropped after the one of the batch in flight lose all their records."""
    transport = ScriptedTransport()
    transport.gate.clear()
    settings = replace(FAST, spool_max_bytes=1 << 20, queue_full="drop_oldest")
    sink = make(sinks, transport, settings, spool_dir=str(tmp_path))
    n = fill_spool(sink, transport)
    transport.gate.set()
    assert sink.force_flush(5)
    assert accounted(sink) == n
    assert sink.stats.exported == len(transport.delivered)


def test_a_spool_batch_given_up_in_its_backoff_is_counted_at_shutdown(tmp_path: Path) -> None:
    transport = ScriptedTransport(*[UNAVAILABLE] * 100_000)
    settings = replace(
        FAST,
        spool_max_bytes=1 << 20,
        queue_full="drop_oldest",
        backoff_base_s=600.0,
        backoff_cap_s=600.0,
        flush_timeout_s=0.0,
    )
    sink = DeliverySink("test", transport, settings, spool_dir=str(tmp_path), jitter=lambda: 0.0)
    n = fill_spool(sink, transport)
    sink.shutdown(0.0)
    assert sink.stats.exported == 0
    assert accounted(sink) == n  # what is not dropped stays in the spool


def test_every_request_is_reported_for_the_histograms(sinks: list[DeliverySink]) -> None:
    reports: list[RequestReport] = []
    transport = ScriptedTransport(UNAVAILABLE)
    sink = make(sinks, transport, on_request=reports.append)
    sink.export(records(0, 4))
    assert sink.force_flush(5)
    assert [(r.records, r.result) for r in reports] == [(4, "failure"), (4, "success")]


def test_oversized_records_are_truncated_and_counted(sinks: list[DeliverySink]) -> None:
    transport = ScriptedTransport()
    sink = make(sinks, transport, replace(FAST, max_body_bytes=64))
    sink.export(records(0, 1, body="x" * 100) + records(1, 1))
    assert sink.force_flush(5)
    assert sink.stats.truncated == 1
    assert transport.delivered[0] == "x" * 64


class EncodingTransport(ScriptedTransport):
    """A ScriptedTransport that can encode ahead (``EncodingTransport``): its request is the
    bodies joined, and it notes which thread encoded each and how each was sent."""

    def __init__(self, *script: Failure | Sent, fail_encode: bool = False) -> None:
        super().__init__(*script)
        self.fail_encode = fail_encode
        self.encoded_on: list[str] = []
        self.sent_as: list[str] = []
        self.within: list[str] = []
        """What each ``encode_within`` did: "encoded", or "limits" (left to them)."""

    def encode(self, records: Sequence[OutputRecord]) -> bytes:
        self.encoded_on.append(threading.current_thread().name)
        if self.fail_encode:
            raise ValueError("an encoder's bug")
        return "\n".join(r.body for r in records).encode()

    def encode_within(
        self, records: Sequence[OutputRecord], max_body_bytes: int, max_attribute_bytes: int
    ) -> bytes | None:
        """As the OTLP encoder: None when a body is past its limit (only bodies here)."""
        if self.fail_encode:
            return self.encode(records)  # noted, and raises
        if any(len(r.body.encode()) > max_body_bytes for r in records):
            self.within.append("limits")
            return None
        self.within.append("encoded")
        return self.encode(records)

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        return self._send(records, self.encode(records), "encoded by send")

    def send_encoded(self, records: Sequence[OutputRecord], request: bytes) -> Sent:
        return self._send(records, request, "encoded ahead")

    def _send(self, records: Sequence[OutputRecord], request: bytes, how: str) -> Sent:
        assert request == "\n".join(r.body for r in records).encode()  # these records' own
        self.sent_as.append(how)
        return super().send(records)


def test_a_whole_batch_is_encoded_by_export_and_sent_as_it_is(sinks: list[DeliverySink]) -> None:
    transport = EncodingTransport()
    sink = make(sinks, transport)
    sink.export(records(0, 10))
    assert sink.force_flush(5)
    assert transport.delivered == names(0, 10)
    assert transport.encoded_on == [threading.current_thread().name]
    assert transport.sent_as == ["encoded ahead"]


def test_a_whole_batch_within_the_limits_is_encoded_once_the_limits_checked_as_it_is(
    sinks: list[DeliverySink],
) -> None:
    transport = EncodingTransport()
    sink = make(sinks, transport, replace(FAST, max_body_bytes=64))
    sink.export(records(0, 10))
    assert sink.force_flush(5)
    assert transport.within == ["encoded"]
    assert transport.encoded_on == [threading.current_thread().name]  # once
    assert transport.sent_as == ["encoded ahead"]
    assert transport.delivered == names(0, 10)
    assert sink.stats.truncated == 0


def test_a_whole_batch_the_limits_change_is_cut_first_then_encoded_ahead(
    sinks: list[DeliverySink],
) -> None:
    transport = EncodingTransport()
    sink = make(sinks, transport, replace(FAST, max_body_bytes=64))
    sink.export(records(0, 1, body="x" * 100) + records(1, 9))
    assert sink.force_flush(5)
    assert transport.within == ["limits"]
    assert sink.stats.truncated == 1
    assert transport.delivered[0] == "x" * 64
    assert transport.sent_as == ["encoded ahead"]  # the records as the limits left them
    assert transport.encoded_on == [threading.current_thread().name]


def test_only_a_batch_that_is_the_records_encoded_goes_as_encoded(
    sinks: list[DeliverySink],
) -> None:
    transport = EncodingTransport()
    transport.gate.clear()
    sink = make(sinks, transport)
    sink.export(records(0, 10))  # encoded ahead; the worker takes it and waits at the gate
    transport.wait_requests(1)
    sink.export(records(10, 10))  # queued behind it: encoded ahead too
    sink.export(records(20, 10))
    sink.export(records(30, 4))  # not a whole batch: encoded by the worker
    transport.gate.set()
    assert sink.force_flush(5)
    assert transport.requests == [names(0, 10), names(10, 10), names(20, 10), names(30, 4)]
    assert transport.sent_as == ["encoded ahead"] * 3 + ["encoded by send"]
    here, worker = threading.current_thread().name, "sink-test"
    assert transport.encoded_on == [here, here, here, worker]


def test_a_short_batch_queued_goes_alone_and_the_whole_batches_after_it_as_encoded(
    sinks: list[DeliverySink],
) -> None:
    """A short batch (the pipeline's flush when its queue runs empty) waits in the queue
    for the batch timeout; the whole batches queued behind it are not cut across."""
    transport = EncodingTransport()
    transport.gate.clear()
    sink = make(sinks, transport, replace(FAST, batch_timeout_s=60.0))
    sink.export(records(0, 10))
    transport.wait_requests(1)
    sink.export(records(10, 4))
    sink.export(records(14, 10))
    sink.export(records(24, 10))
    transport.gate.set()
    assert sink.force_flush(5)
    assert transport.requests == [names(0, 10), names(10, 4), names(14, 10), names(24, 10)]
    assert transport.sent_as == ["encoded ahead", "encoded by send"] + ["encoded ahead"] * 2
    assert transport.encoded_on.count("sink-test") == 1  # the short one only


def test_a_batch_encoded_ahead_whose_records_were_dropped_is_not_sent(
    sinks: list[DeliverySink],
) -> None:
    """Records dropped from the queue (policy drop_oldest) take their encoded request with
    them: the worker's batches after it are encoded from the records they have."""
    transport = EncodingTransport()
    transport.gate.clear()
    sink = make(sinks, transport, replace(FAST, queue_size=20, queue_full="drop_oldest"))
    sink.export(records(0, 10))
    transport.wait_requests(1)
    sink.export(records(10, 10))  # encoded ahead
    sink.export(records(20, 10))  # full: the batch in flight given up
    sink.export(records(30, 10))  # full: the batch encoded ahead dropped
    transport.gate.set()
    assert sink.force_flush(5)
    assert transport.requests[1:] == [names(20, 10), names(30, 10)]
    assert transport.sent_as[1:] == ["encoded by send"] * 2
    assert transport.delivered == names(0, 10) + names(20, 20)  # the attempt in flight went


def test_send_now_sends_a_partial_batch_without_waiting_for_the_batch_timeout(
    sinks: list[DeliverySink],
) -> None:
    transport = ScriptedTransport()
    sink = make(sinks, transport, replace(FAST, batch_timeout_s=3600.0))
    sink.send_now()  # nothing queued: nothing to hurry
    sink.export(records(0, 4))
    sink.send_now()
    transport.wait_requests(1)
    assert transport.requests == [names(0, 4)]


def test_a_retry_encodes_the_batch_again(sinks: list[DeliverySink]) -> None:
    transport = EncodingTransport(UNAVAILABLE)
    sink = make(sinks, transport)
    sink.export(records(0, 10))
    assert sink.force_flush(5)
    assert transport.requests == [names(0, 10)] * 2
    assert transport.sent_as == ["encoded ahead", "encoded by send"]


def test_a_failing_encode_ahead_is_left_to_the_worker(sinks: list[DeliverySink]) -> None:
    transport = EncodingTransport(fail_encode=True)
    sink = make(sinks, transport)
    assert sink.export(records(0, 10)) is ExportResult.SUCCESS  # the pipeline goes on
    assert sink.force_flush(5)
    assert transport.requests == []
    assert sink.stats.dropped == {"internal_error": 10}  # as a failing encode always did
    assert transport.encoded_on == [threading.current_thread().name, "sink-test"]


def test_a_spool_batch_is_encoded_by_the_worker(tmp_path: Path, sinks: list[DeliverySink]) -> None:
    transport = EncodingTransport()
    sink = make(sinks, transport, spool_dir=str(tmp_path))
    sink.export(records(0, 10))
    assert sink.force_flush(5)
    assert transport.delivered == names(0, 10)
    assert transport.sent_as == ["encoded by send"]


class OtlpBytesTransport(ScriptedTransport):
    """A ScriptedTransport that encodes as the OTLP/gRPC transport does (``otlp_encode``,
    records staged as they are made included) and keeps every request's bytes."""

    def __init__(self, *script: Failure | Sent) -> None:
        super().__init__(*script)
        self.within = 0
        """Calls of ``encode_within``: a staged batch needs none."""
        self.sent: list[bytes] = []

    def encode(self, records: Sequence[OutputRecord]) -> bytes:
        return otlp_encode.encode_logs_wire(records, RESOURCE)

    def encode_within(
        self, records: Sequence[OutputRecord], max_body_bytes: int, max_attribute_bytes: int
    ) -> bytes | None:
        self.within += 1
        return otlp_encode.encode_logs_within(
            records,
            RESOURCE,
            max_body_bytes=max_body_bytes,
            max_attribute_bytes=max_attribute_bytes,
        )

    def staging(
        self, max_body_bytes: int, max_attribute_bytes: int, max_records: int
    ) -> otlp_encode.StagedRecords:
        return otlp_encode.StagedRecords(
            RESOURCE,
            max_body_bytes=max_body_bytes,
            max_attribute_bytes=max_attribute_bytes,
            max_records=max_records,
        )

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        return self.send_encoded(records, self.encode(records))

    def send_encoded(self, records: Sequence[OutputRecord], request: bytes) -> Sent:
        self.sent.append(request)
        return super().send(records)


def test_a_batch_staged_as_its_records_were_made_goes_as_they_were_encoded(
    sinks: list[DeliverySink],
) -> None:
    transport = OtlpBytesTransport()
    sink = make(sinks, transport)
    batch = records(0, 10)
    assert sink.staged is not None and sink.staged.max_records == FAST.batch_size
    for r in batch:
        sink.staged.add(r)
    sink.export(batch)
    assert sink.force_flush(5)
    assert transport.within == 0  # nothing encoded at export
    assert transport.sent == [otlp_encode.encode_logs_wire(batch, RESOURCE)]
    assert transport.delivered == names(0, 10)


def test_a_batch_other_than_the_records_staged_is_encoded_at_export(
    sinks: list[DeliverySink],
) -> None:
    transport = OtlpBytesTransport()
    sink = make(sinks, transport)
    assert sink.staged is not None
    for r in records(0, 10):
        sink.staged.add(r)
    other = records(0, 10)  # equal records, other objects
    sink.export(other)
    assert sink.force_flush(5)
    assert transport.within == 1
    assert transport.sent == [otlp_encode.encode_logs_wire(other, RESOURCE)]
    for r in records(10, 4):  # not a whole batch: sent by the worker, and the staged let go
        sink.staged.add(r)
    sink.export(records(10, 4))
    assert sink.force_flush(5)
    assert sink.staged.records == []
    assert transport.delivered == names(0, 14)


def test_a_batch_staged_after_a_short_one_goes_as_it_was_encoded(
    sinks: list[DeliverySink],
) -> None:
    transport = OtlpBytesTransport()
    transport.gate.clear()
    sink = make(sinks, transport, replace(FAST, batch_timeout_s=60.0))
    staged = sink.staged
    assert staged is not None
    sink.export(records(0, 10))  # the worker takes it and waits at the gate
    transport.wait_requests(1)
    sink.export(records(10, 4))  # a short batch: the staged let go
    batch = records(14, 10)
    sink.export(records(14, 0))  # (no records: nothing queued)
    for r in batch:
        staged.add(r)
    assert staged.records == []  # nothing staged until the next whole batch is taken
    sink.export(batch)
    after = records(24, 10)
    for r in after:
        staged.add(r)
    assert staged.records == after
    within = transport.within
    sink.export(after)
    assert transport.within == within  # sent as it was staged
    transport.gate.set()
    assert sink.force_flush(5)
    assert transport.requests[1:] == [names(10, 4), names(14, 10), names(24, 10)]
    assert transport.sent[-1] == otlp_encode.encode_logs_wire(after, RESOURCE)


def test_a_sink_behind_by_more_batches_than_it_encodes_ahead_stages_nothing(
    sinks: list[DeliverySink],
) -> None:
    transport = OtlpBytesTransport()
    transport.gate.clear()
    sink = make(sinks, transport)
    staged = sink.staged
    assert staged is not None
    sink.export(records(0, 10))  # the worker takes it and waits at the gate
    transport.wait_requests(1)
    for i in range(ENCODED_AHEAD):
        sink.export(records(10 + 10 * i, 10))  # encoded ahead, each held
    n = 10 + 10 * ENCODED_AHEAD
    behind = records(n, 10)
    for r in behind:
        staged.add(r)
    sink.export(behind)  # no more held: staged let go, and stopped
    staged.add(records(n + 10, 1)[0])
    assert staged.records == []  # the sink is behind: nothing encoded
    transport.gate.set()
    assert sink.force_flush(5)
    batch = records(n + 20, 10)
    sink.export(records(n + 10, 10))  # ahead again: encoded at export, staging restarts
    for r in batch:
        staged.add(r)
    assert staged.records == batch
    sink.export(batch)
    assert sink.force_flush(5)
    assert transport.delivered == names(0, n + 30)
    assert transport.sent[-1] == otlp_encode.encode_logs_wire(batch, RESOURCE)


def test_a_staged_batch_past_the_limits_is_cut_first(sinks: list[DeliverySink]) -> None:
    transport = OtlpBytesTransport()
    sink = make(sinks, transport, replace(FAST, max_body_bytes=100))
    assert sink.staged is not None
    batch = records(0, 1, body="x" * 150) + records(1, 9)
    for r in batch:
        sink.staged.add(r)
    sink.export(batch)
    assert sink.force_flush(5)
    assert sink.stats.truncated == 1
    assert transport.delivered[0] == "x" * 100


def test_a_sink_that_cannot_encode_ahead_stages_nothing(
    tmp_path: Path, sinks: list[DeliverySink]
) -> None:
    assert make(sinks, OtlpBytesTransport(), spool_dir=str(tmp_path)).staged is None
    assert make(sinks, ScriptedTransport()).staged is None
