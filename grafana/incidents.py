"""Incidents & patterns: open incidents with their root cause and scope, patterns and anomalies.

Incidents come from two sources: the `kubevents_incidents_open` gauge (how many,
by root-cause category and severity) and the `kubevents.incident` records in Loki
(which ones, their root cause and scope). The `incident` variable drills down to
every record carrying that `kubevents.incident.id`.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard

from grafana import app_events
from grafana.common import (
    CLUSTER,
    EVENTS,
    UID_EXPLORER,
    UID_INCIDENTS,
    Grid,
    base_dashboard,
    dashboard_url,
    logql,
    logs_panel,
    loki_stream,
    prom,
    render,
    stat_panel,
    table_panel,
    timeseries_panel,
)
from grafana.common import (
    INCIDENT_RECORDS as INCIDENT_KIND,
)
from grafana.common import (
    PATTERN_RECORDS as PATTERN_KIND,
)

TITLE = "kubevents / Incidents & patterns"

INCIDENT_RECORDS = (
    f"{loki_stream(namespace=False)} {INCIDENT_KIND} "
    '| kubevents_incident_namespaces=~".*$namespace.*"'
)
PATTERN_RECORDS = f"{loki_stream()} {PATTERN_KIND}"

INCIDENT_COLUMNS = (
    "kubevents_incident_id, kubevents_incident_root_cause_reason, kubevents_incident_root_cause_object, "
    "kubevents_category"
)
SCOPE_COLUMNS = "kubevents_incident_id, kubevents_incident_namespaces, kubevents_incident_workloads, kubevents_incident_nodes"

# Incidents with a started or ongoing record in the range and no resolved record: open ones.
# The value is the largest `kubevents.incident.events` seen (Event records so far).
OPEN_INCIDENTS = (
    f"max by ({INCIDENT_COLUMNS}) (max_over_time({INCIDENT_RECORDS} "
    '| kubevents_incident_state=~"started|ongoing" | unwrap kubevents_incident_events [$__auto])) '
    "unless on (kubevents_incident_id) "
    f'count by (kubevents_incident_id) (count_over_time({INCIDENT_RECORDS} | kubevents_incident_state="resolved" [$__auto]))'
)
# The incident's severity grows with its Events: its highest SeverityNumber (21 critical,
# 17 error, 13 warning, 9 info), one value per incident, joined to the table by id.
OPEN_INCIDENT_SEVERITY = (
    f"max by (kubevents_incident_id) (max_over_time({INCIDENT_RECORDS} "
    '| kubevents_incident_state=~"started|ongoing" | unwrap severity_number [$__auto])) '
    "unless on (kubevents_incident_id) "
    f'count by (kubevents_incident_id) (count_over_time({INCIDENT_RECORDS} | kubevents_incident_state="resolved" [$__auto]))'
)
SEVERITY_NAMES = {"21": "critical", "17": "error", "13": "warning", "9": "info", "5": "debug"}
INCIDENT_SCOPE = (
    f"max by ({SCOPE_COLUMNS}) (max_over_time({INCIDENT_RECORDS} "
    '| kubevents_incident_state=~"started|ongoing" | unwrap kubevents_incident_events [$__auto])) '
    "unless on (kubevents_incident_id) "
    f'count by (kubevents_incident_id) (count_over_time({INCIDENT_RECORDS} | kubevents_incident_state="resolved" [$__auto]))'
)

DRILL_DOWN = [
    {
        "title": "Show this incident's Events",
        "url": dashboard_url(UID_INCIDENTS, "var-incident=${__value.raw}"),
    },
    {
        "title": "Search this incident in the Event explorer",
        "url": dashboard_url(UID_EXPLORER, "var-incident=${__value.raw}"),
    },
]

TABLE_TRANSFORMATIONS: list[tuple[str, dict[str, Any]]] = [
    ("labelsToFields", {"mode": "columns"}),
    ("merge", {}),
    (
        "organize",
        {
            "excludeByName": {"Time": True},
            "renameByName": {
                "kubevents_incident_id": "incident",
                "kubevents_incident_root_cause_reason": "root cause reason",
                "kubevents_incident_root_cause_object": "root cause object",
                "kubevents_category": "category",
                "kubevents_severity": "severity",
                "kubevents_incident_namespaces": "namespaces",
                "kubevents_incident_workloads": "workloads",
                "kubevents_incident_nodes": "nodes",
                "Value": "events",
                "Value #A": "events",
                "Value #B": "severity",
            },
        },
    ),
]


def build() -> dict[str, Any]:
    g = Grid()
    d = base_dashboard(
        UID_INCIDENTS,
        TITLE,
        "Open incidents with their root cause and scope (kubevents.incident records in Loki and "
        "kubevents_incidents_open), active patterns and anomalies over time, and a drill-down to "
        "every record of one incident by its id.",
    )
    d = d.with_variable(
        dashboard.TextBoxVariable("incident")
        .label("Incident id")
        .description(
            "An incident id (inc- and 12 hex digits): click one in the tables, or paste it."
        )
        .default_value("")
    )

    d = d.with_panel(
        g.place(
            stat_panel(
                "Open incidents",
                "Incidents open now (kubevents_incidents_open), all namespaces, categories and severities.",
                "short",
                prom(f"sum(kubevents_incidents_open{{{CLUSTER}}})"),
                thresholds=[(None, "green"), (1, "orange"), (5, "red")],
            ),
            6,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Incidents started",
                "Incidents opened during the time range: started kubevents.incident records in Loki.",
                "short",
                logql(
                    f'sum(count_over_time({INCIDENT_RECORDS} | kubevents_incident_state="started" [$__auto]))',
                    query_type="instant",
                ),
            ),
            6,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Active patterns",
                "Recurring groups of similar Events currently above their threshold, all namespaces.",
                "short",
                prom(f"sum(kubevents_patterns_active{{{CLUSTER}}})"),
                thresholds=[(None, "green"), (1, "orange")],
            ),
            6,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Anomalous series",
                "(namespace, reason) and category series whose rate currently breaks from its baseline.",
                "short",
                prom(f"sum(kubevents_anomalies_active{{{CLUSTER}}})"),
                thresholds=[(None, "green"), (1, "red")],
            ),
            6,
            4,
        )
    )

    d = d.with_row(g.row("Incidents"))
    d = d.with_panel(
        g.place(
            table_panel(
                "Open incidents: root cause",
                "Incidents with a started or ongoing record in the time range and no resolved one, "
                "with their root cause candidate and its category, the incident's severity (the highest "
                "of its Events) and `events`, the number of Event records so far. Click an id to show "
                "its Events below.",
                "short",
                logql(OPEN_INCIDENTS, query_type="instant", ref="A"),
                logql(OPEN_INCIDENT_SEVERITY, query_type="instant", ref="B"),
                transformations=TABLE_TRANSFORMATIONS,
                links={"incident": DRILL_DOWN},
                sort_by="events",
                value_names={"severity": SEVERITY_NAMES},
            ),
            14,
            9,
        )
    )
    d = d.with_panel(
        g.place(
            table_panel(
                "Open incidents: scope",
                "Namespaces, workloads and nodes each open incident has reached (one row per scope "
                "step: the scope only grows, the row with the most events is the latest).",
                "short",
                logql(INCIDENT_SCOPE, query_type="instant"),
                transformations=TABLE_TRANSFORMATIONS,
                links={"incident": DRILL_DOWN},
                sort_by="events",
            ),
            10,
            9,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Open incidents by root-cause category",
                "kubevents_incidents_open by the category of the incident's root cause.",
                "short",
                prom(
                    f"sum by (kubevents_category) (kubevents_incidents_open{{{CLUSTER}}})",
                    "{{kubevents_category}}",
                ),
                stacked=True,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Incident transitions/s",
                "kubevents.incident records per second by state: started, ongoing (the scope grew), resolved.",
                "cps",
                prom(
                    f"sum by (state) (rate(kubevents_incident_transitions_total{{{CLUSTER}}}[$__rate_interval]))",
                    "{{state}}",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            logs_panel(
                "Incident records",
                "kubevents.incident records (started, ongoing, resolved): one sentence with the root "
                "cause and the scope; expand a line for the attributes.",
                INCIDENT_RECORDS,
            ),
            24,
            9,
        )
    )
    d = d.with_panel(g.place(app_events.rooted_panel(), 12, 8))
    d = d.with_panel(g.place(app_events.changes_panel(), 12, 8))
    d = d.with_panel(
        g.place(
            logs_panel(
                "Events of incident $incident",
                "Every record carrying kubevents.incident.id = $incident (its Events and its incident "
                "records), in all namespaces. Empty until an incident id is set.",
                f'{loki_stream(namespace=False)} | kubevents_incident_id!="" | kubevents_incident_id="$incident"',
                max_lines=1000,
            ),
            24,
            10,
        )
    )

    d = d.with_row(g.row("Patterns and anomalies"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Active patterns by category",
                "kubevents_patterns_active by category and severity of the occurrence that started the pattern.",
                "short",
                prom(
                    f"sum by (kubevents_category, kubevents_severity) (kubevents_patterns_active{{{CLUSTER}}})",
                    "{{kubevents_category}} / {{kubevents_severity}}",
                ),
                stacked=True,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Pattern transitions/s",
                "kubevents.pattern records per second by state (started, ongoing, resolved, anomalous).",
                "cps",
                prom(
                    f"sum by (state) (rate(kubevents_pattern_transitions_total{{{CLUSTER}}}[$__rate_interval]))",
                    "{{state}}",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Pattern rates (top 10)",
                "Window rate of the active patterns (occurrences per minute) by rule, namespace and reason.",
                "cpm",
                prom(
                    "topk(10, sum by (kubevents_pattern_rule, k8s_namespace_name, k8s_event_reason) "
                    f"(kubevents_pattern_rate_per_minute{{{EVENTS}}}))",
                    "{{k8s_namespace_name}} {{k8s_event_reason}} {{kubevents_pattern_rule}}",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Anomalous series by scope",
                "kubevents_anomalies_active: series whose rate breaks from its baseline, by scope "
                "(reason: a (namespace, reason) pair; category).",
                "short",
                prom(
                    f"sum by (kubevents_anomaly_scope) (kubevents_anomalies_active{{{CLUSTER}}})",
                    "{{kubevents_anomaly_scope}}",
                ),
                stacked=True,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Anomaly scores (top 10)",
                "Score of the anomalous series: how many standard deviations the minute's count is above "
                "its baseline (anomalous from 4).",
                "short",
                prom(
                    "topk(10, max by (kubevents_anomaly_scope, k8s_namespace_name, k8s_event_reason, kubevents_category) "
                    f"(kubevents_anomaly_score{{{EVENTS}}}))",
                    "{{kubevents_anomaly_scope}}: {{k8s_namespace_name}} {{k8s_event_reason}} {{kubevents_category}}",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Anomaly records (Loki)",
                "Rate anomalies per interval, from the anomalous kubevents.pattern records in Loki: by "
                "category (category scope) or namespace and reason (reason scope).",
                "short",
                logql(
                    f"sum by (kubevents_category, k8s_namespace_name, k8s_event_reason) (count_over_time({PATTERN_RECORDS} "
                    '| kubevents_pattern_state="anomalous" [$__auto]))',
                    "{{kubevents_category}} {{k8s_namespace_name}} {{k8s_event_reason}}",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            logs_panel(
                "Pattern and anomaly records",
                "kubevents.pattern records: a pattern started, is ongoing, resolved, or a rate anomaly; "
                "the body gives the key, count, rate and a sample message.",
                PATTERN_RECORDS,
            ),
            24,
            10,
        )
    )
    return app_events.with_annotation(render(d))
