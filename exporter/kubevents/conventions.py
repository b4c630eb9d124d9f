"""The output contract: categories, severities, attribute and event names.

Everything a user builds dashboards and alerts on is named here and only here.
``docs/attributes.md`` documents the same names, and a test fails if the two
drift apart. Changing a value in this module is a breaking change.

Event attributes reuse the names of the OpenTelemetry Collector's
k8seventsreceiver (``k8s.event.*``, ``k8s.object.*``) so queries written for
that receiver keep working; kubevents' own enrichment lives under
``kubevents.*`` because semantic conventions advise against inventing names
under ``k8s.*``.
"""

from __future__ import annotations

import enum
from typing import Final


class Category(enum.StrEnum):
    """What part of the system an Event is about (a closed set)."""

    SCHEDULING = "Scheduling"
    IMAGE = "Image"
    LIFECYCLE = "Lifecycle"
    HEALTH = "Health"
    RESOURCES = "Resources"
    STORAGE = "Storage"
    NETWORK = "Network"
    NODE = "Node"
    AUTOSCALING = "Autoscaling"
    WORKLOAD = "Workload"
    CONFIG = "Config"
    POLICY = "Policy"
    OTHER = "Other"


class Severity(enum.StrEnum):
    """How bad an Event is, as kubevents judges it (not the Kubernetes type)."""

    CRITICAL = "critical"
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    DEBUG = "debug"

    @property
    def number(self) -> int:
        """The OpenTelemetry SeverityNumber: the lowest value of each range."""
        return SEVERITY_NUMBERS[self]


SEVERITY_NUMBERS: Final[dict[Severity, int]] = {
    Severity.CRITICAL: 21,  # FATAL
    Severity.ERROR: 17,  # ERROR
    Severity.WARNING: 13,  # WARN
    Severity.INFO: 9,  # INFO
    Severity.DEBUG: 5,  # DEBUG
}

# LogRecord EventName values. Fixed names: what varies goes in attributes.
EVENT_NAME_EVENT: Final = "k8s.event"
EVENT_NAME_INCIDENT: Final = "kubevents.incident"
EVENT_NAME_PATTERN: Final = "kubevents.pattern"

# Resource attributes.
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
K8S_CLUSTER_NAME: Final = "k8s.cluster.name"
K8S_NAMESPACE_NAME: Final = "k8s.namespace.name"
SERVICE_NAME_VALUE: Final = "kubevents"

# Event attributes shared with the k8seventsreceiver.
EVENT_REASON: Final = "k8s.event.reason"
EVENT_UID: Final = "k8s.event.uid"
EVENT_COUNT: Final = "k8s.event.count"
EVENT_NAME: Final = "k8s.event.name"
EVENT_ACTION: Final = "k8s.event.action"
EVENT_START_TIME: Final = "k8s.event.start_time"
EVENT_REPORTING_CONTROLLER: Final = "k8s.event.reporting_controller"
EVENT_REPORTING_INSTANCE: Final = "k8s.event.reporting_instance"
OBJECT_KIND: Final = "k8s.object.kind"
OBJECT_NAME: Final = "k8s.object.name"
OBJECT_UID: Final = "k8s.object.uid"
OBJECT_FIELDPATH: Final = "k8s.object.fieldpath"
OBJECT_API_VERSION: Final = "k8s.object.api_version"
OBJECT_RESOURCE_VERSION: Final = "k8s.object.resource_version"

# kubevents' own enrichment.
KV_CATEGORY: Final = "kubevents.category"
KV_SEVERITY: Final = "kubevents.severity"
KV_RULE: Final = "kubevents.rule"
KV_OCCURRENCES: Final = "kubevents.occurrences"
KV_SOURCE_API: Final = "kubevents.source_api"
KV_RELATED: Final = "kubevents.related"
KV_TRUNCATED: Final = "kubevents.truncated"

# Patterns (kubevents.pattern records, and the pattern id on k8s.event records).
KV_PATTERN_ID: Final = "kubevents.pattern.id"
KV_PATTERN_STATE: Final = "kubevents.pattern.state"
KV_PATTERN_KEY: Final = "kubevents.pattern.key"
KV_PATTERN_RULE: Final = "kubevents.pattern.rule"
KV_PATTERN_COUNT: Final = "kubevents.pattern.count"
KV_PATTERN_RATE: Final = "kubevents.pattern.rate_per_minute"
KV_PATTERN_FIRST_SEEN: Final = "kubevents.pattern.first_seen"
KV_PATTERN_LAST_SEEN: Final = "kubevents.pattern.last_seen"
KV_PATTERN_SAMPLES: Final = "kubevents.pattern.samples"
KV_PATTERN_INCIDENTS: Final = "kubevents.pattern.incidents"
KV_ANOMALY_SCORE: Final = "kubevents.anomaly.score"

# Correlation IDs (on k8s.event records). The node also goes in semconv's k8s.node.name.
K8S_NODE_NAME: Final = "k8s.node.name"
KV_OBJECT: Final = "kubevents.object"
KV_WORKLOAD: Final = "kubevents.workload"
KV_NODE: Final = "kubevents.node"

# Incidents (kubevents.incident records; the id and root-cause flag also on k8s.event records).
KV_INCIDENT_ID: Final = "kubevents.incident.id"
KV_INCIDENT_ROOT_CAUSE: Final = "kubevents.incident.root_cause"
KV_INCIDENT_STATE: Final = "kubevents.incident.state"
KV_INCIDENT_RULE: Final = "kubevents.incident.rule"
KV_INCIDENT_SCOPE: Final = "kubevents.incident.scope"
KV_INCIDENT_MERGED_INTO: Final = "kubevents.incident.merged_into"
KV_INCIDENT_ALIASES: Final = "kubevents.incident.aliases"
KV_INCIDENT_ROOT_REASON: Final = "kubevents.incident.root_cause.reason"
KV_INCIDENT_ROOT_OBJECT: Final = "kubevents.incident.root_cause.object"
KV_INCIDENT_ROOT_UID: Final = "kubevents.incident.root_cause.uid"
KV_INCIDENT_WORKLOADS: Final = "kubevents.incident.workloads"
KV_INCIDENT_NODES: Final = "kubevents.incident.nodes"
KV_INCIDENT_NAMESPACES: Final = "kubevents.incident.namespaces"
KV_INCIDENT_CATEGORIES: Final = "kubevents.incident.categories"
KV_INCIDENT_EVENTS: Final = "kubevents.incident.events"
KV_INCIDENT_OCCURRENCES: Final = "kubevents.incident.occurrences"
KV_INCIDENT_FIRST_SEEN: Final = "kubevents.incident.first_seen"
KV_INCIDENT_LAST_SEEN: Final = "kubevents.incident.last_seen"

# Kinds that semantic conventions name as ``k8s.<kind>.name``. Other kinds are
# only described by ``k8s.object.*``.
SEMCONV_KINDS: Final[frozenset[str]] = frozenset(
    {
        "Pod",
        "Node",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "ReplicationController",
        "HorizontalPodAutoscaler",
        "PersistentVolumeClaim",
        "Service",
        "ResourceQuota",
    }
)

# Kinds whose semconv key is not simply the lowercased kind.
_SEMCONV_KEY_OVERRIDES: Final[dict[str, str]] = {
    "HorizontalPodAutoscaler": "k8s.hpa.name",
}


def kind_name_key(kind: str) -> str | None:
    """Return the semconv ``k8s.<kind>.name`` key for ``kind``, or None."""
    if kind not in SEMCONV_KINDS:
        return None
    return _SEMCONV_KEY_OVERRIDES.get(kind) or f"k8s.{kind.lower()}.name"


class MetricName:
    """OpenTelemetry instrument names of kubevents' metrics (a namespace, not attributes).

    Prometheus sees ``kubevents.sink.export.duration`` (unit ``s``) as
    ``kubevents_sink_export_duration_seconds`` and counters with ``_total``;
    ``docs/metrics.md`` lists the Prometheus names, and a test keeps the two
    and a real scrape in step. Label names are attribute names with dots as
    underscores.
    """

    EVENTS: Final = "kubevents.events"
    EVENTS_OVERFLOW: Final = "kubevents.events.overflow"
    EVENTS_UNCLASSIFIED: Final = "kubevents.events.unclassified"
    PIPELINE_UPDATES: Final = "kubevents.pipeline.updates"
    PIPELINE_RECORDS: Final = "kubevents.pipeline.records"
    PIPELINE_OCCURRENCES: Final = "kubevents.pipeline.occurrences"
    PIPELINE_REPAIRED: Final = "kubevents.pipeline.repaired"
    SINK_EXPORTED: Final = "kubevents.sink.exported"
    SINK_FAILED: Final = "kubevents.sink.failed"
    SINK_RETRIED: Final = "kubevents.sink.retried"
    SINK_DROPPED: Final = "kubevents.sink.dropped"
    SINK_TRUNCATED: Final = "kubevents.sink.truncated"
    SINK_SENT: Final = "kubevents.sink.sent"
    SINK_QUEUE_SIZE: Final = "kubevents.sink.queue.size"
    SINK_QUEUE_CAPACITY: Final = "kubevents.sink.queue.capacity"
    SINK_SPOOL_SIZE: Final = "kubevents.sink.spool.size"
    SINK_SPOOL_CAPACITY: Final = "kubevents.sink.spool.capacity"
    SINK_EXPORT_DURATION: Final = "kubevents.sink.export.duration"
    SINK_BATCH_SIZE: Final = "kubevents.sink.batch.size"
    BUILD_INFO: Final = "kubevents.build_info"
    # kubevents run: the watch, leadership and checkpoints
    WATCH_LISTS: Final = "kubevents.watch.lists"
    WATCH_RELISTS: Final = "kubevents.watch.relists"
    WATCH_RESTARTS: Final = "kubevents.watch.restarts"
    WATCH_API_ERRORS: Final = "kubevents.watch.api_errors"
    WATCH_BAD_LINES: Final = "kubevents.watch.bad_lines"
    WATCH_BOOKMARKS: Final = "kubevents.watch.bookmarks"
    WATCH_STREAMS: Final = "kubevents.watch.streams"
    WATCH_SKIPPED: Final = "kubevents.watch.skipped"
    WATCH_THROTTLED: Final = "kubevents.watch.throttled"
    WATCH_LAST_EVENT: Final = "kubevents.watch.last_event_timestamp"
    WATCH_LAG: Final = "kubevents.watch.lag"
    PIPELINE_QUEUE_SIZE: Final = "kubevents.pipeline.queue.size"
    PIPELINE_QUEUE_CAPACITY: Final = "kubevents.pipeline.queue.capacity"
    PIPELINE_QUEUE_BYTES: Final = "kubevents.pipeline.queue.bytes"
    PIPELINE_QUEUE_MAX_BYTES: Final = "kubevents.pipeline.queue.max_bytes"
    PIPELINE_QUEUE_FULL: Final = "kubevents.pipeline.queue.full"
    LEADER: Final = "kubevents.leader"
    CHECKPOINT_WRITES: Final = "kubevents.checkpoint.writes"
    CHECKPOINT_LAST_SUCCESS: Final = "kubevents.checkpoint.last_success_timestamp"
    # patterns, anomalies, incidents and the state behind them
    PATTERNS_ACTIVE: Final = "kubevents.patterns.active"
    PATTERN_TRANSITIONS: Final = "kubevents.pattern.transitions"
    PATTERN_RATE: Final = "kubevents.pattern.rate_per_minute"
    """The unit is in the name: readers translate a ``/min`` unit differently
    (``_per_min`` here, ``_per_minute`` in the Collector), a name they keep."""
    PATTERNS_SUPPRESSED: Final = "kubevents.patterns.suppressed"
    ANOMALIES_ACTIVE: Final = "kubevents.anomalies.active"
    ANOMALY_SCORE: Final = "kubevents.anomaly.score"
    INCIDENTS_OPEN: Final = "kubevents.incidents.open"
    INCIDENT_TRANSITIONS: Final = "kubevents.incident.transitions"
    OCCURRENCES_LATE: Final = "kubevents.occurrences.late"
    STATE_ENTRIES: Final = "kubevents.state.entries"
    STATE_EVICTIONS: Final = "kubevents.state.evictions"


def metric_label(attribute: str) -> str:
    """The Prometheus label of an attribute: its name with dots as underscores."""
    return attribute.replace(".", "_")


class MetricLabel:
    """Label names of kubevents' metrics (``docs/metrics.md``; a namespace, not attributes).

    A label that carries an attribute's value is named after the attribute
    (:func:`metric_label`); the stages count by typed keys and
    ``kubevents.telemetry`` gives them these names.
    """

    NAMESPACE: Final = "k8s_namespace_name"
    KIND: Final = "k8s_object_kind"
    EVENT_REASON: Final = "k8s_event_reason"
    EVENT_TYPE: Final = "k8s_event_type"
    REPORTING_CONTROLLER: Final = "k8s_event_reporting_controller"
    CATEGORY: Final = "kubevents_category"
    SEVERITY: Final = "kubevents_severity"
    PATTERN_RULE: Final = "kubevents_pattern_rule"
    ANOMALY_SCOPE: Final = "kubevents_anomaly_scope"
    # kubevents' own dimensions (closed sets, or the configured sinks and watches)
    SINK: Final = "sink"
    RESULT: Final = "result"
    REASON: Final = "reason"
    STATE: Final = "state"
    STAGE: Final = "stage"
    OVERFLOW_KIND: Final = "kind"
    RESOURCE: Final = "resource"
    BOUND: Final = "bound"
    CODE: Final = "code"
    FIELD: Final = "field"
    VERSION: Final = "version"
