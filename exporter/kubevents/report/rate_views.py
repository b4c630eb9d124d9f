"""The patterns and anomalies view: rate charts with threshold and baseline, and tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from kubevents.enrich.pattern_rules import PatternRules
from kubevents.report.charts import Series, rate_chart, utc
from kubevents.report.markup import MAX_ROWS, esc, num, plural, section
from kubevents.report.model import EventRow, Pattern, ReportData

MAX_CHARTS: Final = 8
"""Rate charts of patterns, and of anomalies."""
_MINUTE: Final = 60_000_000_000


# -- patterns and anomalies -------------------------------------------------------------


def patterns_view(data: ReportData, rules: PatternRules) -> str:
    patterns = [p for p in data.patterns if not p.anomaly]
    anomalies = [p for p in data.patterns if p.anomaly]
    if not patterns and not anomalies:
        return section(
            "patterns", "Patterns and anomalies", "No pattern or anomaly in this input.", ""
        )
    charts = [_pattern_chart(data, p, rules) for p in patterns[:MAX_CHARTS]]
    by_key: dict[str, list[Pattern]] = {}
    for a in anomalies:
        by_key.setdefault(a.key, []).append(a)
    ranked = sorted(by_key.items(), key=lambda kv: (-len(kv[1]), kv[0]))
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
        title=f"{short_key(found[0])}: {plural(len(found), 'anomalous minute')}",
        unit="/min",
    )


def _scored(rules: PatternRules, e: EventRow) -> bool:
    kind = e.object.split("/")[-2] if e.object.count("/") >= 1 else ""
    return rules.policy_of((e.reason, e.category, e.severity, e.type, kind, e.namespace)).anomalies
