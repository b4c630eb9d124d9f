"""The ``otlp+http`` sink: OTLP logs over HTTP, binary protobuf, on urllib3
(:mod:`http_client`).

Transport only (see :mod:`otlp_grpc` for the split). One batch is one
``POST .../v1/logs`` with ``Content-Type: application/x-protobuf`` (and
``Content-Encoding: gzip`` when compression is on). A 2xx is success, with an
``ExportLogsServiceResponse`` that may report a partial success; any other
answer becomes a :class:`~kubevents.sinks.retry.Failure` with the status,
``Retry-After`` and the ``google.rpc.Status`` message of the body.
Redirects are not followed: a POST must reach the configured URL.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Sequence

from kubevents import __version__
from kubevents.errors import clip
from kubevents.records import OutputRecord, ResourceInfo
from kubevents.sinks.http_client import Answer, NoAnswer, otlp_http, post
from kubevents.sinks.otlp_encode import encode_logs_wire
from kubevents.sinks.otlp_options import OtlpOptions
from kubevents.sinks.otlp_response import WireError, http_error_message, partial_success
from kubevents.sinks.retry import Failure, parse_retry_after
from kubevents.sinks.transport import Sent, TransportError


def error_detail(response: Answer) -> str:
    """The server's message: a ``google.rpc.Status`` body, else the text, clipped."""
    return clip(http_error_message(response.headers.get("Content-Type", ""), response.data))


class OtlpHttpTransport:
    """POSTs one ``ExportLogsServiceRequest`` per batch on a keep-alive connection."""

    def __init__(self, options: OtlpOptions, resource: ResourceInfo) -> None:
        self.options = options
        self.endpoint = options.display
        self._resource = resource
        self._lock = threading.Lock()
        self._headers, self._pool = otlp_http(options, f"kubevents/{__version__}")

    def send(self, records: Sequence[OutputRecord]) -> Sent:
        data = encode_logs_wire(records, self._resource)
        if self.options.compression == "gzip":
            data = gzip.compress(data, compresslevel=5)
        try:
            response = post(
                self._pool,
                self.options.url,
                data,
                headers=self._headers,
                timeout_s=self.options.timeout_s,
            )
        except NoAnswer as e:
            raise TransportError(e.failure) from e
        if 200 <= response.status < 300:
            try:
                rejected, message = partial_success(response.data)
            except WireError:
                rejected, message = 0, ""  # a 2xx is success, whatever the body
            return Sent(len(data), rejected=rejected, message=message)
        failure = Failure(
            "http",
            str(response.status),
            retry_after_s=parse_retry_after(response.headers.get("Retry-After"), now_s=time.time()),
            detail=error_detail(response),
        )
        raise TransportError(failure, sent_bytes=len(data))

    def close(self) -> None:
        with self._lock:
            self._pool.clear()
