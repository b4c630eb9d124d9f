"""sinks/grpc_unary.py against real grpcio servers: the other side of the protocol.

Each test drives one part of gRPC over HTTP/2 (grpc/grpc doc/PROTOCOL-HTTP2.md)
through a grpcio server, so that a client that gets the part wrong fails: flow
control and frame sizes, compression, TLS, metadata, status and trailers,
deadlines, reconnects and GOAWAY, and servers that are not gRPC at all.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
import h2.config
import h2.connection
import h2.events
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from kubevents.sinks.grpc_unary import (
    TIMEOUT_SLACK_S,
    GrpcStatusError,
    UnaryChannel,
    _Connection,
)
from kubevents.sinks.otlp_options import OtlpOptions
from kubevents.sinks.otlp_response import retry_info_delay
from tests.fakes.certs import Pki, make_client_pair, make_pki
from tests.integration.servers import free_port

SERVICE = "test.Unary"
ECHO = f"/{SERVICE}/Echo"
FAIL = f"/{SERVICE}/Fail"
HANG = f"/{SERVICE}/Hang"
SLOW = f"/{SERVICE}/Slow"


@dataclass
class Seen:
    """What the server saw of each call: its metadata and its time left."""

    metadata: list[dict[str, str]] = field(default_factory=list)
    time_left: list[float] = field(default_factory=list)
    slow_entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


def retry_status(code: grpc.StatusCode, message: str, delay_s: float) -> status_pb2.Status:
    info = error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(
        seconds=int(delay_s), nanos=int(delay_s % 1 * 1e9)))  # fmt: skip
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=code.value[0], message=message, details=[detail])


class Server:
    """A grpcio server with four methods: Echo, Fail (as the metadata asks), Hang, Slow."""

    def __init__(
        self,
        *,
        port: int = 0,
        credentials: grpc.ServerCredentials | None = None,
        compression: grpc.Compression | None = None,
    ) -> None:
        self.seen = Seen()
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4), compression=compression)
        handlers = {
            "Echo": self._echo,
            "Fail": self._fail,
            "Hang": self._hang,
            "Slow": self._slow,
        }
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            SERVICE, {k: grpc.unary_unary_rpc_method_handler(v) for k, v in handlers.items()}),))  # fmt: skip
        address = f"127.0.0.1:{port}"
        if credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, credentials)
        self.server.start()

    def _record(self, context: grpc.ServicerContext) -> dict[str, str]:
        metadata = {k: str(v) for k, v in context.invocation_metadata()}
        self.seen.metadata.append(metadata)
        self.seen.time_left.append(context.time_remaining() or 0.0)
        return metadata

    def _echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._record(context)
        return request

    def _fail(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        metadata = self._record(context)
        code = grpc.StatusCode[metadata["x-code"]]
        status = retry_status(code, metadata["x-message"], float(metadata["x-delay"]))
        context.set_trailing_metadata(
            (("grpc-status-details-bin", status.SerializeToString()), ("x-seen", "yes"))
        )
        context.abort(code, metadata["x-message"])
        raise AssertionError("abort returned")

    def _hang(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._record(context)
        self.seen.release.wait(10)
        return b""

    def _slow(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self._record(context)
        self.seen.slow_entered.set()
        time.sleep(0.5)
        return request

    def stop(self, grace: float | None = None) -> None:
        self.seen.release.set()
        self.server.stop(grace).wait(10)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.stop()


def options(port: int, **overrides: Any) -> OtlpOptions:
    secure = bool(overrides.get("secure"))
    values: dict[str, Any] = {
        "url": f"{'https' if secure else 'http'}://127.0.0.1:{port}",
        "target": f"127.0.0.1:{port}",
        "secure": False,
        "headers": (),
        "certificate": "",
        "client_certificate": "",
        "client_key": "",
        "compression": "none",
        "timeout_s": 5.0,
    }
    return OtlpOptions(**{**values, **overrides})


def channel(port: int, **overrides: Any) -> UnaryChannel:
    return UnaryChannel(options(port, **overrides), user_agent="kubevents-test/1.0")


def failure(call: Callable[[], object]) -> GrpcStatusError:
    with pytest.raises(GrpcStatusError) as caught:
        call()
    return caught.value


# -- the request and the response ------------------------------------------------


@pytest.mark.parametrize("size", [0, 100, 70_000, 3 * 1024 * 1024])
def test_requests_past_the_window_and_the_frame_size_come_back_whole(
    server: Server, size: int
) -> None:
    # 70 kB and 3 MiB: past the 64 KiB initial flow-control window and the 16 KiB frame
    # size, both ways (the server echoes: the client must open its own window too).
    request = os.urandom(size)
    client = channel(server.port)
    assert client.call(ECHO, request, timeout_s=10) == request
    assert client.call(ECHO, request[::-1], timeout_s=10) == request[::-1]  # same connection
    client.close()


class CountingProxy:
    """A TCP proxy that counts the bytes going each way (to see compression on the wire)."""

    def __init__(self, upstream: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = upstream
        self.sent = {"up": 0, "down": 0}
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        server = socket.create_connection(("127.0.0.1", self.upstream))
        threading.Thread(target=self._pipe, args=(client, server, "up"), daemon=True).start()
        self._pipe(server, client, "down")

    def _pipe(self, source: socket.socket, sink: socket.socket, way: str) -> None:
        try:
            while data := source.recv(65536):
                self.sent[way] += len(data)
                sink.sendall(data)
        except OSError:
            pass  # the other way closed both
        sink.close()


def test_gzip_both_ways_shrinks_the_bytes_on_the_wire() -> None:
    server = Server(compression=grpc.Compression.Gzip)
    proxy = CountingProxy(server.port)
    request = b"kubevents " * 100_000  # 1 MB, very compressible
    client = channel(proxy.port, compression="gzip")
    try:
        assert client.call(ECHO, request, timeout_s=10) == request
    finally:
        client.close()
        server.stop()
    assert 0 < proxy.sent["up"] < 50_000
    assert 0 < proxy.sent["down"] < 50_000


def test_metadata_user_agent_and_deadline_reach_the_server(server: Server) -> None:
    client = channel(server.port)
    client.call(
        ECHO, b"x", timeout_s=3.0, metadata=[("authorization", "Bearer t0ken"), ("X-Team", "a b")]
    )
    client.close()
    seen = server.seen.metadata[0]
    assert seen["authorization"] == "Bearer t0ken" and seen["x-team"] == "a b"
    assert seen["user-agent"].startswith("kubevents-test/1.0")
    assert 2.0 < server.seen.time_left[0] <= 3.0  # grpc-timeout


# -- statuses -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "message", "delay"),
    [
        (grpc.StatusCode.UNAVAILABLE, "busy: 100% full, ünïcode", 2.5),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "too many requests", 0.25),
        (grpc.StatusCode.INVALID_ARGUMENT, "bad record", 0.0),
    ],
)
def test_a_failed_call_has_its_code_message_and_retry_info(
    server: Server, code: grpc.StatusCode, message: str, delay: float
) -> None:
    # grpcio answers an abort before any message as a trailers-only response.
    client = channel(server.port)
    metadata = [("x-code", code.name), ("x-message", message), ("x-delay", str(delay))]
    error = failure(lambda: client.call(FAIL, b"", timeout_s=5, metadata=metadata))
    assert (error.code, error.details) == (code.name, message)
    trailers = dict(error.trailers)
    assert trailers["x-seen"] == "yes"
    details = trailers["grpc-status-details-bin"]
    assert isinstance(details, bytes)
    assert retry_info_delay(details) == pytest.approx(delay)
    assert client.call(ECHO, b"after", timeout_s=5) == b"after"  # the channel goes on
    client.close()


def test_a_request_over_the_servers_limit_is_resource_exhausted_and_the_channel_goes_on(
    server: Server,
) -> None:
    # grpcio's (and the Collector's) default limit is 4 MiB: it answers before reading it all.
    client = channel(server.port)
    error = failure(lambda: client.call(ECHO, os.urandom(5 * 1024 * 1024), timeout_s=10))
    assert error.code == "RESOURCE_EXHAUSTED"
    assert client.call(ECHO, b"small", timeout_s=5) == b"small"
    client.close()


def test_an_unknown_method_is_unimplemented(server: Server) -> None:
    client = channel(server.port)
    assert failure(lambda: client.call(f"/{SERVICE}/Nope", b"", timeout_s=5)).code == (
        "UNIMPLEMENTED"
    )
    client.close()


# -- deadlines and failures ------------------------------------------------------------


def test_a_server_that_never_answers_ends_at_the_deadline(server: Server) -> None:
    client = channel(server.port)
    started = time.monotonic()
    assert failure(lambda: client.call(HANG, b"", timeout_s=0.5)).code == "DEADLINE_EXCEEDED"
    assert time.monotonic() - started < 2.0
    assert client.call(ECHO, b"next", timeout_s=5) == b"next"
    client.close()


def test_a_listener_that_never_speaks_ends_at_the_deadline() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepted by the kernel, silent
        client = channel(listener.getsockname()[1])
        started = time.monotonic()
        assert failure(lambda: client.call(ECHO, b"", timeout_s=0.5)).code == "DEADLINE_EXCEEDED"
        assert time.monotonic() - started < 2.0
        client.close()


def test_the_socket_timeout_is_set_again_only_for_a_new_or_an_older_deadline() -> None:
    a, b = socket.socketpair()
    with a, b:
        connection = _Connection(a, "pair")  # its preface waits unread in b
        # The same deadline again within TIMEOUT_SLACK_S: the same timeout. On a busy
        # machine the second call can come later than that, so try until one pair lands
        # within it (each try a new deadline, which is always set).
        for _ in range(50):
            t0 = time.monotonic()
            deadline = t0 + 5.0
            connection.set_deadline(deadline)
            first = a.gettimeout()
            connection.set_deadline(deadline)
            if time.monotonic() - t0 < TIMEOUT_SLACK_S:
                break
        else:
            pytest.fail(f"no two calls within {TIMEOUT_SLACK_S} s of each other in 50 tries")
        assert first is not None and 4.9 < first <= 5.0
        assert a.gettimeout() == first
        connection.set_deadline(deadline + 10.0)  # another call's deadline
        assert 14.9 < (a.gettimeout() or 0.0) <= 15.0
        time.sleep(TIMEOUT_SLACK_S * 2)
        connection.set_deadline(deadline + 10.0)  # set too long ago: what is left now
        assert (a.gettimeout() or 0.0) < 15.0 - TIMEOUT_SLACK_S
        with pytest.raises(TimeoutError):
            connection.set_deadline(time.monotonic() - 1.0)


def test_close_ends_the_call_in_flight_at_once_and_refuses_later_calls(server: Server) -> None:
    # As grpcio's Channel.close: a sink's shutdown must not wait out a hung call's deadline.
    client = channel(server.port)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        hung = pool.submit(lambda: failure(lambda: client.call(HANG, b"", timeout_s=30)))
        time.sleep(0.3)  # the call is on the wire, waiting for an answer
        assert not hung.done()
        client.close()
        closed_after = time.monotonic() - started
        assert hung.result(timeout=5).code == "CANCELLED"
    assert closed_after < 2.0 and time.monotonic() - started < 2.0
    assert failure(lambda: client.call(ECHO, b"", timeout_s=5)).code == "CANCELLED"


def test_close_never_waits_for_a_call_whatever_its_stage() -> None:
    # Closed at once after the call starts: connecting, sending its preface or waiting for
    # the answer of a listener that never speaks. Neither close() nor the call may wait for
    # the call's deadline.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        for _ in range(20):
            client = channel(listener.getsockname()[1])
            with ThreadPoolExecutor(1) as pool:
                started = time.monotonic()
                call = pool.submit(failure, partial(client.call, ECHO, b"", timeout_s=30))
                client.close()
                assert time.monotonic() - started < 1.0
                assert call.result(timeout=5).code == "CANCELLED"
            assert time.monotonic() - started < 2.0


def test_connection_refused_is_unavailable_then_backs_off_then_connects() -> None:
    port = free_port()
    client = channel(port)
    started = time.monotonic()
    error = failure(lambda: client.call(ECHO, b"", timeout_s=5))
    assert error.code == "UNAVAILABLE" and "Connection refused" in error.details
    assert time.monotonic() - started < 1.0
    server = Server(port=port)
    try:
        # Within the 250 ms backoff a call fails at once, as grpcio's do.
        backoff = failure(lambda: client.call(ECHO, b"", timeout_s=5))
        assert backoff.code == "UNAVAILABLE" and "next attempt" in backoff.details
        time.sleep(0.3)
        assert client.call(ECHO, b"up", timeout_s=5) == b"up"
    finally:
        client.close()
        server.stop()


def assert_answered_by_a_new_server(client: UnaryChannel, port: int, message: bytes) -> None:
    """A server started again on ``port`` answers ``client``'s next call (a new connection)."""
    again = Server(port=port)
    try:
        assert client.call(ECHO, message, timeout_s=5) == message
    finally:
        client.close()
        again.stop()


def test_a_server_restarted_between_calls_is_reconnected(server: Server) -> None:
    client = channel(server.port)
    assert client.call(ECHO, b"one", timeout_s=5) == b"one"
    server.stop()
    assert_answered_by_a_new_server(client, server.port, b"two")


def test_goaway_lets_the_call_in_flight_finish_and_the_next_one_reconnects(server: Server) -> None:
    client = channel(server.port)
    result: list[bytes | GrpcStatusError] = []

    def slow_call() -> None:
        try:
            result.append(client.call(SLOW, b"in flight", timeout_s=5))
        except GrpcStatusError as e:
            result.append(e)

    caller = threading.Thread(target=slow_call)
    caller.start()
    assert server.seen.slow_entered.wait(5)
    server.stop(grace=5)  # GOAWAY, then the in-flight call is answered
    caller.join(5)
    assert result == [b"in flight"]
    assert_answered_by_a_new_server(client, server.port, b"new connection")


def test_goaway_while_idle_reconnects(server: Server) -> None:
    client = channel(server.port)
    assert client.call(ECHO, b"one", timeout_s=5) == b"one"
    server.stop(grace=1)
    assert_answered_by_a_new_server(client, server.port, b"two")


# -- TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_server(pki: Pki, *, client_ca: Path | None = None) -> Server:
    credentials = grpc.ssl_server_credentials(
        [(pki.key_file.read_bytes(), pki.cert_file.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )
    return Server(credentials=credentials)


def test_tls_with_the_ca_bundle(pki: Pki, tmp_path: Path) -> None:
    server = tls_server(pki)
    other = make_pki(tmp_path / "other")
    trusted = channel(server.port, secure=True, certificate=str(pki.ca_file))
    untrusted = channel(server.port, secure=True, certificate=str(other.ca_file))
    try:
        assert trusted.call(ECHO, b"secret", timeout_s=5) == b"secret"
        error = failure(lambda: untrusted.call(ECHO, b"", timeout_s=5))
        assert error.code == "UNAVAILABLE" and "certificate" in error.details
        plain = failure(lambda: channel(server.port).call(ECHO, b"", timeout_s=2))
        assert plain.code in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    finally:
        trusted.close()
        untrusted.close()
        server.stop()


def test_tls_with_a_client_certificate(pki: Pki) -> None:
    cert, key = make_client_pair(pki)
    server = tls_server(pki, client_ca=pki.ca_file)
    with_pair = channel(
        server.port,
        secure=True,
        certificate=str(pki.ca_file),
        client_certificate=str(cert),
        client_key=str(key),
    )
    without = channel(server.port, secure=True, certificate=str(pki.ca_file))
    try:
        assert with_pair.call(ECHO, b"mtls", timeout_s=5) == b"mtls"
        assert failure(lambda: without.call(ECHO, b"", timeout_s=5)).code == "UNAVAILABLE"
    finally:
        with_pair.close()
        without.close()
        server.stop()


# -- not a gRPC server ------------------------------------------------------------------


def test_an_http1_server_is_a_one_line_unavailable() -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    client = channel(http.server_address[1])
    try:
        error = failure(lambda: client.call(ECHO, b"", timeout_s=5))
    finally:
        client.close()
        http.shutdown()
        http.server_close()
    assert error.code == "UNAVAILABLE"
    assert "not HTTP/2: not a gRPC endpoint" in error.details and "\n" not in error.details


def serve_plain_http2(listener: socket.socket, status: bytes, content_type: bytes) -> None:
    """One connection of an HTTP/2 server that is not gRPC: every request gets ``status``."""
    sock, _ = listener.accept()
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    with sock:
        while data := sock.recv(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if isinstance(event, h2.events.StreamEnded):
                    headers = [(b":status", status), (b"content-type", content_type)]
                    conn.send_headers(event.stream_id, headers)
                    conn.send_data(event.stream_id, b"<html>not here</html>", end_stream=True)
            sock.sendall(conn.data_to_send())


@pytest.mark.parametrize(
    ("status", "content_type", "code"),
    [
        (b"404", b"text/html", "UNIMPLEMENTED"),
        (b"503", b"text/plain", "UNAVAILABLE"),
        (b"401", b"text/plain", "UNAUTHENTICATED"),
        (b"200", b"text/html", "UNKNOWN"),
    ],
)
def test_a_plain_http2_server_maps_its_status_as_grpc_says(
    status: bytes, content_type: bytes, code: str
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(
            target=serve_plain_http2, args=(listener, status, content_type), daemon=True
        )
        thread.start()
        client = channel(listener.getsockname()[1])
        error = failure(lambda: client.call(ECHO, b"x", timeout_s=5))
        client.close()
    assert error.code == code
    assert content_type.decode() in error.details and "\n" not in error.details
