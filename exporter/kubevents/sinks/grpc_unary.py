"""A small blocking unary gRPC client: one HTTP/2 connection, on the ``h2`` library.

Why not grpcio: importing grpc (its C core, ``cygrpc``, ``grpc.aio`` and
asyncio) costs about 14 MiB of resident memory, a third of kubevents' budget
at rest (docs/dependencies.md). kubevents makes one kind of call, unary, one
at a time from one sink worker, so the part of gRPC it needs is small: the
gRPC over HTTP/2 protocol (grpc/grpc ``doc/PROTOCOL-HTTP2.md``) on top of
``h2``'s HTTP/2 state machine (pure Python, about 4 MiB).

One call, as the protocol says::

    HEADERS   :method POST, :scheme, :path /pkg.Service/Method, :authority,
              content-type application/grpc, te trailers, user-agent,
              grpc-timeout, [grpc-encoding gzip], metadata
    DATA      1 byte "compressed" flag + 4 bytes length + the message,
              in frames no larger than the server allows, as its flow
              control windows open (WINDOW_UPDATE)
    <-        HEADERS (:status 200), DATA (the response message),
              HEADERS (trailers: grpc-status, grpc-message, details)
    <-        or only HEADERS carrying grpc-status ("trailers-only")

Failures, as grpcio reports them: every non-OK status and every transport
failure (refused, reset, TLS, GOAWAY, not HTTP/2) raises
:class:`GrpcStatusError` with the status code's name, UNAVAILABLE for the
transport; a call past its deadline is DEADLINE_EXCEEDED. After a failure
the connection is dropped and the next call opens a new one; consecutive
connection failures wait a backoff (250 ms doubling to 5 s, grpcio's settings
in kubevents before) during which calls fail at once, as grpcio's do.

Limits: one call at a time per channel (a lock); no keepalive pings; no
transparent retry of a request that never reached the server.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.stream
import hyperframe.frame

from kubevents.errors import ConfigError
from kubevents.sinks.otlp_options import OtlpOptions

STATUS_NAMES = (
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
)
"""gRPC status codes by number (``grpc-status``), named as gRPC names them."""

HTTP_TO_GRPC = {400: "INTERNAL", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "UNIMPLEMENTED", 429: "UNAVAILABLE", 502: "UNAVAILABLE",
                503: "UNAVAILABLE", 504: "UNAVAILABLE"}  # fmt: skip
"""A response without ``grpc-status`` and with an HTTP status other than 200
(grpc/grpc ``doc/http-grpc-status-mapping.md``); any other status is UNKNOWN."""

RST_TO_GRPC: dict[int, str] = {h2.errors.ErrorCodes.REFUSED_STREAM: "UNAVAILABLE",
               h2.errors.ErrorCodes.CANCEL: "CANCELLED",
               h2.errors.ErrorCodes.ENHANCE_YOUR_CALM: "RESOURCE_EXHAUSTED",
               h2.errors.ErrorCodes.INADEQUATE_SECURITY: "PERMISSION_DENIED"}  # fmt: skip
"""A stream reset by the server (PROTOCOL-HTTP2.md, "Errors"); any other code is INTERNAL."""

INITIAL_BACKOFF_S = 0.25
MAX_BACKOFF_S = 5.0
READ_SIZE = 65_536
TIMEOUT_SLACK_S = 0.01
"""A socket timeout set for the same deadline less than this long ago is not set again
(see :meth:`_Connection.set_deadline`): an operation then ends at most this much past it."""
GZIP_LEVEL = 6
"""zlib's default level, as gRPC core compresses."""


class GrpcStatusError(Exception):
    """A call that did not end with status OK, or a transport failure (UNAVAILABLE)."""

    def __init__(
        self,
        code: str,
        details: str,
        trailers: tuple[tuple[str, str | bytes], ...] = (),
    ) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details
        self.trailers = trailers


def grpc_timeout(seconds: float) -> str:
    """The ``grpc-timeout`` header: at most 8 digits and a unit (``m`` ms, ``S`` s)."""
    millis = max(1, int(seconds * 1000 + 0.999))
    return f"{millis}m" if millis < 100_000_000 else f"{min(int(seconds) + 1, 99_999_999)}S"


def frame_message(message: bytes, *, gzip_it: bool) -> bytes:
    """The length-prefixed message: flag (1 = compressed), big-endian length, bytes."""
    prefix, message = message_parts(message, gzip_it=gzip_it)
    return prefix + message


def message_parts(message: bytes, *, gzip_it: bool) -> tuple[bytes, bytes]:
    """:func:`frame_message` as its two parts: the 5-byte prefix, the (compressed) message."""
    if gzip_it:
        message = gzip.compress(message, compresslevel=GZIP_LEVEL, mtime=0)
    return struct.pack(">BI", 1 if gzip_it else 0, len(message)), message


def unframe_message(body: bytes, encoding: str) -> bytes:
    """The one message of a unary response body (``grpc-encoding`` decides the codec).

    Raises:
        GrpcStatusError: INTERNAL, a body that is not one length-prefixed message.
    """
    if len(body) < 5:
        raise GrpcStatusError("INTERNAL", f"response body of {len(body)} bytes: no message")
    flag, length = struct.unpack_from(">BI", body)
    message = body[5:]
    if len(message) != length:
        raise GrpcStatusError(
            "INTERNAL", f"response message announced {length} bytes, got {len(message)}"
        )
    if flag == 0:
        return message
    if encoding != "gzip":
        raise GrpcStatusError("INTERNAL", f"compressed response in unsupported {encoding!r}")
    try:
        return gzip.decompress(message)
    except (OSError, EOFError) as e:
        raise GrpcStatusError("INTERNAL", f"bad gzip response message: {e}") from None


_NOT_METADATA = frozenset({"content-type", "grpc-status", "grpc-message", "grpc-encoding"})
"""Headers of the protocol itself, which grpcio leaves out of the metadata too."""


def decode_trailers(
    headers: Sequence[tuple[bytes, bytes]],
) -> tuple[tuple[str, str | bytes], ...]:
    """Trailers as metadata: ``-bin`` values base64-decoded (padding may be left out)."""
    out: list[tuple[str, str | bytes]] = []
    for raw_key, raw_value in headers:
        key = raw_key.decode("ascii", "replace")
        if key.startswith(":") or key in _NOT_METADATA:
            continue
        if key.endswith("-bin"):
            try:
                out.append((key, base64.b64decode(raw_value + b"=" * (-len(raw_value) % 4))))
            except ValueError:
                out.append((key, raw_value))
        else:
            out.append((key, raw_value.decode("utf-8", "replace")))
    return tuple(out)


def tls_context(options: OtlpOptions) -> ssl.SSLContext:
    """TLS for the channel: the CA bundle (else the system's roots), the client pair, ALPN h2.

    Raises:
        ConfigError: a file cannot be read, or is not a certificate or key.
    """
    context = ssl.create_default_context()
    if options.certificate:
        pem = options.read_file(options.certificate, "CA bundle").decode("ascii", "replace")
        context = ssl.create_default_context(cadata=_checked(pem, options.certificate))
    if options.client_certificate or options.client_key:
        try:
            context.load_cert_chain(options.client_certificate, options.client_key or None)
        except (OSError, ssl.SSLError) as e:
            raise ConfigError(
                f"otlp: cannot load the client certificate {options.client_certificate} "
                f"and key {options.client_key}: {e}"
            ) from None
    context.set_alpn_protocols(["h2"])
    return context


def _checked(pem: str, path: str) -> str:
    if "-----BEGIN CERTIFICATE-----" not in pem:
        raise ConfigError(f"otlp: the CA bundle {path} has no PEM certificate")
    return pem


@dataclass
class _Response:
    """What one stream received so far."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    ended: bool = False
    """The server's END_STREAM: the response is complete."""
    reset: h2.errors.ErrorCodes | int | None = None
    """The server's RST_STREAM code; NO_ERROR after a complete response only says
    "stop sending" (RFC 9113 section 8.1)."""

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


_FRAME_HEADER = struct.Struct(">HBBBL")
"""An HTTP/2 frame header (RFC 9113 section 4.1): 24-bit length, type, flags, stream."""


class _Http2(h2.connection.H2Connection):
    """h2's client connection, except that a GOAWAY does not end the streams in flight.

    h2 closes its whole state machine on any GOAWAY (python-hyper/h2 issue #1181),
    and then fails on the frames that follow: the server's answers to the streams
    up to ``last_stream_id``, which RFC 9113 section 6.8 says may still complete,
    and grpc-core's PING of its graceful shutdown. Staying open here lets those
    be read; :class:`_Connection` opens no new stream after a GOAWAY.
    """

    def _receive_goaway_frame(
        self, frame: hyperframe.frame.GoAwayFrame
    ) -> tuple[list[hyperframe.frame.Frame], list[h2.events.Event]]:
        frames, events = super()._receive_goaway_frame(frame)
        self.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN
        return frames, events

    def __init__(self, config: h2.config.H2Configuration) -> None:
        super().__init__(config)
        self._parts: list[bytes | memoryview] = []
        """What goes out before h2's own buffer: frames, and DATA payloads by reference."""

    def _prepare_for_sending(self, frames: list[hyperframe.frame.Frame]) -> None:
        """As h2's, except that a DATA frame's payload is not copied into the buffer.

        h2 joins each frame's header and payload, then the frames, then the buffer, and
        ``data_to_send`` copies the buffer once more: four copies of a request of
        hundreds of KiB. Here only the 9-byte header is built, and :meth:`outbound` hands
        the payload to the socket as it came."""
        for frame in frames:
            if not isinstance(frame, hyperframe.frame.DataFrame) or "PADDED" in frame.flags:
                super()._prepare_for_sending([frame])
                continue
            data = frame.data
            size = frame.body_len = len(data)
            assert size <= self.max_outbound_frame_size
            flags = 0x1 if "END_STREAM" in frame.flags else 0x0
            self._data_to_send += _FRAME_HEADER.pack(
                size >> 8, size & 0xFF, 0x0, flags, frame.stream_id & 0x7FFFFFFF
            )
            if size:
                self._parts += (bytes(self._data_to_send), data)
                self._data_to_send = bytearray()

    def send_data_run(
        self, stream_id: int, piece: memoryview, start: int, *, end_stream: bool
    ) -> int:
        """Queue the bytes of ``piece`` from ``start`` on that the flow-control windows allow, in
        DATA frames of the peer's maximum frame size (the last one shorter), as that many
        calls of h2's ``send_data`` would; END_STREAM on the last frame when the whole
        rest fits and ``end_stream``. Returns the bytes queued (0: no window left).

        h2's ``send_data`` costs about 30 µs of Python a frame (state machines, a frame
        object, its flags, two log calls), and a request of 600 kB is 40 frames of the
        16 KiB grpc-go allows. Here the frames before the run's last are written after
        one check of both state machines (what h2 checks for each of them: nothing else
        happens on the connection between them) and their windows counted down at once;
        the last frame, which may end the stream, goes through h2's own ``send_data``."""
        end = len(piece)
        size = min(end - start, self.local_flow_control_window(stream_id))
        if size <= 0 and start < end:
            return 0
        limit = self.max_outbound_frame_size
        offset = start
        stop = start + size
        if size > limit:
            self.state_machine.process_input(h2.connection.ConnectionInputs.SEND_DATA)
            stream = self.streams[stream_id]
            stream.state_machine.process_input(h2.stream.StreamInputs.SEND_DATA)
            header = _FRAME_HEADER.pack(limit >> 8, limit & 0xFF, 0x0, 0x0, stream_id & 0x7FFFFFFF)
            parts = self._parts
            while stop - offset > limit:
                self._data_to_send += header
                parts += (bytes(self._data_to_send), piece[offset : offset + limit])
                self._data_to_send = bytearray()
                offset += limit
            stream.outbound_flow_control_window -= offset - start
            self.outbound_flow_control_window -= offset - start
        # A piece that is one frame goes as it came (h2 would copy a memoryview).
        last = piece.obj if offset == 0 and stop == end else piece[offset:stop].tobytes()
        self.send_data(stream_id, last, end_stream=end_stream and stop == end)  # type: ignore[arg-type]
        return size

    def outbound(self) -> list[bytes | memoryview]:
        """Everything to send, in order (``data_to_send`` without joining the payloads)."""
        parts, self._parts = self._parts, []
        rest = self.data_to_send()
        if rest:
            parts.append(rest)
        return parts


class _Connection:
    """One HTTP/2 connection: a socket (TLS or not) and h2's state machine for it."""

    def __init__(self, sock: socket.socket, target: str) -> None:
        self.sock = sock
        self.target = target
        self.h2 = _Http2(h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.going_away = False
        self._deadline: tuple[float, float] | None = None
        """The deadline the socket's timeout was last set for, and when (monotonic)."""
        self._first = b""
        """The server's first bytes, until they show an HTTP/2 SETTINGS frame."""
        self.h2.initiate_connection()
        self.flush()

    def flush(self) -> None:
        parts = self.h2.outbound()
        if isinstance(self.sock, ssl.SSLSocket):  # no sendmsg: each part is one write
            for data in parts:
                self.sock.sendall(data)
            return
        # One system call for the frames and the payloads between them: each call lets go
        # of the interpreter lock, and the pipeline thread may keep it a switch interval.
        views = [memoryview(data) for data in parts]
        while views:
            sent = self.sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views.pop(0))
            if sent:
                views[0] = views[0][sent:]

    def set_deadline(self, deadline: float) -> None:
        """Make the socket's timeout what is left to ``deadline`` (past it: TimeoutError).

        ``settimeout`` is a system call that lets go of the interpreter lock, which the
        pipeline thread may then keep a whole switch interval: a call sets it once before
        sending and again before a read only when the last set is TIMEOUT_SLACK_S old."""
        now = time.monotonic()
        last = self._deadline
        if last is not None and last[0] == deadline and now - last[1] < TIMEOUT_SLACK_S:
            return
        self.sock.settimeout(_left(deadline))
        self._deadline = (deadline, now)

    def usable(self) -> bool:
        """False once the server said GOAWAY or closed the socket while we were idle."""
        if self.going_away:
            return False
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0
        if not pending and not select.select([self.sock], [], [], 0)[0]:
            return True
        try:
            self.sock.settimeout(1.0)
            self._deadline = None
            self.receive(None)  # SETTINGS, PING, WINDOW_UPDATE or GOAWAY while idle
        except (OSError, GrpcStatusError):
            return False
        return not self.going_away

    def receive(self, streams: dict[int, _Response] | None) -> None:
        """Read once from the socket and hand the frames to h2 (blocking, socket timeout)."""
        data = self.sock.recv(READ_SIZE)
        if not data:
            raise GrpcStatusError("UNAVAILABLE", f"{self.target} closed the connection")
        if len(self._first) < 9:
            self._check_preface(data)
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            raise GrpcStatusError(
                "UNAVAILABLE", f"HTTP/2 protocol error from {self.target}: {e}"
            ) from None
        for event in events:
            self._handle(event, streams or {})
        self.flush()

    def _check_preface(self, data: bytes) -> None:
        """A server's first frame is SETTINGS (type 4, stream 0): else it is not HTTP/2."""
        self._first += data[:9]
        if len(self._first) < 9:
            return
        if self._first[3] != 4 or self._first[5:9] != bytes(4):
            what = "HTTP/1.x" if self._first.startswith(b"HTTP/1.") else repr(self._first)
            raise GrpcStatusError(
                "UNAVAILABLE",
                f"{self.target} answered {what}, not HTTP/2: not a gRPC endpoint",
            )

    def _handle(self, event: h2.events.Event, streams: dict[int, _Response]) -> None:
        if isinstance(event, h2.events.ConnectionTerminated):
            self.going_away = True
            last = event.last_stream_id or 0
            if any(stream_id > last for stream_id in streams):
                code = event.error_code
                name = code.name if isinstance(code, h2.errors.ErrorCodes) else str(code)
                raise GrpcStatusError("UNAVAILABLE", f"{self.target} sent GOAWAY ({name})")
            return  # the server still answers the streams up to last_stream_id (_Http2)
        stream_id = getattr(event, "stream_id", None)
        if not isinstance(stream_id, int) or stream_id not in streams:
            return  # a connection-level event (SETTINGS, PING, WINDOW_UPDATE): h2 handles it
        response = streams[stream_id]
        if isinstance(event, h2.events.ResponseReceived):
            response.headers = list(event.headers or ())
        elif isinstance(event, h2.events.TrailersReceived):
            response.trailers = list(event.headers or ())
        elif isinstance(event, h2.events.DataReceived):
            response.body += event.data or b""
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            response.ended = True
        elif isinstance(event, h2.events.StreamReset):
            response.reset = event.error_code

    def interrupt(self) -> None:
        """Wake a read blocked on the socket (it sees the end of the stream), from any thread."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        try:
            self.h2.close_connection()
            self.sock.settimeout(0.2)
            self.flush()
        except (OSError, h2.exceptions.ProtocolError):
            pass
        finally:
            self.sock.close()


class UnaryChannel:
    """Unary gRPC calls to one endpoint over one long-lived HTTP/2 connection."""

    def __init__(self, options: OtlpOptions, *, user_agent: str) -> None:
        host, _, port = options.target.rpartition(":")
        self._host = host.strip("[]")
        self._port = int(port)
        self._target = options.target
        self._tls = tls_context(options) if options.secure else None
        self._gzip = options.compression == "gzip"
        self._static_headers = [
            (b":scheme", b"https" if options.secure else b"http"),
            (b":authority", options.target.encode("ascii")),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
            (b"user-agent", user_agent.encode("ascii")),
            (b"grpc-accept-encoding", b"identity,gzip"),
        ]
        if self._gzip:
            self._static_headers.append((b"grpc-encoding", b"gzip"))
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._closed = False
        self._backoff_s = INITIAL_BACKOFF_S
        self._next_connect = 0.0
        self._last_connect_error = ""

    def call(
        self,
        method: str,
        request: bytes,
        *,
        timeout_s: float,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> bytes:
        """Send one request message and return the response message (both serialized).

        Raises:
            GrpcStatusError: the call ended with a status other than OK, failed in
                transport (UNAVAILABLE), or ran past ``timeout_s`` (DEADLINE_EXCEEDED).
        """
        deadline = time.monotonic() + timeout_s
        with self._lock:
            if self._closed:
                raise GrpcStatusError("CANCELLED", f"the channel to {self._target} is closed")
            connection = self._connect(deadline)
            try:
                if self._closed:  # closed while connecting: close() found no connection
                    raise GrpcStatusError("CANCELLED", "closed")
                response = self._exchange(connection, method, request, deadline, metadata)
            except (GrpcStatusError, OSError, h2.exceptions.H2Error) as e:
                self._drop()
                if self._closed:
                    raise GrpcStatusError(
                        "CANCELLED", f"the channel to {self._target} was closed during the call"
                    ) from None
                if isinstance(e, GrpcStatusError):
                    raise
                raise self._transport_error(e) from None
            if connection.going_away:
                self._drop()
        return self._result(response)

    def close(self) -> None:
        """Close the channel, as grpcio's ``Channel.close``: a call in flight ends at once
        (CANCELLED) instead of at its deadline, and later calls fail the same way."""
        self._closed = True
        connection = self._connection  # read without the lock: a call may hold it
        if connection is not None:
            connection.interrupt()
        # A call in flight drops the connection itself as it fails (or, still connecting,
        # as soon as it has connected); close() never waits for it.
        if self._lock.acquire(blocking=False):
            try:
                self._drop()
            finally:
                self._lock.release()

    # -- the connection ---------------------------------------------------------

    def _connect(self, deadline: float) -> _Connection:
        if self._connection is not None and self._connection.usable():
            return self._connection
        self._drop()
        now = time.monotonic()
        if now < self._next_connect:
            raise GrpcStatusError(
                "UNAVAILABLE",
                f"{self._last_connect_error} (next attempt in {self._next_connect - now:.2f} s)",
            )
        try:
            sock = socket.create_connection((self._host, self._port), timeout=_left(deadline))
            # No Nagle: a call's last small frame must not wait for the previous one's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_hostname=self._host)
                    if sock.selected_alpn_protocol() != "h2":
                        raise GrpcStatusError(
                            "UNAVAILABLE",
                            f"{self._target} did not agree to HTTP/2 in the TLS handshake (ALPN)",
                        )
                connection = _Connection(sock, self._target)
            except BaseException:
                sock.close()
                raise
        except (OSError, GrpcStatusError) as e:
            error = e if isinstance(e, GrpcStatusError) else self._transport_error(e, connect=True)
            self._last_connect_error = error.details
            self._next_connect = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, MAX_BACKOFF_S)
            raise error from None
        self._backoff_s = INITIAL_BACKOFF_S
        self._next_connect = 0.0
        self._connection = connection
        return connection

    def _drop(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _transport_error(self, error: BaseException, *, connect: bool = False) -> GrpcStatusError:
        if isinstance(error, TimeoutError):
            return GrpcStatusError("DEADLINE_EXCEEDED", "Deadline Exceeded")
        what = "failed to connect to" if connect else "connection to"
        if isinstance(error, ssl.SSLError):
            reason = getattr(error, "verify_message", None) or error.reason or str(error)
            return GrpcStatusError("UNAVAILABLE", f"TLS with {self._target} failed: {reason}")
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        return GrpcStatusError(
            "UNAVAILABLE", f"{what} {self._target}: {reason or type(error).__name__}"
        )

    # -- one call ---------------------------------------------------------------

    def _exchange(
        self,
        connection: _Connection,
        method: str,
        request: bytes,
        deadline: float,
        metadata: Sequence[tuple[str, str]],
    ) -> _Response:
        conn = connection.h2
        stream_id = conn.get_next_available_stream_id()
        streams = {stream_id: _Response()}
        headers = [
            (b":method", b"POST"),
            (b":path", method.encode("ascii")),
            *self._static_headers,
            (b"grpc-timeout", grpc_timeout(_left(deadline)).encode("ascii")),
            *((k.lower().encode("ascii"), v.encode("utf-8")) for k, v in metadata),
        ]
        conn.send_headers(stream_id, headers)
        # The 5-byte prefix and the message go as two pieces (DATA frames may split a
        # message anywhere): the message, hundreds of KiB, is not copied behind the prefix,
        # and a piece that fits in one frame is handed to h2 as it is.
        prefix, message = message_parts(request, gzip_it=self._gzip)
        pieces = [memoryview(prefix), memoryview(message)] if message else [memoryview(prefix)]
        offset = 0  # bytes of pieces[0] already sent
        while pieces and not streams[stream_id].done:
            # As much as the stream's and the connection's windows allow, in frames of the
            # server's maximum size; written out once the window is used up (one write, not
            # one per frame).
            piece = pieces[0]
            sent = conn.send_data_run(stream_id, piece, offset, end_stream=len(pieces) == 1)
            if not sent:
                connection.set_deadline(deadline)
                connection.flush()
                connection.receive(streams)  # until a WINDOW_UPDATE (or an early answer)
                continue
            offset += sent
            if offset == len(piece):
                pieces.pop(0)
                offset = 0
        if pieces and streams[stream_id].reset is None:
            # Answered before the whole request was sent (a message over the server's
            # limit, say): our half of the stream is closed too.
            with contextlib.suppress(h2.exceptions.StreamClosedError):
                conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        connection.set_deadline(deadline)
        connection.flush()
        while not streams[stream_id].done:
            connection.set_deadline(deadline)
            connection.receive(streams)
        return streams[stream_id]

    def _result(self, response: _Response) -> bytes:
        if not response.ended and response.reset is not None:  # reset before the end
            code = RST_TO_GRPC.get(response.reset, "INTERNAL")
            name = getattr(response.reset, "name", str(response.reset))
            raise GrpcStatusError(code, f"stream reset by {self._target} ({name})")
        headers = dict(response.headers)
        # Trailers-only: the status is in the headers, there is no body.
        trailers = response.trailers or response.headers
        fields = dict(trailers)
        status = fields.get(b"grpc-status")
        http_status = headers.get(b":status", b"")
        if status is None:
            content_type = headers.get(b"content-type", b"").decode("ascii", "replace")
            if http_status != b"200":
                http = int(http_status) if http_status.isdigit() else 0
                raise GrpcStatusError(
                    HTTP_TO_GRPC.get(http, "UNKNOWN"),
                    f"{self._target} answered HTTP {http} ({content_type or 'no content-type'}),"
                    " not gRPC",
                    decode_trailers(trailers),
                )
            raise GrpcStatusError(
                "UNKNOWN",
                f"{self._target} answered without a grpc-status ({content_type or 'no content-type'})",
                decode_trailers(trailers),
            )
        code_number = int(status) if status.isdigit() else 2
        code = STATUS_NAMES[code_number] if code_number < len(STATUS_NAMES) else "UNKNOWN"
        if code != "OK":
            details = unquote_to_bytes(fields.get(b"grpc-message", b"")).decode("utf-8", "replace")
            raise GrpcStatusError(code, details, decode_trailers(trailers))
        encoding = headers.get(b"grpc-encoding", b"identity").decode("ascii", "replace")
        return unframe_message(bytes(response.body), encoding)


def _left(deadline: float) -> float:
    """Seconds to the deadline; a deadline already past raises DEADLINE_EXCEEDED."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    return left
