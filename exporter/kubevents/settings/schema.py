"""Settings: one typed tree, loaded from YAML, then env, then flags.

Precedence is flags > ``KUBEVENTS_*`` environment variables > the config file
> defaults. Every problem is a :class:`~kubevents.errors.ConfigError` with a
one-line message that names the key (with a did-you-mean for typos)::

    kubevents.yaml: at replay -> sumary: unknown key (did you mean 'summary'?)

Nothing is ever "logged and replaced by the default": a process that stops
with a clear message beats one that runs quietly misconfigured.

The dataclasses below *are* the schema. Each field's docstring gives its
unit, default and reason; ``docs/config.md`` is generated from them and a
test keeps the two in step. Environment names are derived from the path:
``replay.summary`` is ``KUBEVENTS_REPLAY_SUMMARY``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from kubevents.errors import ConfigError, did_you_mean
from kubevents.safeload import LoadProblem, decode_utf8, load_yaml

CONFIG_VERSION = 1
ENV_PREFIX = "KUBEVENTS_"
# Environment variables that are not settings (they locate things).
ENV_META = frozenset({"KUBEVENTS_CONFIG", "KUBEVENTS_RULES_DIR", "KUBEVENTS_CACHE"})
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    page_size: int = 500
    """Events per page of the initial list (``limit``/``continue``). Default 500."""
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
    """Seconds between checkpoint saves; bounds what a crash may repeat. Default 1 s."""
    queue_size: int = 10_000
    """Events buffered between the watch and the pipeline; when full the watch waits
    (backpressure), and the apiserver keeps the rest. Default 10 000."""
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


def load_settings(
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from a file, the environment and flag overrides.

    Args:
        path: YAML config file, or None for defaults only.
        env: environment to read ``KUBEVENTS_*`` from (default ``os.environ``).
        overrides: flag values by dotted path (``"replay.summary": False``).

    Raises:
        ConfigError: anything invalid, with a one-line message naming the key.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = _read_file(path, env) if path else {}
    source = path or "config"
    _check_version(raw, source)
    merged = _merge(raw, _from_env(env), source="environment")
    merged = _merge(merged, _nest(dict(overrides or {})), source="flags")
    settings: Settings = _build(Settings, merged, (), source)
    _check_values(settings, source)
    return settings


def _read_file(path: str, env: Mapping[str, str]) -> dict[str, Any]:
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from e
    try:
        data = load_yaml(decode_utf8(raw), _YAML_LOADER)
    except LoadProblem as e:
        where = f"{path}:{e.line}" if e.line else path
        raise ConfigError(f"{where}: {e.message}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top of the config")
    substituted = _substitute(data, env, path)
    assert isinstance(substituted, dict)
    return substituted


def _substitute(value: Any, env: Mapping[str, str], path: str) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` inside string values only.

    Substituting after parsing means a variable can never inject YAML structure.
    """
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: ${{{name}}} is not set and has no default")

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, path) for v in value]
    return value


def _check_version(raw: Mapping[str, Any], source: str) -> None:
    version = raw.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError(
            f"{source}: at version: unsupported config version {version!r} (expected 1)"
        )


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


def env_name(path: tuple[str, ...]) -> str:
    """``("replay", "summary")`` -> ``KUBEVENTS_REPLAY_SUMMARY``."""
    return ENV_PREFIX + "_".join(path).upper()


_SERVICE_VARIABLE = re.compile(
    r"^KUBEVENTS_(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT(?:_[A-Z0-9_]+)?)$"
)
"""What Kubernetes sets in every Pod of a namespace with a Service named ``kubevents``
(``KUBEVENTS_SERVICE_HOST``, ``KUBEVENTS_SERVICE_PORT_METRICS``, ``KUBEVENTS_PORT``,
``KUBEVENTS_PORT_9464_TCP_ADDR``...): not settings, ignored."""


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """``KUBEVENTS_*`` variables that are neither settings, nor locations, nor the
    variables Kubernetes sets for a Service named ``kubevents``: each a one-line warning.

    Not an error: a variable left over from an older release, or set for another tool
    of the same name, must not stop the exporter; a typo is named with its correction.
    """
    by_name = {env_name(path) for path in leaf_paths()}
    warnings = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_META or name in by_name:
            continue
        if _SERVICE_VARIABLE.match(name):
            continue
        # Compared without the shared prefix, which would make every name look close.
        short = [n.removeprefix(ENV_PREFIX) for n in (*by_name, *ENV_META)]
        hint = did_you_mean(name.removeprefix(ENV_PREFIX), short)
        hint = hint.replace("mean '", f"mean '{ENV_PREFIX}")
        warnings.append(f"environment: unknown variable {name} ignored{hint}")
    return warnings


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    by_name = {env_name(path): path for path in leaf_paths()}
    values: dict[str, Any] = {}
    for name, text in env.items():
        path = by_name.get(name)
        if path is None:  # not a setting: see unknown_env
            continue
        values[".".join(path)] = _parse_env_value(text, leaf_paths()[path], name)
    return _nest(values)


def _parse_env_value(text: str, hint: Any, name: str) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment: {name}: expected true or false, got {text!r}")
    if hint is int or hint is float:
        try:
            return hint(text)
        except ValueError:
            raise ConfigError(f"environment: {name}: expected a number, got {text!r}") from None
    if typing.get_origin(hint) is tuple:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _merge(base: dict[str, Any], top: dict[str, Any], *, source: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, source=source)
        else:
            out[key] = value
    return out


def _build(cls: type, raw: Any, path: tuple[str, ...], source: str) -> Any:
    where = f"{source}: at {' -> '.join(path)}" if path else source
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_type_name(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            at = " -> ".join((*path, str(key)))
            raise ConfigError(f"{source}: at {at}: unknown key{did_you_mean(str(key), names)}")
    values = {}
    for name in names:
        if name in raw:
            values[name] = _convert(hints[name], raw[name], (*path, name), source)
    return cls(**values)


def _convert(hint: Any, value: Any, path: tuple[str, ...], source: str) -> Any:
    where = f"{source}: at {' -> '.join(path)}"
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, path, source)
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            listed = ", ".join(str(c) for c in choices if c != "")
            if "" in choices:
                listed += " (or empty: the default)"
            raise ConfigError(
                f"{where}: expected one of {listed}, got {value!r}{did_you_mean(str(value), choices)}"
            )
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {_type_name(value)}")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{where}: unsupported type")  # no optional settings yet
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_type_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_type_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_type_name(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_type_name(value)}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint!r}")


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration_s(text: str) -> float | None:
    """``90s``, ``10m``, ``1.5h``, ``2d`` -> seconds; None when not a duration."""
    m = _DURATION.match(text.strip())
    return float(m.group(1)) * _UNIT_S[m.group(2)] if m else None


def parse_initial(text: str) -> float | None:
    """The ``watch.initial`` policy as a look-back in seconds: inf for ``all``, 0 for ``none``."""
    if text == "all":
        return float("inf")
    if text == "none":
        return 0.0
    if text.startswith("since="):
        return parse_duration_s(text.removeprefix("since="))
    return None


def _check_values(settings: Settings, source: str) -> None:
    """Checks that a type alone cannot express."""
    checks: tuple[tuple[bool, str, str], ...] = (
        (settings.replay.top >= 1, "replay -> top", "must be at least 1"),
        (settings.pipeline.batch_size >= 1, "pipeline -> batch_size", "must be at least 1"),
        (settings.pipeline.series_ttl_s > 0, "pipeline -> series_ttl_s", "must be positive"),
        (
            settings.pipeline.series_max_entries >= 1,
            "pipeline -> series_max_entries",
            "must be at least 1",
        ),
    )
    checks += (
        (bool(settings.sinks), "sinks", "must name at least one sink"),
        (settings.watch.page_size >= 1, "watch -> page_size", "must be at least 1"),
        (settings.watch.backoff_base_s > 0, "watch -> backoff_base_s", "must be positive"),
        (
            settings.watch.backoff_cap_s >= settings.watch.backoff_base_s,
            "watch -> backoff_cap_s",
            "must be at least backoff_base_s",
        ),
        (
            settings.watch.inactivity_timeout_s > 0,
            "watch -> inactivity_timeout_s",
            "must be positive",
        ),
        (settings.watch.empty_watch_s >= 0, "watch -> empty_watch_s", "must not be negative"),
        (settings.watch.throttle_s >= 0, "watch -> throttle_s", "must not be negative"),
        (settings.watch.object_cache_max >= 1, "watch -> object_cache_max", "must be at least 1"),
        (settings.watch.timeout_s >= 1, "watch -> timeout_s", "must be at least 1"),
        (settings.watch.queue_size >= 1, "watch -> queue_size", "must be at least 1"),
        (
            settings.watch.checkpoint_interval_s > 0,
            "watch -> checkpoint_interval_s",
            "must be positive",
        ),
        (
            parse_initial(settings.watch.initial) is not None,
            "watch -> initial",
            f"expected all, none or since=DURATION (e.g. since=10m), got {settings.watch.initial!r}",
        ),
        (
            settings.leader.renew_s < settings.leader.lease_s,
            "leader -> renew_s",
            "must be below leader.lease_s",
        ),
        (
            settings.leader.retry_s < settings.leader.renew_s,
            "leader -> retry_s",
            "must be below leader.renew_s",
        ),
    )
    checks += _sink_checks(settings)
    for ok, at, problem in checks:
        if not ok:
            raise ConfigError(f"{source}: at {at}: {problem}")


def _sink_checks(settings: Settings) -> tuple[tuple[bool, str, str], ...]:
    """Checks of the network sink, delivery and metrics settings."""
    d, m = settings.delivery, settings.metrics
    return (
        (d.queue_size >= 1, "delivery -> queue_size", "must be at least 1"),
        (d.batch_size >= 1, "delivery -> batch_size", "must be at least 1"),
        (d.batch_timeout_s >= 0, "delivery -> batch_timeout_s", "must not be negative"),
        (d.backoff_base_s > 0, "delivery -> backoff_base_s", "must be positive"),
        (
            d.backoff_cap_s >= d.backoff_base_s,
            "delivery -> backoff_cap_s",
            "must be at least backoff_base_s",
        ),
        (d.max_body_bytes >= 64, "delivery -> max_body_bytes", "must be at least 64"),
        (d.max_attribute_bytes >= 64, "delivery -> max_attribute_bytes", "must be at least 64"),
        (d.spool_max_bytes >= 1 << 20, "delivery -> spool_max_bytes", "must be at least 1 MiB"),
        (d.flush_timeout_s >= 0, "delivery -> flush_timeout_s", "must not be negative"),
        (0 <= m.port <= 65535, "metrics -> port", "must be between 0 and 65535"),
        (m.otlp_interval_s > 0, "metrics -> otlp_interval_s", "must be positive"),
        (len(settings.loki.labels) <= 15, "loki -> labels", "at most 15 (Loki's label limit)"),
        (settings.replay.hold_s >= 0, "replay -> hold_s", "must not be negative"),
    )


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under each field of a settings dataclass."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def settings_reference() -> str:
    """``docs/config.md``: every setting with its env name, default and docstring."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `exporter/kubevents/config.py` by `python -m kubevents.config`;",
        "a test fails when this page is stale. Precedence: flags > environment > file > defaults.",
        "",
        "| key | environment | type | default | description |",
        "| --- | --- | --- | --- | --- |",
    ]

    def walk(cls: type, instance: Any, prefix: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            value = getattr(instance, f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                walk(typing.cast(type, hints[f.name]), value, (*prefix, f.name))
                continue
            path = (*prefix, f.name)
            kind = _hint_name(hints[f.name])
            default = list(value) if isinstance(value, tuple) else value
            lines.append(
                f"| `{'.'.join(path)}` | `{env_name(path)}` | {kind} | `{default!r}` | {docs.get(f.name, '')} |"
            )

    walk(Settings, Settings(), ())
    return "\n".join(lines) + "\n"


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "list of strings"
    return str(getattr(hint, "__name__", hint))


if __name__ == "__main__":
    print(settings_reference(), end="")
