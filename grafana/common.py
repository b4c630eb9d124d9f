"""Shared pieces of the kubevents dashboards: datasources, variables, selectors, layout.

Every dashboard is built with the official grafana-foundation-sdk (Grafana 11.6
build) and rendered to plain JSON by :func:`render`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import (
    dashboard,
    logs,
    loki,
    prometheus,
    stat,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as md
from grafana_foundation_sdk.models import loki as lm
from grafana_foundation_sdk.models import prometheus as pm

# ---------------------------------------------------------------------------
# Configuration (the monitoring-mixin `_config`): change here, regenerate.
# ---------------------------------------------------------------------------

#: Label the scraper adds to every kubevents series to name the cluster.
CLUSTER_LABEL = "cluster"
#: `service.name` of kubevents, a Loki stream label.
SERVICE_NAME = "kubevents"
#: The stream matcher of each label profile of the loki sink (docs/sinks.md): kubevents'
#: own, and that of Grafana's k8s-monitoring chart (its job label). The `stream` variable
#: picks one; every other label the queries select on is written under both profiles.
STREAM_MATCHERS = {
    "kubevents": f'service_name="{SERVICE_NAME}"',
    "k8s-monitoring": 'job="integrations/kubernetes/eventhandler"',
}
#: Tag shared by the dashboards; the dashboard links list every dashboard with it.
TAGS = ["kubevents"]
REFRESH = "1m"
TIMEZONE = "utc"
TIME_FROM = "now-6h"

#: The dashboards (uid, file name, title): links and data links use these uids.
UID_OVERVIEW = "kubevents-overview"
UID_INCIDENTS = "kubevents-incidents"
UID_EXPLORER = "kubevents-explorer"
UID_HEALTH = "kubevents-health"

PROM = md.DataSourceRef(type_val="prometheus", uid="${datasource}")
LOKI = md.DataSourceRef(type_val="loki", uid="${loki_datasource}")

#: Values of the closed sets (exporter/kubevents/conventions.py).
CATEGORIES = [
    "Scheduling",
    "Image",
    "Lifecycle",
    "Health",
    "Resources",
    "Storage",
    "Network",
    "Node",
    "Autoscaling",
    "Workload",
    "Config",
    "Policy",
    "Other",
]
SEVERITIES = ["critical", "error", "warning", "info", "debug"]
WARNING_OR_WORSE = "warning|error|critical"

# Record kinds, by an attribute only that kind carries. `event_name` says the same, but Loki
# up to 3.7 drops the OTLP EventName field on its /otlp endpoint (the loki sink sends it):
# these filters work whichever way the records reached Loki.
#: `k8s.event` records (every one has k8s.event.uid).
EVENT_RECORDS = '| k8s_event_uid!=""'
#: `kubevents.incident` records.
INCIDENT_RECORDS = '| kubevents_incident_state!=""'
#: `kubevents.pattern` records (patterns and anomalies).
PATTERN_RECORDS = '| kubevents_pattern_state!=""'

# ---------------------------------------------------------------------------
# Selectors
# ---------------------------------------------------------------------------

#: PromQL matcher of every kubevents series.
CLUSTER = f'{CLUSTER_LABEL}=~"$cluster"'
#: PromQL matchers of the per-namespace metrics (kubevents_events_total, pattern and anomaly gauges).
EVENTS = f'{CLUSTER}, k8s_namespace_name=~"$namespace"'


def loki_stream(namespace: bool = True) -> str:
    """The LogQL stream selector: kubevents' records of the selected cluster (and namespace).

    `k8s_cluster_name` and `k8s_namespace_name` are index labels (Resource attributes);
    an incident spanning namespaces has no namespace label, so the incident queries
    leave it out (`namespace=False`).
    """
    matchers = ["$stream", 'k8s_cluster_name=~"$cluster"']
    if namespace:
        matchers.append('k8s_namespace_name=~"$namespace"')
    return "{" + ", ".join(matchers) + "}"


# ---------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------


def prom(
    expr: str, legend: str = "", *, ref: str = "A", instant: bool = False
) -> prometheus.Dataquery:
    q = (
        prometheus.Dataquery()
        .ref_id(ref)
        .expr(expr)
        .datasource(PROM)
        .editor_mode(pm.QueryEditorMode.CODE)
    )
    if legend:
        q = q.legend_format(legend)
    q = q.instant().format(pm.PromQueryFormat.TABLE) if instant else q.range()
    return q


def logql(
    expr: str,
    legend: str = "",
    *,
    ref: str = "A",
    query_type: str = "range",
    max_lines: int | None = None,
) -> loki.Dataquery:
    q = (
        loki.Dataquery()
        .ref_id(ref)
        .expr(expr)
        .datasource(LOKI)
        .editor_mode(lm.QueryEditorMode.CODE)
        .query_type(query_type)
    )
    if legend:
        q = q.legend_format(legend)
    if query_type == "instant":
        q = q.instant(True)
    elif query_type == "range":
        q = q.range(True)
    if max_lines is not None:
        q = q.max_lines(max_lines)
    return q


# ---------------------------------------------------------------------------
# Panels
# ---------------------------------------------------------------------------


def _datasource(targets: Iterable[Any]) -> md.DataSourceRef:
    kinds = {type(t) for t in targets}
    return LOKI if kinds == {loki.Dataquery} else PROM


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    *targets: Any,
    stacked: bool = False,
    legend_table: bool = True,
    minimum: float | None = 0,
) -> timeseries.Panel:
    p = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_datasource(targets))
        .fill_opacity(10)
        .line_width(1)
        .tooltip(
            cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING)
        )
        .legend(
            cb.VizLegendOptions()
            .show_legend(True)
            .display_mode(cm.LegendDisplayMode.TABLE if legend_table else cm.LegendDisplayMode.LIST)
            .placement(cm.LegendPlacement.BOTTOM)
            .calcs(["mean", "max", "lastNotNull"] if legend_table else [])
        )
    )
    if minimum is not None:
        p = p.min(minimum)
    if stacked:
        p = p.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    for t in targets:
        p = p.with_target(t)
    return p


def stat_panel(
    title: str,
    description: str,
    unit: str,
    *targets: Any,
    thresholds: list[tuple[float | None, str]] | None = None,
    calc: str = "lastNotNull",
) -> stat.Panel:
    steps = thresholds or [(None, "green")]
    p = (
        stat.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_datasource(targets))
        .graph_mode(cm.BigValueGraphMode.AREA)
        .color_mode(cm.BigValueColorMode.VALUE)
        .reduce_options(cb.ReduceDataOptions().calcs([calc]).values(False))
        .thresholds(
            dashboard.ThresholdsConfig()
            .mode(md.ThresholdsMode.ABSOLUTE)
            .steps([md.Threshold(value=v, color=c) for v, c in steps])
        )
    )
    for t in targets:
        p = p.with_target(t)
    return p


def table_panel(
    title: str,
    description: str,
    unit: str,
    *targets: Any,
    transformations: list[tuple[str, dict[str, Any]]] | None = None,
    links: dict[str, list[dict[str, Any]]] | None = None,
    sort_by: str | None = None,
    value_names: dict[str, dict[str, str]] | None = None,
) -> table.Panel:
    p = (
        table.Panel()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(_datasource(targets))
    )
    for t in targets:
        p = p.with_target(t)
    for transformation_id, options in transformations or []:
        p = p.with_transformation(
            md.DataTransformerConfig(id_val=transformation_id, options=options)
        )
    for field, field_links in (links or {}).items():
        p = p.override_by_name(field, [md.DynamicConfigValue(id_val="links", value=field_links)])
    for field, names in (value_names or {}).items():
        mapping = {"type": "value", "options": {v: {"text": t} for v, t in names.items()}}
        p = p.override_by_name(
            field,
            [
                md.DynamicConfigValue(id_val="mappings", value=[mapping]),
                md.DynamicConfigValue(id_val="unit", value="none"),
            ],
        )
    if sort_by:
        p = p.sort_by([cb.TableSortByFieldState().display_name(sort_by).desc(True)])
    return p


def logs_panel(title: str, description: str, expr: str, *, max_lines: int = 500) -> logs.Panel:
    return (
        logs.Panel()
        .title(title)
        .description(description)
        .datasource(LOKI)
        .with_target(logql(expr, query_type="range", max_lines=max_lines))
        .show_time(True)
        .show_labels(False)
        .show_common_labels(False)
        .wrap_log_message(True)
        .prettify_log_message(False)
        .enable_log_details(True)
        .dedup_strategy(cm.LogsDedupStrategy.NONE)
        .sort_order(cm.LogsSortOrder.DESCENDING)
    )


def row(title: str) -> dashboard.Row:
    return dashboard.Row(title)


class Grid:
    """Places panels left to right on the 24-column grid, wrapping to a new line."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.line_height = 0

    def place(self, panel: Any, w: int, h: int) -> Any:
        if self.x + w > 24:
            self.newline()
        panel = panel.grid_pos(md.GridPos(h=h, w=w, x=self.x, y=self.y))
        self.x += w
        self.line_height = max(self.line_height, h)
        return panel

    def newline(self) -> None:
        if self.x:
            self.y += self.line_height
        self.x = 0
        self.line_height = 0

    def row(self, title: str) -> dashboard.Row:
        self.newline()
        r = dashboard.Row(title).grid_pos(md.GridPos(h=1, w=24, x=0, y=self.y))
        self.y += 1
        return r


# ---------------------------------------------------------------------------
# Dashboard
# ---------------------------------------------------------------------------


def _all() -> md.VariableOption:
    return md.VariableOption(selected=True, text=["All"], value=["$__all"])


def base_dashboard(uid: str, title: str, description: str) -> dashboard.Dashboard:
    """A dashboard with the shared settings, variables and links."""
    return (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .tooltip(md.DashboardCursorSync.CROSSHAIR)
        .refresh(REFRESH)
        .time(TIME_FROM, "now")
        .timezone(TIMEZONE)
        .with_variable(
            dashboard.DatasourceVariable("datasource")
            .label("Prometheus")
            .description("Prometheus (or Mimir) data source that scrapes kubevents' /metrics.")
            .type("prometheus")
        )
        .with_variable(
            dashboard.DatasourceVariable("loki_datasource")
            .label("Loki")
            .description("Loki data source kubevents' records are sent to (OTLP or the loki sink).")
            .type("loki")
        )
        .with_variable(
            dashboard.CustomVariable("stream")
            .label("Loki labels")
            .description(
                "The loki sink's label profile (loki.profile): kubevents' own labels, or those "
                "of Grafana's k8s-monitoring chart. Records sent through the Collector have "
                "kubevents' labels."
            )
            .values(",".join(f"{name} : {matcher}" for name, matcher in STREAM_MATCHERS.items()))
            .current(
                md.VariableOption(
                    selected=True,
                    text="kubevents",
                    value=STREAM_MATCHERS["kubevents"],
                )
            )
        )
        .with_variable(
            dashboard.QueryVariable("cluster")
            .label("Cluster")
            .description(
                f"Value of the `{CLUSTER_LABEL}` label the scraper adds by relabeling "
                "(in Loki: the `k8s_cluster_name` stream label)."
            )
            .datasource(PROM)
            .query(f"label_values(kubevents_build_info, {CLUSTER_LABEL})")
            .refresh(md.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(md.VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".*")
            .multi(True)
            .current(_all())
        )
        .with_variable(
            dashboard.QueryVariable("namespace")
            .label("Namespace")
            .description("Namespace of the involved objects (`k8s_namespace_name`).")
            .datasource(PROM)
            .query(f"label_values(kubevents_events_total{{{CLUSTER}}}, k8s_namespace_name)")
            .refresh(md.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .sort(md.VariableSort.ALPHABETICAL_ASC)
            .include_all(True)
            .all_value(".*")
            .multi(True)
            .current(_all())
        )
        .link(
            dashboard.DashboardLink("kubevents dashboards")
            .type(md.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(False)
            .include_vars(True)
            .keep_time(True)
            .tooltip("The other kubevents dashboards, with the same time range and variables")
        )
    )


def dashboard_url(uid: str, *params: str) -> str:
    """A data link URL to another kubevents dashboard keeping time range, cluster and namespace."""
    query = "&".join(
        ["${__url_time_range}", "${cluster:queryparam}", "${namespace:queryparam}", *params]
    )
    return f"/d/{uid}?{query}"


def render(builder: cogbuilder.Builder[md.Dashboard]) -> dict[str, Any]:
    """The dashboard as provisioning JSON: `id` null (Grafana assigns it), stable key order."""
    data: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(builder.build()))
    data["id"] = None
    return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
