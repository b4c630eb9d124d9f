"""The Kubernetes API as kubevents uses it: raw JSON lists and watch lines.

kubevents' own client (``kubeclient.py``) is the transport (auth, TLS,
kubeconfig); no model objects are ever built for Events (they cost tens of
µs each): lists come back as bytes parsed with orjson, and watch streams are
read line by line. Errors are ours already when they reach this module:

* :class:`~kubevents.errors.ApiError` for an HTTP error Status (with the
  ``Retry-After`` the server asked for, if any);
* :class:`ConnectionLost` for a stream cut, a timeout or a refused connection.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import urllib3

from kubevents.errors import clip
from kubevents.source.kubeclient import (
    CONNECT_TIMEOUT_S,
    ConnectionLost,
    KubeClient,
    api_path,
    json_object,
)

logger = logging.getLogger(__name__)

EVENTS_V1 = "events.k8s.io/v1"
CORE_V1 = "v1"


RESOURCES: frozenset[tuple[str, str]] = frozenset(
    {
        (EVENTS_V1, "events"),
        (CORE_V1, "events"),
        (CORE_V1, "pods"),
        ("apps/v1", "replicasets"),
        ("batch/v1", "jobs"),
    }
)
"""(API version, resource) of everything kubevents lists and watches; RBAC must allow each
(tests/deploy checks the manifests against this set)."""


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of a list: its JSON parsed (``items``, ``metadata.continue``), and its
    size as it came, which the watch queue's byte bound counts."""

    body: dict[str, Any]
    nbytes: int


class ListWatch(Protocol):
    """What the watch loop and the runner need of the API: list and watch one resource
    of one API version, as raw JSON. :class:`ListWatchApi` is the one over HTTP; the
    tests' in-memory one (``tests/fakes/memory_api.py``) drives the runner without a server.
    """

    api_version: str
    resource: str

    def list_page(
        self, *, namespace: str, field_selector: str, limit: int, continue_token: str
    ) -> ListPage:
        """One page of a list: the list JSON (``items``, ``metadata.continue``) and its size."""
        ...

    def watch_lines(
        self,
        *,
        namespace: str,
        field_selector: str,
        resource_version: str,
        timeout_s: int,
        inactivity_timeout_s: float,
    ) -> Iterator[bytes]:
        """Start one watch; each complete line until the server ends the stream. An error
        answer raises here; a cut stream raises :class:`ConnectionLost` when reached."""
        ...


class ListWatchApi:
    """List and watch one resource of one API version, as raw JSON."""

    def __init__(
        self, api_client: KubeClient, api_version: str = EVENTS_V1, resource: str = "events"
    ) -> None:
        if (api_version, resource) not in RESOURCES:
            raise KeyError((api_version, resource))
        self.api_version = api_version
        self.resource = resource
        self._client = api_client

    def list_page(
        self, *, namespace: str, field_selector: str, limit: int, continue_token: str
    ) -> ListPage:
        """One page of a list: the EventList JSON, parsed by orjson from the bytes as
        they came, and their size."""
        query: dict[str, str | int] = {"limit": limit}
        if field_selector:
            query["fieldSelector"] = field_selector
        if continue_token:
            query["continue"] = continue_token
        path = api_path(self.api_version, self.resource, namespace)
        data = self._client.request_body("GET", path, query=query, what="list response")
        return ListPage(json_object(data, "list response"), len(data))

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
        query: dict[str, str | int] = {
            "watch": "true",
            "allowWatchBookmarks": "true",
            "resourceVersion": resource_version,
            "timeoutSeconds": timeout_s,
        }
        if field_selector:
            query["fieldSelector"] = field_selector
        # No data for the read timeout (the inactivity timeout) ends the stream.
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=inactivity_timeout_s)
        path = api_path(self.api_version, self.resource, namespace)
        response = self._client.request("GET", path, query=query, timeout=timeout)  # may raise
        return self._lines(response, inactivity_timeout_s)

    @staticmethod
    def _lines(response: urllib3.BaseHTTPResponse, inactivity_timeout_s: float) -> Iterator[bytes]:
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


def events_api(api_client: KubeClient, api_version: str = EVENTS_V1) -> ListWatchApi:
    """List and watch Events of ``api_version`` (events.k8s.io/v1 or v1)."""
    return ListWatchApi(api_client, api_version, "events")
