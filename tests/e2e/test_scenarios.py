"""Recorded scenarios through the real CLI: the root cause is found, its symptoms share its incident.

Every ``<name>.jsonl`` with a ``<name>.expected.yaml`` sidecar under
``tests/data/scenarios/`` and ``tests/data/correlation/`` is replayed
in-process (``kubevents replay --sink jsonl:...``) and the jsonl output is
read back, as a user's Loki would get it:

* exactly one incident has the expected root cause (reason and object);
* every record of every symptom carries that incident's id;
* no record of an unrelated Event carries it;
* the root cause's own record carries it too, with ``root_cause: true``,
  unless the root cause only became one later (a latent cause: then it
  carries no incident id at all).

The demo recording must show its storage and node problems as incidents
with the right root cause, and replaying twice gives the same ids.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from kubevents.cli import main

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
DEMO = DATA / "demo" / "events.jsonl"
SCENARIOS = sorted(
    path
    for folder in ("scenarios", "correlation")
    for path in (DATA / folder).glob("*.jsonl")
    if path.with_name(path.name.removesuffix(".jsonl") + ".expected.yaml").exists()
)
INCIDENT = "kubevents.incident"


def replay(tmp_path: Path, source: Path, *extra: str) -> list[dict[str, Any]]:
    out = tmp_path / f"{source.stem}-{len(list(tmp_path.glob('*.out.jsonl')))}.out.jsonl"
    assert main(["replay", str(source), "--sink", f"jsonl:{out}", "--no-summary", *extra]) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def incidents(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Incident id -> its transition records, in order."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if record["event_name"] == INCIDENT:
            out[record["attributes"]["kubevents.incident.id"]].append(record["attributes"])
    return out


def ids_by_uid(records: list[dict[str, Any]]) -> dict[str, set[str | None]]:
    """Event uid -> the incident ids its records carry (None: a record without one)."""
    out: dict[str, set[str | None]] = defaultdict(set)
    for record in records:
        if record["event_name"] == "k8s.event":
            attrs = record["attributes"]
            out[attrs["k8s.event.uid"]].add(attrs.get("kubevents.incident.id"))
    return out


def expected(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(
        path.with_name(path.name.removesuffix(".jsonl") + ".expected.yaml").read_text()
    )
    assert isinstance(data, dict)
    return data


def test_there_are_at_least_five_scenarios() -> None:
    assert len(SCENARIOS) >= 5, SCENARIOS


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_root_cause_symptoms_and_unrelated_events(tmp_path: Path, path: Path) -> None:
    want = expected(path)
    records = replay(tmp_path, path)
    found = incidents(records)
    root = want["root_cause"]
    matching = [
        incident
        for incident, transitions in found.items()
        if transitions[0]["kubevents.incident.root_cause.reason"] == root["reason"]
        and transitions[0]["kubevents.incident.root_cause.object"] == root["object"]
    ]
    roots = sorted(
        (t[0]["kubevents.incident.root_cause.reason"], t[0]["kubevents.incident.root_cause.object"])
        for t in found.values()
    )
    assert len(matching) == 1, f"no single incident rooted at {root}; incidents: {roots}"
    (incident,) = matching
    by_uid = ids_by_uid(records)
    for uid in want.get("symptoms") or []:
        assert by_uid.get(uid) == {incident}, f"symptom {uid}: {by_uid.get(uid)}"
    for uid in want.get("unrelated") or []:
        assert uid in by_uid, f"unrelated {uid} is not in the recording"
        assert incident not in by_uid[uid], f"unrelated {uid} joined {incident}"
    root_uid = found[incident][-1]["kubevents.incident.root_cause.uid"]  # the latest names it
    assert by_uid[root_uid] in ({incident}, {None})
    flagged = {
        r["attributes"]["k8s.event.uid"]
        for r in records
        if r["event_name"] == "k8s.event"
        and r["attributes"].get("kubevents.incident.root_cause") is True
        and r["attributes"].get("kubevents.incident.id") == incident
    }
    # The root's record says so when it carries the id; an earlier root that a late cause
    # explained said so when it left, and the incident records name the roots in turn.
    roots_named = {t["kubevents.incident.root_cause.uid"] for t in found[incident]}
    assert flagged <= roots_named
    assert (root_uid in flagged) == (by_uid[root_uid] == {incident})
    assert found[incident][0]["kubevents.incident.state"] == "started"


def test_replaying_a_scenario_twice_gives_the_same_ids(tmp_path: Path) -> None:
    for path in SCENARIOS:
        first, second = replay(tmp_path, path), replay(tmp_path, path)
        assert ids_by_uid(first) == ids_by_uid(second)
        assert [t for t in incidents(first).values()] == [t for t in incidents(second).values()]


def test_incident_records_keep_their_contract(tmp_path: Path) -> None:
    for path in SCENARIOS:
        for transitions in incidents(replay(tmp_path, path)).values():
            states = [t["kubevents.incident.state"] for t in transitions]
            assert states[0] == "started"
            assert set(states[1:-1]) <= {"ongoing"}
            assert states.count("resolved") <= 1 and "resolved" not in states[:-1]
            for t in transitions:
                for key in ("workloads", "nodes", "namespaces"):
                    value = t.get(f"kubevents.incident.{key}")
                    assert value is None or value.split(",") == sorted(value.split(","))
                counts = dict(p.split("=") for p in t["kubevents.incident.categories"].split(","))
                assert sum(int(n) for n in counts.values()) == t["kubevents.incident.events"]
                assert t["kubevents.incident.first_seen"] <= t["kubevents.incident.last_seen"]


# -- the demo ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return replay(tmp_path_factory.mktemp("demo"), DEMO)


def _rooted(
    records: list[dict[str, Any]], reasons: set[str], kind: str
) -> list[list[dict[str, Any]]]:
    return [
        transitions
        for transitions in incidents(records).values()
        if transitions[0]["kubevents.incident.root_cause.reason"] in reasons
        and transitions[0]["kubevents.incident.root_cause.object"].split("/")[-2] == kind
    ]


def test_demo_storage_problem_is_one_incident_rooted_at_the_volume_failure(
    demo: list[dict[str, Any]],
) -> None:
    storage = _rooted(demo, {"FailedAttachVolume", "FailedMount"}, "Pod")
    assert storage, "no incident rooted at a volume failure"
    largest = max(storage, key=lambda t: t[-1]["kubevents.incident.events"])
    last = largest[-1]
    assert len(last["kubevents.incident.nodes"].split(",")) == 1  # one node...
    # ...and only the Pod whose volume failed: its neighbours on the node are not its story.
    assert last["kubevents.incident.workloads"] == "payments/StatefulSet/db"
    assert (
        "Lifecycle" in last["kubevents.incident.categories"]
        or "Health" in last["kubevents.incident.categories"]
    )


def test_demo_node_problems_are_incidents_rooted_at_the_node(demo: list[dict[str, Any]]) -> None:
    node = _rooted(
        demo,
        {
            "NodeHasDiskPressure",
            "EvictionThresholdMet",
            "NodeNotReady",
            "NodeHasInsufficientMemory",
            "OOMKilling",
            "SystemOOM",
        },
        "Node",
    )
    assert len(node) >= 1
    reasons = {t[0]["kubevents.incident.root_cause.reason"] for t in node}
    assert reasons & {
        "NodeHasDiskPressure",
        "EvictionThresholdMet",
        "NodeNotReady",
        "NodeHasInsufficientMemory",
    }
    evictions = [
        r
        for r in demo
        if r["event_name"] == "k8s.event" and r["attributes"]["k8s.event.reason"] == "Evicted"
    ]
    node_ids = {t[0]["kubevents.incident.id"] for t in node}
    assert evictions and all(
        r["attributes"].get("kubevents.incident.id") in node_ids for r in evictions
    )


def test_demo_routine_events_stay_out_of_incidents(demo: list[dict[str, Any]]) -> None:
    routine = {"Pulled", "Created", "Started", "Scheduled", "Pulling", "SuccessfulCreate"}
    tagged = [
        r
        for r in demo
        if r["event_name"] == "k8s.event"
        and r["attributes"]["k8s.event.reason"] in routine
        and "kubevents.incident.id" in r["attributes"]
        # The ReplicaSet's replacement of an evicted Pod is the eviction's story, not routine.
        and r["attributes"].get("kubevents.incident.rule") != "eviction-replacement"
    ]
    assert tagged == []
    replacements = [
        r for r in demo
        if r["event_name"] == "k8s.event"
        and r["attributes"].get("kubevents.incident.rule") == "eviction-replacement"
    ]
    assert all(r["attributes"]["k8s.event.reason"] == "SuccessfulCreate" for r in replacements)


def test_demo_event_records_carry_object_workload_and_node(demo: list[dict[str, Any]]) -> None:
    events = [r["attributes"] for r in demo if r["event_name"] == "k8s.event"]
    assert all("kubevents.object" in a for a in events)
    pods = [
        a
        for a in events
        if a["k8s.object.kind"] == "Pod" and a.get("k8s.event.reporting_controller") == "kubelet"
    ]
    assert pods and all(a.get("kubevents.node") == a.get("k8s.node.name") != "" for a in pods)
    assert any(a.get("kubevents.workload", "").endswith("/Deployment/web") for a in events)


def test_the_replay_summary_lists_incidents(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(DEMO), "--sink", "jsonl:/dev/null", "--top", "3"]) == 0
    out = capsys.readouterr().out
    section = out.split("Incidents:")[1].split("Patterns:")[0]
    assert "resolved" in section and "open" in section
    lines = section.strip().splitlines()
    assert "root cause" in lines[1] and "events (" in lines[2] and " over " in lines[2]
    assert len([line for line in lines if "root cause" in line]) == 3  # --top 3
