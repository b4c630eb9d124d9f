"""Application events on the dashboards: annotations on the time series, and the changes
that became an incident's root cause (docs/app-events.md).

An application event is a ``k8s.event`` record the app-events rule pack classified (its
``kubevents.rule`` starts with ``app-events.``): a deploy, a config push, a feature flag, a
migration that an app or pipeline recorded with ``kubevents emit``. The overview and the
incidents dashboards draw them as Loki annotations on every time series panel (title: the
reason and the workload; text: the note), so "the errors started right after v2.3" is
visible on the graph itself. The incidents dashboard also lists them, and the incidents
whose root cause is one of them.
"""

from __future__ import annotations

from typing import Any

from grafana.common import EVENT_RECORDS, INCIDENT_RECORDS, LOKI, logs_panel, loki_stream
from kubevents.emitting import VOCABULARY

PACK_RULES = 'kubevents_rule=~"app-events[.].+"'
#: `k8s.event` records of application events (what the app-events pack classified).
APP_EVENTS = f"{loki_stream()} {EVENT_RECORDS} | {PACK_RULES}"
#: The reasons that are changes: the cause side of the app-events correlation rule.
CHANGES = "|".join(reason for reason, entry in VOCABULARY.items() if entry.change)
#: `kubevents.incident` records whose root cause is an application change.
ROOTED_AT_A_CHANGE = (
    f"{loki_stream(namespace=False)} {INCIDENT_RECORDS} "
    f'| kubevents_incident_state="started" | kubevents_incident_root_cause_reason=~"{CHANGES}" '
    '| kubevents_incident_namespaces=~".*$namespace.*"'
)


def annotation() -> dict[str, Any]:
    """The Loki annotation of application events (Grafana's Loki annotation fields)."""
    return {
        "name": "Application events",
        "datasource": {"type": LOKI.type_val, "uid": LOKI.uid},
        "enable": True,
        "hide": False,
        "iconColor": "purple",
        "expr": APP_EVENTS,
        "instant": False,
        "maxLines": 500,
        "titleFormat": "{{k8s_event_reason}} {{kubevents_workload}}",
        "textFormat": "",  # the line: the Event's note ("v2.3 (pipeline 1234)")
        "tagKeys": "k8s_event_reporting_controller,kubevents_severity",
    }


def with_annotation(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a rendered dashboard) with the application-event annotation added."""
    annotations = data.setdefault("annotations", {}).setdefault("list", [])
    annotations.append(annotation())
    return data


def changes_panel() -> Any:
    return logs_panel(
        "Application events",
        "Deploys, rollbacks, config pushes, feature flags, migrations and hand interventions that "
        "apps and pipelines recorded with `kubevents emit` (the app-events rule pack): reason, "
        "workload and note. The same Events are the purple annotations on the time series.",
        APP_EVENTS,
    )


def rooted_panel() -> Any:
    return logs_panel(
        "Incidents rooted at an application change",
        "Incidents whose root cause is a change an app or pipeline recorded (DeployStarted, "
        "ConfigChanged, FeatureFlagChanged, MigrationStarted...): the sentence names the change "
        "and its workload; its note is in Application events at the same time.",
        ROOTED_AT_A_CHANGE,
    )
