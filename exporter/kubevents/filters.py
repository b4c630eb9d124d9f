"""Client-side Event filters (``watch.filters``): pure, precompiled into sets."""

from __future__ import annotations

from dataclasses import dataclass

from kubevents.model import KubeEvent
from kubevents.settings import FilterSettings


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Keeps or drops an Event by reason, kind, namespace and type."""

    reasons: frozenset[str]
    exclude_reasons: frozenset[str]
    kinds: frozenset[str]
    exclude_kinds: frozenset[str]
    namespaces: frozenset[str]
    exclude_namespaces: frozenset[str]
    types: frozenset[str]

    @classmethod
    def from_settings(cls, s: FilterSettings) -> EventFilter:
        return cls(
            *(
                frozenset(v)
                for v in (
                    s.reasons,
                    s.exclude_reasons,
                    s.kinds,
                    s.exclude_kinds,
                    s.namespaces,
                    s.exclude_namespaces,
                    s.types,
                )
            )
        )

    def keeps(self, event: KubeEvent) -> bool:
        """True when ``event`` passes every filter (exclusions win)."""
        ns, kind = event.regarding.namespace or event.namespace, event.regarding.kind
        if (
            event.reason in self.exclude_reasons
            or kind in self.exclude_kinds
            or ns in self.exclude_namespaces
        ):
            return False
        return (
            (not self.reasons or event.reason in self.reasons)
            and (not self.kinds or kind in self.kinds)
            and (not self.namespaces or ns in self.namespaces)
            and (not self.types or event.type in self.types)
        )
