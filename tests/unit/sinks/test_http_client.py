"""sinks/http_client.py against real servers: TLS with a client certificate, the
proxy from the environment, and how a request that gets no answer is classified."""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubevents.sinks.http_client import NoAnswer, pool_manager, post, proxy_for
from tests.fakes.certs import Pki, make_client_pair, make_pki


class _Handler(http.server.BaseHTTPRequestHandler):
    """Answers 200 with the request line it got (a proxy sees an absolute URL)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = self.requestline.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server:
    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        if context is not None:
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def client_pair(pki: Pki) -> tuple[Path, Path]:
    return make_client_pair(pki)


@pytest.fixture(scope="module")
def mtls(pki: Pki) -> Iterator[_Server]:
    """A TLS server that requires a client certificate signed by the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    context.load_verify_locations(pki.ca_file)
    context.verify_mode = ssl.CERT_REQUIRED
    server = _Server(context)
    yield server
    server.close()


@pytest.mark.parametrize(
    ("with_ca", "with_client_cert", "insecure", "expected"),
    [
        (True, True, False, 200),  # the CA bundle and the client certificate: through
        (False, True, True, 200),  # insecure: the server's certificate is not checked
        (True, False, False, "connection"),  # the server refuses a client without certificate
        (False, True, False, "connection"),  # the system store does not know the test CA
    ],
)
def test_tls_with_a_client_certificate(
    mtls: _Server,
    pki: Pki,
    client_pair: tuple[Path, Path],
    with_ca: bool,
    with_client_cert: bool,
    insecure: bool,
    expected: int | str,
    caplog: pytest.LogCaptureFixture,
    recwarn: pytest.WarningsRecorder,
) -> None:
    url = f"https://localhost:{mtls.port}/v1/logs"
    cert, key = client_pair
    caplog.set_level(logging.WARNING, logger="kubevents.sinks.http_client")
    pool = pool_manager(
        url,
        certificate=str(pki.ca_file) if with_ca else "",
        client_certificate=str(cert) if with_client_cert else "",
        client_key=str(key) if with_client_cert else "",
        insecure=insecure,
        proxy="",
    )
    try:
        if isinstance(expected, int):
            answer = post(pool, url, b"x", headers={}, timeout_s=5)
            assert answer.status == expected
            assert answer.text == "POST /v1/logs HTTP/1.1"
            # Insecure says so once, in one line, and urllib3 warns at no request.
            assert [r.getMessage() for r in caplog.records] == (
                [f"https://localhost:{mtls.port}: TLS certificate verification is off (insecure)"]
                if insecure
                else []
            )
            assert not [w for w in recwarn if "Unverified HTTPS" in str(w.message)]
        else:
            with pytest.raises(NoAnswer) as raised:
                post(pool, url, b"x", headers={}, timeout_s=5)
            assert raised.value.failure.reason == expected
            assert "\n" not in raised.value.failure.detail
    finally:
        pool.clear()


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = _Server()
    try:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.setenv("NO_PROXY", "skip.example")
        monkeypatch.delenv("no_proxy", raising=False)
        url = "http://collector.example:4318/v1/logs"
        assert proxy_for(url) == f"http://127.0.0.1:{proxy.port}"
        assert proxy_for("http://loki.skip.example:3100/loki/api/v1/push") == ""
        pool = pool_manager(url)
        answer = post(pool, url, b"x", headers={}, timeout_s=5)
        # The proxy got the absolute URL: the request went through it, not to the host.
        assert answer.text == f"POST {url} HTTP/1.1"
        pool.clear()
    finally:
        proxy.close()


def test_no_answer_is_classified() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/"
    pool = pool_manager(refused, proxy="")
    with pytest.raises(NoAnswer) as raised:
        post(pool, refused, b"x", headers={}, timeout_s=2)
    assert raised.value.failure.reason == "connection"
    with socket.socket() as silent:  # accepts (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        with pytest.raises(NoAnswer) as raised:
            post(pool_manager(url, proxy=""), url, b"x", headers={}, timeout_s=0.3)
    assert raised.value.failure.reason == "timeout"
    assert raised.value.failure.code == "ReadTimeoutError"


def test_the_http_sinks_do_not_load_requests() -> None:
    """requests and what it imports (2.9 MiB at rest, more with charset_normalizer and
    idna) stay out of a process whose sinks are otlp+http and loki."""
    code = (
        "import sys\n"
        "from kubevents.records import ResourceInfo\n"
        "from kubevents.settings import LokiSettings\n"
        "from kubevents.sinks.loki_push import LokiPushTransport\n"
        "from kubevents.sinks.otlp_http import OtlpHttpTransport\n"
        "from kubevents.telemetry.otlp_metrics import HttpMetricsTransport\n"
        "LokiPushTransport('http://127.0.0.1:1/loki/api/v1/push', LokiSettings(), ResourceInfo('1', 'kv-0'))\n"
        "print(sorted(m for m in ('requests', 'charset_normalizer', 'certifi') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
