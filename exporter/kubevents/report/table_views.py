"""The table views: where it hurt (by namespace, object, reason) and what is unclassified."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from kubevents.report.markup import MAX_ROWS, esc, num, section, tooltip
from kubevents.report.model import SEVERITIES, ReportData

# -- where it hurt ----------------------------------------------------------------------


def hurt_view(data: ReportData) -> str:
    totals = data.totals
    by_ns_cat, by_ns_sev = totals.by_ns_category, totals.by_ns_severity
    objects, objects_bad, reasons = totals.objects.counter(), totals.objects_bad, totals.reasons
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
        + _bars(reasons.counter(), "noisy-reasons")
        + "</div></div>"
    )
    return section(
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
    head = "".join(f'<th class="num">{esc(c)}</th>' for c in columns)
    body = []
    for r in rows[:MAX_ROWS]:
        row = counts.get(r, Counter())
        if not any(row[c] for c in columns):
            continue
        cells = "".join(
            f'<td class="num heat" style="--heat:{row[c] / top:.2f}">{num(row[c]) if row[c] else ""}</td>'
            for c in columns
        )
        body.append(f"<tr><th>{esc(r)}</th>{cells}</tr>")
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
        f'<tr><td><code>{esc(name)}</code></td><td class="num">{num(n)}</td>'
        + (f'<td class="num">{num(extra[name])}</td>' if extra is not None else "")
        + f'<td class="barcell"><span class="hbar" style="width:{100 * n / top:.1f}%"></span></td></tr>'
        for name, n in items
    )
    return (
        f'<table class="bars" id="{table_id}"><thead><tr><th></th><th class="num">occurrences</th>{head}'
        f"<th></th></tr></thead><tbody>{rows}</tbody></table>"
    )


# -- unclassified -----------------------------------------------------------------------


def unclassified_view(data: ReportData) -> str:
    by_controller = data.totals.unclassified
    explain = (
        "Events no classification rule matched, so only their type set the severity "
        "(Normal: info, Warning: warning) and the category is Other. Grouped by the "
        "controller that reported them: the rules to write next (docs/config.md, --rules)."
    )
    if not by_controller:
        return section(
            "unclassified",
            "What is unclassified",
            explain,
            "<p>Nothing: every Event matched a rule.</p>",
        )
    ranked = sorted(by_controller.items(), key=lambda kv: (-kv[1].occurrences, kv[0]))
    rows = []
    for controller, found in ranked[:MAX_ROWS]:
        reasons = found.reasons.counter()
        example = found.example
        rows.append(
            f"<tr><td><code>{esc(controller)}</code></td>"
            f'<td class="num">{num(found.occurrences)}</td>'
            f'<td class="num">{num(found.records)}</td>'
            f"<td>{', '.join(f'{esc(r)} ({num(n)})' for r, n in reasons.most_common(8))}"
            f"{' …' if len(reasons) > 8 else ''}</td>"
            f"<td class=msg{tooltip(example, 200)}>{esc(example[:200])}</td></tr>"
        )
    return section(
        "unclassified",
        "What is unclassified",
        explain,
        '<div class="scroll"><table><thead><tr><th>reporting controller</th>'
        '<th class="num">occurrences</th><th class="num">records</th><th>reasons</th>'
        f"<th>example message</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>",
    )
