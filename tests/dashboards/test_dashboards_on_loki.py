"""Every LogQL query of the dashboards runs on a real Loki holding a replay of the demo recording.

The demo recording, moved by whole minutes to end 5 minutes ago, goes through kubevents' own
`loki` sink into Loki 3.x (built by tests/servers/build.sh from its pinned Go module), then each panel's query is sent as
Grafana would send it: variables at their defaults (All = `.*`), `$__auto` = the step of
a range query or the whole time range of an instant one. Every query must succeed, and
the panels that show the demo's Events, incidents and patterns must return them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from dashboard_queries import ROOT, load_all, panels

from tests.integration.servers import Loki, server_binary, wait_for

DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"

#: Loki is one of the real servers tests/servers/build.sh builds (`make servers`).
pytestmark = pytest.mark.servers
STEP_S = 300


def _ns(ts: str) -> int:
    head, frac = ts.rstrip("Z").split(".")
    return int(datetime.fromisoformat(head + "+00:00").timestamp()) * 10**9 + int(
        frac.ljust(9, "0")[:9]
    )


@pytest.fixture(scope="module")
def demo_in_loki(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Loki, list[dict[str, Any]]]]:
    workdir = tmp_path_factory.mktemp("loki")
    loki = Loki.start(server_binary("loki"), workdir)
    try:
        out = workdir / "records.jsonl"
        code = "import sys; from kubevents.cli import main; sys.exit(main(sys.argv[1:]))"
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                code,
                "replay",
                str(_recent_copy(DEMO, workdir / "events.jsonl")),
                "--sink",
                f"loki:{loki.url}",
                "--sink",
                f"jsonl:{out}",
                "--no-summary",
                "--cluster-name",
                "demo",
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        records = [json.loads(line) for line in out.read_text().splitlines()]
        start, end = _window(records)

        def stored() -> bool:
            data = loki.query_range('{service_name="kubevents"}', start, end, limit=5000)
            return sum(len(s["values"]) for s in data["result"]) == len(records)

        wait_for(stored, 60, f"Loki to hold the {len(records)} records")
        yield loki, records
    finally:
        loki.process.stop()


_TIMESTAMP = re.compile(r'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z"')


def _recent_copy(src: Path, dst: Path) -> Path:
    """The recording moved by whole minutes to end 5 minutes ago.

    Loki answers only the last 3 hours from its ingester, and nothing is flushed to the
    store during a test; the demo spans about 1.6 hours.
    """
    text = src.read_text()
    stamps = [datetime.fromisoformat(m.group(1) + "+00:00") for m in _TIMESTAMP.finditer(text)]
    shift = datetime.now(UTC) - timedelta(minutes=5) - max(stamps)
    shift = timedelta(
        minutes=shift // timedelta(minutes=1)
    )  # whole minutes: the same minute buckets

    def move(m: re.Match[str]) -> str:
        moved = datetime.fromisoformat(m.group(1) + "+00:00") + shift
        return '"' + moved.strftime("%Y-%m-%dT%H:%M:%S") + (m.group(2) or "") + 'Z"'

    dst.write_text(_TIMESTAMP.sub(move, text))
    return dst


def _window(records: list[dict[str, Any]]) -> tuple[int, int]:
    times = [_ns(r["timestamp"]) for r in records]
    return min(times) - 60 * 10**9, max(times) + 60 * 10**9


def _grafana_interpolate(expr: str, values: dict[str, str], auto: str) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name == "__auto":
            return auto
        return values[name]

    return re.sub(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)", sub, expr)


def _loki_targets() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for d in load_all().values():
        for p in panels(d):
            for t in p.get("targets", []):
                if t.get("datasource", {}).get("type") == "loki":
                    found.append((d["uid"], p["title"], t))
    return found


def _run(
    loki: Loki, target: dict[str, Any], values: dict[str, str], start: int, end: int
) -> dict[str, Any]:
    instant = target.get("queryType") == "instant"
    range_s = (end - start) // 10**9
    expr = _grafana_interpolate(target["expr"], values, f"{range_s}s" if instant else f"{STEP_S}s")
    if instant:
        params = {"query": expr, "time": str(end)}
        url = f"{loki.url}/loki/api/v1/query"
    else:
        params = {
            "query": expr,
            "start": str(start),
            "end": str(end),
            "step": str(STEP_S),
            "limit": str(target.get("maxLines", 1000)),
            "direction": "backward",
        }
        url = f"{loki.url}/loki/api/v1/query_range"
    answer = requests.get(url, params=params, timeout=60)
    assert answer.status_code == 200, f"{expr}\n{answer.status_code} {answer.text[:500]}"
    body: dict[str, Any] = answer.json()
    assert body["status"] == "success", body
    return body["data"]


def _defaults(records: list[dict[str, Any]]) -> dict[str, str]:
    incident = next(
        r["attributes"]["kubevents.incident.id"]
        for r in records
        if r["event_name"] == "kubevents.incident"
    )
    return {
        "cluster": "demo",
        "namespace": ".*",
        "reason": ".*",
        "category": ".*",
        "severity": ".*",
        "type": ".*",
        "kind": ".*",
        "object": ".*",
        "workload": ".*",
        "node": ".*",
        "pattern": ".*",
        "search": "",
        # the textbox of the incidents dashboard and the explorer's regex both take an id
        "incident": incident,
    }


def _size(data: dict[str, Any]) -> int:
    if data["resultType"] == "streams":
        return sum(len(s["values"]) for s in data["result"])
    return len(data["result"])


def test_every_dashboard_logql_query_runs_on_loki(
    demo_in_loki: tuple[Loki, list[dict[str, Any]]],
) -> None:
    loki, records = demo_in_loki
    start, end = _window(records)
    values = _defaults(records)
    sizes = {}
    for uid, title, target in _loki_targets():
        sizes[(uid, title, target["refId"])] = _size(_run(loki, target, values, start, end))
    # With the explorer's incident filter on one incident, every explorer panel still has data.
    empty = sorted(k for k, n in sizes.items() if n == 0)
    assert empty == [], f"queries without a result on the demo: {empty}"


def test_panels_show_the_demo_records(demo_in_loki: tuple[Loki, list[dict[str, Any]]]) -> None:
    loki, records = demo_in_loki
    start, end = _window(records)
    values = {**_defaults(records), "incident": ".*"}
    targets = {(uid, title): t for uid, title, t in _loki_targets()}

    def lines(uid: str, title: str, **override: str) -> list[list[Any]]:
        data = _run(loki, targets[(uid, title)], {**values, **override}, start, end)
        assert data["resultType"] == "streams"
        return [v for s in data["result"] for v in s["values"]]

    events = [r for r in records if r["event_name"] == "k8s.event"]
    bad = [
        r
        for r in events
        if r["attributes"]["kubevents.severity"] in ("warning", "error", "critical")
    ]
    assert len(lines("kubevents-overview", "Warning-or-worse Events")) == min(len(bad), 500)
    assert len(lines("kubevents-explorer", "Matching Events")) == min(len(events), 1000)

    incidents = [r for r in records if r["event_name"] == "kubevents.incident"]
    assert len(lines("kubevents-incidents", "Incident records")) == len(incidents)
    patterns = [r for r in records if r["event_name"] == "kubevents.pattern"]
    assert len(lines("kubevents-incidents", "Pattern and anomaly records")) == len(patterns)

    incident_id = incidents[0]["attributes"]["kubevents.incident.id"]
    of_incident = [
        r for r in records if r["attributes"].get("kubevents.incident.id") == incident_id
    ]
    drill = lines("kubevents-incidents", "Events of incident $incident", incident=incident_id)
    assert len(drill) == len(of_incident) > 1
    assert lines("kubevents-incidents", "Events of incident $incident", incident="") == []

    reason = bad[0]["attributes"]["k8s.event.reason"]
    by_reason = [r for r in events if r["attributes"]["k8s.event.reason"] == reason]
    assert len(lines("kubevents-explorer", "Matching Events", reason=reason)) == len(by_reason)


def test_open_incidents_table_lists_exactly_the_unresolved_incidents(
    demo_in_loki: tuple[Loki, list[dict[str, Any]]],
) -> None:
    loki, records = demo_in_loki
    start, end = _window(records)
    values = _defaults(records)
    panel = next(
        p
        for d in load_all().values()
        for p in panels(d)
        if p.get("title") == "Open incidents: root cause"
    )
    [events_target, severity_target] = panel["targets"]
    rows = _run(loki, events_target, values, start, end)["result"]
    severities = _run(loki, severity_target, values, start, end)["result"]
    shown = {row["metric"]["kubevents_incident_id"]: row for row in rows}
    assert len(shown) == len(rows), "one row per incident"
    severity = {row["metric"]["kubevents_incident_id"]: row["value"][1] for row in severities}

    incidents = [r for r in records if r["event_name"] == "kubevents.incident"]
    resolved = {
        r["attributes"]["kubevents.incident.id"]
        for r in incidents
        if r["attributes"]["kubevents.incident.state"] == "resolved"
    }
    expected = {r["attributes"]["kubevents.incident.id"] for r in incidents} - resolved
    assert expected, "the demo ends with open incidents"
    assert set(shown) == expected == set(severity)
    for incident_id in expected:
        own = [r for r in incidents if r["attributes"]["kubevents.incident.id"] == incident_id]
        a = own[-1]["attributes"]
        row = shown[incident_id]["metric"]
        assert (
            row["kubevents_incident_root_cause_reason"] == a["kubevents.incident.root_cause.reason"]
        )
        assert (
            row["kubevents_incident_root_cause_object"] == a["kubevents.incident.root_cause.object"]
        )
        assert row["kubevents_category"] == a["kubevents.category"]
        assert float(shown[incident_id]["value"][1]) == max(
            r["attributes"]["kubevents.incident.events"] for r in own
        )
        assert severity[incident_id] == str(max(r["severity_number"] for r in own))
        mappings = panel["fieldConfig"]["overrides"][-1]["properties"][0]["value"][0]["options"]
        assert mappings[severity[incident_id]]["text"] == a["kubevents.severity"]


def test_explorer_counts_match_the_records(demo_in_loki: tuple[Loki, list[dict[str, Any]]]) -> None:
    loki, records = demo_in_loki
    start, end = _window(records)
    values = {**_defaults(records), "incident": ".*"}
    targets = {(uid, title): t for uid, title, t in _loki_targets()}
    events = [r for r in records if r["event_name"] == "k8s.event"]

    def scalar(title: str) -> float:
        data = _run(loki, targets[("kubevents-explorer", title)], values, start, end)
        [row] = data["result"]
        return float(row["value"][1])

    assert scalar("Matching Event records") == len(events)
    assert scalar("Matching occurrences") == sum(
        r["attributes"]["kubevents.occurrences"] for r in events
    )


def test_the_replayed_cluster_name_is_the_cluster_variable(
    demo_in_loki: tuple[Loki, list[dict[str, Any]]],
) -> None:
    loki, records = demo_in_loki
    start, end = _window(records)
    targets = {(uid, title): t for uid, title, t in _loki_targets()}
    target = targets[("kubevents-explorer", "Matching Events")]
    values = {**_defaults(records), "incident": ".*", "cluster": "another"}
    data = _run(loki, target, values, start, end)
    assert data["result"] == []
