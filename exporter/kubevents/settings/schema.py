"""The schema: one typed tree of frozen dataclasses, :class:`Settings` at its root.

The dataclasses below *are* the schema. Each field's docstring gives its
unit, default and reason; ``docs/config.md`` is generated from them
(``reference.py``) and a test keeps the two in step. Environment names are
derived from the path: ``replay.summary`` is ``KUBEVENTS_REPLAY_SUMMARY``
(``loading.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

from kubevents.settings.values import SinkSpec

CONFIG_VERSION = 1


@dataclass(frozen=True)
class RulesSettings:
    """Where classification, correlation and pattern rules come from."""

    dirs: tuple[str, ...] = ()
    """Extra rule directories, layered over the shipped rules in order (a rule
    with the same id replaces the shipped one). Default: none."""
    include_shipped: bool = True
    """Load the rules that ship with kubevents first. Default true; turn off to
    use only your own rules."""
    disabled_packs: tuple[str, ...] = ()
    """Rule packs to switch off as a whole, by name (``istio``, ``karpenter``; see
    docs/rule-packs.md and ``kubevents rules check``). Default: none, every pack is on."""


@dataclass(frozen=True)
class ConsoleSettings:
    """The human-readable console sink."""

    color: Literal["auto", "always", "never"] = "auto"
    """Colour lines by severity: ``auto`` colours only on a terminal."""


@dataclass(frozen=True)
class JsonlSettings:
    """The JSON Lines sink."""

    path: str = "-"
    """File to append to; ``-`` is stdout. A ``jsonl:PATH`` sink spec overrides it."""


@dataclass(frozen=True)
class ReplaySettings:
    """``kubevents replay``."""

    summary: bool = True
    """Print a summary (categories, severities, top reasons and objects) at the end."""
    top: int = 10
    """How many reasons and objects the summary lists. Default 10."""
    hold_s: float = 0.0
    """Keep serving ``/metrics`` this many seconds after the replay (``--hold``), so a
    Prometheus can scrape the final values. Default 0."""
    shift_to_now: bool = False
    """Move every Event's times so that the newest occurrence of the files is now (a
    stream: its first Event), keeping the spacing (``--shift-to-now``): for demos and load
    tests against a backend that refuses old entries (Loki: older than a week). Default off."""


@dataclass(frozen=True)
class PipelineSettings:
    """The in-process pipeline."""

    batch_size: int = 512
    """Records handed to each sink per call. Default 512: large enough to
    amortise per-call cost, small enough to keep latency low."""
    series_ttl_s: float = 7200.0
    """Seconds of event time an Event's emitted count is remembered. Default 2 h:
    twice the API server's default Event TTL (1 h), so no repeat slips through."""
    series_max_entries: int = 500_000
    """Upper bound on remembered Events (about 100 B each). Default 500 000."""


@dataclass(frozen=True)
class FilterSettings:
    """Client-side filters applied to every Event before it enters the pipeline.

    An empty list means "everything". Exclusions win over inclusions.
    """

    reasons: tuple[str, ...] = ()
    """Only these reasons (exact). Default: all."""
    exclude_reasons: tuple[str, ...] = ()
    """Never these reasons."""
    kinds: tuple[str, ...] = ()
    """Only Events about these kinds of object (``Pod``, ``Node``...)."""
    exclude_kinds: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    """Only Events about objects in these namespaces (client-side; see ``watch.namespaces``
    to restrict the watch itself)."""
    exclude_namespaces: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    """Only these Kubernetes types (``Normal``, ``Warning``)."""


@dataclass(frozen=True)
class WatchSettings:
    """``kubevents run``: how the cluster is watched."""

    kubeconfig: str = ""
    """kubeconfig file. Default: in-cluster config in a pod, else ``KUBECONFIG`` or ~/.kube/config."""
    context: str = ""
    """kubeconfig context. Default: the current context."""
    api: Literal["auto", "events.k8s.io/v1", "v1"] = "auto"
    """Events API. ``auto`` uses events.k8s.io/v1 and falls back to core v1 when the server
    does not serve it. Never both: they are the same stored objects."""
    namespaces: tuple[str, ...] = ()
    """Watch only these namespaces (one watch each). Default: the whole cluster."""
    field_selector: str = ""
    """Server-side field selector, e.g. ``type!=Normal``."""
    page_size: int = 1000
    """Events per page of the initial list (``limit``/``continue``). Default 1000."""
    timeout_s: int = 300
    """Server-side watch timeout (``timeoutSeconds``); the watch is renewed after it. Default 5 min."""
    inactivity_timeout_s: float = 70.0
    """Seconds without any line (event or bookmark) after which the watch is considered dead
    and restarted. Default 70: bookmarks come about every 60 s."""
    empty_watch_s: float = 1.0
    """A watch that ends sooner than this with nothing in it is taken as an expired
    resourceVersion (Events have no watch cache) and triggers a relist. Default 1 s."""
    backoff_base_s: float = 0.5
    """First retry delay after a failure; doubles each attempt (±20% jitter). Default 0.5 s."""
    backoff_cap_s: float = 30.0
    """Longest retry delay, unless the server's Retry-After asks for more. Default 30 s."""
    initial: str = "all"
    """On a first start without checkpoint: ``all`` emits every Event still in the API,
    ``none`` only what happens from now on, ``since=DURATION`` (e.g. ``since=10m``) the recent ones."""
    checkpoint: str = ""
    """Checkpoint file. Default: none (or the Lease annotation when leader election is on)."""
    checkpoint_interval_s: float = 1.0
    """Seconds between checkpoint saves; bounds what a crash may repeat. Default 1 s.
    A checkpoint with nothing new since the last one is saved again once a minute."""
    queue_size: int = 10_000
    """Events buffered between the watch and the pipeline; when full the watch waits
    (backpressure), and the apiserver keeps the rest. Default 10 000."""
    queue_max_bytes: int = 4 * 1024 * 1024
    """Bytes of JSON those Events may take (an Event takes about three times its JSON
    once parsed); when full the watch waits as for ``queue_size``. Default 4 MiB."""
    throttle_s: float = 0.0
    """Emit at most one record per Event per this many seconds; updates in between are
    held and merged into the next record (occurrences stay exact). Default 0: off."""
    object_cache: bool = True
    """Watch Pods, ReplicaSets and Jobs to resolve owners and nodes for correlation.
    Needs list/watch on them; without it, correlation uses naming conventions."""
    object_cache_max: int = 200_000
    """Objects kept per kind in that cache (a few short strings each). Default 200 000."""
    filters: FilterSettings = field(default_factory=FilterSettings)


@dataclass(frozen=True)
class LeaderSettings:
    """High availability: only the holder of a Lease watches and exports."""

    enabled: bool = False
    """Run leader election (``--leader-elect``). Default off (single replica)."""
    lease_name: str = "kubevents"
    """Name of the coordination.k8s.io/v1 Lease."""
    lease_namespace: str = ""
    """Namespace of the Lease. Default: ``POD_NAMESPACE``, else ``default``."""
    identity: str = ""
    """This replica's identity in the Lease. Default: the instance id (pod name)."""
    lease_s: float = 15.0
    """How long a Lease not renewed stays taken. Default 15 s (client-go's default)."""
    renew_s: float = 10.0
    """The leader gives up if it cannot renew within this. Must be below ``lease_s``. Default 10 s."""
    retry_s: float = 2.0
    """Seconds between campaign or renewal attempts. Default 2 s."""


@dataclass(frozen=True)
class CorrelationSettings:
    """Correlation IDs and incidents; what links Events is in ``rules/correlation.yaml``."""

    enabled: bool = True
    """Add object, workload, node and incident IDs to every record and emit
    ``kubevents.incident`` records. Default on."""
    max_incidents: int = 10_000
    """Incidents open at once; past it the oldest is resolved early (and counted). Default 10 000."""
    max_links: int = 200_000
    """Links remembered between Events (cause or scope -> incident, about 200 B each);
    the 64th updated longest ago is dropped at once (and counted). Default 200 000."""
    max_owners: int = 100_000
    """Owners and Pod nodes learned from Events (controller messages, kubelet reports), per
    table; past it the 64th learned longest ago is dropped at once (and counted). Default 100 000."""
    settle_s: float = 10.0
    """Seconds of event time the record of an Event that may still join an incident (a
    rule's effect whose cause has not come, a lone warning) is held, so that a cause
    recorded a little later still gives it the incident's id; 0 holds nothing. A replay
    of files holds up to the longest correlation window instead. Default 10 s: most late
    causes in real recordings come within seconds, and alerts should not wait long."""


@dataclass(frozen=True)
class OtlpSettings:
    """The OTLP log sinks (``otlp`` over gRPC, ``otlp+http``) and the OTLP metrics export.

    Empty fields fall back to the standard ``OTEL_EXPORTER_OTLP_LOGS_*``, then
    ``OTEL_EXPORTER_OTLP_*`` variables (``..._METRICS_*`` for metrics), then the defaults."""

    endpoint: str = ""
    """Endpoint URL; the scheme decides TLS: ``http://`` plaintext, ``https://`` TLS. An
    ``otlp:URL`` or ``otlp+http:URL`` sink spec wins over it. Default (gRPC)
    ``http://localhost:4317``; (HTTP) ``http://localhost:4318`` with ``/v1/logs`` appended."""
    headers: tuple[str, ...] = ()
    """Extra request headers (gRPC metadata), ``name=value`` each, e.g. ``authorization=Bearer
    ${OTLP_TOKEN}``. Values are never logged nor printed by ``check-config``."""
    headers_file: str = ""
    """File of ``name=value`` lines (a mounted Secret), read at start, added to ``headers``."""
    certificate: str = ""
    """CA bundle (PEM) that verifies the server. Default: the system's trust store."""
    client_certificate: str = ""
    """Client certificate (PEM) for mutual TLS; needs ``client_key``."""
    client_key: str = ""
    """Private key (PEM) of ``client_certificate``."""
    insecure: bool = False
    """Plaintext for an endpoint given without a scheme (``host:port``); a scheme always decides."""
    compression: Literal["", "none", "gzip"] = ""
    """Request compression. Default: ``OTEL_EXPORTER_OTLP_COMPRESSION``, else none."""
    timeout_s: float = 0.0
    """Deadline of one request, in seconds. Default: ``OTEL_EXPORTER_OTLP_TIMEOUT``, else 10 s."""


@dataclass(frozen=True)
class LokiSettings:
    """The direct Loki push sink (``loki:URL``)."""

    url: str = ""
    """Loki's base URL (``/loki/api/v1/push`` is appended); a ``loki:URL`` sink spec wins."""
    encoding: Literal["json", "protobuf"] = "json"
    """``json`` (gzip-compressed, see ``gzip``) or ``protobuf`` (raw snappy, Loki's default)."""
    gzip: bool = True
    """Compress JSON bodies with gzip. Default true: Event text compresses about tenfold."""
    tenant: str = ""
    """Tenant (``X-Scope-OrgID`` header) for a multi-tenant Loki. Default: none."""
    username: str = ""
    """Basic auth user; the password comes from ``password`` or ``password_file``."""
    password: str = ""
    """Basic auth password (use ``${VAR}``); never logged nor printed."""
    password_file: str = ""
    """File holding the basic auth password, read at start."""
    bearer_token: str = ""
    """Bearer token (use ``${VAR}``); never logged nor printed."""
    bearer_token_file: str = ""
    """File holding the bearer token, read at start."""
    headers: tuple[str, ...] = ()
    """Extra request headers, ``name=value`` each; never logged nor printed."""
    labels: tuple[str, ...] = ("service.name", "k8s.cluster.name", "k8s.namespace.name")
    """Resource attributes indexed as stream labels (dots become underscores), as Loki's
    OTLP ingestion does; at most 15. Everything else is structured metadata."""
    profile: Literal["kubevents", "k8s-monitoring"] = "kubevents"
    """Stream labels: ``kubevents`` (those of ``labels``) or ``k8s-monitoring`` (those Grafana's
    k8s-monitoring chart gives cluster Events, docs/sinks.md; ``labels`` is then unused)."""
    job: str = "integrations/kubernetes/eventhandler"
    """The ``job`` and ``service_name`` label of the ``k8s-monitoring`` profile (the chart's
    ``jobLabel``)."""
    certificate: str = ""
    """CA bundle (PEM) that verifies an ``https://`` Loki. Default: the system's trust store."""
    client_certificate: str = ""
    """Client certificate (PEM) for mutual TLS; needs ``client_key``."""
    client_key: str = ""
    """Private key (PEM) of ``client_certificate``."""
    insecure_skip_verify: bool = False
    """Do not verify Loki's TLS certificate (testing only)."""
    timeout_s: float = 10.0
    """Deadline of one push request, in seconds. Default 10 s."""


@dataclass(frozen=True)
class DeliverySettings:
    """How every network sink (otlp, otlp+http, loki) queues, batches and retries."""

    queue_size: int = 2_048
    """Records buffered in memory per sink. Default 2048 (four batches; the OpenTelemetry
    SDK's batch processor queues as many), about 2 KiB each in memory: past it, ``queue_full``
    applies. A spool (``delivery.spool_dir``) holds what an outage leaves behind."""
    queue_full: Literal["block", "drop_oldest"] = "block"
    """When the queue is full: ``block`` makes the watch wait (the API server keeps what is
    not read yet, so nothing it still holds is lost), ``drop_oldest`` drops the oldest
    records (counted in ``kubevents_sink_dropped_total{reason="queue_full"}``)."""
    block_timeout_s: float = 0.0
    """With ``block``: wait at most this long, then drop the oldest. Default 0: wait until
    there is room or kubevents stops."""
    batch_size: int = 512
    """Records per request, at most. Default 512 (the OTel SDK's batch size)."""
    batch_timeout_s: float = 1.0
    """Longest a record waits for its batch to fill before it is sent. Default 1 s."""
    backoff_base_s: float = 1.0
    """First retry delay; doubles each attempt (±20% jitter). Default 1 s."""
    backoff_cap_s: float = 30.0
    """Longest retry delay, unless the server asks for more (Retry-After, RetryInfo). Default 30 s."""
    retry_max_elapsed_s: float = 0.0
    """Give up on a batch after retrying it this long (then it is dropped and counted).
    Default 0: retry until delivered or kubevents stops."""
    max_body_bytes: int = 16_384
    """Longer messages are cut (UTF-8 bytes) and get ``kubevents.truncated=true``. Default
    16 KiB: 16 times the events.k8s.io note limit, far below Loki's 256 KB line limit."""
    max_attribute_bytes: int = 4_096
    """Longer string attribute values are cut the same way. Default 4 KiB: keeps an entry's
    structured metadata under Loki's 64 KB limit."""
    spool_dir: str = ""
    """Directory of the on-disk spool (``--spool DIR``): survives outages longer than memory
    allows and restarts; each sink uses a subdirectory. Default: none (memory only)."""
    spool_max_bytes: int = 268_435_456
    """Disk cap per sink; when reached, ``queue_full`` applies. Default 256 MiB."""
    flush_timeout_s: float = 10.0
    """Longest kubevents waits at exit for each sink to deliver what is queued; the rest
    stays in the spool, or is counted as dropped (``shutdown``) and read again from the API
    on the next start. Default 10 s."""


@dataclass(frozen=True)
class MetricsSettings:
    """kubevents' metrics: a Prometheus endpoint and an optional OTLP export."""

    port: int = 9464
    """Port of ``/metrics``, ``/healthz`` and ``/readyz`` for ``kubevents run`` (``replay``
    serves them only with ``--metrics-port``). 0 disables the server. Default 9464, the
    OpenTelemetry Prometheus exporter's port."""
    host: str = "0.0.0.0"
    """Address the metrics server listens on. Default all interfaces (a pod's scrape target)."""
    otlp: bool = True
    """Also push the metrics over OTLP (cumulative) to the endpoint of the first ``otlp`` or
    ``otlp+http`` sink, when there is one."""
    otlp_interval_s: float = 60.0
    """Seconds between OTLP metric exports. Default 60 s (the SDK's default)."""


@dataclass(frozen=True)
class Settings:
    """Everything kubevents can be configured with."""

    version: int = CONFIG_VERSION
    """Config format version; only 1 exists."""
    cluster_name: str = ""
    """``k8s.cluster.name`` on every record. Default empty (omitted)."""
    instance_id: str = ""
    """``service.instance.id``. Default: ``POD_NAME`` when set, else the host name;
    stable across restarts, unlike the SDK's random default."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Level of kubevents' own log lines (on stderr)."""
    sinks: tuple[str, ...] = ("console",)
    """Where records go, at least one: ``console``, ``jsonl[:PATH]``, ``otlp[:ENDPOINT]``
    (gRPC), ``otlp+http[:URL]``, ``loki:URL``. Repeatable flag ``--sink``; see docs/sinks.md."""
    rules: RulesSettings = field(default_factory=RulesSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    jsonl: JsonlSettings = field(default_factory=JsonlSettings)
    replay: ReplaySettings = field(default_factory=ReplaySettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    watch: WatchSettings = field(default_factory=WatchSettings)
    leader: LeaderSettings = field(default_factory=LeaderSettings)
    correlation: CorrelationSettings = field(default_factory=CorrelationSettings)
    otlp: OtlpSettings = field(default_factory=OtlpSettings)
    loki: LokiSettings = field(default_factory=LokiSettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    @functools.cached_property
    def sink_specs(self) -> tuple[SinkSpec, ...]:
        """``sinks`` parsed, once: every reader of a spec goes through this."""
        return tuple(SinkSpec.parse(text) for text in self.sinks)


def leaf_paths(cls: type = Settings, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every settable leaf path of ``cls`` and its type."""
    out: dict[tuple[str, ...], Any] = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            out.update(leaf_paths(typing.cast(type, hint), (*prefix, f.name)))
        else:
            out[(*prefix, f.name)] = hint
    return out
