"""The data that flows through the pipeline.

``KubeEvent`` is one Kubernetes Event, the same whatever API version it was
read from (core/v1 or events.k8s.io/v1); ``normalize.py`` builds it from raw
JSON exactly once. Times are integers in nanoseconds since the Unix epoch:
exact, cheap to compare, and what OTLP puts on the wire.

An Event can stand for several **occurrences**: a series Event is updated in
place and its count grows. :func:`new_occurrences` answers the question every
stage asks about an update: how many occurrences did it add?

Constructors: the classes built for every Event (``ObjectRef``, ``KubeEvent``,
``Classification``, ``Correlation``, ``Enriched``, ``records.OutputRecord``, and the
correlator's ``RootCause`` and ``IncidentTransition``) write their
``__init__`` out, with the same parameters and defaults as the one ``dataclass``
would generate (``tests/unit/test_model.py`` checks it). In the compiled build
(mypyc) the generated one stays interpreted Python, one ``object.__setattr__`` call
per field (1.5 µs for seven fields); the written-out one compiles to direct slot
writes (0.04 µs). Pure Python runs the same code either way.
"""

from __future__ import annotations

from builtins import object as _object
from dataclasses import dataclass
from typing import NamedTuple

from kubevents.conventions import Category, Severity


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """The object an Event is about (``involvedObject`` / ``regarding``)."""

    kind: str = ""
    namespace: str = ""
    name: str = ""
    uid: str = ""
    api_version: str = ""
    resource_version: str = ""
    field_path: str = ""

    def __init__(
        self,
        kind: str = "",
        namespace: str = "",
        name: str = "",
        uid: str = "",
        api_version: str = "",
        resource_version: str = "",
        field_path: str = "",
    ) -> None:
        # Written out (see the module docstring, "Constructors"): the same as the generated one.
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "uid", uid)
        object.__setattr__(self, "api_version", api_version)
        object.__setattr__(self, "resource_version", resource_version)
        object.__setattr__(self, "field_path", field_path)

    @property
    def key(self) -> str:
        """``namespace/Kind/name``; cluster-scoped objects have no namespace part; empty
        for an Event that names no object (never ``/``)."""
        if not self.kind and not self.name:
            return ""
        if self.namespace:
            return f"{self.namespace}/{self.kind}/{self.name}"
        return f"{self.kind}/{self.name}"


REPAIRED_FIELDS = ("count", "object", "type")
"""The fields normalize may repair (the ``field`` label of ``kubevents_pipeline_repaired``)."""


@dataclass(frozen=True, slots=True)
class KubeEvent:
    """One Kubernetes Event, normalized across API versions."""

    uid: str
    name: str
    namespace: str
    reason: str
    type: str
    message: str
    regarding: ObjectRef
    time_ns: int
    """Time of the latest occurrence (see ``normalize.occurrence_time``)."""
    first_time_ns: int
    """Time of the first occurrence, or ``time_ns`` when unknown."""
    count: int = 1
    """Occurrences so far: ``series.count`` / ``deprecatedCount`` / ``count``, at least 1."""
    action: str = ""
    reporting_controller: str = ""
    reporting_instance: str = ""
    source_host: str = ""
    """core/v1 ``source.host``: the reporter's node, not necessarily the object's."""
    related: ObjectRef | None = None
    resource_version: str = ""
    creation_time_ns: int = 0
    api_version: str = ""
    """The API the Event was read from: ``v1`` or ``events.k8s.io/v1``."""
    repairs: tuple[str, ...] = ()
    """What normalize repaired in a malformed Event, one ``field: what`` each (``field``
    one of :data:`REPAIRED_FIELDS`); empty for every Event the API server accepted."""

    def __init__(
        self,
        uid: str,
        name: str,
        namespace: str,
        reason: str,
        type: str,
        message: str,
        regarding: ObjectRef,
        time_ns: int,
        first_time_ns: int,
        count: int = 1,
        action: str = "",
        reporting_controller: str = "",
        reporting_instance: str = "",
        source_host: str = "",
        related: ObjectRef | None = None,
        resource_version: str = "",
        creation_time_ns: int = 0,
        api_version: str = "",
        repairs: tuple[str, ...] = (),
    ) -> None:
        object.__setattr__(self, "uid", uid)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "namespace", namespace)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "regarding", regarding)
        object.__setattr__(self, "time_ns", time_ns)
        object.__setattr__(self, "first_time_ns", first_time_ns)
        object.__setattr__(self, "count", count)
        object.__setattr__(self, "action", action)
        object.__setattr__(self, "reporting_controller", reporting_controller)
        object.__setattr__(self, "reporting_instance", reporting_instance)
        object.__setattr__(self, "source_host", source_host)
        object.__setattr__(self, "related", related)
        object.__setattr__(self, "resource_version", resource_version)
        object.__setattr__(self, "creation_time_ns", creation_time_ns)
        object.__setattr__(self, "api_version", api_version)
        object.__setattr__(self, "repairs", repairs)

    @property
    def key(self) -> str:
        """Identity of the Event object across updates: its uid, else namespace/name."""
        return self.uid or f"{self.namespace}/{self.name}"


def new_occurrences(event: KubeEvent, previous_count: int | None) -> int:
    """How many occurrences an update of ``event`` adds.

    ``previous_count`` is the count already accounted for (None when this
    Event was never seen). A count that did not grow adds nothing; a count
    that went backwards (a re-created Event reusing a name) adds nothing either.
    """
    if previous_count is None:
        return event.count
    return max(event.count - previous_count, 0)


@dataclass(frozen=True, slots=True)
class Classification:
    """What the classification rules decided about one Event."""

    category: Category
    severity: Severity
    rule_id: str | None
    """The matching rule, or None when the type's default applied."""

    def __init__(self, category: Category, severity: Severity, rule_id: str | None) -> None:
        object.__setattr__(self, "category", category)
        object.__setattr__(self, "severity", severity)
        object.__setattr__(self, "rule_id", rule_id)


@dataclass(frozen=True, slots=True)
class Correlation:
    """How an Event links to other Events: its correlation IDs."""

    object: str
    """``namespace/Kind/name`` of the involved object."""
    owners: tuple[ObjectRef, ...] = ()
    """Owner chain from the nearest owner up to the top-level workload."""
    node: str = ""
    """The node the Event is about, or empty when unknown."""
    incident_id: str = ""
    root_cause: bool = False
    """True when this Event is its incident's root cause candidate."""
    subject: ObjectRef | None = None
    """The involved object when it is itself a workload (a Deployment, a StatefulSet, a
    ReplicaSet whose owner is unknown...): its own workload when no owner is known."""
    rule: str = ""
    """The correlation rule (or ``group``) that joined the Event to its incident; empty
    for the root cause and for Events in no incident."""
    scope: str = ""
    """The scope (object, workload, node, volume, namespace) of that link."""

    def __init__(
        self,
        object: str,
        owners: tuple[ObjectRef, ...] = (),
        node: str = "",
        incident_id: str = "",
        root_cause: bool = False,
        subject: ObjectRef | None = None,
        rule: str = "",
        scope: str = "",
    ) -> None:
        # The parameter ``object`` hides the builtin: ``_object`` is the builtin under
        # another name, which mypyc still compiles to slot writes.
        _object.__setattr__(self, "object", object)
        _object.__setattr__(self, "owners", owners)
        _object.__setattr__(self, "node", node)
        _object.__setattr__(self, "incident_id", incident_id)
        _object.__setattr__(self, "root_cause", root_cause)
        _object.__setattr__(self, "subject", subject)
        _object.__setattr__(self, "rule", rule)
        _object.__setattr__(self, "scope", scope)

    @property
    def workload(self) -> ObjectRef | None:
        """The top-level owner (e.g. the Deployment of a Pod), as far as it is known."""
        return self.owners[-1] if self.owners else self.subject


@dataclass(frozen=True, slots=True)
class Enriched:
    """One Event update ready for the sinks: the Event plus everything derived."""

    event: KubeEvent
    occurrences: int
    """New occurrences this record stands for (0 for a message-only change)."""
    observed_ns: int
    classification: Classification
    correlation: Correlation | None = None
    pattern_id: str = ""

    def __init__(
        self,
        event: KubeEvent,
        occurrences: int,
        observed_ns: int,
        classification: Classification,
        correlation: Correlation | None = None,
        pattern_id: str = "",
    ) -> None:
        object.__setattr__(self, "event", event)
        object.__setattr__(self, "occurrences", occurrences)
        object.__setattr__(self, "observed_ns", observed_ns)
        object.__setattr__(self, "classification", classification)
        object.__setattr__(self, "correlation", correlation)
        object.__setattr__(self, "pattern_id", pattern_id)


class CategorySeverity(NamedTuple):
    """The key of a count by category and severity (two closed sets, so it stays bounded).

    The stages count by it; ``kubevents.telemetry`` names it as metric labels.
    """

    category: Category
    severity: Severity
