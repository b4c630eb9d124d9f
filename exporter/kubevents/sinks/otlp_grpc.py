"""The ``otlp`` sink: OTLP logs over gRPC (``LogsService/Export``), via grpcio.

Transport only: encoding is :func:`~kubevents.sinks.otlp_encode.encode_logs_wire`,
queueing and retries are :class:`~kubevents.sinks.delivery.DeliverySink`.
This module turns one batch into one Export call and a failed call into a
:class:`~kubevents.sinks.retry.Failure` carrying the status code and the
server's ``RetryInfo`` delay, read from the ``grpc-status-details-bin``
trailer (the ``google.rpc.Status`` details), as the OTLP specification's
throttling section describes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import grpc

from kubevents import __version__
from kubevents.errors import clip
from kubevents.records import OutputRecord, ResourceInfo
from kubevents.sinks.otlp_encode import encode_logs_wire
from kubevents.sinks.otlp_options import OtlpOptions
from kubevents.sinks.otlp_response import partial_success, retry_info_delay
from kubevents.sinks.retry import Failure
from kubevents.sinks.transport import Sent, TransportError

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def channel_credentials(options: OtlpOptions) -> grpc.ChannelCredentials:
    """TLS credentials: the CA bundle (else the system's roots), and the client pair if set."""
    root = options.read_file(options.certificate, "CA bundle") if options.certificate else None
    key = options.read_file(options.client_key, "client key") if options.client_key else None
    chain = (
        options.read_file(options.client_certificate, "client certificate")
        if options.client_certificate
        else None
    )
    return grpc.ssl_channel_credentials(
        root_certificates=root, private_key=key, certificate_chain=chain
    )


def make_channel(options: OtlpOptions) -> grpc.Channel:
    """A gRPC channel to ``options.target``: TLS or plaintext as the endpoint's scheme says."""
    channel_options = [
        ("grpc.primary_user_agent", f"kubevents/{__version__}"),
        # grpc's own reconnect backoff grows to 120 s: a Collector back after an outage would
        # wait that long. Cap it; kubevents' retry policy paces the requests.
        ("grpc.initial_reconnect_backoff_ms", 250),
        ("grpc.min_reconnect_backoff_ms", 250),
        ("grpc.max_reconnect_backoff_ms", 5_000),
    ]
    compression = grpc.Compression.Gzip if options.compression == "gzip" else None
    if options.secure:
        return grpc.secure_channel(
            options.target,
            channel_credentials(options),
            options=channel_options,
            compression=compression,
        )
    return grpc.insecure_channel(options.target, options=channel_options, compression=compression)


def retry_delay(error: grpc.RpcError) -> float | None:
    """The ``RetryInfo`` delay (seconds) in a failed call's status details, if any."""
    trailers = error.trailing_metadata() if isinstance(error, grpc.Call) else None
    for key, value in trailers or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            return retry_info_delay(value)
    return None


class OtlpGrpcTransport:
    """Sends one ``ExportLogsServiceRequest`` per batch on one long-lived channel."""

    def __init__(self, options: OtlpOptions, resource: ResourceInfo) -> None:
        self.options = options
        self.endpoint = options.display
        self._resource = resource
        self._metadata = options.headers
        self._lock = threading.Lock()
        self._channel = make_channel(options)
        # The request is already serialized (encode_logs_wire): no request serializer.
        self._export = self._channel.unary_unary(
            EXPORT_METHOD,
            request_serializer=None,
            response_deserializer=partial_success,
        )

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        request = encode_logs_wire(records, self._resource)
        size = len(request)
        try:
            response = self._export(
                request, timeout=self.options.timeout_s, metadata=self._metadata or None
            )
        except grpc.RpcError as e:
            code = e.code() if isinstance(e, grpc.Call) else grpc.StatusCode.UNKNOWN
            details = e.details() if isinstance(e, grpc.Call) else str(e)
            failure = Failure(
                "grpc",
                code.name,
                retry_after_s=retry_delay(e),
                detail=clip(details or ""),
            )
            raise TransportError(failure, sent_bytes=size) from e
        rejected, message = response
        return Sent(size, rejected=rejected, message=message)

    def close(self) -> None:
        with self._lock:
            self._channel.close()
