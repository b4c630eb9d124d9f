"""A protocol-faithful fake Kubernetes API server, for protocol tests.

Why a real server and not a mock: kubevents talks to the apiserver through the
official ``kubernetes`` client (urllib3 underneath). Patching the client would
only test our beliefs about it. This fake speaks HTTP(S) on ``127.0.0.1:0``,
so the real client, with its serialisation, TLS, auth headers and error
handling, is what a test exercises (STYLE point 22). It exists next to the
real kube-apiserver tests for the faults a real server cannot produce on
demand: streams cut in the middle of a line, 429 storms, stalls, expiry.

Shape (this module is the server; the data side and the fault script live next to it)::

    FakeApiServer ─── _HttpServer (ThreadingHTTPServer, TLS optional, one thread per connection)
      │                  └─ _Handler: HTTP in/out  ─►  _Exchange: the API semantics of one request
      │                                                   └─ WatchStream: the one watch loop
      ├─ resources  ResourceRegistry: one ApiResource per served (group, version, resource);  ┐
      │             its Codec converts between the stored and the served shape               │ apiserver_
      ├─ store      ObjectStore: ONE store for every resource; a global resourceVersion      │ store.py
      │             counter, the history of changes (watch replay, list snapshots), compaction┘
      ├─ faults     FaultQueue: faults consumed by the next matching requests  ┐ apiserver_
      ├─ requests   RequestLog: every request (method, path, query, headers...)┘ faults.py
      └─ tokens     bearer token -> Principal (user + allow-list); no token: system:anonymous

One request: record -> authenticate (401) -> discovery/health, or route (404/405)
-> take a fault -> authorize (403) -> get | list | watch | create | update | patch | delete.

What is kept from the real apiserver (the parts kubevents relies on):

* Events are stored once, in the core/v1 shape, and served through both
  ``/api/v1`` and ``/apis/events.k8s.io/v1`` with the field mapping of the
  apiserver's conversion (involvedObject<->regarding, message<->note,
  source<->deprecatedSource, count<->deprecatedCount, first/lastTimestamp<->
  deprecatedFirst/LastTimestamp, reportingComponent<->reportingController;
  eventTime, series, action, related, reportingInstance keep their names).
  Output carries Go's zero values (``"eventTime": null``, ``"source": {}``).
* resourceVersion is one global, strictly increasing counter (etcd's revision).
  A list is a consistent snapshot; its ``continue`` token pins the snapshot and
  expires (410) once compaction passes it. List items carry no kind/apiVersion.
* A watch replays the retained history after its resourceVersion (or sends the
  current objects as ADDED when it has none), turns field-selector transitions
  into ADDED/DELETED, sends BOOKMARKs when allowed (the
  ``k8s.io/initial-events-end`` annotation only after ``sendInitialEvents``),
  and ends cleanly after ``timeoutSeconds``. A resourceVersion older than the
  compaction point is "410 Expired" in one of the three ways of ExpiredWatch.
* HTTP writes are validated and use optimistic concurrency (409 Conflict,
  409 AlreadyExists), so two leader-election clients really race.
* The Python API of ObjectStore is the back door, like writing to etcd: no
  authorization, no validation, no faults.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import enum
import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import yaml
from kubernetes import client as k8s

from .apiserver_faults import (
    GO_TRUE,
    STREAM_FAULTS,
    Fault,
    FaultKind,
    FaultQueue,
    Headers,
    RecordedRequest,
    RequestLog,
)
from .apiserver_store import (
    CONTINUE_EXPIRED,
    DEFAULT_MESSAGES,
    DEFAULT_RESOURCES,
    ApiResource,
    ApiStatusError,
    Change,
    Key,
    Obj,
    ObjectFilter,
    ObjectStore,
    ResourceExpired,
    ResourceRegistry,
    Route,
    api_resource,
    bad_request,
    json_patch,
    merge_patch,
    parse_selector,
    status_details,
)
from .certs import Pki

__all__ = [
    "DEFAULT_TOKEN",
    "DEFAULT_USER",
    "ApiResource",
    "ApiStatusError",
    "ExpiredWatch",
    "FakeApiServer",
    "Fault",
    "FaultQueue",
    "ObjectStore",
    "Principal",
    "RecordedRequest",
    "RequestLog",
    "api_resource",
    "make_event",
    "make_object",
]

logger = logging.getLogger(__name__)

DEFAULT_TOKEN = "kubevents-test-token"
DEFAULT_USER = "system:serviceaccount:kubevents:kubevents"
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
LIST_EXPIRED = "The resourceVersion for the provided list is too old."

# ---------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------

Rule = tuple[str, str, str]  # (verb, API group, resource); "*" matches anything


@dataclass(frozen=True)
class Principal:
    """Who a bearer token authenticates as, and what it may do (None: everything)."""

    user: str
    allow: frozenset[Rule] | None = None

    def can(self, verb: str, group: str, resource: str) -> bool:
        if self.allow is None:
            return True
        asked = (verb, group, resource)
        return any(
            all(r in ("*", a) for r, a in zip(rule, asked, strict=True)) for rule in self.allow
        )


ANONYMOUS = Principal("system:anonymous", frozenset())
PUBLIC_PATHS = frozenset({"/version", "/healthz", "/readyz", "/livez"})  # system:public-info-viewer


def forbidden(principal: Principal, verb: str, route: Route) -> ApiStatusError:
    """403 with the apiserver's RBAC message shape."""
    api, name = route.api, route.name
    subject = f'{api.qualified} "{name}"' if name else api.qualified
    scope = f'in the namespace "{route.namespace}"' if route.namespace else "at the cluster scope"
    message = (
        f'{subject} is forbidden: User "{principal.user}" cannot {verb} resource '
        f'"{api.resource}" in API group "{api.group}" {scope}'
    )
    return ApiStatusError(403, message, details=status_details(api, name))


class ExpiredWatch(enum.Enum):
    """How a watch from a compacted resourceVersion is told so."""

    ERROR_EVENT = "error-event"  # 200 and one ERROR event with a 410 Status (the watch cache)
    HTTP_410 = "http-410"  # the watch request itself fails with 410
    EMPTY_200 = "empty-200"  # 200 and a stream that ends at once (Events, kubernetes#104171)


# ---------------------------------------------------------------------------
# Watch streams
# ---------------------------------------------------------------------------


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _Writable(Protocol):
    def write(self, data: bytes, /) -> Any: ...
    def flush(self) -> Any: ...


class ChunkedWriter:
    """Writes one watch stream: a chunk per line, like the apiserver's flush per event."""

    def __init__(self, wfile: _Writable) -> None:
        self._wfile = wfile

    def line(self, event: Mapping[str, Any]) -> None:
        self._chunk(_json(event) + b"\n")

    def half_line(self, event: Mapping[str, Any]) -> None:
        data = _json(event)
        self._chunk(data[: len(data) // 2])

    def end(self) -> None:
        self._wfile.write(b"0\r\n\r\n")
        self._wfile.flush()

    def _chunk(self, data: bytes) -> None:
        self._wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self._wfile.flush()


class StreamCut(Exception):
    """The watch must end by dropping the connection (no final chunk)."""


@dataclass(frozen=True)
class WatchPlan:
    """A watch request, validated before any byte of the answer is sent."""

    filter: ObjectFilter
    start_rv: int | None  # None: send the current objects as ADDED first
    initial_events_end: bool  # sendInitialEvents=true: mark the end with an annotated bookmark
    bookmarks: bool
    timeout: float  # seconds, already scaled


class WatchStream:
    """The one watch implementation, for every resource.

    Initial ADDED events (when asked), then the retained history after the
    cursor, then new changes as they are committed; a BOOKMARK every
    ``bookmark_interval`` when allowed; the stream ends cleanly at the timeout
    or when the server stops. A scripted stream fault fires once
    ``after_events`` events (bookmarks not counted) have been written.
    """

    def __init__(
        self,
        *,
        store: ObjectStore,
        plan: WatchPlan,
        writer: ChunkedWriter,
        bookmark_interval: float,
        fault: Fault | None,
    ) -> None:
        self._store, self._plan, self._writer = store, plan, writer
        self._api = plan.filter.api
        self._bookmark_interval = bookmark_interval
        self._fault = fault
        self._sent = 0

    def run(self) -> None:
        """Write the stream's events until it is over (the caller writes the end);
        raises StreamCut when the connection must be dropped instead."""
        deadline = time.monotonic() + self._plan.timeout
        next_bookmark = time.monotonic() + self._bookmark_interval
        try:
            cursor = self._start()
            while not self._store.closed:
                cursor = self._send_changes(cursor)
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._plan.bookmarks and now >= next_bookmark:
                    self._emit(self._bookmark(cursor), counts=False)
                    next_bookmark = now + self._bookmark_interval
                wake = min(deadline, next_bookmark) if self._plan.bookmarks else deadline
                self._store.wait_for_change(cursor, wake - now)
        except ResourceExpired as e:  # compacted while this watch lagged behind
            self._writer.line({"type": "ERROR", "object": e.status})

    def _start(self) -> int:
        if self._plan.start_rv is not None:
            return self._plan.start_rv
        pairs, rv = self._store.snapshot(self._api.store_key)
        for _, obj in pairs:
            served = self._api.serve(obj)
            if self._plan.filter.matches(served):
                self._emit({"type": "ADDED", "object": served})
        if self._plan.initial_events_end:
            self._emit(self._bookmark(rv, {INITIAL_EVENTS_END: "true"}), counts=False)
        return rv

    def _send_changes(self, cursor: int) -> int:
        self._check_fault(None)
        changes, current = self._store.changes_since(self._api.store_key, cursor)
        for change in changes:
            if event := self._translate(change):
                self._emit(event)
        return current

    def _translate(self, change: Change) -> Obj | None:
        """The watch event a change is for this watcher: a change that moves an
        object into (out of) the selection is ADDED (DELETED), as in the apiserver."""
        served = self._api.serve(change.obj)
        now_in = change.type != "DELETED" and self._plan.filter.matches(served)
        was_in = change.prev is not None and self._plan.filter.matches(self._api.serve(change.prev))
        if now_in:
            return {"type": "MODIFIED" if was_in else "ADDED", "object": served}
        return {"type": "DELETED", "object": served} if was_in else None

    def _bookmark(self, rv: int, annotations: Mapping[str, str] | None = None) -> Obj:
        meta: Obj = {"resourceVersion": str(rv)}
        if annotations:
            meta["annotations"] = dict(annotations)
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": self._api.kind,
                "apiVersion": self._api.api_version,
                "metadata": meta,
            },
        }

    def _emit(self, event: Obj, *, counts: bool = True) -> None:
        self._check_fault(event)
        self._writer.line(event)
        self._sent += counts

    def _check_fault(self, next_line: Obj | None) -> None:
        """Fire the stream fault once its ``after_events`` have been written.

        ``next_line`` is what is about to be written (None between writes): a
        mid-line cut waits for one, to send half of it.
        """
        fault = self._fault
        if fault is None or self._sent < fault.after_events:
            return
        if fault.kind is FaultKind.EXPIRE:
            rv = self._plan.start_rv or 0
            raise ResourceExpired(rv, max(rv + 1, int(self._store.resource_version)))
        if not fault.mid_line:
            raise StreamCut()
        if next_line is not None:
            self._writer.half_line(next_line)
            raise StreamCut()


# ---------------------------------------------------------------------------
# One request: the API semantics
# ---------------------------------------------------------------------------


def _continue_token(rv: int, key: Key) -> str:
    raw = _json({"v": "meta.k8s.io/v1", "rv": rv, "start": "/".join(key) + "\x00"})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_continue(token: str) -> tuple[int, Key]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        namespace, _, name = str(data["start"]).rstrip("\x00").partition("/")
        return int(data["rv"]), (namespace, name)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise bad_request(f"continue key is not valid: {e}") from e


def _int_param(query: Mapping[str, str], name: str) -> int:
    text = query.get(name) or "0"
    if not text.lstrip("-").isdigit():
        raise bad_request(f'{name}: Invalid value: "{text}": must be an integer')
    return int(text)


def _parse_rv(text: str) -> int:
    if not text.isdigit():
        raise bad_request(f'resourceVersion: Invalid value: "{text}": must be a decimal integer')
    return int(text)


class _Exchange:
    """One request and its answer: authentication, routing, faults, authorization, verbs."""

    def __init__(self, fake: FakeApiServer, request: RecordedRequest, io: _Handler) -> None:
        self.fake, self.request, self.io = fake, request, io
        self.query = request.query
        self.principal = ANONYMOUS

    def run(self) -> None:
        try:
            self.principal = self._authenticate()
            route = self.fake.resources.route(self.request.path)
            if route is None:
                self._non_resource()
                return
            verb = self._verb(route)
            fault = self.fake.faults.take(self.request)
            if fault is not None and self._answered_by(fault, route, verb):
                return
            if not self.principal.can(verb, route.api.group, route.api.resource):
                raise forbidden(self.principal, verb, route)
            self._serve(route, verb, fault if fault and fault.kind in STREAM_FAULTS else None)
        except ApiStatusError as e:
            self.io.send_status(e)

    # -- before the verb ------------------------------------------------------

    def _authenticate(self) -> Principal:
        header = self.request.headers.get("Authorization", "")
        if not header:
            if self.fake.anonymous:
                return ANONYMOUS
            raise ApiStatusError(401, "Unauthorized")
        scheme, _, token = header.partition(" ")
        principal = self.fake.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if principal is None:
            raise ApiStatusError(401, "Unauthorized")
        return principal

    def _verb(self, route: Route) -> str:
        method, named = self.request.method, bool(route.name)
        verb = {
            ("GET", True): "get",
            ("GET", False): "watch" if self.request.watch else "list",
            ("POST", False): "create",
            ("PUT", True): "update",
            ("PATCH", True): "patch",
            ("DELETE", True): "delete",
            ("DELETE", False): "deletecollection",
        }.get((method, named), "")
        creates_cluster_wide = verb == "create" and route.api.namespaced and not route.namespace
        if verb not in route.api.verbs or creates_cluster_wide:
            raise ApiStatusError(
                405,
                "the server does not allow this method on the requested resource (fake apiserver: "
                f"{route.api.qualified} serves {sorted(route.api.verbs)}; widen ApiResource.verbs "
                "to allow more)",
                details=status_details(route.api, route.name),
            )
        return verb

    def _answered_by(self, fault: Fault, route: Route, verb: str) -> bool:
        """Apply a request-level fault; True when it has answered the request."""
        if fault.kind is FaultKind.DELAY:
            self.fake.stopping.wait(fault.seconds or 0.0)
        elif fault.kind is FaultKind.STATUS:
            raise self._fault_status(fault, route, verb)
        elif fault.kind is FaultKind.EMPTY_200:
            self.io.send_empty_200(stream=verb == "watch")
            return True
        elif fault.kind is FaultKind.STALL:
            self.io.stall(self.fake.stopping, fault.seconds, stream=verb == "watch")
            return True
        return False

    def _fault_status(self, fault: Fault, route: Route, verb: str) -> ApiStatusError:
        if fault.code == 403 and fault.message is None:
            return forbidden(self.principal, verb, route)
        message = fault.message or DEFAULT_MESSAGES.get(fault.code, f"injected HTTP {fault.code}")
        return ApiStatusError(fault.code, message, retry_after=fault.retry_after)

    # -- discovery, version, health ---------------------------------------------

    def _non_resource(self) -> None:
        path = self.request.path.rstrip("/") or "/"
        if path in PUBLIC_PATHS - {"/version"}:
            self.io.send_text(200, "ok")
            return
        document = self.fake.version_info() if path == "/version" else self._discovery(path)
        if document is None:
            raise ApiStatusError(
                404,
                f"the server could not find the requested resource (fake apiserver: no route for "
                f"{self.request.method} {self.request.path}; declare it with "
                "FakeApiServer.add_resource(ApiResource(group, version, resource, kind)) or in "
                "DEFAULT_RESOURCES in tests/fakes/apiserver.py)",
            )
        if self.principal is ANONYMOUS and path not in PUBLIC_PATHS:
            raise ApiStatusError(
                403, f'forbidden: User "{ANONYMOUS.user}" cannot get path "{path}"', details={}
            )
        self.io.send_json(200, document)

    def _discovery(self, path: str) -> Obj | None:
        resources = list(self.fake.resources)
        if path == "/api":
            address = f"127.0.0.1:{self.fake.port}"
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": address}
                ],
            }
        group_versions = sorted({(a.group, a.version) for a in resources if a.group})
        if path == "/apis":
            groups = sorted({g for g, _ in group_versions})
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [_api_group(g, group_versions) for g in groups],
            }
        for group, _ in group_versions:
            if path == f"/apis/{group}":
                return {"kind": "APIGroup", "apiVersion": "v1", **_api_group(group, group_versions)}
        served = [a for a in resources if a.prefix == path]
        if not served:
            return None
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": served[0].api_version,
            "resources": [
                {
                    "name": a.resource,
                    "singularName": a.kind.lower(),
                    "namespaced": a.namespaced,
                    "kind": a.kind,
                    "verbs": sorted(a.verbs),
                }
                for a in served
            ],
        }

    # -- the verbs ----------------------------------------------------------------

    def _serve(self, route: Route, verb: str, stream_fault: Fault | None) -> None:
        store, api = self.fake.store, route.api
        if verb == "watch":
            self._watch(route, stream_fault)
        elif verb == "list":
            self._list(route)
        elif verb == "get":
            self.io.send_json(200, store.get(route.name, namespace=route.namespace, resource=api))
        elif verb == "create":
            body = self._body(api)
            if errors := api.codec.validate_create(body):
                raise _invalid(api, body, errors)
            self.io.send_json(201, store.create(body, resource=api, namespace=route.namespace))
        elif verb == "update":
            body = self._body(api)
            if (body.get("metadata") or {}).get("name") != route.name:
                raise bad_request("the name of the object does not match the name on the URL")
            self.io.send_json(200, store.update(body, resource=api, namespace=route.namespace))
        elif verb == "patch":
            self.io.send_json(200, self._patch(route))
        else:
            self._delete(route)

    def _filter(self, route: Route) -> ObjectFilter:
        return ObjectFilter(
            route.api,
            route.namespace,
            parse_selector(self.query.get("fieldSelector", ""), labels=False),
            parse_selector(self.query.get("labelSelector", ""), labels=True),
        )

    def _list(self, route: Route) -> None:
        api, flt = route.api, self._filter(route)
        pairs, rv, start = self._list_snapshot(api)
        matching = [
            (key, served)
            for key, obj in pairs
            if key > start and flt.matches(served := api.serve_item(obj))
        ]
        limit = _int_param(self.query, "limit")
        page = matching[:limit] if limit > 0 else matching
        meta: Obj = {"resourceVersion": str(rv)}
        if len(page) < len(matching):
            meta["continue"] = _continue_token(rv, page[-1][0])
            if not flt.has_selectors:
                meta["remainingItemCount"] = len(matching) - len(page)
        self.io.send_json(
            200,
            {
                "kind": f"{api.kind}List",
                "apiVersion": api.api_version,
                "metadata": meta,
                "items": [s for _, s in page],
            },
        )

    def _list_snapshot(self, api: ApiResource) -> tuple[list[tuple[Key, Obj]], int, Key]:
        """The snapshot a list reads: pinned by ``continue``, exact, or the newest;
        and the key after which the page starts."""
        rv_text = self.query.get("resourceVersion", "")
        if token := self.query.get("continue", ""):
            if rv_text:
                raise bad_request("specifying resource version is not allowed when using continue")
            rv, start = _parse_continue(token)
            return (*self._snapshot(api, rv, CONTINUE_EXPIRED), start)
        if self.query.get("resourceVersionMatch") == "Exact":
            rv = _parse_rv(rv_text)
            self._wait_fresh(rv)
            return (*self._snapshot(api, rv, LIST_EXPIRED), ("", ""))
        if rv_text not in ("", "0"):
            self._wait_fresh(_parse_rv(rv_text))
        return (*self._snapshot(api, None, LIST_EXPIRED), ("", ""))

    def _snapshot(
        self, api: ApiResource, rv: int | None, expired: str
    ) -> tuple[list[tuple[Key, Obj]], int]:
        try:
            return self.fake.store.snapshot(api.store_key, rv)
        except ResourceExpired as e:
            raise ApiStatusError(410, expired, reason="Expired") from e

    def _wait_fresh(self, rv: int) -> None:
        """A resourceVersion from the future: wait briefly, then 504 like the watch cache."""
        store = self.fake.store
        if not store.wait_for_rv(rv, self.fake.fresh_wait):
            raise ApiStatusError(
                504,
                f"Too large resource version: {rv}, current: {store.resource_version}",
                details={
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ]
                },
                retry_after=1,
            )

    def _watch(self, route: Route, fault: Fault | None) -> None:
        plan = self._watch_plan(route)
        if plan.start_rv is not None:
            self._wait_fresh(plan.start_rv)
            if plan.start_rv < self.fake.store.compacted:
                self._expired(ResourceExpired(plan.start_rv, self.fake.store.compacted))
                return
        writer = self.io.start_stream()
        stream = WatchStream(
            store=self.fake.store,
            plan=plan,
            writer=writer,
            bookmark_interval=self.fake.bookmark_interval,
            fault=fault,
        )
        with self.fake.watching():  # over before the client can see the end of the stream
            stream.run()
        writer.end()

    def _watch_plan(self, route: Route) -> WatchPlan:
        q = self.query
        bookmarks = q.get("allowWatchBookmarks", "") in GO_TRUE
        rv_text = q.get("resourceVersion", "")
        initial = q.get("sendInitialEvents", "") in GO_TRUE
        if initial and not (bookmarks and q.get("resourceVersionMatch") == "NotOlderThan"):
            raise _invalid(
                route.api,
                {},
                [
                    "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless "
                    "resourceVersionMatch is NotOlderThan and allowWatchBookmarks is true"
                ],
            )
        if initial and rv_text not in ("", "0"):
            self._wait_fresh(_parse_rv(rv_text))
        start_rv = None if initial or rv_text in ("", "0") else _parse_rv(rv_text)
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else self.fake.watch_timeout
        return WatchPlan(
            self._filter(route), start_rv, initial, bookmarks, timeout * self.fake.timeout_scale
        )

    def _expired(self, error: ResourceExpired) -> None:
        mode = self.fake.expired_watch
        if mode is ExpiredWatch.HTTP_410:
            raise error
        writer = self.io.start_stream()
        if mode is ExpiredWatch.ERROR_EVENT:
            writer.line({"type": "ERROR", "object": error.status})
        writer.end()

    def _patch(self, route: Route) -> Obj:
        content_type = self.request.headers.get("Content-Type", "").split(";")[0].strip()
        patch = self._json_body()
        if content_type == "application/json-patch+json" and isinstance(patch, list):
            mutate: Callable[[Obj], Obj] = lambda served: json_patch(served, patch)  # noqa: E731
        elif content_type in (
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ) and isinstance(patch, dict):
            mutate = lambda served: merge_patch(served, patch)  # noqa: E731
        else:
            raise ApiStatusError(
                415,
                f"the body of the request was in an unknown format - "
                f"accepted media types include: application/json-patch+json, "
                f"application/merge-patch+json, "
                f"application/strategic-merge-patch+json (got {content_type!r})",
            )
        return self.fake.store.patch(
            route.name, mutate, namespace=route.namespace, resource=route.api
        )

    def _delete(self, route: Route) -> None:
        options = self._json_body()
        preconditions = options.get("preconditions") if isinstance(options, dict) else None
        rv = (preconditions or {}).get("resourceVersion")
        deleted = self.fake.store.delete(
            route.name, namespace=route.namespace, resource=route.api, resource_version=rv
        )
        self.io.send_json(
            200,
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": {
                    **status_details(route.api, route.name),
                    "uid": deleted["metadata"].get("uid", ""),
                },
            },
        )

    def _json_body(self) -> Any:
        try:
            return self.request.json()
        except ValueError as e:
            raise bad_request(f"the body of the request was in an unknown format: {e}") from e

    def _body(self, api: ApiResource) -> Obj:
        body = self._json_body()
        if not isinstance(body, dict):
            raise bad_request("the body of the request must be a JSON object")
        for key, expected in (("apiVersion", api.api_version), ("kind", api.kind)):
            if body.get(key) not in (None, "", expected):
                raise bad_request(
                    f"the {key} in the data ({body[key]}) does not match the expected {key} ({expected})"
                )
        return body


def _invalid(api: ApiResource, body: Mapping[str, Any], errors: list[str]) -> ApiStatusError:
    name = (body.get("metadata") or {}).get("name", "")
    causes = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    group = f".{api.group}" if api.group else ""
    return ApiStatusError(
        422,
        f'{api.kind}{group} "{name}" is invalid: {causes}',
        details={**status_details(api, name), "kind": api.kind},
    )


def _api_group(group: str, group_versions: list[tuple[str, str]]) -> Obj:
    versions = [
        {"groupVersion": f"{group}/{v}", "version": v} for g, v in group_versions if g == group
    ]
    return {"name": group, "versions": versions, "preferredVersion": versions[0]}


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """HTTP in and out; the API semantics live in :class:`_Exchange`."""

    protocol_version = "HTTP/1.1"  # keep-alive, and chunked watch streams
    server: _HttpServer
    recorded: RecordedRequest

    def do_GET(self) -> None:
        request = self._read_request()
        self.recorded = request
        self.server.fake.requests.record(request)
        try:
            _Exchange(self.server.fake, request, self).run()
        except StreamCut:
            self.abort()
        except OSError as e:  # the client went away
            logger.debug("fake apiserver: connection lost: %s", e)
            self.close_connection = True
        except Exception as e:  # a bug in the fake: say so to the client, not just in a log
            logger.exception("fake apiserver: %s %s failed", request.method, request.path)
            if request.status is not None:
                raise
            self.send_status(ApiStatusError(500, f"fake apiserver bug: {e!r} (see the test log)"))

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("fake apiserver: " + format, *args)

    def _read_request(self) -> RecordedRequest:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        return RecordedRequest(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=Headers(self.headers.items()),
            body=self.rfile.read(length) if length else b"",
        )

    # -- answers --------------------------------------------------------------------

    def send_json(self, code: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self._send(code, _json(body), "application/json", headers or {})

    def send_text(self, code: int, text: str) -> None:
        self._send(code, text.encode(), "text/plain; charset=utf-8", {})

    def send_status(self, error: ApiStatusError) -> None:
        headers = {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}
        self.send_json(error.code, error.status, headers)

    def send_empty_200(self, *, stream: bool) -> None:
        if stream:
            self.start_stream().end()
        else:
            self._send(200, b"", "application/json", {})

    def start_stream(self) -> ChunkedWriter:
        self.recorded.status = 200  # before the client can see the answer
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        return ChunkedWriter(self.wfile)

    def stall(self, stopping: threading.Event, seconds: float | None, *, stream: bool) -> None:
        writer = self.start_stream() if stream else None
        if stopping.wait(seconds) or writer is None:
            self.abort()
        else:
            writer.end()

    def abort(self) -> None:
        """Drop the connection now, mid-response if need be."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _send(self, code: int, data: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        self.recorded.status = code  # before the client can see the answer
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class _HttpServer(ThreadingHTTPServer):
    """A threading server that knows its connections, so :meth:`FakeApiServer.stop`
    can close them (idle keep-alive ones included) and join every thread."""

    daemon_threads = True

    def __init__(self, fake: FakeApiServer, ssl_context: ssl.SSLContext | None) -> None:
        self.fake = fake
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._conn_threads: list[threading.Thread] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"fake-apiserver-{client_address[1]}",
            daemon=True,
        )
        with self._lock:
            self._conn_threads = [t for t in self._conn_threads if t.is_alive()] + [thread]
        thread.start()

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn = request
        if self._ssl_context is not None:
            conn = self._ssl_context.wrap_socket(
                request, server_side=True, do_handshake_on_connect=False
            )
        with self._lock:
            self._connections.add(conn)
        try:
            if conn is not request:  # TLS handshake in the connection's thread, not the accept loop
                conn.do_handshake()
            _Handler(conn, client_address, self)
        finally:
            with self._lock:
                self._connections.discard(conn)
            if conn is not request:
                conn.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # resets, broken pipes, failed TLS handshakes
            logger.debug("fake apiserver: connection from %s: %s", client_address, error)
        else:
            logger.exception("fake apiserver: request from %s failed", client_address)

    def close_connections(self) -> None:
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def join_threads(self, deadline: float) -> list[threading.Thread]:
        """Join the connection threads; returns those still alive at ``deadline``."""
        with self._lock:
            threads = list(self._conn_threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return [t for t in threads if t.is_alive()]


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class FakeApiServer:
    """A fake kube-apiserver on ``127.0.0.1:0`` (HTTPS when ``tls`` is given).

    Use it as a context manager, or :meth:`start` / :meth:`stop`. Knobs that
    tests may change at any time: ``bookmark_interval``, ``watch_timeout``,
    ``timeout_scale``, ``expired_watch``, ``fresh_wait``, ``anonymous``.
    """

    def __init__(
        self,
        *,
        tls: Pki | None = None,
        token: str = DEFAULT_TOKEN,
        user: str = DEFAULT_USER,
        resources: Iterable[ApiResource] = DEFAULT_RESOURCES,
        bookmark_interval: float = 60.0,
        watch_timeout: float = 1800.0,
        timeout_scale: float = 1.0,
        expired_watch: ExpiredWatch = ExpiredWatch.ERROR_EVENT,
        fresh_wait: float = 0.2,
        anonymous: bool = True,
    ) -> None:
        self.resources = ResourceRegistry(resources)
        self.store = ObjectStore(self.resources)
        self.faults = FaultQueue()
        self.requests = RequestLog()
        self.token = token
        self.tokens: dict[str, Principal] = {token: Principal(user)}
        self.tls = tls
        self.bookmark_interval = bookmark_interval
        """Seconds between BOOKMARK events on watches that allow them."""
        self.watch_timeout = watch_timeout
        """Seconds a watch without timeoutSeconds lasts (the apiserver picks 30-60 min)."""
        self.timeout_scale = timeout_scale
        """Multiplies timeoutSeconds, so a test can ask for 1 s and wait 0.1 s."""
        self.expired_watch = expired_watch
        self.fresh_wait = fresh_wait
        """Seconds to wait for a resourceVersion from the future before the 504."""
        self.anonymous = anonymous
        """Requests without a token are system:anonymous (else 401), as with --anonymous-auth."""
        self.stopping = threading.Event()
        self._active_watches = 0
        self._watch_lock = threading.Lock()
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeApiServer:
        context = None
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.tls.cert_file, self.tls.key_file)
        self._httpd = _HttpServer(self, context)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="fake-apiserver",
            daemon=True,
        )
        self._thread.start()
        logger.info("fake apiserver listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: watches end, open connections are closed, threads joined.

        Raises:
            RuntimeError: a connection thread was still alive after ``timeout``.
        """
        if self._httpd is None:
            return
        deadline = time.monotonic() + timeout
        self.stopping.set()
        self.store.close()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(max(deadline - time.monotonic(), 0.0))
        left = self._httpd.join_threads(deadline)
        self._httpd = None
        if left:
            raise RuntimeError(f"fake apiserver threads still running: {[t.name for t in left]}")

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- where and how to connect -----------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the fake apiserver is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ca_file(self) -> str | None:
        return str(self.tls.ca_file) if self.tls else None

    def kube_config(self, token: str | None = None) -> k8s.Configuration:
        """A client Configuration for this server (urllib3 retries off: tests count requests)."""
        config = k8s.Configuration(host=self.url)
        config.api_key = {"BearerToken": token or self.token}
        config.api_key_prefix = {"BearerToken": "Bearer"}
        if self.ca_file:
            config.ssl_ca_cert = self.ca_file
        config.retries = False
        return config

    def write_kubeconfig(
        self, path: str | Path, token: str | None = None, namespace: str = "default"
    ) -> Path:
        """Write a kubeconfig file with one context, ``fake``, for this server."""
        cluster: Obj = {"server": self.url}
        if self.ca_file:
            cluster["certificate-authority"] = self.ca_file
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake", "user": {"token": token or self.token}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path = Path(path)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    # -- knobs ------------------------------------------------------------------------------

    def add_token(self, token: str, *, user: str, allow: Iterable[Rule] | None = None) -> None:
        """Accept ``token`` as ``user``; ``allow`` lists (verb, group, resource) rules."""
        self.tokens[token] = Principal(user, None if allow is None else frozenset(allow))

    def add_resource(self, api: ApiResource) -> None:
        """Serve one more resource (list/watch/get, and writes if ``api.verbs`` say so)."""
        self.resources.add(api)

    def compact(self, rv: int | str) -> None:
        """Drop the history at or below ``rv`` (see :meth:`ObjectStore.compact`)."""
        self.store.compact(rv)

    @property
    def active_watches(self) -> int:
        """Watch streams being served right now."""
        return self._active_watches

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        with self._watch_lock:
            self._active_watches += 1
        try:
            yield
        finally:
            with self._watch_lock:
                self._active_watches -= 1

    @staticmethod
    def version_info() -> Obj:
        return {
            "major": "1",
            "minor": "34",
            "gitVersion": "v1.34.0-fake",
            "gitCommit": "fake",
            "gitTreeState": "clean",
            "buildDate": "2025-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }


# ---------------------------------------------------------------------------
# Test data
# ---------------------------------------------------------------------------


def make_event(
    name: str,
    *,
    namespace: str = "default",
    reason: str = "Started",
    message: str = "Started container app",
    event_type: str = "Normal",
    kind: str = "Pod",
    object_name: str = "web-1",
    object_api_version: str = "v1",
    object_uid: str = "",
    count: int = 1,
    first_timestamp: str | None = "2024-01-01T00:00:00Z",
    last_timestamp: str | None = None,
    event_time: str | None = None,
    component: str = "kubelet",
    host: str = "",
    reporting_instance: str = "",
    action: str = "",
    series: Mapping[str, Any] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    """A core/v1 Event, for ``fake.store.create(make_event("e1"))``."""
    event: Obj = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": name,
            "namespace": namespace,
            **({"labels": dict(labels)} if labels else {}),
        },
        "involvedObject": {
            "kind": kind,
            "namespace": namespace,
            "name": object_name,
            "apiVersion": object_api_version,
            "uid": object_uid or f"uid-{object_name}",
        },
        "reason": reason,
        "message": message,
        "type": event_type,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": first_timestamp,
        "lastTimestamp": last_timestamp or first_timestamp,
        "count": count,
        "eventTime": event_time,
        "reportingComponent": component,
        "reportingInstance": reporting_instance or host,
    }
    if action:
        event["action"] = action
    if series:
        event["series"] = dict(series)
    return event


def make_object(
    kind: str,
    name: str,
    *,
    namespace: str | None = "default",
    api_version: str = "v1",
    **fields: Any,
) -> Obj:
    """Any other object (Pod, ReplicaSet, Node, ...); ``fields`` become top-level fields."""
    meta: Obj = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {**meta, **fields.pop("metadata", {})},
        **fields,
    }
