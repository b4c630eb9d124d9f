"""KubeClient against real sockets: what it sends, how answers and failures become our errors."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
import urllib3
import yaml

from kubevents import __version__
from kubevents.errors import ApiError, SourceError
from kubevents.source.credentials import Auth, StaticCredentials
from kubevents.source.kubeapi import EVENTS_V1, ListWatchApi
from kubevents.source.kubeclient import ConnectionLost, KubeClient, api_path, load_client
from kubevents.source.kubeconfig import ClientConfig, Tls
from tests.fakes.certs import Pki, make_pki


@dataclass
class Answer:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0
    """Send the headers, then nothing for this long (a silent watch)."""
    chunked: bool = False
    """``body`` is chunked framing already: sent as a watch is, then nothing for
    ``stall_s``, then the connection closes."""


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


class Recorder(ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1:0 that records every request and plays scripted answers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[Seen] = []
        self.answers: list[Answer] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing."""

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        parts = urlsplit(self.path)
        self.server.seen.append(Seen(self.command, parts.path, dict(parse_qsl(parts.query)),
                                     dict(self.headers), self.rfile.read(length)))
        answer = self.server.answers.pop(0) if self.server.answers else Answer()
        self.send_response(answer.status)
        for name, value in {"Content-Type": "application/json", **answer.headers}.items():
            self.send_header(name, value)
        if answer.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(answer.body)
            self.wfile.flush()
            time.sleep(answer.stall_s)
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        time.sleep(answer.stall_s)
        self.wfile.write(answer.body)

    do_GET = do_PUT = do_POST = _answer


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.shutdown()
    recorder.server_close()


def client_for(url: str, authorization: str = "Bearer t0ken", tls: Tls | None = None) -> KubeClient:
    credentials = StaticCredentials(Auth(authorization))
    return KubeClient(ClientConfig(server=url, credentials=credentials, tls=tls or Tls()))


def status(code: int, reason: str, message: str) -> bytes:
    return orjson.dumps({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                         "reason": reason, "message": message, "code": code})


# -- requests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "path"), [
    (("v1", "events"), "/api/v1/events"),
    (("v1", "events", "shop"), "/api/v1/namespaces/shop/events"),
    ((EVENTS_V1, "events"), "/apis/events.k8s.io/v1/events"),
    ((EVENTS_V1, "events", "shop"), "/apis/events.k8s.io/v1/namespaces/shop/events"),
    (("v1", "pods"), "/api/v1/pods"),
    (("apps/v1", "replicasets"), "/apis/apps/v1/replicasets"),
    (("batch/v1", "jobs"), "/apis/batch/v1/jobs"),
    (("coordination.k8s.io/v1", "leases", "kubevents"), "/apis/coordination.k8s.io/v1/namespaces/kubevents/leases"),
    (("coordination.k8s.io/v1", "leases", "kubevents", "kubevents"),
     "/apis/coordination.k8s.io/v1/namespaces/kubevents/leases/kubevents"),
])
def test_api_paths(args: tuple[str, ...], path: str) -> None:
    assert api_path(*args) == path


def test_a_request_carries_the_credentials_and_says_who_sends_it(server: Recorder) -> None:
    client = client_for(server.url)
    assert client.request_json("PUT", "/apis/x/v1/things/a", body={"spec": {"n": 1}}) == {}
    (seen,) = server.seen
    assert (seen.method, seen.path, orjson.loads(seen.body)) == ("PUT", "/apis/x/v1/things/a", {"spec": {"n": 1}})
    assert seen.headers["Authorization"] == "Bearer t0ken"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["User-Agent"] == f"kubevents/{__version__}"


def test_list_and_watch_parameters(server: Recorder) -> None:
    api = ListWatchApi(client_for(server.url), EVENTS_V1, "events")
    body = b'{"items": [], "metadata": {"continue": "next"}}'
    server.answers.append(Answer(body=body))
    page = api.list_page(namespace="shop", field_selector="type=Warning", limit=500, continue_token="tok")
    assert (page.body["metadata"]["continue"], page.nbytes) == ("next", len(body))
    server.answers.append(Answer(body=b'{"type":"BOOKMARK","object":{}}\n'))
    batches = list(api.watch_batches(namespace="", field_selector="", resource_version="42", timeout_s=300,
                                     inactivity_timeout_s=5))
    assert batches == [[b'{"type":"BOOKMARK","object":{}}']]
    listed, watched = server.seen
    assert (listed.path, listed.query) == ("/apis/events.k8s.io/v1/namespaces/shop/events",
                                          {"limit": "500", "fieldSelector": "type=Warning", "continue": "tok"})
    assert (watched.path, watched.query) == ("/apis/events.k8s.io/v1/events", {
        "watch": "true", "allowWatchBookmarks": "true", "resourceVersion": "42", "timeoutSeconds": "300"})


def test_a_silent_watch_ends_after_the_inactivity_timeout(server: Recorder) -> None:
    api = ListWatchApi(client_for(server.url), "v1", "events")
    server.answers.append(Answer(body=b"\n", stall_s=1.0))  # the newline comes too late
    batches = api.watch_batches(namespace="", field_selector="", resource_version="1", timeout_s=60,
                                inactivity_timeout_s=0.2)
    with pytest.raises(ConnectionLost, match=r"^watch inactive for 0.2s$"):
        list(batches)


WATCH_LINES = [b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"7"}}}',
               b'{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8"}}}']


def framed(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def watch_of(server: Recorder, inactivity_timeout_s: float = 5.0) -> Iterator[list[bytes]]:
    api = ListWatchApi(client_for(server.url), "v1", "events")
    return api.watch_batches(namespace="", field_selector="", resource_version="1", timeout_s=60,
                             inactivity_timeout_s=inactivity_timeout_s)


def test_a_chunked_watch_gives_its_lines_a_read_at_a_time_until_its_last_chunk(server: Recorder) -> None:
    body = b"".join(framed(line + b"\n") for line in WATCH_LINES) + b"0\r\n\r\n"
    server.answers.append(Answer(body=body, chunked=True, stall_s=2.0))  # ends at its last chunk
    started = time.monotonic()
    assert [line for batch in watch_of(server) for line in batch] == WATCH_LINES
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("tail", "stall_s", "message"),
    [
        (framed(WATCH_LINES[1][:20]), 0.0, r"^watch stream cut: the connection closed before its end$"),
        (b"", 1.0, r"^watch inactive for 0.2s$"),
        (b"zz\r\n", 0.0, r"^watch stream cut: invalid chunk size line b'zz'$"),
    ],
)
def test_a_chunked_watch_cut_silent_or_garbled_gives_its_whole_lines_then_connection_lost(
    server: Recorder, tail: bytes, stall_s: float, message: str
) -> None:
    server.answers.append(Answer(body=framed(WATCH_LINES[0] + b"\n") + tail, chunked=True, stall_s=stall_s))
    got: list[bytes] = []
    with pytest.raises(ConnectionLost, match=message):
        for batch in watch_of(server, inactivity_timeout_s=0.2):
            got += batch
    assert got == [WATCH_LINES[0]]


# -- answers and failures become our errors ---------------------------------------------------


def test_an_error_status_becomes_an_api_error_with_retry_after(server: Recorder) -> None:
    server.answers.append(Answer(429, status(429, "TooManyRequests", "slow down"), {"Retry-After": "7"}))
    with pytest.raises(ApiError) as info:
        client_for(server.url).request("GET", "/api/v1/events")
    error = info.value
    assert (error.status, error.reason, error.message, error.retry_after) == (429, "TooManyRequests", "slow down", 7.0)


def test_an_error_without_a_status_body_keeps_the_http_reason(server: Recorder) -> None:
    server.answers.append(Answer(503, b"upstream\nbroken", {"Content-Type": "text/plain", "Retry-After": "soon"}))
    with pytest.raises(ApiError) as info:
        client_for(server.url).request("GET", "/api/v1/events")
    error = info.value
    assert (error.status, error.reason, error.message, error.retry_after) == (
        503, "Service Unavailable", "upstream / broken", None)


def test_an_answer_that_is_not_json_is_a_lost_connection(server: Recorder) -> None:
    server.answers.append(Answer(body=b"<html>"))
    with pytest.raises(ConnectionLost, match=r"^list response is not JSON"):
        ListWatchApi(client_for(server.url), "v1", "pods").list_page(
            namespace="", field_selector="", limit=1, continue_token="")


def test_a_refused_connection_is_a_lost_connection() -> None:
    with pytest.raises(ConnectionLost, match=r"^cannot reach the API server: "):
        client_for("http://127.0.0.1:9").request("GET", "/api/v1/events")


class CountingCredentials:
    def __init__(self) -> None:
        self.issued = 0
        self.invalidated = 0
        self._fresh = True

    def current(self) -> Auth:
        if self._fresh:
            self.issued += 1
            self._fresh = False
        return Auth(f"Bearer token-{self.issued}")

    def invalidate(self) -> None:
        self.invalidated += 1
        self._fresh = True


def test_a_401_is_raised_and_the_next_request_uses_fresh_credentials(server: Recorder) -> None:
    credentials = CountingCredentials()
    client = KubeClient(ClientConfig(server=server.url, credentials=credentials))
    server.answers.append(Answer(401, status(401, "Unauthorized", "Unauthorized")))
    with pytest.raises(ApiError, match="401"):
        client.request("GET", "/api/v1/events")  # raised: no hidden retry
    client.request_json("GET", "/api/v1/events")
    assert [s.headers["Authorization"] for s in server.seen] == ["Bearer token-1", "Bearer token-2"]
    assert len(server.seen) == 2 and credentials.invalidated == 1


# -- TLS ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), hosts=("kube.internal",))


@pytest.fixture
def tls_server(server: Recorder, pki: Pki) -> Recorder:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")  # the Tls(verify=False) case
def test_tls_with_a_ca_file_or_data_and_a_server_name(tls_server: Recorder, pki: Pki) -> None:
    url = f"https://127.0.0.1:{tls_server.server_address[1]}"
    by_file = Tls(ca_file=str(pki.ca_file), server_name="kube.internal")
    by_data = Tls(ca_data=pki.ca_file.read_text(), ca_file="/does/not/exist", server_name="kube.internal")
    assert client_for(url, tls=by_file).request_json("GET", "/version") == {}
    assert client_for(url, tls=by_data).request_json("GET", "/version") == {}
    assert client_for(url, tls=Tls(verify=False)).request_json("GET", "/version") == {}


def test_a_certificate_that_does_not_verify_is_an_error_status_0(tls_server: Recorder, pki: Pki) -> None:
    url = f"https://127.0.0.1:{tls_server.server_address[1]}"
    with pytest.raises(ApiError) as info:  # the certificate names kube.internal, not 127.0.0.1
        client_for(url, tls=Tls(ca_file=str(pki.ca_file))).request("GET", "/version")
    assert (info.value.status, info.value.reason) == (0, "SSLError")


# -- load_client, end to end ------------------------------------------------------------------------


def test_load_client_from_a_kubeconfig_with_an_exec_plugin(server: Recorder, tmp_path: Path) -> None:
    script = tmp_path / "plugin"
    script.write_text(
        "#!/bin/sh\n"
        'n=$(cat "$0.runs" 2>/dev/null || echo 0); n=$((n + 1)); echo $n > "$0.runs"\n'
        'echo "{\\"apiVersion\\":\\"client.authentication.k8s.io/v1\\",\\"kind\\":\\"ExecCredential\\",'
        '\\"status\\":{\\"token\\":\\"exec-$n\\"}}"\n'
    )
    script.chmod(0o755)
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": server.url}}],
        "users": [{"name": "u", "user": {"exec": {"apiVersion": "client.authentication.k8s.io/v1",
                                                  "command": "./plugin"}}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }))
    client = load_client(kubeconfig=str(path))  # runs the plugin once, to fail early
    server.answers += [Answer(), Answer(401, status(401, "Unauthorized", "expired")), Answer()]
    client.request_json("GET", "/a")
    with pytest.raises(ApiError):
        client.request_json("GET", "/b")
    client.request_json("GET", "/c")
    assert [s.headers["Authorization"] for s in server.seen] == ["Bearer exec-1", "Bearer exec-1", "Bearer exec-2"]


def test_load_client_in_a_pod_without_its_files_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(SourceError, match=r"^cannot load Kubernetes client configuration: "
                                          r"/var/run/secrets/kubernetes.io/serviceaccount/ca.crt: "):
        load_client()


def test_basic_auth_header(server: Recorder) -> None:
    client_for(server.url, "Basic " + base64.b64encode(b"a:b").decode()).request_json("GET", "/")
    assert server.seen[0].headers["Authorization"] == "Basic YTpi"


def test_a_request_that_is_not_a_watch_gives_up_on_a_silent_server(server: Recorder) -> None:
    client = client_for(server.url)
    server.answers.append(Answer(body=b"{}", stall_s=2.0))  # headers, then silence
    quick = urllib3.Timeout(connect=1.0, read=0.2)
    started = time.monotonic()
    with pytest.raises(ConnectionLost, match=r"^lease cut: .*[Rr]ead timed out"):
        client.request_json("GET", "/apis/coordination.k8s.io/v1", what="lease", timeout=quick)
    # Long before the server's silence ends (room for a busy machine's scheduling).
    assert time.monotonic() - started < 1.5

