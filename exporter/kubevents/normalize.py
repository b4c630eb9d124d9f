"""Raw Event JSON (core/v1 or events.k8s.io/v1) -> :class:`KubeEvent`.

This is the only place that knows the two wire shapes. It is pure and
forgiving: a field that is missing, null or of the wrong type is treated as
absent, so an Event with holes still flows with what it has. Only input that
is not an Event at all raises :class:`NotAnEvent`.

Three repairs are recorded in ``KubeEvent.repairs`` (the pipeline counts them and
logs the first of each kind), because they change what the record says: a
``count`` that is not a non-negative integer (``"abc"``, -5, 1e300, true) is taken as
1; an Event without an involved object keeps an empty one (never an object named
``/``); a ``type`` other than Normal and Warning is kept, and classified as Warning.

Field mapping (core/v1 -> events.k8s.io/v1)::

    involvedObject -> regarding          message  -> note
    source         -> deprecatedSource   count    -> series.count / deprecatedCount
    firstTimestamp -> deprecatedFirstTimestamp
    lastTimestamp  -> deprecatedLastTimestamp
    reportingComponent -> reportingController

The occurrence time follows ``series.lastObservedTime > eventTime >
lastTimestamp > firstTimestamp > creationTimestamp``: the most precise time
of the latest occurrence the Event carries.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, TypeGuard

from kubevents.model import KubeEvent, ObjectRef

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class RawObjectRef(TypedDict, total=False):
    kind: str
    namespace: str
    name: str
    uid: str
    apiVersion: str
    resourceVersion: str
    fieldPath: str


class RawEvent(TypedDict, total=False):
    """An Event as the API serves it; the union of both API versions' fields."""

    apiVersion: str
    kind: str
    metadata: dict[str, Any]
    reason: str
    type: str
    action: str
    eventTime: str | None
    series: dict[str, Any] | None
    related: RawObjectRef | None
    reportingController: str
    reportingInstance: str
    # core/v1
    involvedObject: RawObjectRef
    message: str
    source: dict[str, str]
    count: int
    firstTimestamp: str | None
    lastTimestamp: str | None
    reportingComponent: str
    # events.k8s.io/v1
    regarding: RawObjectRef
    note: str
    deprecatedSource: dict[str, str]
    deprecatedCount: int
    deprecatedFirstTimestamp: str | None
    deprecatedLastTimestamp: str | None


class RawWatchEvent(TypedDict):
    """One line of a watch stream."""

    type: str
    object: dict[str, Any]
    kind: NotRequired[str]


class NotAnEvent(ValueError):
    """The object is not a Kubernetes Event."""


def parse_time_ns(value: object) -> int | None:
    """Parse a Kubernetes Time or MicroTime (RFC 3339) to ns; None if absent or invalid."""
    if not isinstance(value, str) or not value:
        return None
    return _parse_time(value)


@functools.lru_cache(maxsize=8192)
def _parse_time(value: str) -> int | None:
    # Cached: Events share timestamps (second resolution), so most parses are repeats.
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def is_event(obj: object) -> TypeGuard[dict[str, Any]]:
    """True when ``obj`` looks like an Event object of either API version."""
    if not isinstance(obj, dict):
        return False
    if obj.get("kind") == "Event":
        return True
    return "involvedObject" in obj or "regarding" in obj


def normalize(raw: object) -> KubeEvent:
    """Build a :class:`KubeEvent` from one raw Event object (anything else raises).

    Raises:
        NotAnEvent: ``raw`` is not a mapping shaped like an Event.
    """
    if not is_event(raw):
        raise NotAnEvent(_describe(raw))
    meta = _dict(raw.get("metadata"))
    v1 = "regarding" in raw or "note" in raw or raw.get("apiVersion") == "events.k8s.io/v1"
    if v1:
        regarding = _dict(raw.get("regarding"))
        message = _str(raw.get("note"))
        source = _dict(raw.get("deprecatedSource"))
        legacy_count = raw.get("deprecatedCount")
        first = raw.get("deprecatedFirstTimestamp")
        last = raw.get("deprecatedLastTimestamp")
        controller = _str(raw.get("reportingController")) or _str(source.get("component"))
    else:
        regarding = _dict(raw.get("involvedObject"))
        message = _str(raw.get("message"))
        source = _dict(raw.get("source"))
        legacy_count = raw.get("count")
        first = raw.get("firstTimestamp")
        last = raw.get("lastTimestamp")
        controller = (
            _str(raw.get("reportingController"))
            or _str(raw.get("reportingComponent"))
            or _str(source.get("component"))
        )
    series = _dict(raw.get("series"))
    created = parse_time_ns(meta.get("creationTimestamp")) or 0
    first_ns = parse_time_ns(first)
    event_ns = parse_time_ns(raw.get("eventTime"))
    time_ns = (
        parse_time_ns(series.get("lastObservedTime"))
        or event_ns
        or parse_time_ns(last)
        or first_ns
        or created
    )
    count = _int(series.get("count")) if series else 0
    count = count or _int(legacy_count) or 1
    related = raw.get("related")
    count = max(count, 1)
    repairs = _repairs(raw, v1, series, legacy_count, regarding, count)
    return KubeEvent(
        uid=_str(meta.get("uid")),
        name=_str(meta.get("name")),
        namespace=_str(meta.get("namespace")),
        reason=_str(raw.get("reason")),
        type=_str(raw.get("type")),
        message=message,
        regarding=_ref(regarding),
        time_ns=time_ns,
        first_time_ns=first_ns or event_ns or time_ns,
        count=count,
        action=_str(raw.get("action")),
        reporting_controller=controller,
        reporting_instance=_str(raw.get("reportingInstance")) or _str(source.get("host")),
        source_host=_str(source.get("host")),
        related=_ref(related) if isinstance(related, dict) and related else None,
        resource_version=_str(meta.get("resourceVersion")),
        creation_time_ns=created,
        api_version="events.k8s.io/v1" if v1 else "v1",
        repairs=repairs,
    )


def _repairs(
    raw: dict[str, Any],
    v1: bool,
    series: dict[str, Any],
    legacy_count: object,
    regarding: dict[str, Any],
    count: int,
) -> tuple[str, ...]:
    """What is malformed in ``raw`` and repaired (see the module docstring)."""
    series_count = series.get("count")
    event_type = raw.get("type")
    if (
        (series_count is None or _is_count(series_count))
        and (legacy_count is None or _is_count(legacy_count))
        and (regarding.get("kind") or regarding.get("name"))
        and event_type in _TYPES
    ):
        return ()  # every Event the API server accepted: no message to build
    out: list[str] = []
    field = "deprecatedCount" if v1 else "count"
    for name, value in (("series.count", series_count), (field, legacy_count)):
        if value is not None and not _is_count(value):
            out.append(f"count: {name} {_shown(value)} is not a count; taken as {count}")
            break
    ref_field = "regarding" if v1 else "involvedObject"
    if not regarding.get("kind") and not regarding.get("name"):
        out.append(f"object: {ref_field} names no object; the Event has none")
    if event_type not in _TYPES:
        out.append(f"type: {_shown(event_type)} is not Normal or Warning; classified as Warning")
    return tuple(out)


_TYPES = (None, "", "Normal", "Warning")
"""The types taken as they are (a tuple: ``type`` may be any JSON value, even unhashable)."""


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _COUNT_MAX


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _ref(raw: dict[str, Any]) -> ObjectRef:
    return ObjectRef(
        kind=_str(raw.get("kind")),
        namespace=_str(raw.get("namespace")),
        name=_str(raw.get("name")),
        uid=_str(raw.get("uid")),
        api_version=_str(raw.get("apiVersion")),
        resource_version=_str(raw.get("resourceVersion")),
        field_path=_str(raw.get("fieldPath")),
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value)


_COUNT_MAX = 2**63
"""Counts from here up do not fit the int64 of OTLP and Kubernetes: not a count."""


def _int(value: object) -> int:
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value if 0 <= value < _COUNT_MAX else 0
    if isinstance(value, str) and value.isdigit() and len(value) < 19:
        return int(value)
    return 0


def _describe(obj: object) -> str:
    if isinstance(obj, dict):
        kind = obj.get("kind")
        return f"expected an Event, got kind {kind!r}" if kind else "expected an Event object"
    return f"expected an Event object, got {type(obj).__name__}"
