"""The report page: one self-contained HTML file, every view with a line on how to read it.

No resource is loaded from anywhere: the style sheet is inline, the charts are
inline SVG (charts.py), and the only script opens every ``<details>`` before
printing. The text views are plain HTML tables and ``<details>`` elements, so
the page reads the same with JavaScript off. Long lists are cut at fixed
sizes (``MAX_*``) and say what they left out: a 100k-Event input makes a page
of the same shape as a small one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final
from urllib.parse import urlencode

from kubevents import __version__
from kubevents.enrich.incidents import format_duration
from kubevents.enrich.pattern_rules import PatternRules
from kubevents.report.charts import (
    Series,
    chain,
    rate_chart,
    timeline,
    utc,
    utc_full,
)
from kubevents.report.model import SEVERITIES, EventRow, Incident, Pattern, ReportData
from kubevents.report.style import CSS, SCRIPT

MAX_LANES: Final = 60
"""Incidents drawn in the timeline (the largest, shown in time order)."""
MAX_DETAILS: Final = 50
"""Incidents with a detail section (the largest, shown in time order)."""
MAX_LISTED: Final = 1000
"""Further incidents listed one line each."""
MAX_EVENTS: Final = 50
"""Events listed in one incident's detail."""
MAX_CHARTS: Final = 8
"""Rate charts of patterns, and of anomalies."""
MAX_ROWS: Final = 50
"""Rows of the pattern, object, reason and controller tables."""
MESSAGE_MAX: Final = 300
"""Characters of an Event message shown (up to 1000 more in its tooltip)."""
_NS: Final = 1_000_000_000
_MINUTE: Final = 60 * _NS
PROBLEM: Final = frozenset({"critical", "error", "warning"})


@dataclass(frozen=True, slots=True)
class PageOptions:
    """How the page is made."""

    title: str = "kubevents report"
    grafana_url: str = ""
    """Grafana base URL: each incident links to its records in Explore."""
    grafana_datasource: str = "loki"
    """uid of the Loki data source in that Grafana (grafana/provisioning: ``loki``)."""
    inputs: tuple[str, ...] = ()


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _plural(n: int, noun: str) -> str:
    return f"{_n(n)} {noun}{'s' * (n != 1)}"


def render(data: ReportData, rules: PatternRules, options: PageOptions) -> str:
    """The whole page."""
    first, last = data.span_ns
    namespaces = {e.namespace for e in data.events if e.namespace}
    head = (
        f"<header><h1>{_e(options.title)}</h1>"
        f'<p class="lead"><span id="total-occurrences">{_n(data.occurrences)}</span> occurrences in '
        f'<span id="total-records">{_n(len(data.events))}</span> Event records across '
        f"{_plural(len(namespaces), 'namespace')}"
        + (f", cluster {_e(data.cluster)}" if data.cluster else "")
        + (
            f", from {_e(utc_full(first))} to {_e(utc_full(last))} "
            f"({format_duration(last - first)})"
            if data.events
            else ""
        )
        + f'; <span id="incident-count">{len(data.incidents)}</span> '
        f"incident{'s' * (len(data.incidents) != 1)}"
        + (f"; {_plural(data.problems, 'input problem')} skipped" if data.problems else "")
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
            _timeline_view(data),
            _incidents_view(data, options),
            _patterns_view(data, rules),
            _hurt_view(data),
            _unclassified_view(data),
            _footer(options),
        )
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        f"<title>{_e(options.title)}</title><style>{CSS}</style></head>"
        f"<body>{body}<script>{SCRIPT}</script></body></html>\n"
    )


def _severity_strip(data: ReportData) -> str:
    counts = data.counts("severity")
    items = "".join(
        f'<li><span class="swatch sev-bg-{s}"></span>{s} <b>{_n(counts[s])}</b></li>'
        for s in SEVERITIES
        if counts[s]
    )
    return f'<ul class="legend-list" aria-label="occurrences by severity">{items}</ul>'


def _section(anchor: str, title: str, explain: str, content: str, extra: str = "") -> str:
    return (
        f'<section id="{anchor}"{extra}><h2>{_e(title)}</h2>'
        f'<p class="explain">{explain}</p>{content}</section>'
    )


# -- timeline ---------------------------------------------------------------------------


def _timeline_view(data: ReportData) -> str:
    incidents = data.incidents
    if not incidents:
        return _section("timeline", "Incident timeline", "No incident in this input.", "")
    shown = sorted(incidents, key=lambda i: (-i.events, i.first_ns, i.id))[:MAX_LANES]
    shown.sort(key=lambda i: (i.first_ns, i.id))
    chains = {i.id: chain(i) for i in shown}
    legend = "".join(f'<li><span class="swatch sev-bg-{s}"></span>{s}</li>' for s in SEVERITIES) + (
        '<li><span class="swatch root-swatch"></span>root cause</li>'
        '<li><span class="swatch link-swatch"></span>cause → symptom link</li>'
    )
    cut = (
        f'<p class="note">The {MAX_LANES} largest of {len(incidents)} incidents are drawn; '
        "every incident is listed below.</p>"
        if len(incidents) > len(shown)
        else ""
    )
    return _section(
        "timeline",
        "Incident timeline",
        "One lane per incident, in the order they began. Each mark is the incident's Events "
        "in that slice of time, coloured by the worst severity among them; the diamond is the "
        "root cause, the arcs lead from it to the first Event of each group that joined "
        "(hover for rule and scope). Click a lane for its detail.",
        f'<div class="scroll">{timeline(shown, chains)}</div>'
        f'<ul class="legend-list">{legend}</ul>{cut}',
    )


# -- incidents --------------------------------------------------------------------------


def _incidents_view(data: ReportData, options: PageOptions) -> str:
    incidents = data.incidents
    if not incidents:
        return _section(
            "incidents", "Incidents", "No incident in this input.", "", ' data-count="0"'
        )
    detailed = sorted(incidents, key=lambda i: (-i.events, i.first_ns, i.id))[:MAX_DETAILS]
    chosen = {i.id for i in detailed}
    items = "".join(_incident(i, data.cluster, options) for i in incidents if i.id in chosen)
    rest = [i for i in incidents if i.id not in chosen]
    cut = ""
    if rest:
        rows = "".join(
            f'<tr><td><span class="sev sev-bg-{_e(i.severity)}">{_e(i.severity)}</span></td>'
            f"<td><code>{_e(i.id)}</code></td><td>{utc(i.first_ns)}</td>"
            f"<td>{format_duration(i.last_ns - i.first_ns)}</td><td>{_e(i.category)}</td>"
            f"<td>{_e(i.root_reason)} <code>{_e(i.root_object)}</code></td>"
            f'<td class="num">{_n(i.events)}</td><td class="num">{_n(i.occurrences)}</td></tr>'
            for i in rest[:MAX_LISTED]
        )
        more = len(rest) - MAX_LISTED
        cut = (
            f"<h3>{_plural(len(rest), 'smaller incident')}</h3>"
            f'<p class="explain">The {MAX_DETAILS} largest incidents are detailed above; '
            "these are listed one line each, in time order.</p>"
            '<div class="scroll"><table><thead><tr><th>severity</th><th>id</th><th>from</th>'
            "<th>for</th><th>category</th><th>root cause</th>"
            '<th class="num">events</th><th class="num">occurrences</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
            + (f'<p class="note">{_n(more)} more are not listed.</p>' if more > 0 else "")
        )
    return _section(
        "incidents",
        "Incidents",
        "Each incident groups the Events of one problem; its root cause is the earliest "
        "cause-side Event of the chain (docs/correlation.md). Open one for the workloads, "
        "nodes and namespaces it touched, how its Events joined, and every Event with its "
        "message and counts.",
        items + cut,
        f' data-count="{len(incidents)}"',
    )


def _incident(incident: Incident, cluster: str, options: PageOptions) -> str:
    i = incident
    state = "resolved" if i.state == "resolved" else "open at the end of the input"
    summary = (
        f'<summary><span class="sev sev-bg-{_e(i.severity)}">{_e(i.severity)}</span> '
        f'<code class="incident-id">{_e(i.id)}</code> {_e(i.category)}, {state}: root cause '
        f'<b class="root-reason">{_e(i.root_reason)}</b> '
        f'<span class="root-object">{_e(i.root_object)}</span> · '
        f'<span class="events">{_n(i.events)}</span> events '
        f'(<span class="occurrences">{_n(i.occurrences)}</span> occurrences) over '
        f"{format_duration(i.last_ns - i.first_ns)}, from {utc(i.first_ns)}</summary>"
    )
    scope = "".join(
        f"<dt>{name}</dt><dd>{', '.join(f'<code>{_e(v)}</code>' for v in values) or 'none'}</dd>"
        for name, values in (
            ("workloads", i.workloads),
            ("nodes", i.nodes),
            ("namespaces", i.namespaces),
        )
    )
    if i.merged:
        scope += f"<dt>merged</dt><dd>{', '.join(f'<code>{_e(m)}</code>' for m in i.merged)}</dd>"
    link = ""
    if options.grafana_url:
        url = explore_url(
            options.grafana_url,
            [i.id, *i.merged],
            i.first_ns,
            i.last_ns,
            datasource=options.grafana_datasource,
            cluster=cluster,
        )
        link = f'<p><a class="grafana" href="{_e(url)}">These Events in Grafana Explore</a></p>'
    return (
        f'<details class="incident" id="{_e(i.id)}">{summary}'
        f"<p>{_e(i.description)}</p><dl>{scope}</dl>{link}"
        f"{_chain_table(i)}{_event_table(i)}</details>"
    )


def _chain_table(incident: Incident) -> str:
    links = chain(incident)
    if not links:
        return ""
    recorded = any(link.rule for link in links)
    rows = "".join(
        f"<tr><td>{utc(link.first_ns)}</td><td>{_e(link.rule or '—')}</td>"
        f"<td>{_e(link.scope or '—')}</td><td>{_e(link.reason)}</td>"
        f'<td class="num">{_n(link.events)}</td><td class="num">{_n(link.occurrences)}</td></tr>'
        for link in links
    )
    note = (
        ""
        if recorded
        else '<p class="note">These records do not name the rule and scope of each join '
        "(kubevents.incident.rule, .scope); the groups are by reason.</p>"
    )
    return (
        f'<h4>Cause → symptom</h4><p class="explain">From the root cause '
        f"<b>{_e(incident.root_reason)}</b> ({_e(incident.root_object)}), the Events that "
        "joined, grouped by the rule and scope of the link they followed.</p>"
        '<table class="chain"><thead><tr><th>from</th><th>rule</th><th>scope</th>'
        '<th>reason</th><th class="num">events</th><th class="num">occurrences</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>{note}"
    )


@dataclass(slots=True)
class _EventGroup:
    """The records of one Event (one uid) in an incident."""

    first: EventRow
    last: EventRow
    updates: int
    occurrences: int


def _event_table(incident: Incident) -> str:
    groups: dict[str, _EventGroup] = {}
    for e in incident.rows():
        key = e.uid or f"{e.object}/{e.reason}"
        group = groups.get(key)
        if group is None:
            groups[key] = _EventGroup(e, e, 1, e.occurrences)
        else:
            group.last = e
            group.updates += 1
            group.occurrences += e.occurrences
    ordered = sorted(groups.values(), key=lambda g: g.first.time_ns)
    root = incident.root_row
    rows = []
    for g in ordered[:MAX_EVENTS]:
        e = g.last
        is_root = g.first is root or any(x.root for x in (g.first, g.last))
        message = e.message if len(e.message) <= MESSAGE_MAX else e.message[:MESSAGE_MAX] + "…"
        rows.append(
            f"<tr{' class=root-row' if is_root else ''}><td>{utc(g.first.time_ns)}</td>"
            f"<td>{utc(e.time_ns)}</td>"
            f'<td><span class="sev sev-bg-{_e(e.severity)}">{_e(e.severity)}</span></td>'
            f"<td>{_e(e.category)}</td><td>{_e(e.reason)}{' (root cause)' if is_root else ''}</td>"
            f"<td><code>{_e(e.object)}</code></td>"
            f'<td class="num">{_n(e.count)}</td><td class="num">{_n(g.occurrences)}</td>'
            f'<td class="num">{_n(g.updates)}</td>'
            f"<td class=msg{_tooltip(e.message)}>{_e(message)}</td></tr>"
        )
    cut = (
        f'<p class="note">{len(ordered) - MAX_EVENTS} more Events are not listed.</p>'
        if len(ordered) > MAX_EVENTS
        else ""
    )
    return (
        f"<h4>Events ({_n(len(ordered))})</h4>"
        '<p class="explain">One row per Event: first and latest record here, '
        "<i>count</i> is the Event's own count (its series), <i>occurrences</i> what its "
        "records in this incident added, <i>updates</i> how many records it had.</p>"
        '<div class="scroll"><table class="events-table"><thead><tr><th>first</th><th>last</th>'
        "<th>severity</th><th>category</th><th>reason</th><th>object</th>"
        '<th class="num">count</th><th class="num">occurrences</th>'
        '<th class="num">updates</th><th>message</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{cut}"
    )


def _tooltip(message: str, shown: int = MESSAGE_MAX) -> str:
    """A title attribute with more of a message that was cut, else nothing."""
    if len(message) <= shown:
        return ""
    return f' title="{_e(message[: shown + 1000])}"'


def explore_url(
    base: str,
    incident_ids: Sequence[str],
    start_ns: int,
    end_ns: int,
    *,
    datasource: str = "loki",
    cluster: str = "",
) -> str:
    """A Grafana Explore link (the ``panes`` URL of Grafana 10+) to an incident's records.

    The LogQL is the dashboards': kubevents' stream, filtered on the incident id
    (merged ids included), from a minute before the root cause to a minute after the
    last Event.
    """
    stream = 'service_name="kubevents"' + (f', k8s_cluster_name="{cluster}"' if cluster else "")
    if len(incident_ids) == 1:
        match = f'kubevents_incident_id="{incident_ids[0]}"'
    else:
        match = f'kubevents_incident_id=~"{"|".join(incident_ids)}"'
    pane = {
        "datasource": datasource,
        "queries": [
            {
                "refId": "A",
                "datasource": {"type": "loki", "uid": datasource},
                "expr": "{" + stream + "} | " + match,
                "queryType": "range",
                "editorMode": "code",
            }
        ],
        "range": {
            "from": str((start_ns - _MINUTE) // 1_000_000),
            "to": str((end_ns + _MINUTE) // 1_000_000),
        },
    }
    query = urlencode(
        {"schemaVersion": "1", "panes": json.dumps({"kv": pane}, separators=(",", ":"))}
    )
    return f"{base.rstrip('/')}/explore?{query}&orgId=1"


# -- patterns and anomalies -------------------------------------------------------------


def _patterns_view(data: ReportData, rules: PatternRules) -> str:
    patterns = [p for p in data.patterns if not p.anomaly]
    anomalies = [p for p in data.patterns if p.anomaly]
    if not patterns and not anomalies:
        return _section(
            "patterns", "Patterns and anomalies", "No pattern or anomaly in this input.", ""
        )
    charts = [_pattern_chart(data, p, rules) for p in patterns[:MAX_CHARTS]]
    by_key: dict[str, list[Pattern]] = {}
    for a in anomalies:
        by_key.setdefault(a.key, []).append(a)
    ranked = sorted(by_key.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    anomaly_charts = [_anomaly_chart(data, key, found, rules) for key, found in ranked[:MAX_CHARTS]]
    return _section(
        "patterns",
        "Patterns and anomalies",
        "A <b>pattern</b> is a group of similar Events (same similarity key) whose rate crossed "
        "its rule's threshold; the bars are its occurrences per minute, the line the rate the "
        "detector measured at each transition, the dashed line the threshold. An "
        "<b>anomaly</b> is a minute whose count broke from its own baseline: the line is the "
        "baseline (moving mean), the dashed line the count that scores as anomalous, "
        "highlighted bars the anomalous minutes (docs/patterns.md).",
        f'<h3>Patterns (<span id="pattern-count">{len(patterns)}</span>)</h3>'
        f'<div class="charts">{"".join(charts)}</div>'
        + _pattern_table(patterns, "pattern-table")
        + f'<h3>Anomalies (<span id="anomaly-count">{len(anomalies)}</span> anomalous minutes, '
        f"{len(by_key)} series)</h3>"
        f'<div class="charts">{"".join(anomaly_charts)}</div>'
        + _pattern_table(anomalies, "anomaly-table"),
    )


def _pattern_table(patterns: Sequence[Pattern], table_id: str) -> str:
    if not patterns:
        return '<p class="note">None.</p>'
    rows = "".join(
        f'<tr><td><span class="sev sev-bg-{_e(p.severity)}">{_e(p.severity)}</span></td>'
        f"<td>{_e(p.category)}</td><td><code>{_e(p.key)}</code></td><td>{_e(p.rule or '—')}</td>"
        f"<td>{_e(p.state)}</td><td>{utc(p.transitions[0][0])}</td>"
        f'<td class="num">{_n(p.count)}</td>'
        f'<td class="num">{max(t[2] for t in p.transitions):.1f}</td>'
        + (f'<td class="num">{max(t[4] for t in p.transitions):.1f}</td>' if p.anomaly else "")
        + "</tr>"
        for p in patterns[:MAX_ROWS]
    )
    score = '<th class="num">score</th>' if patterns[0].anomaly else ""
    cut = (
        f'<p class="note">{len(patterns) - MAX_ROWS} more not listed.</p>'
        if len(patterns) > MAX_ROWS
        else ""
    )
    return (
        f'<div class="scroll"><table id="{table_id}"><thead><tr><th>severity</th><th>category</th><th>key</th>'
        '<th>rule</th><th>state</th><th>first</th><th class="num">occurrences</th>'
        f'<th class="num">max rate/min</th>{score}</tr></thead><tbody>{rows}</tbody></table>'
        f"</div>{cut}"
    )


def _buckets(rows: Iterable[EventRow], start_ns: int, bucket_ns: int, count: int) -> list[float]:
    values = [0.0] * count
    for e in rows:
        i = (e.time_ns - start_ns) // bucket_ns
        if 0 <= i < count:
            values[i] += e.occurrences
    return values


def _pattern_chart(data: ReportData, pattern: Pattern, rules: PatternRules) -> str:
    policy = next((r.policy for r in rules.rules if r.id == pattern.rule), rules.default)
    first = pattern.transitions[0][0]
    last = pattern.transitions[-1][0]
    rows = [e for e in data.events if e.pattern == pattern.id]
    if rows:
        first, last = min(first, rows[0].time_ns), max(last, rows[-1].time_ns)
    bucket_ns = _MINUTE
    start = (first - policy.window_ns) // bucket_ns * bucket_ns
    count = max(int((last - start) // bucket_ns) + 2, 2)
    bars = _buckets(rows, start, bucket_ns, count)
    rate: list[float | None] = [None] * count
    current: float | None = None
    marks = sorted(
        (int((t - start) // bucket_ns), state, r) for t, state, r, _, _ in pattern.transitions
    )
    j = 0
    for i in range(count):
        while j < len(marks) and marks[j][0] <= i:
            current = None if marks[j][1] == "resolved" else marks[j][2]
            j += 1
        rate[i] = current
    threshold = [float(policy.min_rate_per_minute)] * count
    return rate_chart(
        start_ns=start,
        bucket_ns=bucket_ns,
        bars=bars,
        lines=[
            Series(rate, "line-rate", "rate"),
            Series(threshold, "line-threshold", "threshold", dashed=True),
        ],
        title=f"{short_key(pattern)}: {_n(pattern.count)} occurrences",
        unit="/min",
    )


def short_key(pattern: Pattern) -> str:
    """The key's values, reason first: ``BackOff · shop · shop/Deployment/web · <template>``."""
    fields = pattern.fields()
    order = ["reason", *(k for k in fields if k not in ("reason", "template")), "template"]
    return " · ".join(fields[k] for k in order if fields.get(k)) or pattern.key


def _anomaly_chart(
    data: ReportData, key: str, found: Sequence[Pattern], rules: PatternRules
) -> str:
    """Occurrences per bucket of the series, with the baseline the detector keeps.

    The baseline is recomputed from the Event records with the detector's own
    arithmetic (enrich/anomaly.py): an exponentially weighted mean and variance per
    bucket, anomalous buckets clipped, threshold ``mean + threshold * sd``.
    """
    settings = rules.anomaly
    fields = found[0].fields()
    if "category" in fields:
        rows = [e for e in data.events if e.category == fields["category"]]
    else:
        rows = [
            e
            for e in data.events
            if e.reason == fields.get("reason") and e.namespace == fields.get("namespace", "")
        ]
    rows = [e for e in rows if e.occurrences > 0 and _scored(rules, e)]
    bucket_ns = settings.bucket_ns
    anomalous = {t[0] // bucket_ns for p in found for t in p.transitions}
    if not rows:
        return ""
    start = rows[0].time_ns // bucket_ns * bucket_ns
    count = int((rows[-1].time_ns - start) // bucket_ns) + 2
    bars = _buckets(rows, start, bucket_ns, count)
    first_bucket = start // bucket_ns
    marked = frozenset(b - first_bucket for b in anomalous if 0 <= b - first_bucket < count)
    mean = var = 0.0
    baseline: list[float | None] = []
    threshold: list[float | None] = []
    alpha = settings.alpha
    for i, x in enumerate(bars):
        sd = (max(var, mean) + 1.0) ** 0.5
        baseline.append(mean)
        threshold.append(mean + settings.threshold * sd)
        if i in marked:
            x = min(x, mean + settings.threshold * sd)
        diff = x - mean
        incr = alpha * diff
        mean += incr
        var = (1 - alpha) * (var + diff * incr)
    per_minute = _MINUTE / bucket_ns
    return rate_chart(
        start_ns=start,
        bucket_ns=bucket_ns,
        bars=[b * per_minute for b in bars],
        lines=[
            Series(
                [v * per_minute if v is not None else None for v in baseline],
                "line-baseline",
                "baseline",
            ),
            Series(
                [v * per_minute if v is not None else None for v in threshold],
                "line-threshold",
                "threshold",
                dashed=True,
            ),
        ],
        marked=marked,
        title=f"{short_key(found[0])}: {_plural(len(found), 'anomalous minute')}",
        unit="/min",
    )


def _scored(rules: PatternRules, e: EventRow) -> bool:
    kind = e.object.split("/")[-2] if e.object.count("/") >= 1 else ""
    return rules.policy_of((e.reason, e.category, e.severity, e.type, kind, e.namespace)).anomalies


# -- where it hurt ----------------------------------------------------------------------


def _hurt_view(data: ReportData) -> str:
    by_ns_cat: dict[str, Counter[str]] = {}
    by_ns_sev: dict[str, Counter[str]] = {}
    objects: Counter[str] = Counter()
    objects_bad: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    for e in data.events:
        ns = e.namespace or "(cluster)"
        by_ns_sev.setdefault(ns, Counter())[e.severity] += e.occurrences
        if e.severity in PROBLEM:
            by_ns_cat.setdefault(ns, Counter())[e.category] += e.occurrences
            objects_bad[e.object] += e.occurrences
        objects[e.object] += e.occurrences
        reasons[f"{e.type or '?'} {e.reason}"] += e.occurrences
    order = sorted(by_ns_sev, key=lambda ns: (-sum(by_ns_cat.get(ns, Counter()).values()), ns))
    categories = sorted({c for counts in by_ns_cat.values() for c in counts})
    content = (
        "<h3>Problem occurrences by namespace and category</h3>"
        '<p class="explain">Warning, error and critical occurrences only; the darker the cell, '
        "the larger its share of the largest cell.</p>"
        + _matrix(order, categories, by_ns_cat)
        + "<h3>Occurrences by namespace and severity</h3>"
        + _matrix(
            order, [s for s in SEVERITIES if any(by_ns_sev[ns][s] for ns in order)], by_ns_sev
        )
        + '<div class="pair"><div><h3>Noisiest objects</h3>'
        + _bars(objects, "noisy-objects", extra=objects_bad, extra_label="problems")
        + "</div><div><h3>Noisiest reasons</h3>"
        + _bars(reasons, "noisy-reasons")
        + "</div></div>"
    )
    return _section(
        "hurt",
        "Where it hurt",
        "Which namespaces took the problems, of which kind, and which objects and reasons "
        "produced the most occurrences (a series Event counts once per occurrence).",
        content,
    )


def _matrix(rows: Sequence[str], columns: Sequence[str], counts: dict[str, Counter[str]]) -> str:
    if not columns:
        return '<p class="note">None.</p>'
    top = max((counts.get(r, Counter())[c] for r in rows for c in columns), default=1) or 1
    head = "".join(f'<th class="num">{_e(c)}</th>' for c in columns)
    body = []
    for r in rows[:MAX_ROWS]:
        row = counts.get(r, Counter())
        if not any(row[c] for c in columns):
            continue
        cells = "".join(
            f'<td class="num heat" style="--heat:{row[c] / top:.2f}">{_n(row[c]) if row[c] else ""}</td>'
            for c in columns
        )
        body.append(f"<tr><th>{_e(r)}</th>{cells}</tr>")
    return (
        f'<div class="scroll"><table class="matrix"><thead><tr><th>namespace</th>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def _bars(
    counts: Counter[str], table_id: str, *, extra: Counter[str] | None = None, extra_label: str = ""
) -> str:
    items = counts.most_common(15)
    if not items:
        return '<p class="note">None.</p>'
    top = items[0][1] or 1
    head = f'<th class="num">{extra_label}</th>' if extra is not None else ""
    rows = "".join(
        f'<tr><td><code>{_e(name)}</code></td><td class="num">{_n(n)}</td>'
        + (f'<td class="num">{_n(extra[name])}</td>' if extra is not None else "")
        + f'<td class="barcell"><span class="hbar" style="width:{100 * n / top:.1f}%"></span></td></tr>'
        for name, n in items
    )
    return (
        f'<table class="bars" id="{table_id}"><thead><tr><th></th><th class="num">occurrences</th>{head}'
        f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
    )


# -- unclassified -----------------------------------------------------------------------


def _unclassified_view(data: ReportData) -> str:
    by_controller: dict[str, list[EventRow]] = {}
    for e in data.events:
        if not e.rule:
            by_controller.setdefault(e.controller or "(none)", []).append(e)
    explain = (
        "Events no classification rule matched, so only their type set the severity "
        "(Normal: info, Warning: warning) and the category is Other. Grouped by the "
        "controller that reported them: the rules to write next (docs/config.md, --rules)."
    )
    if not by_controller:
        return _section(
            "unclassified",
            "What is unclassified",
            explain,
            "<p>Nothing: every Event matched a rule.</p>",
        )
    ranked = sorted(
        by_controller.items(), key=lambda kv: (-sum(e.occurrences for e in kv[1]), kv[0])
    )
    rows = []
    for controller, events in ranked[:MAX_ROWS]:
        reasons: Counter[str] = Counter()
        for e in events:
            reasons[e.reason] += e.occurrences
        example = events[0].message
        rows.append(
            f"<tr><td><code>{_e(controller)}</code></td>"
            f'<td class="num">{_n(sum(e.occurrences for e in events))}</td>'
            f'<td class="num">{_n(len(events))}</td>'
            f"<td>{', '.join(f'{_e(r)} ({_n(n)})' for r, n in reasons.most_common(8))}"
            f"{' …' if len(reasons) > 8 else ''}</td>"
            f"<td class=msg{_tooltip(example, 200)}>{_e(example[:200])}</td></tr>"
        )
    return _section(
        "unclassified",
        "What is unclassified",
        explain,
        '<div class="scroll"><table><thead><tr><th>reporting controller</th>'
        '<th class="num">occurrences</th><th class="num">records</th><th>reasons</th>'
        f"<th>example message</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>",
    )


def _footer(options: PageOptions) -> str:
    inputs = ", ".join(f"<code>{_e(p)}</code>" for p in options.inputs)
    return (
        f"<footer><p>Made by kubevents {_e(__version__)} from {inputs or 'its input'}. "
        "Times are UTC, event time. How to read each view: docs/report.md.</p></footer>"
    )
