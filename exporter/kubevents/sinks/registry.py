"""The table of sinks: a sink spec (``kind[:argument]``) -> a sink instance.

Adding a sink means adding its module and one entry in :data:`SINKS`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from kubevents.config import Settings
from kubevents.errors import ConfigError, did_you_mean
from kubevents.records import ResourceInfo
from kubevents.sinks.base import Sink
from kubevents.sinks.console import ConsoleSink
from kubevents.sinks.jsonl import JsonlSink


@dataclass(frozen=True)
class SinkContext:
    """What a sink factory may use."""

    settings: Settings
    resource: ResourceInfo


Factory = Callable[[str | None, SinkContext], Sink]


def _console(arg: str | None, ctx: SinkContext) -> Sink:
    color = {"always": True, "never": False, "auto": None}[ctx.settings.console.color]
    return ConsoleSink(sys.stdout, color=color)


def _jsonl(arg: str | None, ctx: SinkContext) -> Sink:
    return JsonlSink(ctx.resource, arg or ctx.settings.jsonl.path)


SINKS: dict[str, Factory] = {
    "console": _console,
    "jsonl": _jsonl,
}


def build_sinks(ctx: SinkContext) -> list[Sink]:
    """One sink per spec in ``settings.sinks``.

    Raises:
        ConfigError: an unknown sink kind, or a sink that cannot start.
    """
    sinks = []
    for spec in ctx.settings.sinks:
        kind, _, arg = spec.partition(":")
        factory = SINKS.get(kind)
        if factory is None:
            raise ConfigError(f"sinks: unknown sink {kind!r}{did_you_mean(kind, SINKS)}")
        try:
            sinks.append(factory(arg or None, ctx))
        except OSError as e:
            raise ConfigError(f"sinks: {spec}: cannot open: {e.strerror or e}") from e
    return sinks
