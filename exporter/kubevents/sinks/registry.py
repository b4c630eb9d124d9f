"""The table of sinks: a sink spec (``kind[:argument]``) -> a sink instance.

Adding a sink means adding its module and one entry in :data:`SINKS`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from kubevents.errors import ConfigError, did_you_mean
from kubevents.records import ResourceInfo
from kubevents.settings import Settings
from kubevents.sinks.base import Sink
from kubevents.sinks.console import ConsoleSink
from kubevents.sinks.jsonl import JsonlSink
from kubevents.sinks.otlp_options import OtlpOptions, TransportKind, resolve_otlp
from kubevents.sinks.transport import Transport


@dataclass(frozen=True)
class SinkContext:
    """What a sink factory may use."""

    settings: Settings
    resource: ResourceInfo
    stop: threading.Event | None = None
    """kubevents' stop event: network sinks stop blocking on a full queue once it is set."""


Factory = Callable[[str | None, SinkContext], Sink]


def _console(arg: str | None, ctx: SinkContext) -> Sink:
    color = {"always": True, "never": False, "auto": None}[ctx.settings.console.color]
    return ConsoleSink(sys.stdout, color=color)


def _jsonl(arg: str | None, ctx: SinkContext) -> Sink:
    return JsonlSink(ctx.resource, arg or ctx.settings.jsonl.path)


def _otlp(arg: str | None, ctx: SinkContext) -> Sink:
    from kubevents.sinks.otlp_grpc import OtlpGrpcTransport

    return _otlp_sink("otlp", "grpc", OtlpGrpcTransport, arg, ctx)


def _otlp_http(arg: str | None, ctx: SinkContext) -> Sink:
    from kubevents.sinks.otlp_http import OtlpHttpTransport

    return _otlp_sink("otlp+http", "http", OtlpHttpTransport, arg, ctx)


def _otlp_sink(
    name: str,
    transport: TransportKind,
    make: Callable[[OtlpOptions, ResourceInfo], Transport],
    endpoint: str | None,
    ctx: SinkContext,
) -> Sink:
    """An OTLP logs sink: the transport on the resolved options, behind a delivery queue."""
    from kubevents.sinks.delivery import DeliverySink

    options = resolve_otlp(
        transport=transport, signal="logs", spec_endpoint=endpoint, settings=ctx.settings.otlp
    )
    return DeliverySink(
        name,
        make(options, ctx.resource),
        ctx.settings.delivery,
        spool_dir=ctx.settings.delivery.spool_dir,
        stop=ctx.stop,
    )


def _loki(arg: str | None, ctx: SinkContext) -> Sink:
    from kubevents.sinks.loki_push import build_loki_sink

    return build_loki_sink(arg, settings=ctx.settings, resource=ctx.resource, stop=ctx.stop)


SINKS: dict[str, Factory] = {
    "console": _console,
    "jsonl": _jsonl,
    # Network sinks import grpc/requests only when configured (fast start for replay).
    "otlp": _otlp,
    "otlp+http": _otlp_http,
    "loki": _loki,
}


NETWORK_SINKS = frozenset({"otlp", "otlp+http", "loki"})


def build_sinks(ctx: SinkContext) -> list[Sink]:
    """One sink per spec in ``settings.sinks``.

    Raises:
        ConfigError: an unknown sink kind, or a sink that cannot start.
    """
    sinks = []
    network: set[str] = set()
    for spec in ctx.settings.sink_specs:
        kind, arg = spec.kind, spec.arg
        factory = SINKS.get(kind)
        if factory is None:
            raise ConfigError(f"sinks: unknown sink {kind!r}{did_you_mean(kind, SINKS)}")
        if kind in NETWORK_SINKS:
            if kind in network:  # its spool directory and metrics labels are named by kind
                raise ConfigError(f"sinks: {kind} is given twice; each network sink at most once")
            network.add(kind)
        try:
            sinks.append(factory(arg or None, ctx))
        except OSError as e:
            raise ConfigError(f"sinks: {spec.text}: cannot open: {e.strerror or e}") from e
    return sinks
