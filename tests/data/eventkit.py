"""Builders for recorded Kubernetes Event streams: the demo, the scenarios and the format fixtures.

Not a test module: ``demo/generate.py``, ``scenarios/generate.py`` and
``formats/generate.py`` import it. Everything is deterministic: a
:class:`Recording` draws every uid, name and gap from its own seeded
``random.Random``, and times are seconds relative to :data:`BASE`
(2026-11-20T10:00:00Z), so rerunning a script rewrites its files byte for byte.

The model follows what the apiserver really serves:

* One logical Event is kept as an :class:`EventState` and rendered in either
  API view: ``core`` (``apiVersion: v1``: involvedObject, message, source,
  count, firstTimestamp/lastTimestamp) or ``events`` (``events.k8s.io/v1``:
  regarding, note, series, deprecated*). :func:`core_object` and
  :func:`events_object` mirror the apiserver's conversion between the two
  (``pkg/apis/events/v1/conversion.go``), with Go's JSON field order and
  ``omitempty`` rules, so both views of one Event normalize to the same thing.
* Who records an Event decides its shape (:class:`Reporter`). Most
  components (kubelet, controllers, node-problem-detector, cluster-autoscaler)
  use client-go's legacy recorder: second-precision first/lastTimestamp, a
  ``count`` that grows, ``eventTime: null``, no action. The scheduler uses the
  events.k8s.io/v1 API: ``eventTime`` in microseconds, an ``action``, a
  ``series`` instead of a count, and a reportingInstance of its own.
* Event names are ``<involved name>.<hex of the creation UnixNano>``, as
  client-go names them; Event uids are random v4 uuids; the Event of a Node
  lives in namespace ``default``.
* A watch stream is ADDED for the first occurrence, one MODIFIED per further
  occurrence (count or series.count + 1, last time advanced) and DELETED when
  the Event's TTL (1 h) expires. Lines are written in occurrence order and get
  strictly increasing resourceVersions (with gaps: other objects share etcd's
  revision counter).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

BASE = datetime(2026, 11, 20, 10, 0, 0, tzinfo=UTC)
EVENT_TTL = 3600.0  # the apiserver's --event-ttl default

# Random pod-name suffixes use this alphabet (k8s.io/apimachinery/pkg/util/rand);
# a pod-template-hash is an FNV-32a hash printed in decimal and mapped digit by digit
# into it, so only "456789bcdf" ever appear in one.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

API_VERSIONS = {
    "Pod": "v1", "Node": "v1", "PersistentVolumeClaim": "v1", "Service": "v1", "ConfigMap": "v1",
    "Deployment": "apps/v1", "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1",
    "Job": "batch/v1", "CronJob": "batch/v1", "HorizontalPodAutoscaler": "autoscaling/v2",
    "Lease": "coordination.k8s.io/v1", "Widget": "example.com/v1alpha1",
}


# -- times and names ----------------------------------------------------------------------


def at_time(seconds: float) -> datetime:
    return BASE + timedelta(seconds=seconds)


def time_str(seconds: float) -> str:
    """metav1.Time: RFC 3339, whole seconds."""
    return at_time(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_str(seconds: float) -> str:
    """metav1.MicroTime: RFC 3339 with exactly six fractional digits."""
    return at_time(seconds).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def template_hash(seed: str) -> str:
    """A pod-template-hash as the deployment controller prints it (FNV-32a -> decimal -> alphabet)."""
    h = 0x811C9DC5
    for byte in seed.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(NAME_ALPHABET[ord(digit) % len(NAME_ALPHABET)] for digit in str(h))


def scheduled_minute(seconds: float) -> int:
    """The suffix a CronJob gives the Job it starts: minutes since the epoch."""
    return int(at_time(seconds).timestamp()) // 60


# -- objects and reporters ----------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """An ObjectReference, with the fields its reporter fills in (empty = omitted)."""

    kind: str
    name: str
    namespace: str = ""
    uid: str = ""
    api_version: str = ""
    field_path: str = ""
    with_rv: bool = False  # carry the object's resourceVersion (GetReference does)

    @property
    def key(self) -> str:
        """``namespace/Kind/name``, or ``Kind/name`` for cluster-scoped objects."""
        return f"{self.namespace}/{self.kind}/{self.name}" if self.namespace else f"{self.kind}/{self.name}"

    def container(self, name: str) -> Ref:
        """The reference the kubelet uses for Events about one container of a Pod."""
        return replace(self, field_path=f"spec.containers{{{name}}}")

    def as_json(self, resource_version: str) -> dict[str, str]:
        out = {"kind": self.kind, "namespace": self.namespace, "name": self.name, "uid": self.uid,
               "apiVersion": self.api_version, "resourceVersion": resource_version if self.with_rv else "",
               "fieldPath": self.field_path}
        return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class Reporter:
    """Who records an Event: source.component/host, reportingController/Instance, API flavour."""

    component: str
    host: str = ""
    instance: str = ""
    native: bool = False  # events.k8s.io/v1 producer (eventTime, series, action)


def kubelet(node: str) -> Reporter:
    return Reporter("kubelet", host=node, instance=node)


def kernel_monitor(node: str) -> Reporter:
    """node-problem-detector's kernel monitor on ``node``."""
    return Reporter("kernel-monitor", host=node, instance=node)


def controller(name: str) -> Reporter:
    """A kube-controller-manager controller, cluster-autoscaler, an operator: no host."""
    return Reporter(name)


SCHEDULER = Reporter("default-scheduler", instance="default-scheduler-cp-1", native=True)


# -- one Event ----------------------------------------------------------------------------


@dataclass
class EventState:
    """One logical Event, independent of the API version it is served in."""

    name: str
    namespace: str
    uid: str
    created: float
    regarding: Ref
    reason: str
    message: str
    type: str
    reporter: Reporter
    view: str  # "core" or "events": the API version this recording serves it in
    action: str = ""
    related: Ref | None = None
    count: int = 1  # occurrences so far
    first: float = 0.0
    last: float = 0.0
    ref_rv: str = ""  # involved object's resourceVersion, fixed when the Event is created
    rv: str = ""  # this snapshot's own resourceVersion, set when the stream is written
    drop: tuple[str, ...] = ()  # fields a hand-rolled client leaves out (odd input)


def core_object(e: EventState, rv: str) -> dict[str, Any]:
    """The core/v1 view, in the apiserver's field order (Go struct order, omitempty)."""
    native = e.reporter.native
    obj: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": _metadata(e, rv),
        "involvedObject": e.regarding.as_json(e.ref_rv),
        "reason": e.reason,
        "message": e.message,
        "source": {} if native else _source(e.reporter),
        "firstTimestamp": None if native else time_str(e.first),
        "lastTimestamp": None if native else time_str(e.last),
        "count": None if native else e.count,
        "type": e.type,
        "eventTime": micro_str(e.first) if native else None,
        "series": _series(e),
        "action": e.action,
        "related": e.related.as_json("") if e.related else None,
        "reportingComponent": e.reporter.component,
        "reportingInstance": e.reporter.instance,
    }
    for key in ("count", "series", "action", "related"):  # omitempty
        if not obj[key]:
            del obj[key]
    return _drop(obj, e.drop)


def events_object(e: EventState, rv: str) -> dict[str, Any]:
    """The events.k8s.io/v1 view, in the apiserver's field order (Go struct order, omitempty)."""
    native = e.reporter.native
    obj: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "events.k8s.io/v1",
        "metadata": _metadata(e, rv),
        "eventTime": micro_str(e.first) if native else None,
        "series": _series(e),
        "reportingController": e.reporter.component,
        "reportingInstance": e.reporter.instance,
        "action": e.action,
        "reason": e.reason,
        "regarding": e.regarding.as_json(e.ref_rv),
        "related": e.related.as_json("") if e.related else None,
        "note": e.message,
        "type": e.type,
        "deprecatedSource": {} if native else _source(e.reporter),
        "deprecatedFirstTimestamp": None if native else time_str(e.first),
        "deprecatedLastTimestamp": None if native else time_str(e.last),
        "deprecatedCount": None if native else e.count,
    }
    for key in ("series", "reportingController", "reportingInstance", "action", "related", "deprecatedCount"):
        if not obj[key]:
            del obj[key]
    return _drop(obj, e.drop)


def render(e: EventState, rv: str, view: str | None = None) -> dict[str, Any]:
    return (core_object if (view or e.view) == "core" else events_object)(e, rv)


def _metadata(e: EventState, rv: str) -> dict[str, str]:
    return {"name": e.name, "namespace": e.namespace, "uid": e.uid, "resourceVersion": rv,
            "creationTimestamp": time_str(e.created)}


def _source(r: Reporter) -> dict[str, str]:
    return {"component": r.component, **({"host": r.host} if r.host else {})}


def _series(e: EventState) -> dict[str, Any] | None:
    if not e.reporter.native or e.count < 2:
        return None
    return {"count": e.count, "lastObservedTime": micro_str(e.last)}


def _drop(obj: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    for key in keys:
        if "." in key:
            outer, inner = key.split(".", 1)
            obj.get(outer, {}).pop(inner, None)
        else:
            obj.pop(key, None)
    return obj


# -- a recording --------------------------------------------------------------------------


@dataclass
class _Line:
    at: float
    seq: int
    watch_type: str
    state: EventState


@dataclass
class Recording:
    """A watch stream under construction: Events in any order, written in occurrence order."""

    seed: str
    first_rv: int = 48_213_907
    rng: random.Random = field(init=False)
    _lines: list[_Line] = field(default_factory=list, init=False)
    _objects: dict[tuple[str, str, str], str] = field(default_factory=dict, init=False)
    labels: dict[str, str] = field(default_factory=dict, init=False)  # Event uid -> readable label

    def __post_init__(self) -> None:
        # A string seed keeps every script's stream independent of the others.
        self.rng = random.Random(int.from_bytes(hashlib.sha256(self.seed.encode()).digest()[:8], "big"))

    # ids ------------------------------------------------------------------------------

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def suffix(self, length: int = 5) -> str:
        return "".join(self.rng.choice(NAME_ALPHABET) for _ in range(length))

    def object_uid(self, kind: str, namespace: str, name: str) -> str:
        key = (kind, namespace, name)
        if key not in self._objects:
            self._objects[key] = self.uid()
        return self._objects[key]

    # references -----------------------------------------------------------------------

    def ref(self, kind: str, name: str, namespace: str = "") -> Ref:
        """What ``GetReference`` gives: uid, apiVersion and resourceVersion of the object."""
        return Ref(kind, name, namespace, self.object_uid(kind, namespace, name), API_VERSIONS.get(kind, "v1"),
                   with_rv=True)

    def pod(self, namespace: str, name: str) -> Ref:
        return self.ref("Pod", name, namespace)

    def node(self, name: str) -> Ref:
        """A Node as the kubelet and node-problem-detector refer to it: its name doubles as uid."""
        return Ref("Node", name, uid=name)

    def node_by_controller(self, name: str) -> Ref:
        """A Node as the node lifecycle controller refers to it (RecordNodeEvent): real uid, no rv."""
        return Ref("Node", name, uid=self.object_uid("Node", "", name), api_version="v1")

    def pod_by_taint_manager(self, namespace: str, name: str) -> Ref:
        """The taint-eviction controller builds its own reference: no uid, no resourceVersion."""
        return Ref("Pod", name, namespace, api_version="v1")

    # Events ---------------------------------------------------------------------------

    def event(self, at: float, regarding: Ref, reason: str, message: str, by: Reporter, *,
              warning: bool = False, view: str = "core", action: str = "", related: Ref | None = None,
              drop: tuple[str, ...] = (), label: str = "") -> EventState:
        """The first occurrence of an Event: an ADDED line."""
        if by.native:
            at += self.rng.randrange(1000, 999_000) / 1e6  # MicroTime: the scheduler is precise
        stamp_ns = int(at_time(at).timestamp()) * 1_000_000_000 + round((at % 1) * 1e9)
        stamp_ns += self.rng.randrange(1, 999_999)
        state = EventState(
            name=f"{regarding.name}.{stamp_ns:x}",
            namespace=regarding.namespace or "default",
            uid=self.uid(),
            created=at,
            regarding=regarding,
            reason=reason,
            message=message,
            type="Warning" if warning else "Normal",
            reporter=by,
            view=view,
            action=action,
            related=related,
            first=at,
            last=at,
            drop=drop,
        )
        taken = set(self.labels.values())
        label = label or f"{regarding.name}/{reason}"
        if label in taken:  # another Event of the same object and reason: say which
            label = f"{label}: {message[:60]}"
        n = 2
        while label in taken:
            label, n = f"{label.rsplit(' #', 1)[0]} #{n}", n + 1
        self.labels[state.uid] = label
        self._add(at, "ADDED", copy.copy(state))
        return state  # live: again() advances it, every line keeps its own snapshot

    def again(self, e: EventState, *times: float) -> None:
        """Further occurrences: one MODIFIED line each, count (or series.count) + 1."""
        for at in times:
            assert at > e.last, f"{self.labels[e.uid]}: occurrences must move forward ({at} <= {e.last})"
            if e.reporter.native:
                at += self.rng.randrange(1000, 999_000) / 1e6
            e.count += 1
            e.last = at
            self._add(at, "MODIFIED", copy.copy(e))

    def every(self, e: EventState, start: float, period: float, times: int) -> None:
        """``times`` further occurrences, ``period`` seconds apart, the first at ``start``."""
        self.again(e, *(start + period * k for k in range(times)))

    def expire(self, e: EventState) -> None:
        """The Event's TTL runs out: a DELETED line with its last state, an hour after its last update."""
        self._add(e.last + EVENT_TTL, "DELETED", copy.copy(e))

    def _add(self, at: float, watch_type: str, state: EventState) -> None:
        self._lines.append(_Line(at, len(self._lines), watch_type, state))

    # output ---------------------------------------------------------------------------

    def watch_lines(self) -> list[dict[str, Any]]:
        """Every line, in occurrence order, with strictly increasing resourceVersions."""
        rv = self.first_rv
        out = []
        for line in sorted(self._lines, key=lambda line: (line.at, line.seq)):
            rv += self.rng.randint(1, 60)
            state = line.state
            if not state.ref_rv:  # fixed when first written; shared by the later copies
                state.ref_rv = str(rv - self.rng.randint(5, 4000))
                for later in self._lines:
                    if later.state.uid == state.uid:
                        later.state.ref_rv = state.ref_rv
            state.rv = str(rv)
            out.append({"type": line.watch_type, "object": render(state, state.rv)})
        return out

    def final_states(self) -> list[EventState]:
        """The last state of every Event, in order of creation (after :meth:`watch_lines`)."""
        last: dict[str, EventState] = {}
        for line in sorted(self._lines, key=lambda line: (line.at, line.seq)):
            last[line.state.uid] = line.state
        return sorted(last.values(), key=lambda e: e.created)

    def write_jsonl(self, path: Path) -> list[dict[str, Any]]:
        lines = self.watch_lines()
        path.write_text("".join(dumps(line) + "\n" for line in lines), encoding="utf-8")
        return lines


def dumps(obj: Any) -> str:
    """Compact JSON as the apiserver streams it (UTF-8, control characters escaped)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


# -- checks -------------------------------------------------------------------------------


def check_watch_lines(lines: list[dict[str, Any]]) -> None:
    """The invariants every recorded stream here keeps; raises AssertionError otherwise."""
    last_rv = 0
    seen: dict[str, dict[str, Any]] = {}
    names: dict[str, str] = {}
    for n, line in enumerate(lines, start=1):
        assert line["type"] in ("ADDED", "MODIFIED", "DELETED"), n
        obj = line["object"]
        meta = obj["metadata"]
        rv = int(meta["resourceVersion"])
        assert rv > last_rv, f"line {n}: resourceVersion {rv} after {last_rv}"
        last_rv = rv
        uid = meta["uid"]
        assert names.setdefault(uid, meta["name"]) == meta["name"], f"line {n}: uid {uid} renamed"
        stamp = meta["name"].rsplit(".", 1)[-1]
        assert len(stamp) == 16 and all(c in "0123456789abcdef" for c in stamp), f"line {n}: name {meta['name']}"
        count = _count(obj)
        if line["type"] == "ADDED":
            assert uid not in seen, f"line {n}: ADDED twice: {uid}"
        elif line["type"] == "MODIFIED":
            assert uid in seen, f"line {n}: MODIFIED before ADDED: {uid}"
            assert count == _count(seen[uid]) + 1, f"line {n}: count {count} after {_count(seen[uid])}"
        else:
            assert uid in seen and count == _count(seen[uid]), f"line {n}: DELETED changes the Event"
        seen[uid] = obj
    assert len(set(names.values())) == len(names), "two Events share a name"


def _count(obj: dict[str, Any]) -> int:
    series = obj.get("series") or {}
    return int(series.get("count") or obj.get("count") or obj.get("deprecatedCount") or 1)


# -- real message texts (kubelet 1.32+, controllers, scheduler, autoscalers) --------------


def go_duration(ms: int) -> str:
    """A time.Duration truncated to milliseconds, printed as Go prints it."""
    if ms < 1000:
        return f"{ms}ms"
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".") + "s"


def msg_scheduled(namespace: str, pod: str, node: str) -> str:
    return f"Successfully assigned {namespace}/{pod} to {node}"


def msg_pulled(image: str, ms: int, waited_ms: int, size: int) -> str:
    return (f'Successfully pulled image "{image}" in {go_duration(ms)} ({go_duration(waited_ms)} including waiting).'
            f" Image size: {size} bytes.")


def msg_pull_not_found(image: str) -> str:
    return (f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image'
            f' "{image}": failed to resolve reference "{image}": {image}: not found')


def msg_pull_denied(image: str) -> str:
    return (f'Failed to pull image "{image}": rpc error: code = Unknown desc = failed to pull and unpack image'
            f' "{image}": failed to resolve reference "{image}": pull access denied, repository does not exist'
            " or may require authorization: server message: insufficient_scope: authorization failed")


def msg_backoff_restart(pod: Ref, container: str) -> str:
    return f"Back-off restarting failed container {container} in pod {pod.name}_{pod.namespace}({pod.uid})"


def msg_evicted(resource: str, threshold: str, available: str, container: str, usage: str) -> str:
    # The eviction manager joins three sentences, each ending in ". " (so does the message).
    return (f"The node was low on resource: {resource}. Threshold quantity: {threshold}, available: {available}. "
            f"Container {container} was using {usage}, request is 0, has larger consumption of {resource}. ")


def msg_scale_up(group: str, before: int, after: int, most: int) -> str:
    return f"pod triggered scale-up: [{{{group} {before}->{after} (max: {most})}}]"


def msg_created_by(owner: Ref, pod: str) -> str:
    """The SuccessfulCreate message of a Pod's controller."""
    if owner.kind == "StatefulSet":
        return f"create Pod {pod} in StatefulSet {owner.name} successful"
    return f"Created pod: {pod}"


CONTROLLER_OF = {"ReplicaSet": "replicaset-controller", "StatefulSet": "statefulset-controller",
                 "DaemonSet": "daemonset-controller", "Job": "job-controller", "CronJob": "cronjob-controller",
                 "Deployment": "deployment-controller", "HorizontalPodAutoscaler": "horizontal-pod-autoscaler"}


# -- common sequences ---------------------------------------------------------------------


def create_pod(rec: Recording, at: float, owner: Ref, pod: str, *, view: str = "core") -> EventState:
    """The owning controller's SuccessfulCreate of ``pod``."""
    return rec.event(at, owner, "SuccessfulCreate", msg_created_by(owner, pod), controller(CONTROLLER_OF[owner.kind]),
                     view=view)


def schedule_pod(rec: Recording, at: float, pod: Ref, node: str, *, view: str = "core") -> EventState:
    return rec.event(at, pod, "Scheduled", msg_scheduled(pod.namespace, pod.name, node), SCHEDULER, action="Binding",
                     view=view)


def start_pod(rec: Recording, at: float, pod: Ref, node: str, image: str, container: str = "app", *,
              cached: bool = False, scheduled: bool = True, view: str = "core") -> float:
    """Scheduled, then the kubelet pulls (or finds) the image, creates and starts the container.

    Returns the time the container started.
    """
    if scheduled:
        schedule_pod(rec, at, pod, node, view=view)
    ref, k = pod.container(container), kubelet(node)
    at += 0.4
    if cached:
        rec.event(at, ref, "Pulled", f'Container image "{image}" already present on machine', k, view=view)
    else:
        rec.event(at, ref, "Pulling", f'Pulling image "{image}"', k, view=view)
        ms = rec.rng.randint(700, 4800)
        waited = ms + rec.rng.choice((0, 0, rec.rng.randint(5, 900)))
        at += waited / 1000
        rec.event(at, ref, "Pulled", msg_pulled(image, ms, waited, rec.rng.randrange(20, 400) * 1_048_576 +
                                                 rec.rng.randrange(1_048_576)), k, view=view)
    rec.event(at + 0.3, ref, "Created", f"Created container: {container}", k, view=view)
    rec.event(at + 0.5, ref, "Started", f"Started container {container}", k, view=view)
    return at + 0.5


def check_no_twins(lines: list[dict[str, Any]]) -> None:
    """No two occurrences in one namespace share their message and their second.

    Loki keeps one entry per stream, timestamp and line, and a replay's records
    are one stream per namespace: twins are real (two Pods of a Deployment
    failing alike), but a recording that the delivery tests count entry by entry
    must not depend on how a sink tells them apart. Keep scenarios apart by a
    second or more instead.
    """
    seen: dict[tuple[str, str, str], int] = {}
    for n, line in enumerate(lines, start=1):
        if line["type"] == "DELETED":
            continue
        obj = line["object"]
        series = obj.get("series") or {}
        when = (series.get("lastObservedTime") or obj.get("eventTime") or obj.get("lastTimestamp")
                or obj.get("deprecatedLastTimestamp") or "")[:19]
        key = (obj["metadata"]["namespace"], when, obj.get("message") or obj.get("note") or "")
        assert key not in seen, f"lines {seen[key]} and {n}: same namespace, second and message"
        seen[key] = n


# -- expectations -------------------------------------------------------------------------


@dataclass
class Expected:
    """What a correct correlation engine concludes about one problem of a recording."""

    story: str
    root: EventState | None = None
    symptoms: list[EventState] = field(default_factory=list)
    unrelated: list[EventState] = field(default_factory=list)

    def yaml_lines(self, rec: Recording, indent: str = "") -> list[str]:
        """``story``, ``root_cause``, ``symptoms``, ``unrelated``; every uid commented with its label."""
        assert self.root is not None, self.story
        listed = [e.uid for e in [self.root, *self.symptoms, *self.unrelated]]
        assert len(set(listed)) == len(listed), f"an Event is listed twice: {self.story}"
        root = self.root
        return [
            f"{indent}story: {json.dumps(self.story, ensure_ascii=False)}",
            f"{indent}root_cause:",
            f"{indent}  reason: {root.reason}",
            f"{indent}  object: {root.regarding.key}",
            f"{indent}  uid: {root.uid}  # {rec.labels[root.uid]}",
            f"{indent}symptoms:",
            *(f"{indent}  - {e.uid}  # {rec.labels[e.uid]}" for e in self.symptoms),
            f"{indent}unrelated:",
            *(f"{indent}  - {e.uid}  # {rec.labels[e.uid]}" for e in self.unrelated),
        ]
