"""Output records for the sink tests: numbered, so that order and survivors can be checked."""

from __future__ import annotations

from collections.abc import Mapping

from kubevents.records import AttrValue, OutputRecord


def records(
    start: int, n: int, *, body: str = "r", attributes: Mapping[str, AttrValue] | None = None
) -> list[OutputRecord]:
    """Records ``start`` .. ``start + n - 1``: record ``i`` has time ``i`` and body ``{body}{i}``."""
    return [
        OutputRecord(
            timestamp_ns=i,
            observed_ns=i,
            severity_number=9,
            severity_text="Normal",
            event_name="k8s.event",
            body=f"{body}{i}",
            namespace="ns",
            attributes=dict(attributes or {}),
        )
        for i in range(start, start + n)
    ]
