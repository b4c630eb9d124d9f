"""Event explorer: LogQL search over kubevents' Event records with counts and the matching lines.

Namespace and cluster are Loki stream labels (indexed); everything else is structured
metadata, filtered after the selector. Text-box variables are regular expressions
(`.*` matches anything, also a missing attribute).
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.builders import dashboard
from grafana_foundation_sdk.models import dashboard as md

from grafana.common import (
    CATEGORIES,
    CLUSTER,
    EVENT_RECORDS,
    SEVERITIES,
    UID_EXPLORER,
    UID_INCIDENTS,
    Grid,
    base_dashboard,
    dashboard_url,
    logql,
    logs_panel,
    loki_stream,
    render,
    stat_panel,
    table_panel,
    timeseries_panel,
)

TITLE = "kubevents / Event explorer"

FILTERS = (
    f"{EVENT_RECORDS} "
    '| severity_text=~"$type" '
    '| k8s_event_reason=~"$reason" '
    '| kubevents_category=~"$category" '
    '| kubevents_severity=~"$severity" '
    '| k8s_object_kind=~"$kind" '
    '| kubevents_object=~"$object" '
    '| kubevents_workload=~"$workload" '
    '| kubevents_node=~"$node" '
    '| kubevents_incident_id=~"$incident" '
    '| kubevents_pattern_id=~"$pattern" '
    '|~ "$search"'
)
#: The search: every Event record matching the variables.
SEARCH = f"{loki_stream()} {FILTERS}"


def _textbox(
    name: str, label: str, description: str, default: str = ".*"
) -> dashboard.TextBoxVariable:
    return (
        dashboard.TextBoxVariable(name)
        .label(label)
        .description(description)
        .default_value(default)
        .current(md.VariableOption(selected=True, text=default, value=default))
    )


def _custom(name: str, label: str, description: str, values: list[str]) -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable(name)
        .label(label)
        .description(description)
        .values(",".join(values))
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(md.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def _top(
    by: str, title: str, description: str, links: dict[str, list[dict[str, Any]]] | None = None
) -> Any:
    renames = {
        label.strip(): label.strip().removeprefix("kubevents_").removeprefix("k8s_")
        for label in by.split(",")
    }
    return table_panel(
        title,
        description,
        "short",
        logql(
            f"topk(20, sum by ({by}) (count_over_time({SEARCH} [$__auto])))", query_type="instant"
        ),
        transformations=[
            ("labelsToFields", {"mode": "columns"}),
            ("merge", {}),
            (
                "organize",
                {"excludeByName": {"Time": True}, "renameByName": {**renames, "Value": "records"}},
            ),
        ],
        links=links,
        sort_by="records",
    )


def build() -> dict[str, Any]:
    g = Grid()
    d = base_dashboard(
        UID_EXPLORER,
        TITLE,
        "Search kubevents' Event records in Loki by namespace, workload, node, reason, category, "
        "severity, object and correlation ids (incident, pattern), with counts and the matching Events.",
    )
    d = (
        d.with_variable(
            dashboard.QueryVariable("reason")
            .label("Reason")
            .description("Event reasons seen by kubevents_events_total in the selected namespaces.")
            .datasource(md.DataSourceRef(type_val="prometheus", uid="${datasource}"))
            .query(
                f'label_values(kubevents_events_total{{{CLUSTER}, k8s_namespace_name=~"$namespace"}}, k8s_event_reason)'
            )
            .refresh(md.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(md.VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".*")
            .multi(True)
            .current(md.VariableOption(selected=True, text=["All"], value=["$__all"]))
        )
        .with_variable(
            _custom("category", "Category", "kubevents category (closed set).", CATEGORIES)
        )
        .with_variable(_custom("severity", "Severity", "kubevents severity.", SEVERITIES))
        .with_variable(
            _custom("type", "Type", "Kubernetes Event type (severity_text).", ["Normal", "Warning"])
        )
        .with_variable(
            _textbox("kind", "Object kind", "Kind of the involved object (regex), e.g. Pod.")
        )
        .with_variable(
            _textbox(
                "object",
                "Object",
                "Involved object, namespace/Kind/name (regex), e.g. shop/Pod/web-.*.",
            )
        )
        .with_variable(
            _textbox(
                "workload",
                "Workload",
                "Top-level owner, namespace/Kind/name (regex), e.g. shop/Deployment/web.",
            )
        )
        .with_variable(_textbox("node", "Node", "Node the Event is about (regex)."))
        .with_variable(
            _textbox(
                "incident", "Incident id", "kubevents.incident.id (regex), e.g. inc-3f9a0c1b2d4e."
            )
        )
        .with_variable(
            _textbox("pattern", "Pattern id", "kubevents.pattern.id (regex), e.g. pat-.*.")
        )
        .with_variable(
            _textbox(
                "search", "Message", "Regular expression on the message, (?i) for any case.", ""
            )
        )
    )

    d = d.with_panel(
        g.place(
            stat_panel(
                "Matching Event records",
                "Event records matching every filter in the time range.",
                "short",
                logql(f"sum(count_over_time({SEARCH} [$__auto]))", query_type="instant"),
            ),
            6,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Matching occurrences",
                "Occurrences those records stand for (sum of kubevents.occurrences: a recurring Event "
                "counts each new occurrence once).",
                "short",
                logql(
                    f'sum(sum_over_time({SEARCH} | unwrap kubevents_occurrences | __error__="" [$__auto]))',
                    query_type="instant",
                ),
            ),
            6,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Matching records by severity",
                "Matching Event records per interval, by kubevents severity.",
                "short",
                logql(
                    f"sum by (kubevents_severity) (count_over_time({SEARCH} [$__auto]))",
                    "{{kubevents_severity}}",
                ),
                stacked=True,
                legend_table=False,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Matching occurrences by reason (top 10)",
                "Occurrences per interval of the 10 busiest reasons among the matching records.",
                "short",
                logql(
                    f"topk(10, sum by (k8s_event_reason) (sum_over_time({SEARCH} "
                    '| unwrap kubevents_occurrences | __error__="" [$__auto])))',
                    "{{k8s_event_reason}}",
                ),
                legend_table=False,
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Matching records by category",
                "Matching Event records per interval, by kubevents category.",
                "short",
                logql(
                    f"sum by (kubevents_category) (count_over_time({SEARCH} [$__auto]))",
                    "{{kubevents_category}}",
                ),
                stacked=True,
                legend_table=False,
            ),
            12,
            8,
        )
    )

    d = d.with_row(g.row("Top matches"))
    d = d.with_panel(
        g.place(
            _top(
                "k8s_event_reason, kubevents_category, kubevents_severity",
                "Top reasons",
                "The 20 reasons with the most matching records in the time range.",
            ),
            8,
            9,
        )
    )
    d = d.with_panel(
        g.place(
            _top(
                "kubevents_workload",
                "Top workloads",
                "The 20 workloads (top-level owners) with the most matching records.",
            ),
            8,
            9,
        )
    )
    d = d.with_panel(
        g.place(
            _top("kubevents_node", "Top nodes", "The 20 nodes with the most matching records."),
            8,
            9,
        )
    )
    d = d.with_panel(
        g.place(
            _top(
                "kubevents_object, k8s_event_reason",
                "Top objects",
                "The 20 involved objects (namespace/Kind/name) and reasons with the most matching records.",
            ),
            12,
            9,
        )
    )
    d = d.with_panel(
        g.place(
            _top(
                "kubevents_incident_id",
                "Incidents among the matches",
                "Incident ids of the matching records (empty: records of no incident). Click an id for the incident.",
                links={
                    "incident_id": [
                        {
                            "title": "Open this incident",
                            "url": dashboard_url(UID_INCIDENTS, "var-incident=${__value.raw}"),
                        },
                        {
                            "title": "Search only this incident",
                            "url": dashboard_url(UID_EXPLORER, "var-incident=${__value.raw}"),
                        },
                    ]
                },
            ),
            12,
            9,
        )
    )

    d = d.with_row(g.row("Events"))
    d = d.with_panel(
        g.place(
            logs_panel(
                "Matching Events",
                "The matching Event records, newest first; expand a line for every attribute "
                "(reason, object, workload, node, incident and pattern ids).",
                SEARCH,
                max_lines=1000,
            ),
            24,
            16,
        )
    )
    return render(d)
