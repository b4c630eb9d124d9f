"""The incidents on the real-event corpus do not get worse (``make accuracy``).

The whole corpus (tests/data/real) is replayed through the real pipeline and
scored by tests/support/accuracy.py; the totals must stay at or above the figures
committed in tests/data/real/accuracy.json (false merges at or below), and every
file must load. On failure the message holds the whole table.

After an improvement, commit the new figures: ``make accuracy ACCURACY_ARGS=--write``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.accuracy import (
    FIGURES,
    _Ids,
    committed_figures,
    render,
    score_corpus,
    score_file,
)
from tests.support.corpus import CorpusFile, Incident, Row, corpus_files

LOWER_IS_BETTER = frozenset({"false_merges"})


def test_the_corpus_scores_at_least_the_committed_figures() -> None:
    paths = corpus_files()
    assert paths, "no corpus files under tests/data/real"
    scores, totals = score_corpus(paths)
    table = render(scores, totals)
    failures = [s.error for s in scores if s.error]
    measured = totals.figures()
    for key, floor in committed_figures().items():
        value = measured[key]
        if key in LOWER_IS_BETTER and value > floor:
            failures.append(f"{key}: {value:g}, above the committed {floor:g}")
        elif key not in LOWER_IS_BETTER and value < floor:
            failures.append(f"{key}: {value:g}, below the committed {floor:g}")
    assert not failures, "\n".join(failures) + "\n\n" + table


def test_the_committed_figures_name_every_total() -> None:
    from tests.support.accuracy import Totals

    assert set(committed_figures(FIGURES)) == set(Totals().figures())


# --- the scorer on records written here: merges, latent root causes, false merges ----


def _event(uid: str, incident: str = "", *, warning: bool = True, category: str = "Storage") -> Any:
    attrs: dict[str, Any] = {
        "k8s.event.uid": uid,
        "kubevents.category": category,
        "kubevents.severity": "warning" if warning else "info",
    }
    if incident:
        attrs["kubevents.incident.id"] = incident
    return {
        "event_name": "k8s.event",
        "severity_text": "Warning" if warning else "Normal",
        "attributes": attrs,
    }


def _incident(incident: str, root: str, state: str = "started", into: str = "") -> Any:
    attrs = {
        "kubevents.incident.id": incident,
        "kubevents.incident.state": state,
        "kubevents.incident.root_cause.uid": root,
        "kubevents.incident.root_cause.reason": "R",
    }
    if into:
        attrs["kubevents.incident.merged_into"] = into
    return {"event_name": "kubevents.incident", "attributes": attrs}


def _corpus(rows: int, incidents: list[tuple[tuple[int, ...], tuple[int, ...]]], apart=()) -> Any:
    return CorpusFile(
        path=Path("/nowhere/x.yaml"),
        url="https://example.invalid/",
        area="storage",
        rows=tuple(Row(n, {"metadata": {"uid": f"u{n}"}}, "") for n in range(1, rows + 1)),
        incidents=tuple(Incident(i, c, s) for i, (c, s) in enumerate(incidents)),
        apart=tuple(apart),
        notes=(),
    )


CASES = [
    pytest.param(
        [_event("u1", "inc-a"), _event("u2", "inc-a"), _incident("inc-a", "u1")],
        (True, True),
        id="one incident, the cause is its root",
    ),
    pytest.param(
        [_event("u1", "inc-a"), _event("u2", "inc-a"), _incident("inc-a", "u2")],
        (True, False),
        id="together, but a symptom is the root",
    ),
    pytest.param(
        [
            _event("u1", "inc-a"),
            _event("u2", "inc-b"),
            _incident("inc-a", "u1"),
            _incident("inc-b", "u2"),
        ],
        (False, False),
        id="two incidents",
    ),
    pytest.param(
        [
            _event("u2", "inc-b"),
            _incident("inc-b", "u2"),
            _event("u1", "inc-a"),
            _incident("inc-a", "u1"),
            _incident("inc-b", "u1", state="merged", into="inc-a"),
        ],
        (True, True),
        id="a late cause's incident absorbs the symptom's",
    ),
    pytest.param(
        [
            _event("u2", "inc-c"),
            _event("u1", "inc-a"),
            _incident("inc-c", "u2", state="merged", into="inc-b"),
            _incident("inc-b", "u2", state="merged", into="inc-a"),
            _incident("inc-a", "u1"),
        ],
        (True, True),
        id="a chain of merges resolves to the last survivor",
    ),
    pytest.param(
        [_event("u1"), _event("u2", "inc-a"), _incident("inc-a", "u1")],
        (True, True),
        id="a latent root cause without an incident id of its own",
    ),
    pytest.param(
        [_event("u1"), _event("u2")],
        (False, False),
        id="no incident at all",
    ),
]


@pytest.mark.parametrize(("records", "expected"), CASES)
def test_score_of_one_incident(records: list[Any], expected: tuple[bool, bool]) -> None:
    score = score_file(_corpus(2, [((1,), (2,))]), records)
    (incident,) = score.incidents
    assert (incident.together, incident.root) == expected


def test_an_apart_pair_in_one_incident_is_a_false_merge_even_through_a_merge() -> None:
    records = [
        _event("u1", "inc-a"),
        _event("u2", "inc-a"),
        _event("u3", "inc-b"),
        _incident("inc-a", "u1"),
        _incident("inc-b", "u3", state="merged", into="inc-a"),
    ]
    score = score_file(_corpus(3, [((1,), (2,))], apart=[(1, 3), (2, 1)]), records)
    assert score.false_merges == [(1, 3), (2, 1)]
    score = score_file(_corpus(3, [((1,), (2,))], apart=[(1, 3)]), records[:4])
    assert score.false_merges == []


def test_percentages_count_each_event_once_by_its_latest_record() -> None:
    records = [
        _event("u1", category="Other"),
        _event("u1", category="Storage"),  # the same Event, reclassified by its update
        _event("u2", warning=True, category="Other"),
        _event("u3", warning=False),
    ]
    records[2]["attributes"]["kubevents.severity"] = "info"
    score = score_file(_corpus(3, [((1,), (2,))]), records)
    assert (score.events, score.categorized) == (3, 2)
    assert (score.warnings, score.warnings_severe) == (2, 1)


def test_union_find_keeps_the_survivor() -> None:
    ids = _Ids()
    ids.merge("b", "a")
    ids.merge("c", "b")
    assert {ids.find(x) for x in "abc"} == {"a"}
    assert ids.find("d") == "d"
