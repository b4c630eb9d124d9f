"""SVG charts drawn in Python: the incident timeline and rate charts.

Why SVG from Python rather than a JavaScript charting library: the page must
open offline, print, and read without JavaScript; inline SVG does all three
with no dependency to pin and inline, and it is text that tests can read.
Marks are aggregated before they are drawn (Events into pixel columns per
lane, occurrences into time buckets), so a chart's size depends on its width,
not on how many Events the input held: a 100k-Event report draws no more
marks than a 1k-Event one.

Colours are CSS classes (``sev-error``, ``line-baseline``...), set in the
page's style sheet from the Okabe-Ito palette, so the dark theme and print
can change them without touching the SVG.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from kubevents.report.model import SEVERITY_RANK, EventRow, Incident

_NS: Final = 1_000_000_000
TICKS_S: Final = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
    172800, 604800,
)  # fmt: skip
TIMELINE_WIDTH: Final = 1100
LABEL_WIDTH: Final = 250
LANE_HEIGHT: Final = 26
COLUMNS: Final = 240
"""Pixel columns per lane: Events are drawn as one mark per non-empty column."""


def _attr(text: str) -> str:
    return escape(text, quote=True)


def utc(time_ns: int, *, seconds: bool = True) -> str:
    """``10:05:30`` (UTC)."""
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", time.gmtime(time_ns // _NS))


def utc_full(time_ns: int) -> str:
    """``2026-11-20 10:05:30 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(time_ns // _NS))


@dataclass(frozen=True, slots=True)
class Axis:
    """Event time mapped onto x pixels."""

    start_ns: int
    end_ns: int
    x0: float
    x1: float

    def x(self, time_ns: int) -> float:
        span = max(self.end_ns - self.start_ns, 1)
        return self.x0 + (self.x1 - self.x0) * (time_ns - self.start_ns) / span

    def ticks(self, most: int = 8) -> list[int]:
        """Round times inside the axis, at most ``most`` of them."""
        span_s = max((self.end_ns - self.start_ns) / _NS, 1)
        step = next((s for s in TICKS_S if span_s / s <= most), TICKS_S[-1])
        first = -(-self.start_ns // (step * _NS)) * step * _NS
        return list(range(first, self.end_ns + 1, step * _NS))


def padded_axis(start_ns: int, end_ns: int, x0: float, x1: float) -> Axis:
    """An axis over [start, end] with 2% room either side (at least a minute wide)."""
    span = max(end_ns - start_ns, 60 * _NS)
    pad = span // 50
    return Axis(start_ns - pad, start_ns + span + pad, x0, x1)


def _time_axis(axis: Axis, top: float, bottom: float, *, seconds: bool) -> list[str]:
    out = []
    for t in axis.ticks():
        x = axis.x(t)
        out.append(
            f'<line class="grid" x1="{x:.1f}" y1="{top:.0f}" x2="{x:.1f}" y2="{bottom:.0f}"/>'
            f'<text class="tick" x="{x:.1f}" y="{bottom + 13:.0f}" text-anchor="middle">'
            f"{utc(t, seconds=seconds)}</text>"
        )
    return out


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def timeline(incidents: Sequence[Incident], chains: dict[str, list[Link]]) -> str:
    """The incident timeline: a lane per incident, its Events as severity-coloured marks.

    ``chains``: per incident id, the links (cause -> symptom) drawn as arcs from
    the root cause to the first Event of each group.
    """
    if not incidents:
        return ""
    start = min(i.first_ns for i in incidents)
    end = max(i.last_ns for i in incidents)
    axis = padded_axis(start, end, LABEL_WIDTH + 10, TIMELINE_WIDTH - 10)
    top = 8
    height = top + LANE_HEIGHT * len(incidents) + 24
    parts = [
        f'<svg class="chart timeline" viewBox="0 0 {TIMELINE_WIDTH} {height}" '
        f'width="{TIMELINE_WIDTH}" height="{height}" role="img" '
        f'aria-label="Incident timeline: {len(incidents)} incidents">',
        *_time_axis(axis, top, height - 20, seconds=(end - start) < 600 * _NS),
    ]
    column_ns = max((axis.end_ns - axis.start_ns) // COLUMNS, 1)
    for lane, incident in enumerate(incidents):
        y = top + lane * LANE_HEIGHT
        mid = y + LANE_HEIGHT / 2
        x_first, x_last = axis.x(incident.first_ns), axis.x(incident.last_ns)
        label = f"{incident.root_reason or incident.id} · {incident.events} events"
        parts.append(
            f'<a href="#{_attr(incident.id)}"><g class="lane">'
            f"<title>{_attr(incident.id)}: {_attr(incident.description or label)}</title>"
            f'<rect class="lane-bg" x="0" y="{y}" width="{TIMELINE_WIDTH}" height="{LANE_HEIGHT}"/>'
            f'<text class="lane-label" x="6" y="{mid + 4:.1f}">{_attr(_short(label, 38))}</text>'
            f'<rect class="span" x="{x_first:.1f}" y="{mid - 2:.1f}" '
            f'width="{max(x_last - x_first, 1):.1f}" height="4"/>'
        )
        columns: dict[int, tuple[int, str, int]] = {}
        for e in incident.rows():
            col = (e.time_ns - axis.start_ns) // column_ns
            rank = SEVERITY_RANK.get(e.severity, 0)
            seen = columns.get(col)
            if seen is None:
                columns[col] = (rank, e.severity, e.occurrences)
            else:
                worst = (rank, e.severity) if rank > seen[0] else seen[:2]
                columns[col] = (*worst, seen[2] + e.occurrences)
        width = max((axis.x1 - axis.x0) / COLUMNS, 2.0)
        # One path per severity, a short segment per column: a fifth of the bytes of rects.
        paths: dict[str, list[str]] = {}
        for col, (_, severity, _n) in sorted(columns.items()):
            x = axis.x(axis.start_ns + col * column_ns)
            paths.setdefault(severity, []).append(
                f"M{x:.1f} {mid - 7:.0f}h{width:.1f}v14h-{width:.1f}z"
            )
        for severity, segments in paths.items():
            total = sum(n for _, s, n in columns.values() if s == severity)
            parts.append(
                f'<path class="sev-{severity}" d="{"".join(segments)}">'
                f"<title>{total} occurrences in slices whose worst is {severity}</title></path>"
            )
        for link in chains.get(incident.id, [])[:8]:
            x_to = axis.x(link.first_ns)
            if x_to - x_first < 3:
                continue
            lift = min(LANE_HEIGHT / 2 - 1, 4 + (x_to - x_first) / 40)
            parts.append(
                f'<path class="link" d="M{x_first:.1f},{mid - 7:.1f} '
                f'Q{(x_first + x_to) / 2:.1f},{mid - 7 - lift:.1f} {x_to:.1f},{mid - 7:.1f}">'
                f"<title>{_attr(link.describe())}</title></path>"
            )
        root_ns = incident.root_row.time_ns if incident.root_row is not None else incident.first_ns
        xr = axis.x(root_ns)
        parts.append(
            f'<path class="root" d="M{xr:.1f},{mid - 8:.1f} l7,8 -7,8 -7,-8 z">'
            f"<title>root cause: {_attr(incident.root_reason)} "
            f"{_attr(incident.root_object)}</title></path></g></a>"
        )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class Link:
    """A group of an incident's Events that joined the same way: cause -> symptom."""

    rule: str
    scope: str
    reason: str
    events: int
    occurrences: int
    first_ns: int

    def describe(self) -> str:
        via = f"rule {self.rule}" if self.rule else "rule not recorded"
        where = f", scope {self.scope}" if self.scope else ""
        return f"-> {self.reason} ×{self.events} ({via}{where}), from {utc(self.first_ns)}"


def chain(incident: Incident) -> list[Link]:
    """The incident's Events after the root cause, grouped by (rule, scope, reason), in time order."""
    groups: dict[tuple[str, str, str], list[EventRow]] = {}
    for e in incident.members:
        if e.root or e is incident.root_row:
            continue
        groups.setdefault((e.join_rule, e.join_scope, e.reason), []).append(e)
    links = [
        Link(rule, scope, reason, len(rows), sum(e.occurrences for e in rows), rows[0].time_ns)
        for (rule, scope, reason), rows in groups.items()
    ]
    links.sort(key=lambda link: (link.first_ns, link.reason))
    return links


@dataclass(frozen=True, slots=True)
class Series:
    """One line of a rate chart: a value per bucket (None: no value there)."""

    values: Sequence[float | None]
    css: str
    label: str
    dashed: bool = False


def rate_chart(
    *,
    start_ns: int,
    bucket_ns: int,
    bars: Sequence[float],
    lines: Sequence[Series],
    marked: frozenset[int] = frozenset(),
    title: str,
    unit: str,
    width: int = 520,
    height: int = 170,
    max_columns: int = 240,
) -> str:
    """Bars (occurrences per bucket) with lines over them (threshold, baseline, rate).

    More than ``max_columns`` buckets are folded into columns by their maximum, so a
    week of one-minute buckets draws no more than a short incident does.
    ``marked``: bucket indexes drawn highlighted (the anomalous ones).
    """
    n = len(bars)
    fold = max(1, -(-n // max_columns))
    cols = -(-n // fold) if n else 0
    bar_cols = [max(bars[i * fold : (i + 1) * fold], default=0.0) for i in range(cols)]
    line_cols = [
        [
            max((v for v in s.values[i * fold : (i + 1) * fold] if v is not None), default=None)
            for i in range(cols)
        ]
        for s in lines
    ]
    marked_cols = {i // fold for i in marked}
    top_value = max([*bar_cols, *(v for col in line_cols for v in col if v is not None), 1.0])
    left, right, top, bottom = 44, width - 8, 34, height - 22
    axis = Axis(start_ns, start_ns + max(cols, 1) * fold * bucket_ns, left, right)

    def y(value: float) -> float:
        return bottom - (bottom - top) * value / top_value

    parts = [
        f'<svg class="chart rate" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{_attr(title)}">',
        f'<text class="chart-title" x="{left}" y="13">{_attr(_short(title, 78))}'
        f"<title>{_attr(title)}</title></text>",
        *_time_axis(axis, top, bottom, seconds=False),
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<text class="tick" x="{left - 4}" y="{top + 4}" text-anchor="end">{top_value:.3g}</text>',
        f'<text class="tick" x="{left - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<text class="tick" x="4" y="{(top + bottom) / 2:.0f}">{_attr(unit)}</text>',
    ]
    col_w = (right - left) / max(cols, 1)
    for i, bar in enumerate(bar_cols):
        if bar <= 0:
            continue
        css = "bar marked" if i in marked_cols else "bar"
        h = bottom - y(bar)
        parts.append(
            f'<rect class="{css}" x="{left + i * col_w:.1f}" y="{y(bar):.1f}" '
            f'width="{max(col_w - 0.5, 0.8):.1f}" height="{h:.1f}"/>'
        )
    for series, values in zip(lines, line_cols, strict=True):
        points: list[str] = []
        path: list[str] = []
        for i, value in enumerate(values):
            if value is None:
                if points:
                    path.append("M" + " L".join(points))
                points = []
                continue
            x_a, x_b = left + i * col_w, left + (i + 1) * col_w
            points += [f"{x_a:.1f},{y(value):.1f}", f"{x_b:.1f},{y(value):.1f}"]
        if points:
            path.append("M" + " L".join(points))
        if path:
            dash = " dashed" if series.dashed else ""
            parts.append(
                f'<path class="line {series.css}{dash}" d="{" ".join(path)}">'
                f"<title>{_attr(series.label)}</title></path>"
            )
    legend_x = float(width - 8)
    for series in reversed(lines):
        parts.append(
            f'<text class="legend {series.css}" x="{legend_x}" y="27" '
            f'text-anchor="end">{"- - " if series.dashed else "── "}{_attr(series.label)}</text>'
        )
        legend_x -= 24 + 6.2 * len(series.label)
    parts.append("</svg>")
    return "".join(parts)
