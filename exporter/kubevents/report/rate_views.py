"""The patterns and anomalies view: rate charts with threshold and baseline, and tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from kubevents.enrich.pattern_rules import PatternRules
from kubevents.report.charts import Series, rate_chart, utc
from kubevents.report.markup import MAX_ROWS, esc, num, plural, section
from kubevents.report.model import CHARTS, Pattern, ReportData, anomaly_series, charted_patterns

MAX_CHARTS: Final = CHARTS
"""Rate charts of patterns, and of anomalies (model.py gathers the bars of these)."""
_MINUTE: Final = 60_000_000_000


# -- patterns and anomalies -------------------------------------------------------------


def patterns_view(data: ReportData, rules: PatternRules) -> str:
    patterns = [p for p in data.patterns if not p.anomaly]
    anomalies = [p for p in data.patterns if p.anomaly]
    if not patterns and not anomalies:
        return section(
            "patterns", "Patterns and anomalies", "No pattern or anomaly in this input.", ""
        )
    charts = [_pattern_chart(data, p, rules) for p in charted_patterns(patterns)]
    ranked = anomaly_series(anomalies)
    by_key = dict(ranked)
    anomaly_charts = [_anomaly_chart(data, key, found, rules) for key, found in ranked[:MAX_CHARTS]]
    return section(
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
        f'<tr><td><span class="sev sev-bg-{esc(p.severity)}">{esc(p.severity)}</span></td>'
        f"<td>{esc(p.category)}</td><td><code>{esc(p.key)}</code></td><td>{esc(p.rule or '—')}</td>"
        f"<td>{esc(p.state)}</td><td>{utc(p.transitions[0][0])}</td>"
        f'<td class="num">{num(p.count)}</td>'
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


def _pattern_chart(data: ReportData, pattern: Pattern, rules: PatternRules) -> str:
    policy = next((r.policy for r in rules.rules if r.id == pattern.rule), rules.default)
    first = pattern.transitions[0][0]
    last = pattern.transitions[-1][0]
    rows = data.pattern_bars[pattern.id]
    if rows.records:
        first, last = min(first, rows.first_ns), max(last, rows.last_ns)
    bucket_ns = _MINUTE
    start = (first - policy.window_ns) // bucket_ns * bucket_ns
    count = max(int((last - start) // bucket_ns) + 2, 2)
    bars = rows.values(start, count)
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
        title=f"{short_key(pattern)}: {num(pattern.count)} occurrences",
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
    rows = data.anomaly_bars[key]
    bucket_ns = rows.bucket_ns
    anomalous = {t[0] // bucket_ns for p in found for t in p.transitions}
    if not rows.records:
        return ""
    start = rows.first_ns // bucket_ns * bucket_ns
    count = int((rows.last_ns - start) // bucket_ns) + 2
    bars = rows.values(start, count)
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
        title=f"{short_key(found[0])}: {plural(len(found), 'anomalous minute')}",
        unit="/min",
    )
