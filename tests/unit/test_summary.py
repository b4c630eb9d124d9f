"""The replay summary says when it cuts a list."""

from __future__ import annotations

import pytest

from kubevents.clock import FakeClock
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.correlate import Correlator
from kubevents.enrich.correlation_rules import load_correlation_rules
from kubevents.model import Enriched
from kubevents.pipeline import Detectors, Pipeline
from kubevents.summary import MAX_MEMBERS, MAX_OBJECTS, Summary
from tests.support import events
from tests.support.events import T0


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


PULLED = 'Successfully pulled image "registry.example.com/db:15" in 1.2s'


@pytest.mark.parametrize(
    ("pods", "approximate"),
    [
        (2 * MAX_OBJECTS - 2, False),  # every object counted (and the 2 busy): exact
        (10 * MAX_OBJECTS, True),  # the quiet ones dropped as they come: bounded
    ],
)
def test_the_top_objects_stay_bounded_whatever_the_number_of_objects(
    pods: int, approximate: bool
) -> None:
    classifier = load_classifier()
    summary = Summary()

    def pulled(name: str, count: int) -> None:
        event = events.ev(0, "Pulled", name, message=PULLED, type_="Normal", count=count)
        summary.add(Enriched(event, count, T0, classifier.classify(event)))

    for i in range(pods):
        if i % 100 == 0:
            pulled("busy-0", 5)  # the busiest, all along
            pulled("busy-1", 3)
        pulled(f"quiet-{i}", 1)
        assert len(summary.by_object) <= 2 * MAX_OBJECTS + 1
    busy = len(range(0, pods, 100))
    text = summary.render(top=2)
    table = text.split("Top objects")[1].split("Incidents:")[0]
    assert table.splitlines()[1:3] == [f"  {5 * busy}  shop/Pod/busy-0", f"  {3 * busy}  shop/Pod/busy-1"]
    assert ("approximate" in table.splitlines()[0]) == approximate
    assert summary.occurrences == pods + 8 * busy  # the totals stay exact


MOUNT = (  # the kubelet's formats, as in tests/unit/test_pipeline_hold.py
    'MountVolume.SetUp failed for volume "pvc-91c3" : rpc error: code = DeadlineExceeded'
    " desc = context deadline exceeded"
)
READY = "Readiness probe failed: HTTP probe failed with statuscode: 503"


def test_explain_keeps_the_first_records_of_an_incident_and_counts_the_rest() -> None:
    summary = Summary(explain=True)
    p = Pipeline(
        classifier=load_classifier(),
        sinks=[],
        clock=FakeClock(T0),
        summary=summary,
        detectors=Detectors(correlator=Correlator(load_correlation_rules())),
    )
    later = 300
    p.handle(events.ev(0, "FailedMount", "db-0", node="node-3", message=MOUNT))
    for i in range(MAX_MEMBERS + later - 1):  # one probe failure, again and again
        p.handle(events.ev(1 + i / 100, "Unhealthy", "db-0", node="node-3", message=READY, count=i + 1))
    p.close()
    for incident in p.correlator.current() if p.correlator else ():
        summary.add_incident(incident)
    (incident_id,) = summary.incidents
    chain = summary.explain_text(incident_id).splitlines()
    assert chain[1].startswith("  root cause  FailedMount shop/Pod/db-0")
    assert len(chain) == 2 + MAX_MEMBERS - 1 + 1  # title, root, the records kept, the count
    assert chain[-1] == f"  and {later} later records (the first {MAX_MEMBERS} are kept)"
