"""The report's aggregation from records: merged ids, root causes, counts, input detection.

Records here are kubevents' own output shape (docs/attributes.md), the
Event texts in them are placeholders the code never interprets; real Event
messages come in through the demo recording (tests/e2e/test_report_*.py).
"""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kubevents.enrich.pattern_rules import load_pattern_rules
from kubevents.report.model import UnionFind, build, parse_time
from kubevents.report.page import PageOptions, explore_url, render
from kubevents.report.reading import is_records, parse_records
from kubevents.source.replaying import Problem

ROOT = Path(__file__).resolve().parents[3]
FORMATS = ROOT / "tests" / "data" / "formats"
T0 = "2026-11-20T10:00:00.000000000Z"


def ts(seconds: int) -> str:
    return f"2026-11-20T10:{seconds // 60:02d}:{seconds % 60:02d}.000000000Z"


def event(uid: str, second: int, incident: str = "", **attrs: Any) -> dict[str, Any]:
    a: dict[str, Any] = {
        "k8s.event.reason": attrs.pop("reason", "BackOff"),
        "k8s.event.uid": uid,
        "k8s.event.count": attrs.pop("count", 1),
        "kubevents.category": "Lifecycle",
        "kubevents.severity": attrs.pop("severity", "error"),
        "kubevents.occurrences": attrs.pop("occurrences", 1),
        "kubevents.object": attrs.pop("object", f"shop/Pod/{uid}"),
        "kubevents.rule": "some-rule",
    }
    if incident:
        a["kubevents.incident.id"] = incident
    a.update(attrs)
    return {
        "timestamp": ts(second),
        "event_name": "k8s.event",
        "severity_text": "Warning",
        "body": f"message of {uid}",
        "resource": {"service.name": "kubevents", "k8s.namespace.name": "shop"},
        "attributes": a,
    }


def incident(
    iid: str, second: int, state: str, *, root: str, events: int, first: int, **attrs: Any
) -> dict[str, Any]:
    a: dict[str, Any] = {
        "kubevents.incident.id": iid,
        "kubevents.incident.state": state,
        "kubevents.incident.root_cause.reason": "BackOff",
        "kubevents.incident.root_cause.object": f"shop/Pod/{root}",
        "kubevents.incident.root_cause.uid": root,
        "kubevents.incident.events": events,
        "kubevents.incident.occurrences": events,
        "kubevents.incident.first_seen": ts(first),
        "kubevents.incident.last_seen": ts(second),
        "kubevents.category": "Lifecycle",
        "kubevents.severity": "error",
    }
    a.update(attrs)
    return {
        "timestamp": ts(second),
        "event_name": "kubevents.incident",
        "body": f"incident {iid}",
        "resource": {},
        "attributes": a,
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (T0, 1_795_168_800_000_000_000),
        ("2026-11-20T10:00:01.123456789Z", 1_795_168_801_123_456_789),
        ("2026-11-20T10:00:01.5Z", 1_795_168_801_500_000_000),
        ("2026-11-20T10:00:01Z", 1_795_168_801_000_000_000),
    ],
)
def test_parse_time(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("merges", "expected"),
    [
        ([], {"a": "a", "b": "b"}),
        ([("a", "b")], {"a": "b", "b": "b"}),
        ([("a", "b"), ("b", "c")], {"a": "c", "b": "c", "c": "c"}),
        ([("b", "c"), ("a", "b")], {"a": "c", "b": "c", "c": "c"}),
        # a record that would close a cycle is ignored: c stays the survivor
        ([("a", "b"), ("b", "c"), ("c", "a")], {"a": "c", "b": "c", "c": "c"}),
    ],
)
def test_union_find(merges: list[tuple[str, str]], expected: dict[str, str]) -> None:
    uf = UnionFind()
    for merged, survivor in merges:
        uf.merge(merged, survivor)
    assert {k: uf.find(k) for k in expected} == expected


def test_merged_incident_events_land_in_the_survivor() -> None:
    records = [
        event("e1", 0, "inc-a", **{"kubevents.incident.root_cause": True}),
        incident("inc-a", 0, "started", root="e1", events=1, first=0),
        event("e2", 10, "inc-b", **{"kubevents.incident.root_cause": True}),
        incident("inc-b", 10, "started", root="e2", events=1, first=10),
        incident(
            "inc-b",
            20,
            "merged",
            root="e2",
            events=1,
            first=10,
            **{"kubevents.incident.merged_into": "inc-a"},
        ),
        event("e3", 30, "inc-b"),  # written with the merged id
        event(
            "e4",
            40,
            "inc-a",
            **{"kubevents.incident.rule": "oom-crashloop", "kubevents.incident.scope": "node"},
        ),
    ]
    data = build(records)
    assert [i.id for i in data.incidents] == ["inc-a"]
    (survivor,) = data.incidents
    assert survivor.merged == ["inc-b"]
    assert [e.uid for e in survivor.members] == ["e1", "e2", "e3", "e4"]
    assert survivor.events == 4
    assert (survivor.members[-1].join_rule, survivor.members[-1].join_scope) == (
        "oom-crashloop",
        "node",
    )


def test_latent_root_is_counted_and_found_by_uid_and_time() -> None:
    # The root's record was written before its incident existed: no incident id on it.
    records = [
        event("lone", 0, occurrences=2, count=2),
        event("other", 5),
        event("second", 30, "inc-x"),
        incident("inc-x", 30, "started", root="lone", events=2, first=0),
        event("third", 40, "inc-x"),  # no ongoing record: the incident did not grow
    ]
    (found,) = build(records).incidents
    assert found.root_row is not None and found.root_row.uid == "lone"
    assert found.events == 3  # second, third and the root
    assert found.occurrences == 4
    assert found.state == "open"
    assert [e.uid for e in found.rows()] == ["lone", "second", "third"]


def test_resolved_record_is_final() -> None:
    records = [
        event("r", 0, "inc-r", **{"kubevents.incident.root_cause": True}),
        incident("inc-r", 0, "started", root="r", events=1, first=0),
        incident("inc-r", 900, "resolved", root="r", events=7, first=0),
    ]
    (found,) = build(records).incidents
    assert (found.state, found.events) == ("resolved", 7)  # records of 6 were cut from the input


def test_event_with_an_incident_but_no_incident_record() -> None:
    (found,) = build([event("e", 0, "inc-lost"), event("f", 9, "inc-lost")]).incidents
    assert (found.id, found.events, found.root_reason) == ("inc-lost", 2, "")


DUMPS = sorted(p for p in FORMATS.iterdir() if p.suffix not in (".md", ".py"))


@pytest.mark.parametrize("path", DUMPS, ids=lambda p: p.name)
def test_event_dumps_are_not_records(path: Path) -> None:
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        import gzip

        data = gzip.decompress(data)
    assert not is_records(data)


def test_records_are_detected_and_bad_lines_reported() -> None:
    lines = [json.dumps(event("e", 0)), "{not json", "[1, 2]", json.dumps(event("f", 1))]
    data = "\n".join(lines).encode()
    problems: list[Problem] = []
    assert is_records(data)
    records = list(parse_records(io.BytesIO(data), "in.jsonl", problems.append))
    assert [r["attributes"]["k8s.event.uid"] for r in records] == ["e", "f"]
    assert [p.where for p in problems] == ["in.jsonl:2", "in.jsonl:3"]


def test_explore_url_queries_the_incident_and_its_merged_ids() -> None:
    url = explore_url(
        "https://grafana.example/",
        ["inc-a", "inc-b"],
        parse_time(ts(0)),
        parse_time(ts(120)),
        cluster="prod",
    )
    parts = urlsplit(url)
    assert parts.path == "/explore"
    pane = json.loads(parse_qs(parts.query)["panes"][0])["kv"]
    query = pane["queries"][0]
    assert query["expr"] == (
        '{service_name="kubevents", k8s_cluster_name="prod"} | kubevents_incident_id=~"inc-a|inc-b"'
    )
    assert query["datasource"] == {"type": "loki", "uid": "loki"}
    assert int(pane["range"]["from"]) == parse_time(ts(0)) // 1_000_000 - 60_000
    assert int(pane["range"]["to"]) == parse_time(ts(120)) // 1_000_000 + 60_000


def test_page_loads_nothing_and_escapes_what_it_shows() -> None:
    hostile = '<script>alert(1)</script><img src="https://x.example/p.png">'
    records = [
        event("e1", 0, "inc-a", **{"kubevents.incident.root_cause": True, "kubevents.rule": ""}),
        incident("inc-a", 0, "started", root="e1", events=1, first=0),
    ]
    records[0]["body"] = hostile
    records[0]["attributes"]["k8s.event.reporting_controller"] = hostile
    html = render(build(records), load_pattern_rules(), PageOptions())
    assert hostile not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    tags = Tags()
    tags.feed(html)
    assert tags.names.count("script") == 1  # the print helper only
    assert not {"img", "link", "iframe", "object", "embed", "audio", "video"} & set(tags.names)
    assert tags.fetching == []
    assert all(href.startswith("#") for href in tags.hrefs)
    style = html.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "url(" not in style and "@import" not in style


class Tags(HTMLParser):
    """Tag names, links and attributes that would load something."""

    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []
        self.hrefs: list[str] = []
        self.fetching: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.names.append(tag)
        for name, value in attrs:
            if name == "href":
                self.hrefs.append(value or "")
            elif name in ("src", "srcset", "data", "poster", "action", "xlink:href"):
                self.fetching.append((name, value or ""))


def test_the_page_does_not_depend_on_the_order_records_come_in() -> None:
    """Records are aggregated as they come, ties ranked by event time then input order:
    the demo's records with their time groups in reverse give the same page (records
    of the same time keep their order, which breaks ties among them)."""
    golden = ROOT / "tests" / "data" / "demo" / "golden.jsonl"
    records = [json.loads(line) for line in golden.read_text().splitlines()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["timestamp"], []).append(record)
    reordered = [r for stamp in reversed(list(groups)) for r in groups[stamp]]
    assert reordered != records
    rules = load_pattern_rules()
    page = render(build(records), rules, PageOptions())
    assert render(build(reordered), rules, PageOptions()) == page
    assert render(build(iter(reordered)), rules, PageOptions()) == page  # held once
