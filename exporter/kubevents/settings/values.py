"""What some setting values mean once parsed: durations, ``watch.initial``, sink specs."""

from __future__ import annotations

import re
from dataclasses import dataclass

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


OTLP_SINKS = frozenset({"otlp", "otlp+http"})
"""The sink kinds that speak OTLP (their endpoint also receives the metrics export)."""


@dataclass(frozen=True, slots=True)
class SinkSpec:
    """One entry of ``sinks``: ``kind[:argument]`` (``jsonl:out.jsonl``, ``loki:URL``)."""

    kind: str
    arg: str
    """What follows the first colon; empty when nothing does."""
    text: str
    """The entry as written, for messages."""

    @classmethod
    def parse(cls, text: str) -> SinkSpec:
        kind, _, arg = text.partition(":")
        return cls(kind, arg, text)

    @property
    def is_otlp(self) -> bool:
        return self.kind in OTLP_SINKS
