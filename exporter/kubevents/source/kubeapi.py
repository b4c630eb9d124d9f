"""The Kubernetes API as kubevents uses it: raw JSON lists and watch lines.

kubevents' own client (``kubeclient.py``) is the transport (auth, TLS,
kubeconfig); no model objects are ever built for Events (they cost tens of
µs each): lists come back as bytes parsed with orjson, and watch streams are
read in blocks, a list of complete lines per read. Errors are ours already when
they reach this module:

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
from kubevents.source.chunked import ChunkedLines
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


READ_SIZE = 65536
"""Most bytes one read of a watch stream takes from the socket (about 150 lines of Events)."""


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

    def watch_batches(
        self,
        *,
        namespace: str,
        field_selector: str,
        resource_version: str,
        timeout_s: int,
        inactivity_timeout_s: float,
    ) -> Iterator[list[bytes]]:
        """Start one watch; the complete lines of each read, until the server ends the
        stream (a list per read, never empty). An error answer raises here; a cut stream
        raises :class:`ConnectionLost` when reached."""
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

    def watch_batches(
        self,
        *,
        namespace: str,
        field_selector: str,
        resource_version: str,
        timeout_s: int,
        inactivity_timeout_s: float,
    ) -> Iterator[list[bytes]]:
        """Start one watch request; the iterator yields the complete lines of each read
        (up to :data:`READ_SIZE` bytes) until the server ends the stream. The request is
        made before this returns, so an error answer raises here, before any line is read.

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
        return _batches(response, inactivity_timeout_s)


def _batches(
    response: urllib3.BaseHTTPResponse, inactivity_timeout_s: float
) -> Iterator[list[bytes]]:
    """The lines of a watch body, a list per read; the end and the errors as
    :meth:`ListWatchApi.watch_batches` says."""
    raw = _raw_body(response)
    try:
        if raw is not None:
            # Chunked, not compressed (what an apiserver answers a watch): read in large
            # blocks and unframe them here (chunked.py). The connection is closed at the
            # end, not reused: the framing was read past urllib3.
            lines = ChunkedLines()
            try:
                while not lines.done:
                    block = raw.read1(READ_SIZE)
                    if not block:
                        raise ConnectionLost(
                            "watch stream cut: the connection closed before its end"
                        )
                    batch = lines.feed(block)
                    if batch:
                        yield batch
                    if lines.error is not None:
                        raise ConnectionLost(f"watch stream cut: {lines.error}")
            except TimeoutError as e:
                raise ConnectionLost(f"watch inactive for {inactivity_timeout_s:g}s") from e
            except OSError as e:  # a reset, a TLS failure
                raise ConnectionLost(f"watch stream cut: {clip(str(e) or type(e).__name__)}") from e
            rest = lines.partial
        else:
            buffer = b""
            try:
                for chunk in response.stream(READ_SIZE, decode_content=True):
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\n")
                    batch = [line for line in complete if line and not line.isspace()]
                    if batch:
                        yield batch
            except urllib3.exceptions.ReadTimeoutError as e:
                raise ConnectionLost(f"watch inactive for {inactivity_timeout_s:g}s") from e
            except urllib3.exceptions.HTTPError as e:
                raise ConnectionLost(f"watch stream cut: {clip(str(e))}") from e
            rest = buffer
    finally:
        if raw is not None:
            response.close()
        response.release_conn()
    if rest.strip():
        # Some servers end the last line without a newline: complete JSON is fine.
        try:
            orjson.loads(rest)
        except orjson.JSONDecodeError:
            raise ConnectionLost("watch stream ended in the middle of a line") from None
        yield [rest]


def _raw_body(response: urllib3.BaseHTTPResponse) -> Any:
    """The socket file under a chunked, uncompressed answer (read past urllib3), else None."""
    if not getattr(response, "chunked", False) or response.headers.get("Content-Encoding"):
        return None
    original = getattr(response, "_fp", None)
    raw = getattr(original, "fp", None)
    return raw if hasattr(raw, "read1") else None


def events_api(api_client: KubeClient, api_version: str = EVENTS_V1) -> ListWatchApi:
    """List and watch Events of ``api_version`` (events.k8s.io/v1 or v1)."""
    return ListWatchApi(api_client, api_version, "events")
