"""The ``otlp`` sink: OTLP logs over gRPC (``LogsService/Export``), on our own unary client.

Transport only: encoding is :func:`~kubevents.sinks.otlp_encode.encode_logs_wire`,
queueing and retries are :class:`~kubevents.sinks.delivery.DeliverySink`, the
gRPC call is :class:`~kubevents.sinks.grpc_unary.UnaryChannel` (HTTP/2 with
``h2``: grpcio costs 14 MiB of memory at rest, docs/dependencies.md).
This module turns one batch into one Export call and a failed call into a
:class:`~kubevents.sinks.retry.Failure` carrying the status code and the
server's ``RetryInfo`` delay, read from the ``grpc-status-details-bin``
trailer (the ``google.rpc.Status`` details), as the OTLP specification's
throttling section describes.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubevents import __version__
from kubevents.errors import clip
from kubevents.records import OutputRecord, ResourceInfo
from kubevents.sinks.grpc_unary import GrpcStatusError, UnaryChannel
from kubevents.sinks.otlp_encode import StagedRecords, encode_logs_wire, encode_logs_within
from kubevents.sinks.otlp_options import OtlpOptions
from kubevents.sinks.otlp_response import WireError, partial_success, retry_info_delay
from kubevents.sinks.retry import Failure
from kubevents.sinks.transport import Sent, TransportError

EXPORT_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"


def retry_delay(error: GrpcStatusError) -> float | None:
    """The ``RetryInfo`` delay (seconds) in a failed call's status details, if any."""
    for key, value in error.trailers:
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
        self._channel = UnaryChannel(options, user_agent=f"kubevents/{__version__}")

    def encode(self, records: Sequence[OutputRecord]) -> bytes:
        return encode_logs_wire(records, self._resource)

    def encode_within(
        self, records: Sequence[OutputRecord], max_body_bytes: int, max_attribute_bytes: int
    ) -> bytes | None:
        return encode_logs_within(
            records,
            self._resource,
            max_body_bytes=max_body_bytes,
            max_attribute_bytes=max_attribute_bytes,
        )

    def staging(
        self, max_body_bytes: int, max_attribute_bytes: int, max_records: int
    ) -> StagedRecords:
        """Where the records of a batch are encoded as they are made (``DeliverySink.staged``):
        its request is :meth:`encode_within`'s for the same records."""
        return StagedRecords(
            self._resource,
            max_body_bytes=max_body_bytes,
            max_attribute_bytes=max_attribute_bytes,
            max_records=max_records,
        )

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        return self.send_encoded(records, self.encode(records))

    def send_encoded(self, records: Sequence[OutputRecord], request: bytes) -> Sent:
        size = len(request)
        try:
            # The request is already serialized (encode_logs_wire), the response is read
            # without protobuf unless it rejects something (partial_success).
            response = self._channel.call(
                EXPORT_METHOD, request, timeout_s=self.options.timeout_s, metadata=self._metadata
            )
        except GrpcStatusError as e:
            failure = Failure("grpc", e.code, retry_after_s=retry_delay(e), detail=clip(e.details))
            raise TransportError(failure, sent_bytes=size) from e
        try:
            rejected, message = partial_success(response)
        except WireError:
            rejected, message = 0, ""  # status OK is success, whatever the body (as OTLP/HTTP)
        return Sent(size, rejected=rejected, message=message)

    def close(self) -> None:
        self._channel.close()
