"""Events overview: how many Events, of what kind, where (Prometheus), and the latest bad ones (Loki)."""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard

from grafana import app_events
from grafana.common import (
    CLUSTER,
    EVENT_RECORDS,
    EVENTS,
    UID_EXPLORER,
    UID_INCIDENTS,
    UID_OVERVIEW,
    WARNING_OR_WORSE,
    Grid,
    base_dashboard,
    dashboard_url,
    logs_panel,
    loki_stream,
    prom,
    render,
    stat_panel,
    table_panel,
    timeseries_panel,
)

TITLE = "kubevents / Events overview"

RATE = f"rate(kubevents_events_total{{{EVENTS}}}[$__rate_interval])"
WARNING_RATE = (
    f'rate(kubevents_events_total{{{EVENTS}, k8s_event_type="Warning"}}[$__rate_interval])'
)

# Mean rate over the dashboard's time range per series, highest first, 10 rows.
TOP_TRANSFORMATIONS: list[tuple[str, dict[str, Any]]] = [
    ("reduce", {"reducers": ["mean"], "mode": "seriesToRows", "includeTimeField": False}),
    ("sortBy", {"sort": [{"field": "Mean", "desc": True}]}),
    ("limit", {"limitField": 10}),
    ("organize", {"renameByName": {"Field": "series", "Mean": "occurrences/s (mean)"}}),
]


def build() -> dict[str, Any]:
    g = Grid()
    d = base_dashboard(
        UID_OVERVIEW,
        TITLE,
        "Kubernetes Event occurrences by category, severity, namespace and reason "
        "(kubevents_events_total), the warning ratio, open incidents and active patterns, "
        "and the latest warning-or-worse Events from Loki.",
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Occurrences/s",
                "Event occurrences per second in the selected cluster and namespaces "
                "(a series Event counts each new occurrence).",
                "cps",
                prom(f"sum({RATE})"),
            ),
            6,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Warning ratio",
                "Share of occurrences whose Kubernetes type is Warning.",
                "percentunit",
                prom(f"sum({WARNING_RATE}) / sum({RATE})"),
                thresholds=[(None, "green"), (0.2, "orange"), (0.5, "red")],
            ),
            6,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Open incidents",
                "Incidents kubevents has open now, all namespaces (kubevents_incidents_open). "
                "Details in the Incidents & patterns dashboard.",
                "short",
                prom(f"sum(kubevents_incidents_open{{{CLUSTER}}})"),
                thresholds=[(None, "green"), (1, "orange"), (5, "red")],
            ).links(
                [dashboard.DashboardLink("Incidents & patterns").url(dashboard_url(UID_INCIDENTS))]
            ),
            6,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Active patterns",
                "Recurring groups of similar Events currently above their threshold, all namespaces "
                "(kubevents_patterns_active).",
                "short",
                prom(f"sum(kubevents_patterns_active{{{CLUSTER}}})"),
                thresholds=[(None, "green"), (1, "orange")],
            ),
            6,
            4,
        )
    )

    d = d.with_row(g.row("Occurrence rate"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Occurrences/s by category",
                "Event occurrences per second by kubevents category (what part of the system the Event is about).",
                "cps",
                prom(f"sum by (kubevents_category) ({RATE})", "{{kubevents_category}}"),
                stacked=True,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Occurrences/s by severity",
                "Event occurrences per second by kubevents severity (critical, error, warning, info).",
                "cps",
                prom(f"sum by (kubevents_severity) ({RATE})", "{{kubevents_severity}}"),
                stacked=True,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Occurrences/s by namespace (top 10)",
                "The 10 namespaces with the most occurrences per second at each step; "
                "an empty namespace is a cluster-scoped object (Node, PersistentVolume...).",
                "cps",
                prom(f"topk(10, sum by (k8s_namespace_name) ({RATE}))", "{{k8s_namespace_name}}"),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Occurrences/s by reason (top 10)",
                "The 10 reasons with the most occurrences per second at each step; "
                "`__other__` gathers reasons past the label cap.",
                "cps",
                prom(f"topk(10, sum by (k8s_event_reason) ({RATE}))", "{{k8s_event_reason}}"),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Warning ratio by namespace (top 10)",
                "Share of each namespace's occurrences that are Warnings, for the 10 namespaces with "
                "the most Warning occurrences.",
                "percentunit",
                prom(
                    f"topk(10, sum by (k8s_namespace_name) ({WARNING_RATE})) "
                    f"/ on (k8s_namespace_name) sum by (k8s_namespace_name) ({RATE})",
                    "{{k8s_namespace_name}}",
                ),
                minimum=0,
            ),
            24,
            8,
        )
    )

    d = d.with_row(g.row("Top reasons and namespaces"))
    explore = [
        {
            "title": "Search these Events",
            "url": dashboard_url(UID_EXPLORER, "var-reason=${__value.raw}"),
        }
    ]
    d = d.with_panel(
        g.place(
            table_panel(
                "Top reasons",
                "The 10 reasons with the highest mean occurrence rate over the time range "
                "(Warning and Normal). Click a reason to search its Events.",
                "cps",
                prom(f"sum by (k8s_event_reason) ({RATE})", "{{k8s_event_reason}}"),
                transformations=TOP_TRANSFORMATIONS,
                links={"series": explore},
            ),
            8,
            10,
        )
    )
    d = d.with_panel(
        g.place(
            table_panel(
                "Top Warning reasons",
                "The 10 Warning reasons with the highest mean occurrence rate over the time range.",
                "cps",
                prom(f"sum by (k8s_event_reason) ({WARNING_RATE})", "{{k8s_event_reason}}"),
                transformations=TOP_TRANSFORMATIONS,
                links={"series": explore},
            ),
            8,
            10,
        )
    )
    d = d.with_panel(
        g.place(
            table_panel(
                "Top namespaces",
                "The 10 namespaces with the highest mean occurrence rate over the time range "
                "(empty: cluster-scoped objects).",
                "cps",
                prom(f"sum by (k8s_namespace_name) ({RATE})", "{{k8s_namespace_name}}"),
                transformations=TOP_TRANSFORMATIONS,
            ),
            8,
            10,
        )
    )

    d = d.with_row(g.row("Latest Events"))
    d = d.with_panel(
        g.place(
            logs_panel(
                "Warning-or-worse Events",
                "The latest Events kubevents classified as warning, error or critical, from Loki "
                "(expand a line for its attributes: reason, object, workload, node, incident).",
                f'{loki_stream()} {EVENT_RECORDS} | kubevents_severity=~"{WARNING_OR_WORSE}"',
            ),
            24,
            12,
        )
    )
    return app_events.with_annotation(render(d))
