"""The report page: one self-contained HTML file, every view with a line on how to read it.

No resource is loaded from anywhere: the style sheet is inline, the charts are
inline SVG (charts.py), and the only script opens every ``<details>`` before
printing. The text views are plain HTML tables and ``<details>`` elements, so
the page reads the same with JavaScript off. Long lists are cut at fixed
sizes (``MAX_*``) and say what they left out: a 100k-Event input makes a page
of the same shape as a small one.

The views: incident_views.py (timeline, incidents), rate_views.py (patterns
and anomalies), table_views.py (where it hurt, unclassified); what they share
is in markup.py.
"""

from __future__ import annotations

from kubevents import __version__
from kubevents.enrich.incidents import format_duration
from kubevents.enrich.pattern_rules import PatternRules
from kubevents.report.charts import utc_full
from kubevents.report.incident_views import explore_url, incidents_view, timeline_view
from kubevents.report.markup import PageOptions, esc, num, plural
from kubevents.report.model import SEVERITIES, ReportData
from kubevents.report.rate_views import patterns_view
from kubevents.report.style import CSS, SCRIPT
from kubevents.report.table_views import hurt_view, unclassified_view

__all__ = ["PageOptions", "explore_url", "render"]


def render(data: ReportData, rules: PatternRules, options: PageOptions) -> str:
    """The whole page."""
    first, last = data.span_ns
    namespaces = data.totals.namespaces
    head = (
        f"<header><h1>{esc(options.title)}</h1>"
        f'<p class="lead"><span id="total-occurrences">{num(data.occurrences)}</span> occurrences in '
        f'<span id="total-records">{num(data.records)}</span> Event records across '
        f"{plural(len(namespaces), 'namespace')}"
        + (f", cluster {esc(data.cluster)}" if data.cluster else "")
        + (
            f", from {esc(utc_full(first))} to {esc(utc_full(last))} "
            f"({format_duration(last - first)})"
            if data.records
            else ""
        )
        + f'; <span id="incident-count">{len(data.incidents)}</span> '
        f"incident{'s' * (len(data.incidents) != 1)}"
        + (f"; {plural(data.problems, 'input problem')} skipped" if data.problems else "")
        + ".</p>"
        + _severity_strip(data)
        + "</header>"
    )
    nav = (
        '<nav aria-label="views"><a href="#timeline">Timeline</a> <a href="#incidents">Incidents</a> '
        '<a href="#patterns">Patterns and anomalies</a> <a href="#hurt">Where it hurt</a> '
        '<a href="#unclassified">Unclassified</a></nav>'
    )
    body = "".join(
        (
            head,
            nav,
            timeline_view(data),
            incidents_view(data, options),
            patterns_view(data, rules),
            hurt_view(data),
            unclassified_view(data),
            _footer(options),
        )
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{esc(options.title)}</title><style>{CSS}</style></head>"
        f"<body>{body}<script>{SCRIPT}</script></body></html>\n"
    )


def _severity_strip(data: ReportData) -> str:
    counts = data.totals.severities
    items = "".join(
        f'<li><span class="swatch sev-bg-{s}"></span>{s} <b>{num(counts[s])}</b></li>'
        for s in SEVERITIES
        if counts[s]
    )
    return f'<ul class="legend-list" aria-label="occurrences by severity">{items}</ul>'


def _footer(options: PageOptions) -> str:
    inputs = ", ".join(f"<code>{esc(p)}</code>" for p in options.inputs)
    return (
        f"<footer><p>Made by kubevents {esc(__version__)} from {inputs or 'its input'}. "
        "Times are UTC, event time. How to read each view: docs/report.md.</p></footer>"
    )
