"""kubevents' own small Kubernetes API client: where the server is, who we are, one request.

Why not the official ``kubernetes`` package: importing any part of it runs
its package ``__init__``, which imports every API model (about 45 MiB of
resident memory), and kubevents builds none of them. It reads Events as raw
JSON (``kubeapi.py``) and the Lease as a plain dict (``leader.py``). What it
needs from a client is small, and is in three modules:

* **configuration** (:func:`load_client`, read by ``kubeconfig.py``): in-cluster (the pod's service
  account) or a kubeconfig (the ``KUBECONFIG`` files merged as kubectl merges
  them, else ``~/.kube/config``), with the context, cluster and user fields
  kubectl users rely on: server, CA file or data, insecure-skip-tls-verify,
  tls-server-name, proxy-url, a token or token file, client certificate
  files or data, basic auth and ``exec`` credential plugins (the credential
  sources, some of which change while kubevents runs, are ``credentials.py``);
* **one request** (:meth:`KubeClient.request`) on a urllib3 pool, with the
  library's errors turned into ours at this edge:
  :class:`~kubevents.errors.ApiError` for an error Status (its reason and
  message, and the ``Retry-After`` the server asked for), and
  :class:`ConnectionLost` for a refused connection, a timeout or a cut.
  It never retries: kubevents owns retries (backoff, Retry-After, relists).

One fallback: a kubeconfig user with only a legacy ``auth-provider`` (gcp,
azure, oidc) is handed to the ``kubernetes`` package's loader, imported
lazily in that branch only (``credentials.AuthProviderToken``); every other
configuration runs without the package.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3

from kubevents import __version__
from kubevents.errors import ApiError, SourceError, clip
from kubevents.source.credentials import Auth, ClientCert
from kubevents.source.kubeconfig import (
    ClientConfig,
    in_cluster_config,
    kubeconfig_config,
    kubeconfig_paths,
)

logger = logging.getLogger(__name__)

USER_AGENT = f"kubevents/{__version__}"
CONNECT_TIMEOUT_S = 10.0
"""How long any request may take to connect (a watch's read timeout is its inactivity timeout)."""
REQUEST_TIMEOUT = urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=60.0)
"""Limits of a request that is not a watch (a list page, a Lease call): 10 s to connect, and
60 s without a byte of the answer (a page of 1000 Events takes well under a second)."""
POOL_MAXSIZE = 16
"""Idle connections kept per server; one per watch stream is plenty (more just close)."""


class ConnectionLost(SourceError):
    """The connection failed or a stream ended in the middle of a line."""


# -- the client ---------------------------------------------------------------------------


class KubeClient:
    """Makes requests to one API server; thread-safe (watch threads share one)."""

    def __init__(self, config: ClientConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._pool: urllib3.PoolManager | None = None
        self._pool_cert: ClientCert | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        timeout: urllib3.Timeout | None = None,
    ) -> urllib3.BaseHTTPResponse:
        """Send one request; return the 2xx response with its body unread.

        The caller reads the body (all of it, or as a stream) and calls
        ``release_conn()``. ``timeout`` None waits as long as the server takes.

        Raises:
            ApiError: the server answered with another status (a 401 also
                makes the credentials fetch fresh ones for the next request).
            ConnectionLost: the server could not be reached or the
                connection failed before an answer.
        """
        auth = self.config.credentials.current()
        url = self.config.server + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if auth.authorization:
            headers["Authorization"] = auth.authorization
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        try:
            response = self._pool_for(auth).request(
                method,
                url,
                body=data,
                headers=headers,
                timeout=timeout,
                preload_content=False,
                retries=False,  # no hidden retries, and a redirect is an error answer
            )
        except urllib3.exceptions.SSLError as e:
            # A TLS failure was an error "Status 0" in the kubernetes client: keep it one.
            raise ApiError(0, "SSLError", str(e)) from e
        except urllib3.exceptions.HTTPError as e:
            raise ConnectionLost(f"cannot reach the API server: {clip(str(e))}") from e
        if not 200 <= response.status < 300:
            if response.status == 401:
                self.config.credentials.invalidate()
            raise api_error(response)
        return response

    def request_json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        what: str = "response",
        timeout: urllib3.Timeout = REQUEST_TIMEOUT,
    ) -> dict[str, Any]:
        """:meth:`request`, the answer read whole and parsed as a JSON object.

        Unlike a watch, such a request always has a time limit: a server that
        accepts it and then says nothing must not hold the caller for ever.

        Raises:
            ConnectionLost: also when the answer was cut, did not come within
                ``timeout``, or is not a JSON object (``what`` names it in the
                message: "list response").
        """
        data = self.request_body(method, path, query=query, body=body, what=what, timeout=timeout)
        return json_object(data, what)

    def request_body(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Mapping[str, Any] | None = None,
        what: str = "response",
        timeout: urllib3.Timeout = REQUEST_TIMEOUT,
    ) -> bytes:
        """:meth:`request`, the answer read whole (what :meth:`request_json` parses).

        Raises:
            ConnectionLost: also when the answer was cut or did not come within ``timeout``.
        """
        response = self.request(method, path, query=query, body=body, timeout=timeout)
        try:
            return response.data
        except urllib3.exceptions.HTTPError as e:
            raise ConnectionLost(f"{what} cut: {clip(str(e))}") from e
        finally:
            response.release_conn()

    def close(self) -> None:
        """Close idle connections (streams still open end on their own)."""
        with self._lock:
            if self._pool is not None:
                self._pool.clear()

    def _pool_for(self, auth: Auth) -> urllib3.PoolManager:
        """The connection pool for ``auth``'s client certificate.

        A certificate is part of the TLS handshake, so a new one (an exec
        plugin rotated it) needs new connections: the old pool is closed.
        """
        with self._lock:
            if self._pool is None or auth.client_cert != self._pool_cert:
                if self._pool is not None:
                    self._pool.clear()
                self._pool = _pool_manager(self.config, auth.client_cert)
                self._pool_cert = auth.client_cert
            return self._pool


def _pool_manager(config: ClientConfig, cert: ClientCert | None) -> urllib3.PoolManager:
    tls = config.tls
    options: dict[str, Any] = {
        "maxsize": POOL_MAXSIZE,
        "cert_reqs": "CERT_REQUIRED" if tls.verify else "CERT_NONE",
    }
    if tls.ca_data:
        options["ca_cert_data"] = tls.ca_data
    elif tls.ca_file:
        options["ca_certs"] = tls.ca_file
    if tls.server_name:
        options["server_hostname"] = tls.server_name
    if cert is not None:
        options["cert_file"], options["key_file"] = cert.cert_file, cert.key_file
    if config.proxy_url:
        return urllib3.ProxyManager(config.proxy_url, **options)
    return urllib3.PoolManager(**options)


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """``data`` parsed, a JSON object; else :class:`ConnectionLost` naming ``what``."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ConnectionLost(f"{what} is not JSON: {e}") from e
    if not isinstance(parsed, dict):
        raise ConnectionLost(f"{what} is not a JSON object")
    return parsed


def api_error(response: urllib3.BaseHTTPResponse) -> ApiError:
    """Our ApiError from an error answer: the Status body's reason and message, and Retry-After.

    Reads the body and releases the connection.
    """
    try:
        body = response.data
    except urllib3.exceptions.HTTPError:
        body = b""
    finally:
        response.release_conn()
    reason, message = str(response.reason or ""), ""
    if body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            message = clip(body.decode(errors="replace"))
        else:
            if isinstance(parsed, dict):
                reason = str(parsed.get("reason") or reason)
                message = str(parsed.get("message") or "")
    return ApiError(
        response.status,
        reason,
        message,
        retry_after=_retry_after(response.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None  # an HTTP date: rare from an apiserver; the backoff formula applies


def api_path(api_version: str, resource: str, namespace: str = "", name: str = "") -> str:
    """The URL path of a resource: ``/api/v1/pods``, ``/apis/apps/v1/namespaces/ns/replicasets``."""
    path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{resource}"
    if name:
        path += f"/{quote(name, safe='')}"
    return path


def load_client(
    *, kubeconfig: str = "", context: str = "", in_cluster: bool | None = None
) -> KubeClient:
    """A client from in-cluster config or a kubeconfig.

    ``in_cluster`` None: in-cluster when running in a pod (and no kubeconfig
    was named), else the kubeconfig.

    Raises:
        SourceError: no usable configuration; the message names the file and the problem.
    """
    if in_cluster or (
        in_cluster is None and not kubeconfig and os.environ.get("KUBERNETES_SERVICE_HOST")
    ):
        config = in_cluster_config()
    else:
        config = kubeconfig_config(kubeconfig_paths(kubeconfig), context=context)
    # Ask once now, so a broken exec plugin or token file stops the start with its message.
    config.credentials.current()
    logger.debug("Kubernetes API server %s (from %s)", config.server, config.source)
    return KubeClient(config)
