"""Application events: record what an app or a pipeline did as an ``events.k8s.io/v1`` Event.

Kubernetes components record what *they* do; the change that most often starts an
incident (a deploy from CI, a feature flag, a schema migration, a config push) is
recorded by nobody. ``kubevents emit`` and :func:`emit` write it into the cluster's own
Events API, so ``kubevents run`` reads it like any other Event, the ``app-events`` rule
pack classifies it, and its correlation rules make it the root cause of the failures of
its workload that follow (docs/app-events.md).

An application event is an Event with:

* ``reportingController``: the app or pipeline (``ci.example.com/deployer``);
* ``reason``: one of :data:`VOCABULARY` (``DeployStarted``, ``ConfigChanged``...);
* ``regarding``: the workload it is about (``deployment/web`` in ``shop``);
* ``note``: free text; ``action``: optional (the reason's default action otherwise).

**Idempotent.** The Event's name is decided once per call: from ``id`` when given
(``<object>.<16 hex digits of SHA-256(namespace, kind, name, reason, id)>``), so a CI
job that runs again with the same id names the same Event; else from the time. A retry
whose first attempt was recorded (the answer was lost) gets 409 AlreadyExists: that is
success, reported as ``created=False``.

**Transport**: kubevents' own client (``source/kubeclient.py``): the same kubeconfig and
in-cluster configuration as ``kubevents run``. Only ``create`` on ``events`` in
``events.k8s.io`` is needed (deploy/kubernetes/emitters); a 403 names that rule.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubevents.errors import ApiError, ConfigError, SourceError, did_you_mean
from kubevents.source.kubeclient import ConnectionLost, KubeClient, api_path, load_client
from kubevents.source.retrying import backoff_delay

logger = logging.getLogger(__name__)

EVENTS_GROUP = "events.k8s.io"
EVENTS_VERSION = f"{EVENTS_GROUP}/v1"
DEFAULT_CONTROLLER = "kubevents/emit"
"""``reportingController`` when none is given (flag, argument or ``KUBEVENTS_REPORTING_CONTROLLER``)."""
ATTEMPTS = 4
"""Requests per emit: the first and three retries (0.5 s, 1 s, 2 s, or what Retry-After says)."""
RETRY_AFTER_CAP_S = 30.0

# Limits of pkg/apis/core/validation/events.go (kubernetes/kubernetes): checked here too, so
# a wrong value is one line naming the flag, before any request.
REPORTING_LIMIT = 128
ACTION_LIMIT = 128
NOTE_LIMIT = 1024
NAME_LIMIT = 253


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason of the vocabulary: its default type and action, and whether it is a change."""

    type: str
    action: str
    change: bool
    """A change to the workload: the cause side of the app-events correlation rules."""
    meaning: str


VOCABULARY: Mapping[str, Reason] = {
    "DeployStarted": Reason("Normal", "Deploy", True, "a new version starts to roll out"),
    "DeploySucceeded": Reason("Normal", "Deploy", False, "the new version is out and ready"),
    "DeployFailed": Reason("Warning", "Deploy", False, "the deploy did not complete"),
    "RollbackStarted": Reason("Normal", "Rollback", True, "an earlier version is rolled back to"),
    "RollbackSucceeded": Reason("Normal", "Rollback", False, "the earlier version is back"),
    "ConfigChanged": Reason("Normal", "Configure", True, "configuration was changed or pushed"),
    "SecretRotated": Reason("Normal", "Configure", True, "a credential or certificate was replaced"),
    "FeatureFlagChanged": Reason("Normal", "ToggleFeature", True, "a feature flag was switched"),
    "ScaleChanged": Reason("Normal", "Scale", True, "replicas or resources were changed by hand or by a pipeline"),
    "MigrationStarted": Reason("Normal", "Migrate", True, "a schema or data migration starts"),
    "MigrationSucceeded": Reason("Normal", "Migrate", False, "the migration completed"),
    "MigrationFailed": Reason("Warning", "Migrate", False, "the migration failed or was stopped"),
    "ManualIntervention": Reason("Normal", "Intervene", True, "a person changed the workload by hand"),
}  # fmt: skip
"""The reasons ``kubevents emit`` records (docs/app-events.md; rules/packs/app-events.yaml
classifies each)."""


@dataclass(frozen=True, slots=True)
class Kind:
    api_version: str
    kind: str
    namespaced: bool = True


KINDS: Mapping[str, Kind] = {
    "deployment": Kind("apps/v1", "Deployment"),
    "statefulset": Kind("apps/v1", "StatefulSet"),
    "daemonset": Kind("apps/v1", "DaemonSet"),
    "replicaset": Kind("apps/v1", "ReplicaSet"),
    "job": Kind("batch/v1", "Job"),
    "cronjob": Kind("batch/v1", "CronJob"),
    "pod": Kind("v1", "Pod"),
    "service": Kind("v1", "Service"),
    "configmap": Kind("v1", "ConfigMap"),
    "persistentvolumeclaim": Kind("v1", "PersistentVolumeClaim"),
    "ingress": Kind("networking.k8s.io/v1", "Ingress"),
    "horizontalpodautoscaler": Kind("autoscaling/v2", "HorizontalPodAutoscaler"),
    "rollout": Kind("argoproj.io/v1alpha1", "Rollout"),
    "node": Kind("v1", "Node", namespaced=False),
    "namespace": Kind("v1", "Namespace", namespaced=False),
}
"""Kinds ``--regarding`` knows by name; any other needs ``--regarding-api-version``."""

ALIASES: Mapping[str, str] = {
    "deploy": "deployment", "sts": "statefulset", "ds": "daemonset", "rs": "replicaset",
    "cj": "cronjob", "po": "pod", "svc": "service", "cm": "configmap",
    "pvc": "persistentvolumeclaim", "ing": "ingress", "hpa": "horizontalpodautoscaler",
    "ro": "rollout", "no": "node", "ns": "namespace",
}  # fmt: skip
"""kubectl's short names."""

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")


# -- what is recorded ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Regarding:
    """The object an application event is about."""

    api_version: str
    kind: str
    name: str
    namespace: str
    """Empty for a cluster-scoped object (the Event then lives in ``default``)."""


@dataclass(frozen=True, slots=True)
class AppEvent:
    """An application event, validated, ready to be posted."""

    regarding: Regarding
    reason: str
    note: str
    type: str
    action: str
    reporting_controller: str
    reporting_instance: str
    name: str
    """The Event's ``metadata.name``: deterministic when an id was given."""
    event_time: dt.datetime

    @property
    def namespace(self) -> str:
        """Where the Event is created: the object's namespace, ``default`` for a
        cluster-scoped object (what events.k8s.io/v1 validation accepts)."""
        return self.regarding.namespace or "default"

    def body(self) -> dict[str, Any]:
        """The events.k8s.io/v1 Event as JSON."""
        r = self.regarding
        regarding = {"apiVersion": r.api_version, "kind": r.kind, "name": r.name}
        if r.namespace:
            regarding["namespace"] = r.namespace
        return {
            "apiVersion": EVENTS_VERSION,
            "kind": "Event",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "eventTime": self.event_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "reportingController": self.reporting_controller,
            "reportingInstance": self.reporting_instance,
            "action": self.action,
            "reason": self.reason,
            "note": self.note,
            "type": self.type,
            "regarding": regarding,
        }


@dataclass(frozen=True, slots=True)
class Emitted:
    """What :func:`emit` did."""

    namespace: str
    name: str
    created: bool
    """False: an Event of that name existed already (a retry with the same id): nothing new."""
    attempts: int

    def describe(self, event: AppEvent) -> str:
        """One line for the CLI."""
        what = f"{event.reason} on {event.regarding.kind}/{event.regarding.name}"
        if self.created:
            return f"recorded Event {self.namespace}/{self.name} ({what})"
        return (
            f"already recorded: Event {self.namespace}/{self.name} exists ({what}; "
            "a retry with the same id), nothing new recorded"
        )


class EmitForbidden(SourceError):
    """The API server refused the create (403): the message names the missing RBAC rule."""


# -- building one --------------------------------------------------------------------------


def parse_regarding(text: str, namespace: str = "", api_version: str = "") -> Regarding:
    """``deployment/web`` (kubectl's ``KIND/NAME``; short names and plurals too) in ``namespace``.

    Raises:
        ConfigError: one line naming the flag and what is wrong.
    """
    kind_text, sep, name = text.partition("/")
    if not sep or not kind_text or not name or "/" in name:
        raise ConfigError(f"--regarding: {text!r} is not KIND/NAME (e.g. deployment/web)")
    if api_version:
        if not _KIND.match(kind_text):
            raise ConfigError(
                f"--regarding: with --regarding-api-version the kind is written as the API "
                f"names it (e.g. Rollout), not {kind_text!r}"
            )
        kind = Kind(api_version, kind_text)
    else:
        key = kind_text.lower()
        key = ALIASES.get(key, key)
        if key not in KINDS and key.endswith("s"):
            key = key[:-1]  # deployments/web
        if key not in KINDS and key.endswith("e"):
            key = key[:-1] if key[:-1] in KINDS else key  # ingresses -> ingresse -> ingress
        if key not in KINDS:
            raise ConfigError(
                f"--regarding: unknown kind {kind_text!r}{did_you_mean(kind_text.lower(), KINDS)}"
                " (another kind: give --regarding-api-version and the kind as the API names it)"
            )
        kind = KINDS[key]
    if len(name) > NAME_LIMIT or not _DNS_SUBDOMAIN.match(name):
        raise ConfigError(f"--regarding: {name!r} is not a Kubernetes object name")
    if kind.namespaced:
        if not namespace:
            raise ConfigError(f"--namespace: required for a {kind.kind} (or set POD_NAMESPACE)")
        if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
            raise ConfigError(f"--namespace: {namespace!r} is not a namespace name")
    else:
        namespace = ""  # a Node or a Namespace has none, whatever -n says
    return Regarding(kind.api_version, kind.kind, name, namespace)


def event_name(regarding: Regarding, reason: str, event_id: str, now: dt.datetime) -> str:
    """``<object>.<16 hex digits>``: of SHA-256 over the object, reason and id when an id is
    given (the same for every retry), else of the time (a new Event each call)."""
    if event_id:
        key = "\x00".join((regarding.namespace, regarding.kind, regarding.name, reason, event_id))
        suffix = hashlib.sha256(key.encode()).hexdigest()[:16]
    else:
        suffix = f"{int(now.timestamp() * 1e9):x}"[-16:]  # client-go's name.<UnixNano hex>
    prefix = regarding.name[: NAME_LIMIT - 17].rstrip("-.")
    return f"{prefix}.{suffix}"


def app_event(
    regarding: str | Regarding,
    reason: str,
    note: str = "",
    *,
    namespace: str | None = None,
    event_id: str = "",
    type: str = "",
    action: str = "",
    reporting_controller: str = "",
    reporting_instance: str = "",
    regarding_api_version: str = "",
    now: dt.datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> AppEvent:
    """Validate and build an application event (no request is made).

    Defaults: ``namespace`` from ``POD_NAMESPACE``; ``type`` and ``action`` from the
    reason's vocabulary entry; ``reporting_controller`` from ``KUBEVENTS_REPORTING_CONTROLLER``
    else ``kubevents/emit``; ``reporting_instance`` from ``KUBEVENTS_REPORTING_INSTANCE``
    else the host name.

    Raises:
        ConfigError: a value is wrong; one line naming the flag.
    """
    env = os.environ if env is None else env
    now = now or dt.datetime.now(dt.UTC)
    if reason not in VOCABULARY:
        raise ConfigError(
            f"--reason: {reason!r} is not in the vocabulary{did_you_mean(reason, VOCABULARY)}"
            f" ({', '.join(VOCABULARY)})"
        )
    entry = VOCABULARY[reason]
    if not isinstance(regarding, Regarding):
        ns = env.get("POD_NAMESPACE", "") if namespace is None else namespace
        regarding = parse_regarding(regarding, ns, regarding_api_version)
    type = type or entry.type
    if type not in ("Normal", "Warning"):
        raise ConfigError(f"--type: {type!r} is neither Normal nor Warning")
    action = action or entry.action
    if len(action) > ACTION_LIMIT:
        raise ConfigError(f"--action: longer than {ACTION_LIMIT} characters")
    if len(note) > NOTE_LIMIT:
        raise ConfigError(f"--note: {len(note)} characters, the API takes at most {NOTE_LIMIT}")
    controller = (
        reporting_controller or env.get("KUBEVENTS_REPORTING_CONTROLLER") or DEFAULT_CONTROLLER
    )
    _check_qualified_name(controller)
    instance = (
        reporting_instance or env.get("KUBEVENTS_REPORTING_INSTANCE") or socket.gethostname()
    )[:REPORTING_LIMIT]
    if len(event_id) > 1024:
        raise ConfigError("--id: longer than 1024 characters")
    return AppEvent(
        regarding=regarding,
        reason=reason,
        note=note,
        type=type,
        action=action,
        reporting_controller=controller,
        reporting_instance=instance,
        name=event_name(regarding, reason, event_id, now),
        event_time=now,
    )


def _check_qualified_name(value: str) -> None:
    """``[prefix/]name`` as IsQualifiedName (apimachinery) takes it: what the API requires."""
    prefix, sep, name = value.rpartition("/")
    wrong = (
        (sep and (not prefix or len(prefix) > NAME_LIMIT or not _DNS_SUBDOMAIN.match(prefix)))
        or not name
        or len(name) > 63
        or not _QUALIFIED_NAME.match(name)
    )
    if wrong:
        raise ConfigError(
            f"--reporting-controller: {value!r} is not a qualified name "
            "(e.g. ci.example.com/deployer: an optional DNS prefix, a name of up to 63 "
            "letters, digits, '-', '_' or '.')"
        )


# -- posting it ----------------------------------------------------------------------------


RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})


def post(
    client: KubeClient,
    event: AppEvent,
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> Emitted:
    """Create ``event``; retry what may succeed later with the same name (so never twice).

    Retried: a lost connection, 429 and 5xx (after ``Retry-After`` when the server says).
    Success: 201, and 409 AlreadyExists (``created=False``).

    Raises:
        EmitForbidden: 403, naming the RBAC rule that is missing.
        ApiError: any other error answer, or the last retried one.
        ConnectionLost: the server could not be reached on the last attempt.
    """
    path = api_path(EVENTS_VERSION, "events", event.namespace)
    for attempt in range(1, attempts + 1):
        try:
            client.request_json("POST", path, body=event.body(), what="create response")
            return Emitted(event.namespace, event.name, created=True, attempts=attempt)
        except ApiError as e:
            if e.status == 409 and e.reason == "AlreadyExists":
                return Emitted(event.namespace, event.name, created=False, attempts=attempt)
            if e.status == 403:
                raise forbidden(e, event.namespace) from None
            if e.status not in RETRIED_STATUSES or attempt == attempts:
                raise
            delay = e.retry_after
            error: SourceError = e
        except ConnectionLost as e:
            if attempt == attempts:
                raise
            delay, error = None, e
        if delay is None:
            delay = backoff_delay(attempt - 1, base_s=0.5, cap_s=RETRY_AFTER_CAP_S)
        delay = min(delay, RETRY_AFTER_CAP_S)
        logger.warning(
            "create Event %s/%s: %s; retrying in %.1fs", event.namespace, event.name, error, delay
        )
        sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def forbidden(error: ApiError, namespace: str) -> EmitForbidden:
    """The 403 as one line: who was refused (the server's words) and the rule to add."""
    return EmitForbidden(
        f"forbidden: {error.message or error.reason}; the missing RBAC rule is create on "
        f"events in API group {EVENTS_GROUP} in namespace {namespace} (a Role like "
        "deploy/kubernetes/emitters, bound to this identity)"
    )


def emit(
    regarding: str | Regarding,
    reason: str,
    note: str = "",
    *,
    namespace: str | None = None,
    id: str = "",
    type: str = "",
    action: str = "",
    reporting_controller: str = "",
    reporting_instance: str = "",
    regarding_api_version: str = "",
    kubeconfig: str = "",
    context: str = "",
    client: KubeClient | None = None,
    attempts: int = ATTEMPTS,
) -> Emitted:
    """Record one application event; the Python form of ``kubevents emit``.

    ``kubevents.emit("deployment/web", "DeployStarted", "v2.3 (pipeline 1234)",
    namespace="shop", id="pipeline-1234")``. Configuration as ``kubevents run``: in a pod
    its service account, else ``kubeconfig`` / ``KUBECONFIG`` / ``~/.kube/config``; pass
    ``client`` to reuse one.

    Raises:
        ConfigError: a wrong argument (one line naming it).
        EmitForbidden: RBAC refused it (the message names the missing rule).
        SourceError: the API server could not be reached or refused it otherwise.
    """
    event = app_event(
        regarding,
        reason,
        note,
        namespace=namespace,
        event_id=id,
        type=type,
        action=action,
        reporting_controller=reporting_controller,
        reporting_instance=reporting_instance,
        regarding_api_version=regarding_api_version,
    )
    own = client is None
    client = client or load_client(kubeconfig=kubeconfig, context=context)
    try:
        return post(client, event, attempts=attempts)
    finally:
        if own:
            client.close()


def emit_command(
    *,
    regarding: str,
    reason: str,
    note: str,
    namespace: str | None,
    event_id: str,
    type: str,
    action: str,
    reporting_controller: str,
    reporting_instance: str,
    regarding_api_version: str,
    kubeconfig: str,
    context: str,
    out: Callable[[str], None],
) -> int:
    """``kubevents emit``: record, print one line, return the exit code (errors raise)."""
    event = app_event(
        regarding,
        reason,
        note,
        namespace=namespace,
        event_id=event_id,
        type=type,
        action=action,
        reporting_controller=reporting_controller,
        reporting_instance=reporting_instance,
        regarding_api_version=regarding_api_version,
    )
    client = load_client(kubeconfig=kubeconfig, context=context)
    try:
        emitted = post(client, event)
    finally:
        client.close()
    out(emitted.describe(event))
    return 0


__all__ = [
    "VOCABULARY",
    "AppEvent",
    "EmitForbidden",
    "Emitted",
    "Regarding",
    "app_event",
    "emit",
    "post",
]
