"""The replay summary says when it cuts a list."""

from __future__ import annotations

import pytest

from kubevents.summary import Summary


@pytest.mark.parametrize(("reasons", "top", "cut"), [(12, 10, 2), (10, 10, 0), (3, 2, 1)])
def test_unclassified_reasons_say_how_many_were_left_out(reasons: int, top: int, cut: int) -> None:
    summary = Summary()
    for i in range(reasons):
        summary.unclassified[f"Reason{i}"] = reasons - i
    (line,) = [
        line for line in summary.render(top=top).splitlines() if line.startswith("Unclassified reasons")
    ]
    assert line.startswith("Unclassified reasons (no rule matched): Reason0 (")
    assert line.count("Reason") == min(top, reasons)
    assert (f"and {cut} more" in line) == bool(cut)
