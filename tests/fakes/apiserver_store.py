"""The fake apiserver's data side: resources, their shapes, selectors and the one store.

Pure and synchronous (a lock, no sockets), so that the HTTP layer in
``apiserver.py`` stays thin, and so that tests can drive the store directly.

* ``ApiStatusError`` / ``status_body``: failures as Kubernetes ``Status`` objects.
* ``Codec``: stored shape <-> served shape. Events are stored once, as core/v1;
  ``EventCodec`` gives the events.k8s.io/v1 view with the apiserver's field
  mapping, and both are written with Go's zero values.
* ``ApiResource`` / ``ResourceRegistry``: what is served where; path routing.
* ``parse_selector`` / ``ObjectFilter``: fieldSelector and simple labelSelector.
* ``ObjectStore``: every object, one global resourceVersion, the change history
  (watch replay, list snapshots), compaction.
* ``merge_patch`` / ``json_patch``: the PATCH flavours the client sends.
"""

from __future__ import annotations

import bisect
import copy
import logging
import re
import secrets
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

# ---------------------------------------------------------------------------
# Status bodies and errors
# ---------------------------------------------------------------------------

REASONS: Mapping[int, str] = MappingProxyType(
    {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        405: "MethodNotAllowed",
        409: "Conflict",
        410: "Expired",
        415: "UnsupportedMediaType",
        422: "Invalid",
        429: "TooManyRequests",
        500: "InternalError",
        503: "ServiceUnavailable",
        504: "Timeout",
    }
)

DEFAULT_MESSAGES: Mapping[int, str] = MappingProxyType(
    {
        401: "Unauthorized",
        409: "Operation cannot be fulfilled: the object has been modified",
        410: "too old resource version",
        429: "Too many requests, please try again later.",
        500: "Internal error occurred: injected by the fake apiserver",
        503: "the server is currently unable to handle the request",
        504: "Timeout: request did not complete within the allotted timeout",
    }
)

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. "
    "You can start a new list without the continue parameter."
)


def status_body(
    code: int, message: str, *, reason: str | None = None, details: Mapping[str, Any] | None = None
) -> Obj:
    """A ``Status`` object as the apiserver writes it for a failed request."""
    body: Obj = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, ""),
    }
    if details:
        body["details"] = dict(details)
    body["code"] = code
    return body


class ApiStatusError(Exception):
    """A request failed with a Kubernetes ``Status``; the HTTP layer replies with it.

    The store's Python API raises it too (NotFound, Conflict, AlreadyExists, Expired).
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after
        if retry_after is not None:
            details = {**(details or {}), "retryAfterSeconds": retry_after}
        self.status = status_body(code, message, reason=reason, details=details)


class ResourceExpired(ApiStatusError):
    """The resourceVersion asked for is older than the compaction point."""

    def __init__(self, rv: int, oldest: int) -> None:
        super().__init__(410, f"too old resource version: {rv} ({oldest})", reason="Expired")


def bad_request(message: str) -> ApiStatusError:
    return ApiStatusError(400, message)


# ---------------------------------------------------------------------------
# Codecs: stored shape <-> served shape
# ---------------------------------------------------------------------------


class Codec(Protocol):
    """Converts one resource between its stored shape and the shape one API version serves."""

    def to_api(self, stored: Obj) -> Obj:
        """The served shape (a new object) without kind/apiVersion."""
        ...

    def from_api(self, served: Mapping[str, Any]) -> Obj:
        """The stored shape (a new object) of a served-shape object."""
        ...

    def validate_create(self, served: Mapping[str, Any]) -> list[str]:
        """Validation errors for an object created through this API version."""
        ...


class PlainCodec:
    """Served shape == stored shape: everything but Events."""

    def to_api(self, stored: Obj) -> Obj:
        return copy.deepcopy(stored)

    def from_api(self, served: Mapping[str, Any]) -> Obj:
        return {k: copy.deepcopy(v) for k, v in served.items() if k not in ("kind", "apiVersion")}

    def validate_create(self, served: Mapping[str, Any]) -> list[str]:
        return []


_EMPTY: tuple[Any, ...] = (None, "", 0, {}, [])


@dataclass(frozen=True)
class GoFields:
    """How Go's encoding/json writes a struct: some fields always (zero value when
    unset: ``null`` for a time, ``{}`` for a struct, ``""``), others dropped when
    empty (``omitempty``). Clients see exactly this, so the fake writes it too."""

    always: Mapping[str, Any]
    omitempty: frozenset[str]

    def shape(self, obj: Obj) -> Obj:
        out = {k: v for k, v in obj.items() if not (k in self.omitempty and v in _EMPTY)}
        for name, zero in self.always.items():
            out.setdefault(name, copy.deepcopy(zero))
        return out


# (stored core/v1 name, events.k8s.io/v1 name), in the order Go writes the fields.
EVENT_FIELDS: tuple[tuple[str, str], ...] = (
    ("metadata", "metadata"),
    ("eventTime", "eventTime"),
    ("series", "series"),
    ("reportingComponent", "reportingController"),
    ("reportingInstance", "reportingInstance"),
    ("action", "action"),
    ("reason", "reason"),
    ("involvedObject", "regarding"),
    ("related", "related"),
    ("message", "note"),
    ("type", "type"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
)

CORE_EVENT_JSON = GoFields(
    always={
        "involvedObject": {},
        "source": {},
        "firstTimestamp": None,
        "lastTimestamp": None,
        "eventTime": None,
        "reportingComponent": "",
        "reportingInstance": "",
    },
    omitempty=frozenset({"reason", "message", "count", "type", "series", "action", "related"}),
)
EVENTS_V1_JSON = GoFields(
    always={
        "eventTime": None,
        "regarding": {},
        "deprecatedSource": {},
        "deprecatedFirstTimestamp": None,
        "deprecatedLastTimestamp": None,
    },
    omitempty=frozenset(
        {
            "series",
            "reportingController",
            "reportingInstance",
            "action",
            "reason",
            "related",
            "note",
            "type",
            "deprecatedCount",
        }
    ),
)

# events.k8s.io/v1 insists on these for new Events; core/v1 stays lenient (legacy).
EVENTS_V1_REQUIRED = ("eventTime", "reportingController", "reportingInstance", "action", "reason")


@dataclass(frozen=True)
class EventCodec:
    """Events in one API version. ``fields`` pairs stored names with served names;
    ``strict`` applies the events.k8s.io/v1 create validation."""

    fields: tuple[tuple[str, str], ...]
    json_fields: GoFields
    strict: bool = False

    def to_api(self, stored: Obj) -> Obj:
        served = {out: copy.deepcopy(stored[name]) for name, out in self.fields if name in stored}
        return self.json_fields.shape(served)

    def from_api(self, served: Mapping[str, Any]) -> Obj:
        return {name: copy.deepcopy(served[out]) for name, out in self.fields if out in served}

    def validate_create(self, served: Mapping[str, Any]) -> list[str]:
        if not self.strict:
            return []
        errors = [f"{name}: Required value" for name in EVENTS_V1_REQUIRED if not served.get(name)]
        if served.get("type") not in ("Normal", "Warning"):
            errors.append(
                f'type: Unsupported value: "{served.get("type", "")}": '
                'supported values: "Normal", "Warning"'
            )
        return errors


PLAIN = PlainCodec()
CORE_EVENTS = EventCodec(tuple((name, name) for name, _ in EVENT_FIELDS), CORE_EVENT_JSON)
EVENTS_V1 = EventCodec(EVENT_FIELDS, EVENTS_V1_JSON, strict=True)

# ---------------------------------------------------------------------------
# Resources and routes
# ---------------------------------------------------------------------------

READ_VERBS = frozenset({"get", "list", "watch"})
WRITE_VERBS = READ_VERBS | {"create", "update", "patch", "delete"}


@dataclass(frozen=True, eq=False)
class ApiResource:
    """One served resource: where it lives in the URL space and how it is shaped.

    Resources with the same ``store_key`` (default: the resource name) are one
    set of objects, e.g. Events in ``v1`` and ``events.k8s.io/v1``.
    ``field_labels`` maps the field-selector labels the apiserver supports for
    the resource (besides metadata.name/namespace) to dotted paths in the
    served object.
    """

    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool = True
    verbs: frozenset[str] = READ_VERBS
    codec: Codec = PLAIN
    field_labels: Mapping[str, str] = field(default_factory=dict)
    store_key: str = ""

    def __post_init__(self) -> None:
        if not self.store_key:
            object.__setattr__(self, "store_key", self.resource)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``leases.coordination.k8s.io``, as the apiserver names resources in messages."""
        return f"{self.resource}.{self.group}" if self.group else self.resource

    @property
    def prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"

    def serve(self, stored: Obj) -> Obj:
        """The object as this API version returns it."""
        return {"kind": self.kind, "apiVersion": self.api_version, **self.codec.to_api(stored)}

    def serve_item(self, stored: Obj) -> Obj:
        """A list item: like the real server, without kind and apiVersion."""
        return self.codec.to_api(stored)

    def accept(self, served: Mapping[str, Any]) -> Obj:
        """The stored shape of an object written through this API version."""
        return self.codec.from_api(served)

    def field_value(self, served: Mapping[str, Any], label: str) -> str:
        """The value of a field-selector label in a served object ("" when unset)."""
        path = {
            "metadata.name": "metadata.name",
            "metadata.namespace": "metadata.namespace",
            **self.field_labels,
        }.get(label)
        if path is None:
            raise bad_request(f'field label not supported: {label} (resource "{self.qualified}")')
        value: Any = served
        for part in path.split("."):
            value = value.get(part) if isinstance(value, Mapping) else None
        if isinstance(value, bool):
            return "true" if value else "false"
        return "" if value is None else str(value)


def api_resource(api_version: str, resource: str, kind: str, **options: Any) -> ApiResource:
    """``api_resource("apps/v1", "replicasets", "ReplicaSet")``: an ApiResource from an apiVersion."""
    group, _, version = api_version.rpartition("/")
    return ApiResource(group, version, resource, kind, **options)


def _selectable(*paths: str) -> dict[str, str]:
    """Field labels that are their own path in the object."""
    return {path: path for path in paths}


_REFERENCE = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
CORE_EVENT_LABELS = {
    **_selectable(*(f"involvedObject.{f}" for f in _REFERENCE), "reason", "reportingComponent"),
    **_selectable("type"),
    "source": "source.component",
}
EVENTS_V1_LABELS = _selectable(
    *(f"regarding.{f}" for f in _REFERENCE), "reason", "reportingController", "type"
)
POD_LABELS = _selectable(
    "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
    "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
)  # fmt: skip

DEFAULT_RESOURCES: tuple[ApiResource, ...] = (
    api_resource("v1", "events", "Event", verbs=WRITE_VERBS, codec=CORE_EVENTS,
                 field_labels=CORE_EVENT_LABELS),
    api_resource("events.k8s.io/v1", "events", "Event", verbs=WRITE_VERBS, codec=EVENTS_V1,
                 field_labels=EVENTS_V1_LABELS),
    api_resource("coordination.k8s.io/v1", "leases", "Lease", verbs=WRITE_VERBS),
    api_resource("v1", "pods", "Pod", field_labels=POD_LABELS),
    api_resource("v1", "nodes", "Node", namespaced=False,
                 field_labels=_selectable("spec.unschedulable")),
    api_resource("apps/v1", "replicasets", "ReplicaSet"),
    api_resource("apps/v1", "deployments", "Deployment"),
    api_resource("apps/v1", "statefulsets", "StatefulSet"),
    api_resource("apps/v1", "daemonsets", "DaemonSet"),
    api_resource("batch/v1", "jobs", "Job", field_labels=_selectable("status.successful")),
    api_resource("batch/v1", "cronjobs", "CronJob"),
)  # fmt: skip

ResourceRef = ApiResource | str | None  # an ApiResource, a resource name, or None: from the object


@dataclass(frozen=True)
class Route:
    """A request path resolved to a resource: collection when ``name`` is ""."""

    api: ApiResource
    namespace: str
    name: str


class ResourceRegistry:
    """The served resources, by URL prefix and by object type."""

    def __init__(self, resources: Iterable[ApiResource]) -> None:
        self._by_path: dict[tuple[str, str], ApiResource] = {}
        for api in resources:
            self.add(api)

    def add(self, api: ApiResource) -> None:
        self._by_path[(api.prefix, api.resource)] = api

    def __iter__(self) -> Iterator[ApiResource]:
        return iter(list(self._by_path.values()))

    def named(self, resource: str) -> ApiResource:
        """The first registered resource of that name (core before other groups)."""
        for api in self:
            if api.resource == resource:
                return api
        raise KeyError(f"the fake apiserver serves no resource named {resource!r}")

    def for_object(self, obj: Mapping[str, Any]) -> ApiResource | None:
        """The resource serving objects of this apiVersion and kind."""
        for api in self:
            if (api.api_version, api.kind) == (obj.get("apiVersion"), obj.get("kind")):
                return api
        return None

    def route(self, path: str) -> Route | None:
        """The resource a request path names, or None (discovery, or unknown)."""
        split = _split_api_path(path)
        if split is None or not split[1]:
            return None
        prefix, rest = split
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 2:
            return None
        api = self._by_path.get((prefix, rest[0]))
        name = rest[1] if len(rest) == 2 else ""
        if api is None or (namespace and not api.namespaced):
            return None
        if api.namespaced and name and not namespace:
            return None
        return Route(api, namespace, name)


def _split_api_path(path: str) -> tuple[str, list[str]] | None:
    """``/apis/g/v/a/b`` -> (``/apis/g/v``, [a, b]); None outside /api and /apis."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0] == "api":
        return f"/api/{parts[1]}", parts[2:]
    if len(parts) >= 3 and parts[0] == "apis":
        return f"/apis/{parts[1]}/{parts[2]}", parts[3:]
    return None


# ---------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One term of a field or label selector: ``key=value``, ``key!=value``, ``key``, ``!key``."""

    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, actual: str | None) -> bool:
        if self.op == "exists":
            return actual is not None
        if self.op == "!exists":
            return actual is None
        equal = (actual or "") == self.value
        return equal if self.op == "=" else not equal


_TERM = re.compile(r"^\s*(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!,]*?)\s*$")
_EXISTS = re.compile(r"^\s*(?P<neg>!?)\s*(?P<key>[A-Za-z0-9._/-]+)\s*$")


def parse_selector(text: str, *, labels: bool) -> tuple[Requirement, ...]:
    """Parse a fieldSelector (``labels=False``) or a simple labelSelector.

    Raises:
        ApiStatusError: 400 for syntax the fake (or the apiserver) does not accept.
    """
    terms: list[Requirement] = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        if m := _TERM.match(term):
            op = "!=" if m["op"] == "!=" else "="
            terms.append(Requirement(m["key"], op, m["value"]))
        elif labels and (m := _EXISTS.match(term)):
            terms.append(Requirement(m["key"], "!exists" if m["neg"] else "exists"))
        else:
            kind = "label" if labels else "field"
            raise bad_request(f"unable to parse requirement: invalid {kind} selector: {term!r}")
    return tuple(terms)


@dataclass(frozen=True)
class ObjectFilter:
    """What a list or watch asked for: namespace (from the path) and selectors."""

    api: ApiResource
    namespace: str = ""
    fields: tuple[Requirement, ...] = ()
    labels: tuple[Requirement, ...] = ()

    def __post_init__(self) -> None:
        probe: Obj = {}
        for req in self.fields:  # unknown labels fail the request up front, like the apiserver
            self.api.field_value(probe, req.key)

    @property
    def has_selectors(self) -> bool:
        return bool(self.fields or self.labels)

    def matches(self, served: Mapping[str, Any]) -> bool:
        meta = served.get("metadata") or {}
        if self.namespace and meta.get("namespace") != self.namespace:
            return False
        object_labels = meta.get("labels") or {}
        return all(r.matches(self.api.field_value(served, r.key)) for r in self.fields) and all(
            r.matches(object_labels.get(r.key)) for r in self.labels
        )


# ---------------------------------------------------------------------------
# The store: one for every resource
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One committed write. ``obj`` is the new object (for DELETED: the object as
    deleted, carrying the deletion's resourceVersion); ``prev`` the one replaced."""

    rv: int
    store_key: str
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    prev: Obj | None


def object_key(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectStore:
    """Every object the fake serves, with a global resourceVersion and a change history.

    Objects are stored in their storage shape (Events: core/v1) and never
    mutated once committed, so readers can hold them without the lock. The
    history is what watches replay and what list snapshots (``continue``)
    are rebuilt from; :meth:`compact` drops the old part of it.

    The Python write methods take objects in any served shape (``resource`` or
    the object's apiVersion/kind says which) and return the served shape.
    """

    def __init__(self, resources: ResourceRegistry) -> None:
        self._resources = resources
        self._cond = threading.Condition(threading.RLock())
        self._rv = 0
        self._compacted = 0
        self._closed = False
        self._objects: defaultdict[str, dict[Key, Obj]] = defaultdict(dict)
        self._history: list[Change] = []

    # -- state -----------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        """The newest resourceVersion (of any resource), as the API writes it."""
        return str(self._rv)

    @property
    def compacted(self) -> int:
        """History at or below this resourceVersion is gone."""
        return self._compacted

    @property
    def closed(self) -> bool:
        return self._closed

    # -- Python API for tests: reads --------------------------------------------

    def get(self, name: str, *, namespace: str = "", resource: ResourceRef = "events") -> Obj:
        """The object, served as ``resource``'s API version shapes it.

        Raises:
            ApiStatusError: 404 when there is no such object.
        """
        api = self._resolve(resource)
        with self._cond:
            return api.serve(self._current(api, self._key(api, namespace, name)))

    def objects(self, resource: ResourceRef = "events", *, namespace: str = "") -> list[Obj]:
        """The current objects (all namespaces unless ``namespace``), in key order."""
        api = self._resolve(resource)
        pairs, _ = self.snapshot(api.store_key)
        return [api.serve(obj) for key, obj in pairs if not namespace or key[0] == namespace]

    # -- Python API for tests: writes (also used by the HTTP layer) --------------

    def create(
        self, obj: Mapping[str, Any], *, resource: ResourceRef = None, namespace: str | None = None
    ) -> Obj:
        """Add an object (``ADDED``); fills uid, creationTimestamp, generateName.

        Raises:
            ApiStatusError: 409 AlreadyExists; 422 without name or generateName.
        """
        api = self._resolve(resource, obj)
        stored = api.accept(obj)
        meta = stored.setdefault("metadata", {})
        key = self._key(api, self._namespace(api, meta, namespace), _object_name(api, meta))
        with self._cond:
            if key in self._objects[api.store_key]:
                raise ApiStatusError(
                    409,
                    f'{api.qualified} "{key[1]}" already exists',
                    reason="AlreadyExists",
                    details=status_details(api, key[1]),
                )
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now())
            return api.serve(self._commit(api, "ADDED", key, stored, None))

    def update(
        self, obj: Mapping[str, Any], *, resource: ResourceRef = None, namespace: str | None = None
    ) -> Obj:
        """Replace an object (``MODIFIED``). A ``metadata.resourceVersion`` in
        ``obj`` is a precondition; without one the update is unconditional.

        Raises:
            ApiStatusError: 404 NotFound; 409 Conflict on a stale resourceVersion.
        """
        api = self._resolve(resource, obj)
        stored = api.accept(obj)
        meta = stored.setdefault("metadata", {})
        key = self._key(api, self._namespace(api, meta, namespace), str(meta.get("name") or ""))
        with self._cond:
            return api.serve(self._replace(api, key, stored))

    def patch(
        self,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        namespace: str = "",
        resource: ResourceRef = "events",
    ) -> Obj:
        """Atomically replace the object with ``mutate(served object)`` (``MODIFIED``).

        Raises:
            ApiStatusError: 404 NotFound; 409 Conflict if the result carries a
                resourceVersion other than the current one.
        """
        api = self._resolve(resource)
        key = self._key(api, namespace, name)
        with self._cond:
            patched = mutate(api.serve(self._current(api, key)))
            return api.serve(self._replace(api, key, api.accept(patched)))

    def delete(
        self,
        name: str,
        *,
        namespace: str = "",
        resource: ResourceRef = "events",
        resource_version: str | None = None,
    ) -> Obj:
        """Remove an object (``DELETED``); returns it as deleted.

        Raises:
            ApiStatusError: 404 NotFound; 409 Conflict if ``resource_version`` is stale.
        """
        api = self._resolve(resource)
        key = self._key(api, namespace, name)
        with self._cond:
            current = self._current(api, key)
            _check_precondition(api, key, current, resource_version)
            return api.serve(self._commit(api, "DELETED", key, copy.deepcopy(current), current))

    def compact(self, rv: int | str) -> None:
        """Forget the history at or below ``rv``: older watches and continue tokens expire."""
        with self._cond:
            self._compacted = max(self._compacted, min(int(rv), self._rv))
            start = bisect.bisect_right(self._history, self._compacted, key=lambda c: c.rv)
            del self._history[:start]
            self._cond.notify_all()
        logger.info("fake apiserver: compacted history up to resourceVersion %s", self._compacted)

    # -- for lists and watches ---------------------------------------------------

    def snapshot(
        self, store_key: str, at_rv: int | None = None
    ) -> tuple[list[tuple[Key, Obj]], int]:
        """The stored objects at ``at_rv`` (default: now), in key order, and that RV.

        Raises:
            ResourceExpired: ``at_rv`` is older than the compaction point.
        """
        with self._cond:
            if at_rv is None:
                at_rv = self._rv
            if at_rv < self._compacted:
                raise ResourceExpired(at_rv, self._compacted)
            objects = dict(self._objects[store_key])
            for change in reversed(self._history):  # undo what happened after at_rv
                if change.rv <= at_rv:
                    break
                if change.store_key == store_key:
                    _undo(objects, change)
            return sorted(objects.items()), at_rv

    def changes_since(self, store_key: str, rv: int) -> tuple[list[Change], int]:
        """The retained changes after ``rv`` and the current resourceVersion.

        Raises:
            ResourceExpired: changes after ``rv`` were compacted away.
        """
        with self._cond:
            if rv < self._compacted:
                raise ResourceExpired(rv, self._compacted)
            start = bisect.bisect_right(self._history, rv, key=lambda c: c.rv)
            changes = [c for c in self._history[start:] if c.store_key == store_key]
            return changes, self._rv

    def wait_for_change(self, after_rv: int, timeout: float) -> None:
        """Block until a write after ``after_rv``, a compaction past it, or :meth:`close`."""
        with self._cond:
            self._cond.wait_for(
                lambda: self._rv > after_rv or self._compacted > after_rv or self._closed,
                max(timeout, 0.0),
            )

    def wait_for_rv(self, rv: int, timeout: float) -> bool:
        """Wait until the store has reached ``rv``; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._rv >= rv or self._closed, timeout)

    def close(self) -> None:
        """Wake every waiting watch: the server is stopping."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- internals ----------------------------------------------------------------

    def _resolve(self, resource: ResourceRef, obj: Mapping[str, Any] | None = None) -> ApiResource:
        if isinstance(resource, ApiResource):
            return resource
        if resource:
            return self._resources.named(resource)
        api = self._resources.for_object(obj or {})
        if api is None:
            raise ValueError(
                "cannot tell which resource this object is: give it apiVersion and kind "
                "of a served resource, or pass resource='events' (or 'pods', ...)"
            )
        return api

    @staticmethod
    def _key(api: ApiResource, namespace: str, name: str) -> Key:
        return (namespace if api.namespaced else ""), name

    @staticmethod
    def _namespace(api: ApiResource, meta: Obj, namespace: str | None) -> str:
        if not api.namespaced:
            meta.pop("namespace", None)
            return ""
        given = meta.get("namespace")
        if namespace and given and given != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace or given or "default"
        return str(meta["namespace"])

    def _current(self, api: ApiResource, key: Key) -> Obj:
        current = self._objects[api.store_key].get(key)
        if current is None:
            raise ApiStatusError(
                404, f'{api.qualified} "{key[1]}" not found', details=status_details(api, key[1])
            )
        return current

    def _replace(self, api: ApiResource, key: Key, stored: Obj) -> Obj:
        current = self._current(api, key)
        meta = stored.setdefault("metadata", {})
        _check_precondition(api, key, current, meta.get("resourceVersion"))
        for kept in ("uid", "creationTimestamp"):  # the server owns these
            meta[kept] = current["metadata"].get(kept)
        return self._commit(api, "MODIFIED", key, stored, current)

    def _commit(self, api: ApiResource, kind: str, key: Key, obj: Obj, prev: Obj | None) -> Obj:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        objects = self._objects[api.store_key]
        if kind == "DELETED":
            del objects[key]
        else:
            objects[key] = obj
        self._history.append(Change(self._rv, api.store_key, kind, obj, prev))
        self._cond.notify_all()
        logger.debug("fake apiserver: %s %s %s/%s rv=%d", kind, api.qualified, *key, self._rv)
        return obj


def _undo(objects: dict[Key, Obj], change: Change) -> None:
    key = object_key(change.obj)
    if change.prev is None:
        objects.pop(key, None)
    else:
        objects[key] = change.prev


def _object_name(api: ApiResource, meta: Obj) -> str:
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
    if not meta.get("name"):
        raise ApiStatusError(
            422,
            f'{api.kind} "" is invalid: metadata.name: Required value: '
            "name or generateName is required",
        )
    return str(meta["name"])


def status_details(api: ApiResource, name: str = "") -> Obj:
    details: Obj = {"group": api.group, "kind": api.resource}
    if name:
        details["name"] = name
    return details


def _check_precondition(api: ApiResource, key: Key, current: Obj, rv: Any) -> None:
    if rv and str(rv) != current["metadata"]["resourceVersion"]:
        raise ApiStatusError(
            409,
            f'Operation cannot be fulfilled on {api.qualified} "{key[1]}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            details=status_details(api, key[1]),
        )


# ---------------------------------------------------------------------------
# Patches
# ---------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch. Strategic merge patches are applied the same way:
    the fake's writable resources (Events, Leases) have no merge-keyed lists."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(doc: Obj, operations: list[Mapping[str, Any]]) -> Obj:
    """RFC 6902 JSON patch: add, replace, remove, test.

    Raises:
        ApiStatusError: 422 for a failed test or a bad path.
    """
    result = copy.deepcopy(doc)
    for op in operations:
        *parents, last = [
            p.replace("~1", "/").replace("~0", "~") for p in str(op["path"]).split("/")[1:]
        ]
        try:
            node: Any = result
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            _apply_operation(node, last, op)
        except (KeyError, IndexError, ValueError, TypeError) as e:
            raise ApiStatusError(
                422, f"the server rejected our request due to an error in our request: {op} ({e})"
            ) from e
    return result


def _apply_operation(node: Any, last: str, op: Mapping[str, Any]) -> None:
    kind = op["op"]
    if isinstance(node, list):
        index = len(node) if last == "-" else int(last)
        if kind == "add":
            node.insert(index, copy.deepcopy(op["value"]))
            return
        last_key: Any = index
    else:
        last_key = last
    if kind in ("add", "replace"):
        node[last_key] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del node[last_key]
    elif kind == "test" and node[last_key] != op["value"]:
        raise ValueError("test failed")
    elif kind not in ("test",):
        raise ValueError(f"unsupported operation {kind!r}")
