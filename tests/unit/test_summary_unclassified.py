"""The replay summary says which reporting controllers produce unclassified Events."""

from __future__ import annotations

from kubevents.conventions import Category, Severity
from kubevents.model import Classification, Enriched, KubeEvent, ObjectRef
from kubevents.summary import Summary


def update(reason: str, component: str, n: int, rule: str | None) -> Enriched:
    event = KubeEvent(
        uid=reason,
        name="n",
        namespace="shop",
        reason=reason,
        type="Warning",
        message="m",
        regarding=ObjectRef(kind="Widget", namespace="shop", name="w"),
        time_ns=0,
        first_time_ns=0,
        reporting_controller=component,
    )
    category = Category.OTHER if rule is None else Category.CONFIG
    return Enriched(event, n, 0, Classification(category, Severity.WARNING, rule))


def test_the_summary_lists_unclassified_reporting_controllers_most_first() -> None:
    summary = Summary()
    summary.add(update("Drifted", "widget-operator", 3, None))
    summary.add(update("Stuck", "gadget-controller", 5, None))
    summary.add(update("Issuing", "cert-manager-certificates-issuing", 7, "cert-manager.x"))
    summary.add(update("Stale", "", 1, None))
    lines = summary.render().splitlines()
    assert (
        "Unclassified by reporting controller: gadget-controller (5), widget-operator (3), "
        "(no controller) (1) (a rule pack or a rule for these: docs/rule-packs.md)"
    ) in lines


def test_no_unclassified_line_when_every_event_matched_a_rule() -> None:
    summary = Summary()
    summary.add(update("Issuing", "cert-manager-certificates-issuing", 2, "cert-manager.x"))
    assert "Unclassified" not in summary.render()
