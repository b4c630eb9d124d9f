"""Whether a command wants metrics, and where they go: decided here, once.

A command serves ``/metrics`` when it has a port, and pushes metrics over OTLP
when ``metrics.otlp`` is on and some sink is an ``otlp`` or ``otlp+http`` sink
(the first one's endpoint). With neither, nothing of the OpenTelemetry SDK is
imported (it adds about 80 ms to a start), so this module imports only the settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from kubevents.settings import Settings

OTLP_SINK_KINDS: Final[dict[str, Literal["grpc", "http"]]] = {"otlp": "grpc", "otlp+http": "http"}
"""The sink kinds whose endpoint the metrics can be pushed to, and their transport."""


@dataclass(frozen=True, slots=True)
class OtlpTarget:
    """Where the OTLP metrics go: the transport and endpoint of the first OTLP sink."""

    transport: Literal["grpc", "http"]
    endpoint: str | None
    """The sink spec's endpoint (``otlp:ENDPOINT``); None: from the ``otlp`` settings."""


@dataclass(frozen=True, slots=True)
class MetricsPlan:
    """The metrics a command wants: served on a port, pushed over OTLP, or both."""

    port: int | None
    """The ``/metrics`` port (0: any free port); None: no server."""
    otlp: OtlpTarget | None
    """None: no OTLP push."""


def metrics_plan(settings: Settings, *, port: int | None) -> MetricsPlan | None:
    """The metrics of a command with ``settings`` serving on ``port``; None when it wants none."""
    otlp = _otlp_target(settings) if settings.metrics.otlp else None
    if port is None and otlp is None:
        return None
    return MetricsPlan(port=port, otlp=otlp)


def _otlp_target(settings: Settings) -> OtlpTarget | None:
    for spec in settings.sink_specs:
        transport = OTLP_SINK_KINDS.get(spec.kind)
        if transport is not None:
            return OtlpTarget(transport=transport, endpoint=spec.arg or None)
    return None
