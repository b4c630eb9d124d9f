"""kubevents health: is kubevents reading every Event and delivering every record?"""

from __future__ import annotations

from typing import Any

from grafana.common import (
    CLUSTER,
    EVENTS,
    UID_HEALTH,
    Grid,
    base_dashboard,
    prom,
    render,
    stat_panel,
    timeseries_panel,
)

TITLE = "kubevents / Health"


def _rate(metric: str, extra: str = "") -> str:
    matchers = f"{CLUSTER}, {extra}" if extra else CLUSTER
    return f"rate({metric}{{{matchers}}}[$__rate_interval])"


def _increase(metric: str, extra: str = "") -> str:
    matchers = f"{CLUSTER}, {extra}" if extra else CLUSTER
    return f"increase({metric}{{{matchers}}}[$__rate_interval])"


def build() -> dict[str, Any]:
    g = Grid()
    d = base_dashboard(
        UID_HEALTH,
        TITLE,
        "kubevents' own health: watch streams, lag, relists and 410s, API errors, leader election, "
        "pipeline and sink queues, export failures, retries and drops, export latency and checkpoint age.",
    )

    d = d.with_panel(
        g.place(
            stat_panel(
                "Instances",
                "kubevents processes reporting metrics (kubevents_build_info).",
                "short",
                prom(f"count(kubevents_build_info{{{CLUSTER}}})"),
                thresholds=[(None, "red"), (1, "green")],
            ),
            4,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Leaders",
                "Instances leading (kubevents_leader = 1); exactly 1 per cluster is healthy, 0 means "
                "nobody watches, more than 1 means split brain.",
                "short",
                prom(f"sum(kubevents_leader{{{CLUSTER}}})"),
                thresholds=[(None, "red"), (1, "green"), (2, "red")],
            ),
            4,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Watch streams down",
                "Watch loops that are not established (listing, retrying, backing off), all resources.",
                "short",
                prom(f'sum(kubevents_watch_streams{{{CLUSTER}, state="down"}})'),
                thresholds=[(None, "green"), (1, "red")],
            ),
            4,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Watch lag",
                "Time between now and the occurrence time of the newest Event processed "
                "(high while the cluster is quiet, too).",
                "s",
                prom(f"max(kubevents_watch_lag_seconds{{{CLUSTER}}})"),
                thresholds=[(None, "green"), (300, "orange"), (900, "red")],
            ),
            4,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Checkpoint age",
                "Time since the last successful checkpoint write.",
                "s",
                prom(
                    f"time() - max(kubevents_checkpoint_last_success_timestamp_seconds{{{CLUSTER}}})"
                ),
                thresholds=[(None, "green"), (300, "orange"), (900, "red")],
            ),
            4,
            4,
        )
    )
    d = d.with_panel(
        g.place(
            stat_panel(
                "Peak drop rate",
                "Highest rate of records the sinks gave up on (any reason, all sinks) in the time range. Should be 0.",
                "cps",
                prom(f"sum({_rate('kubevents_sink_dropped_total')})"),
                thresholds=[(None, "green"), (0.000001, "red")],
                calc="max",
            ),
            4,
            4,
        )
    )

    d = d.with_row(g.row("Watch"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Watch streams by state",
                "Watch loops established or down, per instance and watched resource (events, and the "
                "object cache's pods, replicasets, jobs); 0 of both on a standby.",
                "short",
                prom(
                    f"sum by (instance, resource, state) (kubevents_watch_streams{{{CLUSTER}}})",
                    "{{instance}} {{resource}} {{state}}",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Watch lag",
                "now - occurrence time of the newest Event processed, per instance.",
                "s",
                prom(
                    f"max by (instance) (kubevents_watch_lag_seconds{{{CLUSTER}}})", "{{instance}}"
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Leader",
                "1 while the instance leads (or runs without election), 0 on a standby.",
                "short",
                prom(f"max by (instance) (kubevents_leader{{{CLUSTER}}})", "{{instance}}"),
                legend_table=False,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Relists by reason",
                "Relists per interval: expired = 410 Gone (the resourceVersion was too old), "
                "empty_watch, error.",
                "short",
                prom(
                    f"sum by (resource, reason) ({_increase('kubevents_watch_relists_total')})",
                    "{{resource}} {{reason}}",
                ),
                stacked=True,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Watch restarts by reason",
                "Watch reconnects per interval by reason (server_timeout is normal; connection, "
                "inactive and http_<code> are not).",
                "short",
                prom(
                    f"sum by (resource, reason) ({_increase('kubevents_watch_restarts_total')})",
                    "{{resource}} {{reason}}",
                ),
                stacked=True,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "API errors by code",
                "Errors the apiserver answered, per interval, by HTTP status code.",
                "short",
                prom(
                    f"sum by (resource, code) ({_increase('kubevents_watch_api_errors_total')})",
                    "{{resource}} {{code}}",
                ),
                stacked=True,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Watch activity",
                "List calls, BOOKMARK events, malformed watch lines and Event updates merged by "
                "watch.throttle_s, per second.",
                "cps",
                prom(f"sum({_rate('kubevents_watch_lists_total')})", "lists", ref="A"),
                prom(f"sum({_rate('kubevents_watch_bookmarks_total')})", "bookmarks", ref="B"),
                prom(f"sum({_rate('kubevents_watch_bad_lines_total')})", "bad lines", ref="C"),
                prom(
                    f"sum({_rate('kubevents_watch_throttled_total')})", "throttled updates", ref="D"
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Events skipped by reason",
                "Events not emitted on purpose per second: invalid, filtered, initial (already seen before a restart).",
                "cps",
                prom(f"sum by (reason) ({_rate('kubevents_watch_skipped_total')})", "{{reason}}"),
                stacked=True,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Event updates processed",
                "Event updates per second by result: emitted, unchanged (skipped), deleted (TTL expiry).",
                "cps",
                prom(
                    f"sum by (result) ({_rate('kubevents_pipeline_updates_total')})", "{{result}}"
                ),
                stacked=True,
            ),
            8,
            8,
        )
    )

    d = d.with_row(g.row("Pipeline and sink queues"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Pipeline queue fill",
                "Items waiting between the watch threads and the pipeline, as a share of the queue's capacity.",
                "percentunit",
                prom(
                    f"max by (instance) (kubevents_pipeline_queue_size{{{CLUSTER}}} "
                    f"/ kubevents_pipeline_queue_capacity{{{CLUSTER}}})",
                    "{{instance}}",
                ),
                legend_table=False,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Sink queue fill",
                "Records waiting for delivery as a share of the in-memory queue, per sink (near 100% "
                "the backend cannot keep up: block means backpressure, drop_oldest means drops), and "
                "the on-disk spool's fill for a sink with --spool.",
                "percentunit",
                prom(
                    f"max by (sink) (kubevents_sink_queue_size{{{CLUSTER}}} "
                    f"/ kubevents_sink_queue_capacity{{{CLUSTER}}})",
                    "{{sink}} queue",
                    ref="A",
                ),
                prom(
                    f"max by (sink) (kubevents_sink_spool_size_bytes{{{CLUSTER}}} "
                    f"/ kubevents_sink_spool_capacity_bytes{{{CLUSTER}}})",
                    "{{sink}} spool",
                    ref="B",
                ),
                legend_table=False,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Sink queue and spool",
                "Records waiting for delivery per sink, the batch in flight included: in the "
                "in-memory queue, or with --spool the records in the spool not yet acknowledged.",
                "short",
                prom(f"sum by (sink) (kubevents_sink_queue_size{{{CLUSTER}}})", "{{sink}}"),
            ),
            8,
            8,
        )
    )

    d = d.with_row(g.row("Export"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Records exported/s",
                "Records the backend accepted per second, per sink, and the records the pipeline handed over.",
                "cps",
                prom(
                    f"sum by (sink) ({_rate('kubevents_sink_exported_total')})", "{{sink}}", ref="A"
                ),
                prom(
                    f"sum({_rate('kubevents_pipeline_records_total')})", "pipeline records", ref="B"
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Failed and retried records/s",
                "Records in failed requests and records scheduled for another attempt, per sink and reason "
                "(a batch counts at every failed attempt).",
                "cps",
                prom(
                    f"sum by (sink, reason) ({_rate('kubevents_sink_failed_total')})",
                    "failed {{sink}} {{reason}}",
                    ref="A",
                ),
                prom(
                    f"sum by (sink, reason) ({_rate('kubevents_sink_retried_total')})",
                    "retried {{sink}} {{reason}}",
                    ref="B",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Dropped records/s",
                "Records given up on per second, per sink and reason (queue_full, retry_deadline, "
                "rejected, shutdown, Loki's reasons...). Any value is data loss.",
                "cps",
                prom(
                    f"sum by (sink, reason) ({_rate('kubevents_sink_dropped_total')})",
                    "{{sink}} {{reason}}",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Export latency",
                "Request duration per sink: 50th and 99th percentile of successful and failed requests.",
                "s",
                prom(
                    "histogram_quantile(0.99, sum by (sink, le) "
                    f"({_rate('kubevents_sink_export_duration_seconds_bucket')}))",
                    "p99 {{sink}}",
                    ref="A",
                ),
                prom(
                    "histogram_quantile(0.5, sum by (sink, le) "
                    f"({_rate('kubevents_sink_export_duration_seconds_bucket')}))",
                    "p50 {{sink}}",
                    ref="B",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Requests/s by result",
                "Export requests per second, per sink and result (success, failure).",
                "reqps",
                prom(
                    f"sum by (sink, result) ({_rate('kubevents_sink_export_duration_seconds_count')})",
                    "{{sink}} {{result}}",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Mean batch size",
                "Records per request, per sink (batches fill up to delivery.batch_size under load).",
                "short",
                prom(
                    f"sum by (sink) ({_rate('kubevents_sink_batch_size_sum')}) "
                    f"/ sum by (sink) ({_rate('kubevents_sink_batch_size_count')})",
                    "{{sink}}",
                ),
                legend_table=False,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Bytes sent/s",
                "Request bytes sent per second after compression, failed attempts included, per sink.",
                "Bps",
                prom(f"sum by (sink) ({_rate('kubevents_sink_sent_bytes_total')})", "{{sink}}"),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Truncated records/s",
                "Records whose body or an attribute was cut to the configured maximum, per sink.",
                "cps",
                prom(f"sum by (sink) ({_rate('kubevents_sink_truncated_total')})", "{{sink}}"),
            ),
            8,
            8,
        )
    )

    d = d.with_row(g.row("Checkpoint and state"))
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Checkpoint age",
                "Time since the last successful checkpoint, per instance.",
                "s",
                prom(
                    f"time() - max by (instance) (kubevents_checkpoint_last_success_timestamp_seconds{{{CLUSTER}}})",
                    "{{instance}}",
                ),
                legend_table=False,
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Checkpoint writes by result",
                "Checkpoint writes per interval: success, failure.",
                "short",
                prom(
                    f"sum by (result) ({_increase('kubevents_checkpoint_writes_total')})",
                    "{{result}}",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "In-memory state",
                "Entries kept by the correlation and pattern state (pattern groups, anomaly series, "
                "event series, incidents, owners) and evictions per second by the caps.",
                "short",
                prom(
                    f"sum by (state) (kubevents_state_entries{{{CLUSTER}}})", "{{state}}", ref="A"
                ),
                prom(
                    f"sum by (state) ({_rate('kubevents_state_evictions_total')})",
                    "{{state}} evictions/s",
                    ref="B",
                ),
            ),
            8,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Label overflow",
                "Occurrences counted under __other__ because a label or the series cap of "
                "kubevents_events_total was full; non-zero means the caps hide detail.",
                "cps",
                prom(f"sum by (kind) ({_rate('kubevents_events_overflow_total')})", "{{kind}}"),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Occurrences counted/s",
                "Event occurrences counted in kubevents_events_total in the selected namespaces, "
                "and the occurrences of the emitted records (all namespaces).",
                "cps",
                prom(
                    f"sum(rate(kubevents_events_total{{{EVENTS}}}[$__rate_interval]))",
                    "events_total",
                    ref="A",
                ),
                prom(
                    f"sum({_rate('kubevents_pipeline_occurrences_total')})",
                    "pipeline occurrences",
                    ref="B",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Detector limits",
                "Occurrences too late for a detector's window (counted, not detected) by stage, and "
                "patterns not started because max_active patterns were active, per second.",
                "cps",
                prom(
                    f"sum by (stage) ({_rate('kubevents_occurrences_late_total')})",
                    "late {{stage}}",
                    ref="A",
                ),
                prom(
                    f"sum({_rate('kubevents_patterns_suppressed_total')})",
                    "patterns suppressed",
                    ref="B",
                ),
            ),
            12,
            8,
        )
    )
    d = d.with_panel(
        g.place(
            timeseries_panel(
                "Unclassified by reporting controller",
                "Event occurrences no classification rule matched (category Other), per second, by "
                "the controller that reported them (top 10): the controllers to write a rule pack or "
                "a rule for (docs/rule-packs.md). At most 50 controllers are counted apart; the rest "
                "are __other__.",
                "cps",
                prom(
                    "topk(10, sum by (k8s_event_reporting_controller) "
                    f"({_rate('kubevents_events_unclassified_total')}))",
                    "{{k8s_event_reporting_controller}}",
                ),
            ),
            12,
            8,
        )
    )
    return render(d)
