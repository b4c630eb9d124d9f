"""The incident views: the timeline (a lane per incident) and each incident's detail.

The timeline draws the largest incidents (``MAX_LANES``); the detail lists the
largest ``MAX_DETAILS`` with their Events (``MAX_EVENTS`` each) and the others
one line each (``MAX_LISTED``), so a page of thousands of incidents stays small.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

from kubevents.enrich.incidents import format_duration
from kubevents.report.charts import chain, timeline, utc
from kubevents.report.markup import MESSAGE_MAX, PageOptions, esc, num, plural, section, tooltip
from kubevents.report.model import HELD_INCIDENTS, SEVERITIES, EventRow, Incident, ReportData

MAX_LANES: Final = HELD_INCIDENTS
"""Incidents drawn in the timeline (the largest, shown in time order: the ones whose
Event records model.py keeps)."""
MAX_DETAILS: Final = 50
"""Incidents with a detail section (the largest, shown in time order)."""
MAX_LISTED: Final = 1000
"""Further incidents listed one line each."""
MAX_EVENTS: Final = 50
"""Events listed in one incident's detail."""
assert MAX_DETAILS <= MAX_LANES  # the detailed ones are among those whose records are kept
_MINUTE: Final = 60_000_000_000


# -- timeline ---------------------------------------------------------------------------


def timeline_view(data: ReportData) -> str:
    incidents = data.incidents
    if not incidents:
        return section("timeline", "Incident timeline", "No incident in this input.", "")
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
    return section(
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


def incidents_view(data: ReportData, options: PageOptions) -> str:
    incidents = data.incidents
    if not incidents:
        return section(
            "incidents", "Incidents", "No incident in this input.", "", ' data-count="0"'
        )
    detailed = sorted(incidents, key=lambda i: (-i.events, i.first_ns, i.id))[:MAX_DETAILS]
    chosen = {i.id for i in detailed}
    items = "".join(_incident(i, data.cluster, options) for i in incidents if i.id in chosen)
    rest = [i for i in incidents if i.id not in chosen]
    cut = ""
    if rest:
        rows = "".join(
            f'<tr><td><span class="sev sev-bg-{esc(i.severity)}">{esc(i.severity)}</span></td>'
            f"<td><code>{esc(i.id)}</code></td><td>{utc(i.first_ns)}</td>"
            f"<td>{format_duration(i.last_ns - i.first_ns)}</td><td>{esc(i.category)}</td>"
            f"<td>{esc(i.root_reason)} <code>{esc(i.root_object)}</code></td>"
            f'<td class="num">{num(i.events)}</td><td class="num">{num(i.occurrences)}</td></tr>'
            for i in rest[:MAX_LISTED]
        )
        more = len(rest) - MAX_LISTED
        cut = (
            f"<h3>{plural(len(rest), 'smaller incident')}</h3>"
            f'<p class="explain">The {MAX_DETAILS} largest incidents are detailed above; '
            "these are listed one line each, in time order.</p>"
            '<div class="scroll"><table><thead><tr><th>severity</th><th>id</th><th>from</th>'
            "<th>for</th><th>category</th><th>root cause</th>"
            '<th class="num">events</th><th class="num">occurrences</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
            + (f'<p class="note">{num(more)} more are not listed.</p>' if more > 0 else "")
        )
    return section(
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
        f'<summary><span class="sev sev-bg-{esc(i.severity)}">{esc(i.severity)}</span> '
        f'<code class="incident-id">{esc(i.id)}</code> {esc(i.category)}, {state}: root cause '
        f'<b class="root-reason">{esc(i.root_reason)}</b> '
        f'<span class="root-object">{esc(i.root_object)}</span> · '
        f'<span class="events">{num(i.events)}</span> events '
        f'(<span class="occurrences">{num(i.occurrences)}</span> occurrences) over '
        f"{format_duration(i.last_ns - i.first_ns)}, from {utc(i.first_ns)}</summary>"
    )
    scope = "".join(
        f"<dt>{name}</dt><dd>{', '.join(f'<code>{esc(v)}</code>' for v in values) or 'none'}</dd>"
        for name, values in (
            ("workloads", i.workloads),
            ("nodes", i.nodes),
            ("namespaces", i.namespaces),
        )
    )
    if i.merged:
        scope += f"<dt>merged</dt><dd>{', '.join(f'<code>{esc(m)}</code>' for m in i.merged)}</dd>"
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
        link = f'<p><a class="grafana" href="{esc(url)}">These Events in Grafana Explore</a></p>'
    return (
        f'<details class="incident" id="{esc(i.id)}">{summary}'
        f"<p>{esc(i.description)}</p><dl>{scope}</dl>{link}"
        f"{_chain_table(i)}{_event_table(i)}</details>"
    )


def _chain_table(incident: Incident) -> str:
    links = chain(incident)
    if not links:
        return ""
    recorded = any(link.rule for link in links)
    rows = "".join(
        f"<tr><td>{utc(link.first_ns)}</td><td>{esc(link.rule or '—')}</td>"
        f"<td>{esc(link.scope or '—')}</td><td>{esc(link.reason)}</td>"
        f'<td class="num">{num(link.events)}</td><td class="num">{num(link.occurrences)}</td></tr>'
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
        f"<b>{esc(incident.root_reason)}</b> ({esc(incident.root_object)}), the Events that "
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
            f'<td><span class="sev sev-bg-{esc(e.severity)}">{esc(e.severity)}</span></td>'
            f"<td>{esc(e.category)}</td><td>{esc(e.reason)}{' (root cause)' if is_root else ''}</td>"
            f"<td><code>{esc(e.object)}</code></td>"
            f'<td class="num">{num(e.count)}</td><td class="num">{num(g.occurrences)}</td>'
            f'<td class="num">{num(g.updates)}</td>'
            f"<td class=msg{tooltip(e.message)}>{esc(message)}</td></tr>"
        )
    cut = (
        f'<p class="note">{len(ordered) - MAX_EVENTS} more Events are not listed.</p>'
        if len(ordered) > MAX_EVENTS
        else ""
    )
    return (
        f"<h4>Events ({num(len(ordered))})</h4>"
        '<p class="explain">One row per Event: first and latest record here, '
        "<i>count</i> is the Event's own count (its series), <i>occurrences</i> what its "
        "records in this incident added, <i>updates</i> how many records it had.</p>"
        '<div class="scroll"><table class="events-table"><thead><tr><th>first</th><th>last</th>'
        "<th>severity</th><th>category</th><th>reason</th><th>object</th>"
        '<th class="num">count</th><th class="num">occurrences</th>'
        '<th class="num">updates</th><th>message</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>{cut}"
    )


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
