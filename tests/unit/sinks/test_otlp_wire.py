"""The OTLP transports send the encoder's bytes as they are, not parsed and serialized again.

The fake receiver decodes what it gets, so these tests use servers that keep the raw
request: a gRPC server with a generic handler (no deserializer) and a plain HTTP server.
The encoder writes the bytes protobuf would write, so equal bytes alone cannot show that
nothing was re-serialized; a request in a valid but non-canonical field order can:
protobuf writes it back in field-number order.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import grpc
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from kubevents.settings import OtlpSettings
from kubevents.sinks import otlp_grpc, otlp_http
from kubevents.sinks.otlp_encode import encode_logs_bytes
from kubevents.sinks.otlp_grpc import OtlpGrpcTransport
from kubevents.sinks.otlp_http import OtlpHttpTransport
from kubevents.sinks.otlp_options import resolve_otlp
from tests.unit.sinks.test_otlp_transports import RECORDS, RESOURCE

PARTIAL = ExportLogsServiceResponse()
PARTIAL.partial_success.rejected_log_records = 1
PARTIAL.partial_success.error_message = "one too old"


def _length_delimited(tag: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([tag, len(payload)]) + payload


def non_canonical_request() -> bytes:
    """A valid request whose ResourceLogs holds ``scope_logs`` (field 2) before ``resource``
    (field 1): protobuf's serializer would swap them."""
    scope_logs = ScopeLogs()
    scope_logs.scope.name = "kubevents"
    scope_logs.log_records.add().body.string_value = "as written"
    resource = Resource()
    resource.attributes.add(key="k8s.cluster.name").value.string_value = "c1"
    resource_logs = _length_delimited(0x12, scope_logs.SerializeToString()) + _length_delimited(
        0x0A, resource.SerializeToString()
    )
    return _length_delimited(0x0A, resource_logs)


@dataclass
class Received:
    """What a raw server got: request bodies and, per request, its headers or metadata."""

    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
def grpc_server() -> Iterator[tuple[str, Received]]:
    """A LogsService/Export server that keeps each request's bytes, answering PARTIAL."""
    received = Received()

    def export(request: bytes, context: grpc.ServicerContext) -> bytes:
        received.bodies.append(request)
        received.headers.append({k: str(v) for k, v in context.invocation_metadata()})
        answer: bytes = PARTIAL.SerializeToString()
        return answer

    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "opentelemetry.proto.collector.logs.v1.LogsService",
                {"Export": grpc.unary_unary_rpc_method_handler(export)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"http://127.0.0.1:{port}", received
    server.stop(None)


@pytest.fixture
def http_server() -> Iterator[tuple[str, Received]]:
    """A POST /v1/logs server that keeps each (gunzipped) body, answering PARTIAL."""
    received = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            received.bodies.append(body)
            received.headers.append({k.lower(): v for k, v in self.headers.items()})
            answer = PARTIAL.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/logs", received
    server.shutdown()
    server.server_close()
    thread.join()


Transport = OtlpGrpcTransport | OtlpHttpTransport


def make_transport(kind: Literal["grpc", "http"], endpoint: str, **settings: Any) -> Transport:
    options = resolve_otlp(
        transport=kind,
        signal="logs",
        spec_endpoint=endpoint,
        settings=OtlpSettings(**settings),
        env={},
    )
    factory: Callable[..., Transport] = OtlpGrpcTransport if kind == "grpc" else OtlpHttpTransport
    return factory(options, RESOURCE)


@pytest.fixture(params=["grpc", "http"])
def server(request: pytest.FixtureRequest) -> tuple[Literal["grpc", "http"], str, Received]:
    kind: Literal["grpc", "http"] = request.param
    endpoint, received = request.getfixturevalue(f"{kind}_server")
    return kind, endpoint, received


@pytest.mark.parametrize("compression", ["none", "gzip"])
def test_the_request_is_the_encoders_bytes(
    server: tuple[Literal["grpc", "http"], str, Received], compression: str
) -> None:
    kind, endpoint, received = server
    transport = make_transport(
        kind, endpoint, headers=("Authorization=Bearer t0ken",), compression=compression
    )
    sent = transport.send(RECORDS)
    transport.close()
    expected = encode_logs_bytes(RECORDS, RESOURCE)
    assert received.bodies == [expected]
    assert received.headers[0]["authorization"] == "Bearer t0ken"
    assert (sent.rejected, sent.message) == (1, "one too old")
    if compression == "none" or kind == "grpc":  # gRPC reports the request before compression
        assert sent.bytes == len(expected)


def test_the_request_is_not_serialized_again(
    server: tuple[Literal["grpc", "http"], str, Received], monkeypatch: pytest.MonkeyPatch
) -> None:
    kind, endpoint, received = server
    wire = non_canonical_request()
    assert ExportLogsServiceRequest.FromString(wire).SerializeToString() != wire
    # What each transport calls to encode (a module of the compiled build cannot be patched).
    module = otlp_grpc if kind == "grpc" else otlp_http
    monkeypatch.setattr(module, "encode_logs_wire", lambda *args, **kwargs: wire)
    transport = make_transport(kind, endpoint)
    transport.send(RECORDS)
    transport.close()
    assert received.bodies == [wire]
