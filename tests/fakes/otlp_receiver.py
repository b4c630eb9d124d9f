"""A protocol-faithful OTLP receiver (logs and metrics), over gRPC and HTTP, for protocol tests.

Why a real server: kubevents ships its logs with the OpenTelemetry SDK
exporters (or its own OTLP sinks); patching them would only test our beliefs
about them. This fake is what a Collector's ``otlp`` receiver looks like from
the outside, built on the official ``opentelemetry-proto`` messages and
generated gRPC service stubs, with knobs for the failures a real Collector
cannot produce on demand (STYLE point 22).

Shape::

    OtlpReceiver
      ├─ gRPC   grpc.server on 127.0.0.1:0: LogsService/Export, MetricsService/Export
      │           (_LogsServicer, _MetricsServicer) ──┐
      ├─ HTTP   ThreadingHTTPServer on 127.0.0.1:0:  ├─► _handle(): THE recording core
      │           POST /v1/logs, /v1/metrics          │     delay -> take fault -> record -> _Answer
      │           (_OtlpHttpHandler) ─────────────────┘
      ├─ faults   OtlpFaults: scripted answers for the next N calls
      ├─ delay    seconds every call waits before it is answered (a slow receiver)
      └─ exports  ReceivedExport per call (decoded request, headers, arrival, outcome)

Each shell only translates: the gRPC one turns a fault into a status code
plus trailers, the HTTP one into a status, a ``google.rpc.Status`` body and
``Retry-After``. What the OTLP specification (``otlp.md``, "Failures" and
"OTLP/HTTP Throttling") says, and this fake does:

* Success: gRPC OK, or HTTP 200 with an ``Export*ServiceResponse`` in
  ``application/x-protobuf``; ``partial_success`` when a fault asks for it.
* Retryable: gRPC UNAVAILABLE, RESOURCE_EXHAUSTED with a
  ``google.rpc.RetryInfo`` (trailer ``google.rpc.retryinfo-bin``, which the
  Python SDK reads, and the ``grpc-status-details-bin`` status details);
  HTTP 429/502/503/504, with ``Retry-After`` when a delay is given.
* Not retryable: INVALID_ARGUMENT / HTTP 400. Every HTTP 4xx/5xx has a
  protobuf ``google.rpc.Status`` body.
* HTTP requests may be ``Content-Encoding: gzip`` (or ``deflate``, which the
  Python SDK also offers); gRPC compression is handled by grpc itself.

Fake limits: OTLP/JSON bodies are answered 415 (this fake decodes binary
protobuf only); traces are not served.

"Down" (:meth:`OtlpReceiver.down`) closes both listeners, so clients get
"connection refused"; :meth:`OtlpReceiver.up` listens again on the SAME
ports. Records survive both.

The generic pieces at the top (:class:`ScriptedFaults`, :class:`HttpListener`,
:class:`FakeHttpHandler`, :func:`decode_content`) are shared with
``loki_receiver.py``.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import logging
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import MappingProxyType
from typing import Any, Generic, Literal, NamedTuple, TypeVar
from urllib.parse import urlsplit

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric

from .apiserver_faults import Headers

logger = logging.getLogger(__name__)

LOCALHOST = "127.0.0.1"


# ---------------------------------------------------------------------------
# Shared with loki_receiver.py: scripted faults, a restartable HTTP listener
# ---------------------------------------------------------------------------

F = TypeVar("F")


@dataclass(eq=False)  # identity: two equal faults are still two slots
class _Slot(Generic[F]):
    fault: F
    left: int | None  # calls it still answers; None: until cleared


class ScriptedFaults(Generic[F]):
    """Faults a test scripts, each answering the next ``times`` matching calls (thread-safe).

    ``times=None`` keeps a fault until :meth:`clear`. The first pending fault
    that matches a call answers it. :attr:`fired` lists every fault used, in order.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: list[_Slot[F]] = []
        self.fired: list[F] = []

    def add(self, fault: F, *, times: int | None = 1) -> F:
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), not {times}")
        with self._lock:
            self._slots.append(_Slot(fault, times))
        return fault

    def take(self, accepts: Callable[[F], bool] = lambda _: True) -> F | None:
        """The first pending fault that ``accepts`` the call, counted as used."""
        with self._lock:
            slot = next((s for s in self._slots if accepts(s.fault)), None)
            if slot is None:
                return None
            if slot.left is not None:
                slot.left -= 1
                if slot.left == 0:
                    self._slots.remove(slot)
            self.fired.append(slot.fault)
            return slot.fault

    @property
    def pending(self) -> list[F]:
        with self._lock:
            return [slot.fault for slot in self._slots]

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


class UnsupportedEncoding(LookupError):
    """A Content-Encoding the fake (like the real server) does not decode."""


def decode_content(body: bytes, encoding: str | None) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate; none/identity pass through).

    Raises:
        UnsupportedEncoding: any other encoding.
        ValueError: the body is not valid for its encoding.
    """
    name = (encoding or "identity").strip().lower()
    try:
        if name == "gzip":
            return gzip.decompress(body)
        if name == "deflate":
            return zlib.decompress(body)
    except (OSError, EOFError, zlib.error) as e:
        raise ValueError(f"invalid {name} body: {e}") from e
    if name in ("", "identity"):
        return body
    raise UnsupportedEncoding(name)


class OwnedHttpServer(ThreadingHTTPServer):
    """A threading HTTP server that knows its fake (``owner``) and its open connections,
    so that going down closes idle keep-alive connections too."""

    daemon_threads = False  # so that server_close() joins every connection thread

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.owner = owner
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        super().__init__((LOCALHOST, port), handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:  # registered before its thread starts: close_connections sees it
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("fake HTTP server: connection from %s failed", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._open)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class HttpListener:
    """An :class:`OwnedHttpServer` on ``127.0.0.1`` in its own thread.

    :meth:`stop` closes the socket and every connection, and joins the
    threads; :meth:`start` with the old :attr:`port` listens on it again.
    """

    def __init__(self, handler: type[BaseHTTPRequestHandler], owner: Any, name: str) -> None:
        self._handler = handler
        self._owner = owner
        self._name = name
        self._server: OwnedHttpServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    def start(self, port: int = 0) -> None:
        self._server = OwnedHttpServer(port, self._handler, self._owner)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"{self._name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()  # joins the connection threads
        if self._thread is not None:
            self._thread.join()

    @property
    def running(self) -> bool:
        return self._server is not None


class FakeHttpHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 in and out for the fakes: body, headers as sent, plain answers, no access log."""

    protocol_version = "HTTP/1.1"
    server: OwnedHttpServer
    fake_name = "fake"

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def request_headers(self) -> Headers:
        return Headers(self.headers.items())

    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased."""
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def send(
        self,
        code: int,
        body: bytes,
        content_type: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        if body or code != 204:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def send_text(self, code: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        """A plain-text answer, ending in a newline as Go's ``http.Error`` does."""
        self.send(code, (text + "\n").encode(), "text/plain; charset=utf-8", headers)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.fake_name, *args)


# ---------------------------------------------------------------------------
# OTLP: values, faults, what was received
# ---------------------------------------------------------------------------

Signal = Literal["logs", "metrics"]
Transport = Literal["grpc", "http"]

PROTOBUF = "application/x-protobuf"
ACCEPTED = frozenset({"ok", "partial"})
"""Outcomes whose data the receiver kept."""

_REQUESTS: Mapping[Signal, type[Message]] = MappingProxyType(
    {
        "logs": logs_service_pb2.ExportLogsServiceRequest,
        "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    }
)
_RESPONSES: Mapping[Signal, type[Message]] = MappingProxyType(
    {
        "logs": logs_service_pb2.ExportLogsServiceResponse,
        "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    }
)
_REJECTED_FIELD: Mapping[Signal, str] = MappingProxyType(
    {"logs": "rejected_log_records", "metrics": "rejected_data_points"}
)
_HTTP_PATHS: Mapping[str, Signal] = MappingProxyType({"/v1/logs": "logs", "/v1/metrics": "metrics"})

HTTP_STATUS: Mapping[grpc.StatusCode, int] = MappingProxyType(
    {
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.UNAUTHENTICATED: 401,
        grpc.StatusCode.PERMISSION_DENIED: 403,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.INTERNAL: 500,
        grpc.StatusCode.UNIMPLEMENTED: 501,
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    }
)
"""The HTTP status that stands for a gRPC code, when a fault does not name one."""


def any_value(value: AnyValue) -> Any:
    """An OTLP ``AnyValue`` as a plain Python value (lists, dicts, None when unset)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind)


def attributes(key_values: Iterable[KeyValue]) -> dict[str, Any]:
    """OTLP attributes as a plain dict."""
    return {kv.key: any_value(kv.value) for kv in key_values}


@dataclass(frozen=True)
class OtlpFault:
    """One scripted answer. ``code`` None answers OK, with ``partial_success``
    if ``rejected`` or ``message`` is set; otherwise the call fails with ``code``
    (over HTTP: ``http_status``, or the status :data:`HTTP_STATUS` maps it to).
    ``retry_after`` (seconds, fractions allowed) becomes a ``RetryInfo`` over
    gRPC and ``Retry-After`` over HTTP. ``transport``/``signal`` None match any."""

    code: grpc.StatusCode | None
    message: str = ""
    retry_after: float | None = None
    http_status: int | None = None
    rejected: int = 0
    transport: Transport | None = None
    signal: Signal | None = None

    def applies_to(self, signal: Signal, transport: Transport) -> bool:
        return self.signal in (None, signal) and self.transport in (None, transport)

    @property
    def outcome(self) -> str:
        if self.code is None:
            return "partial" if (self.rejected or self.message) else "ok"
        return str(self.code.name).lower()

    @property
    def status(self) -> int:
        if self.code is None:
            return 200
        return self.http_status or HTTP_STATUS.get(self.code, 500)

    def retry_info(self) -> error_details_pb2.RetryInfo | None:
        if self.retry_after is None:
            return None
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(self.retry_after * 1e9))
        return error_details_pb2.RetryInfo(retry_delay=delay)

    def rpc_status(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` of a failure (HTTP body, gRPC status details)."""
        assert self.code is not None
        status = status_pb2.Status(code=self.code.value[0], message=self.message)
        if (info := self.retry_info()) is not None:
            detail = any_pb2.Any()
            detail.Pack(info)
            status.details.append(detail)
        return status

    def grpc_trailers(self) -> list[tuple[str, bytes]]:
        trailers = [("grpc-status-details-bin", self.rpc_status().SerializeToString())]
        if (info := self.retry_info()) is not None:
            trailers.append(("google.rpc.retryinfo-bin", info.SerializeToString()))
        return trailers

    def http_headers(self) -> dict[str, str]:
        # RFC 9110 says integer seconds; fractions keep tests fast, and the Python SDK
        # parses them. Give whole seconds to test a client that only takes integers.
        if self.retry_after is None:
            return {}
        return {"Retry-After": f"{self.retry_after:g}"}


_GOING_DOWN = OtlpFault(grpc.StatusCode.UNAVAILABLE, "fake OTLP receiver is going down")


class OtlpFaults(ScriptedFaults[OtlpFault]):
    """What the next calls answer. ``fail(grpc.StatusCode.UNAVAILABLE, times=2)``
    fails the next two calls (gRPC UNAVAILABLE, HTTP 503)."""

    def fail(
        self,
        code: grpc.StatusCode,
        *,
        times: int | None = 1,
        message: str | None = None,
        retry_after: float | None = None,
        http_status: int | None = None,
        transport: Transport | None = None,
        signal: Signal | None = None,
    ) -> OtlpFault:
        """Fail the next ``times`` matching calls with ``code`` (and ``http_status`` over HTTP)."""
        fault = OtlpFault(
            code,
            message if message is not None else f"fake OTLP receiver: {code.name}",
            retry_after,
            http_status,
            transport=transport,
            signal=signal,
        )
        return self.add(fault, times=times)

    def partial_success(
        self,
        *,
        rejected: int,
        message: str = "",
        times: int | None = 1,
        transport: Transport | None = None,
        signal: Signal | None = None,
    ) -> OtlpFault:
        """Answer OK with ``partial_success`` (``rejected`` items); the data is still recorded."""
        fault = OtlpFault(None, message, rejected=rejected, transport=transport, signal=signal)
        return self.add(fault, times=times)


@dataclass(frozen=True)
class ReceivedExport:
    """One Export call as the receiver saw it. ``outcome``: ``ok``, ``partial``,
    ``aborted`` (the receiver went down before answering) or the lower-case
    gRPC code it failed with (``unavailable``, ``invalid_argument``, ...)."""

    signal: Signal
    transport: Transport
    request: Message
    headers: Headers
    received_at: float
    outcome: str

    @property
    def accepted(self) -> bool:
        return self.outcome in ACCEPTED


class ReceivedLog(NamedTuple):
    """One log record of an accepted export, with its resource and scope."""

    resource: dict[str, Any]
    scope: InstrumentationScope
    record: LogRecord

    @property
    def attributes(self) -> dict[str, Any]:
        return attributes(self.record.attributes)

    @property
    def body(self) -> Any:
        return any_value(self.record.body)


class ReceivedMetric(NamedTuple):
    """One metric of an accepted export, with its resource and scope."""

    resource: dict[str, Any]
    scope: InstrumentationScope
    metric: Metric


def _flatten(request: Any, resources: str, scopes: str, items: str) -> Iterator[Any]:
    """(resource attributes, scope, item) for every item of an Export request."""
    for resource_group in getattr(request, resources):
        resource = attributes(resource_group.resource.attributes)
        for scope_group in getattr(resource_group, scopes):
            for item in getattr(scope_group, items):
                yield resource, scope_group.scope, item


@dataclass(frozen=True)
class _Answer:
    fault: OtlpFault | None
    response: Message

    @property
    def failed(self) -> bool:
        return self.fault is not None and self.fault.code is not None


# ---------------------------------------------------------------------------
# The two shells
# ---------------------------------------------------------------------------


def _answer_grpc(answer: _Answer, context: grpc.ServicerContext) -> Message:
    if answer.failed:
        assert answer.fault is not None and answer.fault.code is not None
        context.set_trailing_metadata(answer.fault.grpc_trailers())
        context.abort(answer.fault.code, answer.fault.message)
    return answer.response


def _metadata(context: grpc.ServicerContext) -> Headers:
    return Headers(
        (key, value if isinstance(value, str) else value.decode("latin-1"))
        for key, value in context.invocation_metadata()
    )


class _LogsServicer(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        answer = self._receiver._handle("logs", "grpc", request, _metadata(context))
        return _answer_grpc(answer, context)


class _MetricsServicer(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(self, request: Message, context: grpc.ServicerContext) -> Message:
        answer = self._receiver._handle("metrics", "grpc", request, _metadata(context))
        return _answer_grpc(answer, context)


class _OtlpHttpHandler(FakeHttpHandler):
    """OTLP/HTTP: ``POST /v1/logs`` and ``/v1/metrics``, binary protobuf, optional gzip."""

    fake_name = "fake OTLP receiver"

    def do_POST(self) -> None:
        receiver: OtlpReceiver = self.server.owner
        body = self.read_body()
        signal = _HTTP_PATHS.get(urlsplit(self.path).path)
        if signal is None:
            self.send_text(
                404, f"404 page not found: the fake OTLP receiver serves POST {_routes()}"
            )
            return
        if self.media_type() != PROTOBUF:
            self.send_text(415, f"unsupported Content-Type {self.media_type()!r}: use {PROTOBUF}")
            return
        request: Message | None = None
        error = None
        try:
            request = _parse(signal, body, self.headers.get("Content-Encoding"))
        except UnsupportedEncoding as e:
            self.send_text(415, f"unsupported Content-Encoding {e}: use gzip or none")
            return
        except ValueError as e:  # answered like any other invalid request, and recorded
            error = str(e)
        self._answer(receiver._handle(signal, "http", request, self.request_headers(), error))

    def do_GET(self) -> None:
        self.send_text(
            405, f"405 method not allowed: the fake OTLP receiver serves POST {_routes()}"
        )

    do_PUT = do_PATCH = do_DELETE = do_GET

    def _answer(self, answer: _Answer) -> None:
        fault = answer.fault
        try:
            if answer.failed:
                assert fault is not None
                body = fault.rpc_status().SerializeToString()
                self.send(fault.status, body, PROTOBUF, fault.http_headers())
            else:
                self.send(200, answer.response.SerializeToString(), PROTOBUF)
        except OSError as e:  # the client went away, or we are going down
            logger.debug("fake OTLP receiver: could not answer: %s", e)
            self.close_connection = True


def _routes() -> str:
    return " and ".join(_HTTP_PATHS)


def _parse(signal: Signal, body: bytes, encoding: str | None) -> Message:
    """The Export request in an HTTP body.

    Raises:
        UnsupportedEncoding: see :func:`decode_content`.
        ValueError: the body is not a valid request.
    """
    raw = decode_content(body, encoding)
    try:
        return _REQUESTS[signal].FromString(raw)
    except DecodeError as e:
        raise ValueError(f"unable to decode the {signal} request: {e}") from e


# ---------------------------------------------------------------------------
# The receiver
# ---------------------------------------------------------------------------


class OtlpReceiver:
    """An OTLP receiver on ``127.0.0.1:0``: gRPC at :attr:`grpc_endpoint`, HTTP at :attr:`http_url`.

    Knobs tests may change at any time: :attr:`faults`, :attr:`delay`,
    :meth:`down` / :meth:`up`. Use it as a context manager, or :meth:`start`
    and :meth:`stop`.
    """

    def __init__(self, *, delay: float = 0.0, max_workers: int = 8) -> None:
        self.faults = OtlpFaults()
        self.delay = delay
        """Seconds every call waits before it is answered (going down interrupts the wait)."""
        self._max_workers = max_workers
        self._cond = threading.Condition()
        self._exports: list[ReceivedExport] = []
        self._in_flight = 0
        self._stopping = threading.Event()
        self._grpc: grpc.Server | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._http = HttpListener(_OtlpHttpHandler, self, "fake-otlp-http")
        self.grpc_port = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        self._listen(grpc_port=0, http_port=0)
        logger.info("fake OTLP receiver: gRPC %s, HTTP %s", self.grpc_endpoint, self.http_url)
        return self

    def stop(self) -> None:
        """Stop both listeners, ending calls in progress (their outcome: ``aborted``)."""
        self._stopping.set()
        if self._grpc is not None:
            self._grpc.stop(grace=None).wait(5.0)
            self._grpc = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        self._http.stop()

    def down(self) -> None:
        """Refuse connections (both transports) until :meth:`up`; records are kept."""
        self.stop()
        logger.info("fake OTLP receiver: down")

    def up(self) -> None:
        """Listen again on the same ports as before :meth:`down`."""
        self._listen(grpc_port=self.grpc_port, http_port=self._http.port)
        logger.info("fake OTLP receiver: up again on %s and %s", self.grpc_endpoint, self.http_url)

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _listen(self, *, grpc_port: int, http_port: int) -> None:
        if self._grpc is not None:
            raise RuntimeError("the fake OTLP receiver is already running")
        self._stopping = threading.Event()
        self._executor = ThreadPoolExecutor(self._max_workers, thread_name_prefix="fake-otlp-grpc")
        server = grpc.server(self._executor)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsServicer(self), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(
            _MetricsServicer(self), server
        )
        bound = server.add_insecure_port(f"{LOCALHOST}:{grpc_port}")
        if not bound:
            raise RuntimeError(f"fake OTLP receiver: cannot listen on {LOCALHOST}:{grpc_port}")
        server.start()
        self._grpc, self.grpc_port = server, bound
        self._http.start(http_port)

    # -- where to send ---------------------------------------------------------------

    @property
    def grpc_endpoint(self) -> str:
        """``host:port`` for a gRPC exporter (``insecure=True``)."""
        return f"{LOCALHOST}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        """The OTLP/HTTP base URL (what ``OTEL_EXPORTER_OTLP_ENDPOINT`` would hold)."""
        return f"http://{LOCALHOST}:{self._http.port}"

    def http_endpoint(self, signal: Signal = "logs") -> str:
        """The full URL of one signal, as the HTTP exporters' ``endpoint=`` wants it."""
        return f"{self.http_url}/v1/{signal}"

    # -- the recording core ------------------------------------------------------------

    def _handle(
        self,
        signal: Signal,
        transport: Transport,
        request: Message | None,
        headers: Headers,
        decode_error: str | None = None,
    ) -> _Answer:
        """Wait, decide, record and answer one Export call (both transports come here)."""
        received_at, stopping = time.time(), self._stopping
        with self._cond:
            self._in_flight += 1
            self._cond.notify_all()
        if self.delay:
            stopping.wait(self.delay)
        fault = self._decide(signal, transport, request is None, decode_error)
        if request is None:
            request = _REQUESTS[signal]()
        outcome = fault.outcome if fault is not None else "ok"
        if stopping.is_set():  # going down before the answer: the client sees no success
            fault, outcome = _GOING_DOWN, "aborted"
        self._record(ReceivedExport(signal, transport, request, headers, received_at, outcome))
        return _Answer(fault, self._response(signal, fault))

    def _decide(
        self, signal: Signal, transport: Transport, undecodable: bool, why: str | None
    ) -> OtlpFault | None:
        """The fault that answers this call, if any."""
        if undecodable:  # what a receiver says to a body it cannot read
            return OtlpFault(grpc.StatusCode.INVALID_ARGUMENT, why or "invalid body")
        fault = self.faults.take(lambda f: f.applies_to(signal, transport))
        if fault is not None:
            logger.info("fake OTLP receiver: %s %s answers %s", transport, signal, fault.outcome)
        return fault

    @staticmethod
    def _response(signal: Signal, fault: OtlpFault | None) -> Message:
        response = _RESPONSES[signal]()
        if fault is not None and fault.outcome == "partial":
            setattr(response.partial_success, _REJECTED_FIELD[signal], fault.rejected)
            response.partial_success.error_message = fault.message
        return response

    def _record(self, export: ReceivedExport) -> None:
        with self._cond:
            self._exports.append(export)
            self._in_flight -= 1
            self._cond.notify_all()

    # -- what was received --------------------------------------------------------------

    @property
    def exports(self) -> list[ReceivedExport]:
        """Every Export call so far, in order of answer, whatever its outcome."""
        with self._cond:
            return list(self._exports)

    def outcomes(self, *, transport: Transport | None = None) -> collections.Counter[str]:
        """Calls counted by outcome (``ok``, ``partial``, ``unavailable``, ...)."""
        return collections.Counter(
            e.outcome for e in self.exports if transport in (None, e.transport)
        )

    def calls(
        self,
        outcome: str | None = None,
        *,
        transport: Transport | None = None,
        signal: Signal | None = None,
    ) -> int:
        return sum(
            1
            for e in self.exports
            if outcome in (None, e.outcome)
            and transport in (None, e.transport)
            and signal in (None, e.signal)
        )

    def records(self) -> list[ReceivedLog]:
        """Every log record the receiver accepted, flattened, in order of arrival."""
        return [
            ReceivedLog(*item)
            for export in self.exports
            if export.signal == "logs" and export.accepted
            for item in _flatten(export.request, "resource_logs", "scope_logs", "log_records")
        ]

    def metrics(self) -> list[ReceivedMetric]:
        """Every metric the receiver accepted, flattened, in order of arrival."""
        return [
            ReceivedMetric(*item)
            for export in self.exports
            if export.signal == "metrics" and export.accepted
            for item in _flatten(export.request, "resource_metrics", "scope_metrics", "metrics")
        ]

    def wait_for_records(self, count: int, timeout: float = 5.0) -> list[ReceivedLog]:
        """Wait until at least ``count`` log records were accepted; returns them all.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.records()) >= count, timeout):
                raise TimeoutError(
                    f"{len(self.records())} of {count} log records arrived "
                    f"(calls by outcome: {dict(self.outcomes())})"
                )
        return self.records()

    def wait_for_calls(
        self, count: int, *, outcome: str | None = None, timeout: float = 5.0
    ) -> list[ReceivedExport]:
        """Wait until ``count`` calls (with ``outcome``, if given) were answered.

        Raises:
            TimeoutError: fewer were within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self.calls(outcome) >= count, timeout):
                raise TimeoutError(
                    f"{self.calls(outcome)} of {count} calls ({outcome or 'any outcome'}) "
                    f"were answered (by outcome: {dict(self.outcomes())})"
                )
        return [e for e in self.exports if outcome in (None, e.outcome)]

    @property
    def in_flight(self) -> int:
        """Calls that arrived and are not answered yet (waiting on :attr:`delay`)."""
        with self._cond:
            return self._in_flight

    def wait_for_in_flight(self, count: int = 1, timeout: float = 5.0) -> None:
        """Wait until ``count`` calls are being handled (arrived, not yet answered).

        Raises:
            TimeoutError: not within ``timeout`` seconds.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._in_flight >= count, timeout):
                raise TimeoutError(f"{self._in_flight} of {count} calls in flight")

    def clear(self) -> None:
        """Forget the calls received so far (faults stay scripted)."""
        with self._cond:
            self._exports.clear()
