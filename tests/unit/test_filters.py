"""Client-side filters: inclusions narrow, exclusions win."""

from __future__ import annotations

import pytest

from kubevents.filters import EventFilter
from kubevents.model import KubeEvent, ObjectRef
from kubevents.settings import FilterSettings


def ev(reason: str = "BackOff", kind: str = "Pod", ns: str = "shop", type_: str = "Warning") -> KubeEvent:
    return KubeEvent(uid="u", name="n", namespace=ns, reason=reason, type=type_, message="",
                     regarding=ObjectRef(kind=kind, namespace=ns, name="x"), time_ns=0, first_time_ns=0)


@pytest.mark.parametrize(
    ("settings", "event", "kept"),
    [
        (FilterSettings(), ev(), True),
        (FilterSettings(reasons=("BackOff",)), ev(), True),
        (FilterSettings(reasons=("Pulled",)), ev(), False),
        (FilterSettings(exclude_reasons=("BackOff",)), ev(), False),
        (FilterSettings(reasons=("BackOff",), exclude_namespaces=("shop",)), ev(), False),
        (FilterSettings(kinds=("Node",)), ev(), False),
        (FilterSettings(exclude_kinds=("Node",)), ev(kind="Node", ns=""), False),
        (FilterSettings(namespaces=("shop", "payments")), ev(ns="payments"), True),
        (FilterSettings(types=("Warning",)), ev(type_="Normal"), False),
    ],
)
def test_filters(settings: FilterSettings, event: KubeEvent, kept: bool) -> None:
    assert EventFilter.from_settings(settings).keeps(event) is kept
