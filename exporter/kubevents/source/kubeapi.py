"""The Kubernetes API as kubevents uses it: raw JSON lists and watch lines.

The official ``kubernetes`` client is the transport (auth, TLS, kubeconfig);
its model objects are never built for Events (they cost tens of µs each):
lists come back as bytes parsed with orjson, and watch streams are read line
by line. Library errors are turned into ours at this edge:

* :class:`~kubevents.errors.ApiError` for an HTTP error Status (with the
  ``Retry-After`` the server asked for, if any);
* :class:`ConnectionLost` for a stream cut, a timeout or a refused connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, cast

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from kubevents.errors import ApiError, SourceError, clip

logger = logging.getLogger(__name__)

EVENTS_V1 = "events.k8s.io/v1"
CORE_V1 = "v1"


class ConnectionLost(SourceError):
    """The connection failed or a stream ended in the middle of a line."""


@dataclass(frozen=True)
class ClientOptions:
    """How to reach the API server."""

    kubeconfig: str = ""
    context: str = ""
    in_cluster: bool | None = None
    """None: in-cluster when running in a pod, else kubeconfig."""


def make_api_client(options: ClientOptions) -> k8s.ApiClient:
    """An ApiClient from in-cluster config or a kubeconfig file.

    Raises:
        SourceError: no usable configuration was found.
    """
    configuration = k8s.Configuration()
    try:
        if options.in_cluster or (
            options.in_cluster is None and not options.kubeconfig and _in_pod()
        ):
            k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]  # untyped in the client
        else:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped in the client
                config_file=options.kubeconfig or None,
                context=options.context or None,
                client_configuration=configuration,
            )
    except (k8s_config.ConfigException, OSError) as e:
        raise SourceError(f"cannot load Kubernetes client configuration: {clip(str(e))}") from e
    # kubevents owns retries (its own backoff, Retry-After, relists): no hidden ones.
    configuration.retries = False
    return k8s.ApiClient(configuration)


def _in_pod() -> bool:
    import os

    return bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


def api_error(e: ApiException) -> ApiError:
    """Our ApiError from the client's ApiException, Status body and Retry-After included."""
    status = int(e.status or 0)
    reason, message = str(e.reason or ""), ""
    body = e.body
    if body:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            message = clip(str(body))
        else:
            if isinstance(parsed, dict):
                reason = str(parsed.get("reason") or reason)
                message = str(parsed.get("message") or "")
    return ApiError(status, reason, message, retry_after=_retry_after(e.headers))


def _retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    value = headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except (TypeError, ValueError):
        return None


# (API version, resource) -> (client API class, list-all method, namespaced list method)
RESOURCES: dict[tuple[str, str], tuple[type, str, str]] = {
    (EVENTS_V1, "events"): (
        k8s.EventsV1Api,
        "list_event_for_all_namespaces",
        "list_namespaced_event",
    ),
    (CORE_V1, "events"): (k8s.CoreV1Api, "list_event_for_all_namespaces", "list_namespaced_event"),
    (CORE_V1, "pods"): (k8s.CoreV1Api, "list_pod_for_all_namespaces", "list_namespaced_pod"),
    ("apps/v1", "replicasets"): (
        k8s.AppsV1Api,
        "list_replica_set_for_all_namespaces",
        "list_namespaced_replica_set",
    ),
    ("batch/v1", "jobs"): (k8s.BatchV1Api, "list_job_for_all_namespaces", "list_namespaced_job"),
}


class ListWatchApi:
    """List and watch one resource of one API version, as raw JSON."""

    def __init__(
        self, api_client: k8s.ApiClient, api_version: str = EVENTS_V1, resource: str = "events"
    ) -> None:
        self.api_version = api_version
        self.resource = resource
        api_class, self._list_all, self._list_namespaced = RESOURCES[(api_version, resource)]
        self._api = api_class(api_client)

    def _call(self, namespace: str, **params: Any) -> urllib3.BaseHTTPResponse:
        method: Callable[..., Any]
        if namespace:
            method = getattr(self._api, self._list_namespaced)
            params["namespace"] = namespace
        else:
            method = getattr(self._api, self._list_all)
        try:
            # With _preload_content=False the client returns the raw urllib3 response.
            return cast(urllib3.BaseHTTPResponse, method(_preload_content=False, **params))
        except ApiException as e:
            raise api_error(e) from e
        except urllib3.exceptions.HTTPError as e:
            raise ConnectionLost(f"cannot reach the API server: {clip(str(e))}") from e

    def list_page(
        self, *, namespace: str, field_selector: str, limit: int, continue_token: str
    ) -> dict[str, Any]:
        """One page of a list: the raw EventList JSON."""
        params: dict[str, Any] = {"limit": limit}
        if field_selector:
            params["field_selector"] = field_selector
        if continue_token:
            params["_continue"] = continue_token
        response = self._call(namespace, **params)
        try:
            data = response.data
        except urllib3.exceptions.HTTPError as e:
            raise ConnectionLost(f"list response cut: {clip(str(e))}") from e
        finally:
            response.release_conn()
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            raise ConnectionLost(f"list response is not JSON: {e}") from e
        if not isinstance(parsed, dict):
            raise ConnectionLost("list response is not a JSON object")
        return parsed

    def watch_lines(
        self,
        *,
        namespace: str,
        field_selector: str,
        resource_version: str,
        timeout_s: int,
        inactivity_timeout_s: float,
    ) -> Iterator[bytes]:
        """Start one watch request; the iterator yields each complete line until the server
        ends the stream. The request is made before this returns, so an error answer
        raises here, before any line is read.

        A stream cut in the middle of a line raises :class:`ConnectionLost`
        after the complete lines before it were yielded; the partial line is
        never yielded. No data for ``inactivity_timeout_s`` also raises it.
        """
        params: dict[str, Any] = {
            "watch": True,
            "allow_watch_bookmarks": True,
            "resource_version": resource_version,
            "timeout_seconds": timeout_s,
            "_request_timeout": (10.0, inactivity_timeout_s),
        }
        if field_selector:
            params["field_selector"] = field_selector
        response = self._call(namespace, **params)  # an error answer raises here
        return self._lines(response, inactivity_timeout_s)

    @staticmethod
    def _lines(response: Any, inactivity_timeout_s: float) -> Iterator[bytes]:
        buffer = b""
        try:
            for chunk in response.stream(65536, decode_content=True):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield line
        except urllib3.exceptions.ReadTimeoutError as e:
            raise ConnectionLost(f"watch inactive for {inactivity_timeout_s:g}s") from e
        except urllib3.exceptions.HTTPError as e:
            raise ConnectionLost(f"watch stream cut: {clip(str(e))}") from e
        finally:
            response.release_conn()
        if buffer.strip():
            # Some servers end the last line without a newline: complete JSON is fine.
            try:
                orjson.loads(buffer)
            except orjson.JSONDecodeError:
                raise ConnectionLost("watch stream ended in the middle of a line") from None
            yield buffer


def EventsApi(api_client: k8s.ApiClient, api_version: str = EVENTS_V1) -> ListWatchApi:
    """List and watch Events of ``api_version`` (events.k8s.io/v1 or v1)."""
    return ListWatchApi(api_client, api_version, "events")
