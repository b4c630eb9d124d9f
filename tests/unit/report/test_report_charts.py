"""The charts draw aggregated marks: their size follows their width, not the Events."""

from __future__ import annotations

import itertools
import re

import pytest

from kubevents.report.charts import COLUMNS, Axis, Series, rate_chart, timeline
from kubevents.report.model import EventRow, Incident

S = 1_000_000_000
T0 = 1_795_168_800 * S


def row(i: int, severity: str) -> EventRow:
    return EventRow(
        time_ns=T0 + i * S, uid=f"u{i}", reason="BackOff", type="Warning", category="Lifecycle",
        severity=severity, object="shop/Pod/p", namespace="shop", workload="", node="",
        incident="inc-a", root=i == 0, occurrences=1, count=1, message="", controller="",
        rule="r", pattern="", join_rule="", join_scope="",
    )  # fmt: skip


def incident(events: int) -> Incident:
    members = [row(i, "error" if i % 7 else "critical") for i in range(events)]
    return Incident(
        id="inc-a", state="open", root_reason="BackOff", root_object="shop/Pod/p",
        root_uid="u0", category="Lifecycle", severity="critical", first_ns=T0,
        last_ns=members[-1].time_ns, events=events, occurrences=events, workloads=[],
        nodes=[], namespaces=[], description="", members=members, root_row=members[0],
    )  # fmt: skip


@pytest.mark.parametrize(
    ("events", "drawn"),
    [
        (10, {"error", "critical"}),
        (1_000, {"error", "critical"}),  # about 4 Events a slice: some slices hold no critical
        (100_000, {"critical"}),  # about 400 a slice: every slice holds one, the worst wins
    ],
)
def test_timeline_marks_are_bounded_by_columns(events: int, drawn: set[str]) -> None:
    svg = timeline([incident(events)], {})
    segments = len(re.findall(r"M[\d.]+ \d+h", svg))
    assert 0 < segments <= min(events, COLUMNS + 1)
    assert svg.count('class="root"') == 1
    assert set(re.findall(r'class="sev-(\w+)"', svg)) == drawn


@pytest.mark.parametrize(("buckets", "columns"), [(10, 10), (240, 240), (241, 121), (10_080, 240)])
def test_rate_chart_folds_buckets_into_columns(buckets: int, columns: int) -> None:
    bars = [float(i % 5 + 1) for i in range(buckets)]
    svg = rate_chart(
        start_ns=T0, bucket_ns=60 * S, bars=bars,
        lines=[Series([2.0] * buckets, "line-threshold", "threshold", dashed=True)],
        title="t", unit="/min",
    )  # fmt: skip
    assert svg.count('class="bar"') == columns
    # a folded column keeps the largest bar, so a spike is never averaged away
    heights = [float(h) for h in re.findall(r'class="bar"[^>]*height="([\d.]+)"', svg)]
    assert max(heights) == pytest.approx(170 - 22 - 34, abs=0.2)


@pytest.mark.parametrize(
    ("span_s", "step_s"), [(50, 10), (600, 120), (3600, 600), (86400, 10800), (30 * 86400, 604800)]
)
def test_axis_ticks_are_round_and_few(span_s: int, step_s: int) -> None:
    ticks = Axis(T0 + 1, T0 + span_s * S, 0, 1000).ticks()
    assert 1 <= len(ticks) <= 8
    assert all(t % (step_s * S) == 0 for t in ticks)
    assert {b - a for a, b in itertools.pairwise(ticks)} <= {step_s * S}
