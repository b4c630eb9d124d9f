"""A small HTTP client on urllib3 for the ``otlp+http`` and ``loki`` sinks.

Why not requests: it costs about 2.9 MiB of imports at rest, and urllib3
is loaded anyway (the Kubernetes client runs on it). What requests did for
us implicitly, and what this keeps (docs/sinks.md, "HTTP sinks"):

- ``HTTPS_PROXY``/``HTTP_PROXY`` (and lowercase) are honoured unless
  ``NO_PROXY`` excludes the host, read once when the sink starts (requests
  read them at each request);
- the CA bundle is the ``certificate`` setting, else the system's store
  (``SSL_CERT_FILE``/``SSL_CERT_DIR`` apply, as OpenSSL reads them);
  requests used certifi's bundle and ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``,
  which are no longer read; ``~/.netrc`` is no longer read either.

One attempt per call (no urllib3 retry) and no redirect: the sinks' delivery
loop retries, and a POST must reach the configured URL.
"""

from __future__ import annotations

import logging
import urllib.request
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3

from kubevents.errors import clip
from kubevents.sinks.otlp_options import OtlpOptions, display_url
from kubevents.sinks.retry import Failure

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer, its body read."""

    status: int
    headers: Mapping[str, str]
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def proxy_for(url: str) -> str:
    """The proxy of ``url`` from ``HTTPS_PROXY``/``HTTP_PROXY``, "" when none or ``NO_PROXY``
    excludes its host (urllib's reading of them, as requests and client-go do)."""
    parts = urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme, "")
    if proxy and urllib.request.proxy_bypass(parts.netloc):
        return ""
    return proxy


def pool_manager(
    url: str,
    *,
    certificate: str = "",
    client_certificate: str = "",
    client_key: str = "",
    insecure: bool = False,
    proxy: str | None = None,
) -> urllib3.PoolManager:
    """A one-connection keep-alive pool for ``url``, with its TLS options and proxy."""
    options: dict[str, Any] = {"num_pools": 1, "maxsize": 1, "retries": False}
    if urlsplit(url).scheme == "https":
        options["cert_reqs"] = "CERT_NONE" if insecure else "CERT_REQUIRED"
        if insecure:
            # One line of ours at start, not urllib3's multi-line warning at every request.
            logger.warning(
                "%s: TLS certificate verification is off (insecure)", display_url(url, path=False)
            )
            warnings.filterwarnings("ignore", category=urllib3.exceptions.InsecureRequestWarning)
        if certificate and not insecure:
            options["ca_certs"] = certificate
        if client_certificate:
            options["cert_file"] = client_certificate
            options["key_file"] = client_key or None
    proxy = proxy_for(url) if proxy is None else proxy
    if proxy:
        return urllib3.ProxyManager(proxy, **options)
    return urllib3.PoolManager(**options)


PROTOBUF = "application/x-protobuf"


def otlp_http(options: OtlpOptions, user_agent: str) -> tuple[dict[str, str], urllib3.PoolManager]:
    """The request headers and the pool of an OTLP/HTTP exporter (logs or metrics):
    the user's headers, protobuf, ``user_agent``, gzip when asked; the TLS files."""
    headers = {**dict(options.headers), "Content-Type": PROTOBUF, "User-Agent": user_agent}
    if options.compression == "gzip":
        headers["Content-Encoding"] = "gzip"
    pool = pool_manager(
        options.url,
        certificate=options.certificate,
        client_certificate=options.client_certificate,
        client_key=options.client_key,
    )
    return headers, pool


def connection_failure(error: Exception) -> Failure:
    """A request that got no HTTP answer: always retryable; ``timeout`` or ``connection``."""
    # NewConnectionError is a ConnectTimeoutError in urllib3 2: a refusal is no timeout.
    timeout = isinstance(error, urllib3.exceptions.TimeoutError) and not isinstance(
        error, urllib3.exceptions.NewConnectionError
    )
    kind = "timeout" if timeout else "connection"
    return Failure("connection", type(error).__name__, kind=kind, detail=clip(str(error)))


class NoAnswer(Exception):
    """A request that got no HTTP answer; ``failure`` says why."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


def post(
    pool: urllib3.PoolManager,
    url: str,
    body: bytes,
    *,
    headers: Mapping[str, str],
    timeout_s: float,
) -> Answer:
    """One ``POST``, its answer read; :class:`NoAnswer` when no HTTP answer came."""
    try:
        response = pool.request(
            "POST",
            url,
            body=body,
            headers=dict(headers),
            timeout=urllib3.Timeout(total=timeout_s),
            retries=False,
            redirect=False,
        )
    except urllib3.exceptions.HTTPError as e:
        raise NoAnswer(connection_failure(e)) from e
    return Answer(response.status, response.headers, response.data)
