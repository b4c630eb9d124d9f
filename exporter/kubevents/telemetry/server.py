"""The metrics HTTP server: ``/metrics``, ``/healthz`` and ``/readyz`` on one port.

A thin shell (client_python's shape): ``/metrics`` calls the
:data:`Exposition` it is given (in kubevents,
:meth:`~kubevents.telemetry.metrics.Telemetry.exposition`) for the body, the two
probes call :class:`Probes` callbacks that the watch can replace, and
anything else is a 404 that names the three paths. It logs no access lines.

It knows nothing of the MeterProvider: it takes a callable, so it imports no
other kubevents module and a test can serve any body.

Between requests its thread waits in ``select`` without a timeout: ``serve_forever``
woke twice a second to look for a shutdown, about 13 ms of CPU a minute at rest
(docs/performance.md, "At rest"). :meth:`MetricsServer.close` ends the wait with a
connection of its own instead.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

Health = Callable[[], tuple[bool, str]]
"""A probe's answer: (ok, the text of the answer)."""

Exposition = Callable[[str], tuple[bytes, str]]
"""The ``/metrics`` body and its Content-Type, for the request's Accept header."""


def _ok() -> tuple[bool, str]:
    return True, "ok"


@dataclass
class Probes:
    """Answers of ``/healthz`` (alive) and ``/readyz`` (ready to serve its purpose)."""

    health: Health = _ok
    ready: Health = _ok


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            try:
                body, content_type = self.server.exposition(self.headers.get("Accept", ""))
            except Exception:  # a failing callback must not kill the endpoint
                logger.exception("metrics: collection failed")
                self._send(500, b"collection failed\n", "text/plain; charset=utf-8")
                return
            self._send(200, body, content_type)
        elif path in ("/healthz", "/readyz"):
            probe = self.server.probes.health if path == "/healthz" else self.server.probes.ready
            ok, text = probe()
            self._send(200 if ok else 503, (text + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._send(
                404,
                b"not found: kubevents serves /metrics, /healthz and /readyz\n",
                "text/plain; charset=utf-8",
            )

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: a scrape every 15 s is not news."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], exposition: Exposition, probes: Probes) -> None:
        self.exposition = exposition
        self.probes = probes
        super().__init__(address, _Handler)


class MetricsServer:
    """``/metrics``, ``/healthz`` and ``/readyz`` on one port, in a daemon thread."""

    def __init__(
        self, exposition: Exposition, *, host: str, port: int, probes: Probes | None = None
    ) -> None:
        self.probes = probes or Probes()
        self._server = _Server((host, port), exposition, self.probes)
        self.port = int(self._server.server_address[1])
        self.host = host
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name="metrics-http", daemon=True)
        self._thread.start()
        logger.info("serving /metrics on %s:%d", host or "0.0.0.0", self.port)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}"

    def _serve(self) -> None:
        """One request at a time until :meth:`close`, each handled in a thread of its own;
        in between, waits for the next without a timeout (``timeout`` None)."""
        while not self._closing:
            self._server.handle_request()

    def close(self) -> None:
        """Stop serving: the wait for the next request ends with a connection of our own."""
        self._closing = True
        host, port = self._server.server_address[:2]
        if host in ("", "0.0.0.0", "::"):
            host = "::1" if host == "::" else "127.0.0.1"
        # If it cannot connect, the daemon thread is left waiting; the socket closes below.
        with contextlib.suppress(OSError):
            socket.create_connection((str(host), int(port)), timeout=1.0).close()
        self._thread.join(5.0)
        self._server.server_close()
