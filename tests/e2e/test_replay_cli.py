"""The real CLI, in-process: replay formats, the jsonl contract, errors and exit codes."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from kubevents.cli import main

ROOT = Path(__file__).resolve().parents[2]
FORMATS = ROOT / "tests" / "data" / "formats"
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"

RECORD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": [
        "timestamp",
        "observed_timestamp",
        "severity_number",
        "severity_text",
        "event_name",
        "body",
        "resource",
        "attributes",
    ],
    "properties": {
        "timestamp": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$"},
        "observed_timestamp": {
            "type": "string",
            "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$",
        },
        "severity_number": {"enum": [5, 9, 13, 17, 21]},
        "severity_text": {"type": "string"},
        "event_name": {"const": "k8s.event"},
        "body": {"type": "string"},
        "resource": {
            "type": "object",
            "required": ["service.name", "service.version", "service.instance.id"],
            "properties": {"service.name": {"const": "kubevents"}},
            "additionalProperties": {"type": "string"},
        },
        "attributes": {
            "type": "object",
            "required": [
                "k8s.event.reason",
                "k8s.event.count",
                "kubevents.category",
                "kubevents.severity",
                "kubevents.occurrences",
            ],
            "properties": {
                "k8s.event.count": {"type": "integer", "minimum": 1},
                "kubevents.occurrences": {"type": "integer", "minimum": 0},
                "kubevents.category": {
                    "enum": [
                        "Scheduling",
                        "Image",
                        "Lifecycle",
                        "Health",
                        "Resources",
                        "Storage",
                        "Network",
                        "Node",
                        "Autoscaling",
                        "Workload",
                        "Config",
                        "Policy",
                        "Other",
                    ]
                },
                "kubevents.severity": {"enum": ["critical", "error", "warning", "info", "debug"]},
            },
            "additionalProperties": {"type": ["string", "integer", "boolean"]},
        },
    },
}
SEVERITY_NUMBER = {"critical": 21, "error": 17, "warning": 13, "info": 9, "debug": 5}


def replay_jsonl(tmp_path: Path, *inputs: str, extra: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    out = tmp_path / f"out-{len(list(tmp_path.glob('out-*.jsonl')))}.jsonl"  # the sink appends
    assert main(["replay", *inputs, "--sink", f"jsonl:{out}", "--no-summary", *extra]) == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def events_only(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["event_name"] == "k8s.event"]


PATTERN_SCHEMA: dict[str, Any] = {
    **RECORD_SCHEMA,
    "properties": {
        **RECORD_SCHEMA["properties"],
        "event_name": {"const": "kubevents.pattern"},
        "severity_text": {"enum": ["critical", "error", "warning", "info"]},
        "attributes": {
            "type": "object",
            "required": ["kubevents.pattern.id", "kubevents.pattern.state", "kubevents.pattern.key",
                         "kubevents.pattern.count", "kubevents.pattern.rate_per_minute",
                         "kubevents.pattern.first_seen", "kubevents.pattern.last_seen"],
            "properties": {
                "kubevents.pattern.id": {"type": "string", "pattern": "^pat-[0-9a-f]{12}$"},
                "kubevents.pattern.state": {"enum": ["started", "ongoing", "resolved", "anomalous"]},
                "kubevents.pattern.count": {"type": "integer", "minimum": 1},
                "kubevents.pattern.rate_per_minute": {"type": "number", "minimum": 0},
            },
            "additionalProperties": {"type": ["string", "integer", "number", "boolean"]},
        },
    },
}


def test_demo_patterns_match_their_schema_and_find_the_storm_and_the_probe_loop(
    jsonl_demo_records: list[dict[str, Any]],
) -> None:
    patterns = [r for r in jsonl_demo_records if r["event_name"] == "kubevents.pattern"]
    for record in patterns:
        jsonschema.validate(record, PATTERN_SCHEMA)
    started = {r["attributes"]["kubevents.pattern.key"] for r in patterns
               if r["attributes"]["kubevents.pattern.state"] == "started"}
    assert any("reason=Failed" in key and "namespace=shop" in key for key in started), started  # image pull storm
    assert any("reason=BackOff" in key and "namespace=shop" in key for key in started), started
    assert any("reason=Unhealthy" in key for key in started), started  # the probe-failure loop
    ids = {r["attributes"]["kubevents.pattern.id"] for r in patterns}
    tagged = {r["attributes"].get("kubevents.pattern.id") for r in events_only(jsonl_demo_records)} - {None}
    assert tagged and tagged <= ids  # Events of active patterns carry the pattern id


def test_demo_output_matches_the_schema(jsonl_demo_records: list[dict[str, Any]]) -> None:
    assert len(events_only(jsonl_demo_records)) > 100
    for record in events_only(jsonl_demo_records):
        jsonschema.validate(record, RECORD_SCHEMA)
        attrs = record["attributes"]
        assert record["severity_number"] == SEVERITY_NUMBER[attrs["kubevents.severity"]]
        assert record["resource"]["k8s.cluster.name"] == "demo"
        assert "k8s.pod.name" not in record["resource"]


def test_demo_output_is_in_occurrence_time_order(jsonl_demo_records: list[dict[str, Any]]) -> None:
    stamps = [r["timestamp"] for r in events_only(jsonl_demo_records)]
    assert stamps == sorted(stamps)


def test_demo_occurrences_add_up_to_the_final_counts(
    jsonl_demo_records: list[dict[str, Any]],
) -> None:
    """Per Event, the emitted occurrences sum to its highest count: nothing lost, nothing twice."""
    final: dict[str, int] = {}
    for line in DEMO.read_bytes().splitlines():
        watch = orjson.loads(line)
        obj = watch["object"]
        count = (
            (obj.get("series") or {}).get("count")
            or obj.get("count")
            or obj.get("deprecatedCount")
            or 1
        )
        final[obj["metadata"]["uid"]] = max(final.get(obj["metadata"]["uid"], 0), count)
    emitted: dict[str, int] = {}
    for record in events_only(jsonl_demo_records):
        uid = record["attributes"]["k8s.event.uid"]
        emitted[uid] = emitted.get(uid, 0) + record["attributes"]["kubevents.occurrences"]
    assert emitted == final


def test_replay_twice_gives_identical_output_but_observed_time(tmp_path: Path) -> None:
    def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "observed_timestamp"} for r in records]

    first = replay_jsonl(tmp_path, str(DEMO))
    second = replay_jsonl(tmp_path, str(DEMO))
    assert strip(first) == strip(second)


ALL_FORMATS = [
    "core-list.json",
    "events-v1-list.json",
    "core-list.yaml",
    "multi-doc.yaml",
    "watch-pretty.json",
    "watch.jsonl",
    "bare.jsonl",
    "watch.jsonl.gz",
]


def _essence(all_records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    records = events_only(all_records)
    keys = (
        "k8s.event.uid",
        "k8s.event.reason",
        "k8s.event.count",
        "k8s.object.kind",
        "k8s.object.name",
        "kubevents.category",
        "kubevents.severity",
        "kubevents.occurrences",
    )
    return sorted(
        (
            r["timestamp"],
            r["body"],
            r["severity_text"],
            r["resource"].get("k8s.namespace.name"),
            *(r["attributes"].get(k) for k in keys),
        )
        for r in records
    )


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_every_input_format_yields_the_same_records(tmp_path: Path, name: str) -> None:
    reference = _essence(replay_jsonl(tmp_path, str(FORMATS / "watch.jsonl")))
    assert len(reference) >= 5
    assert _essence(replay_jsonl(tmp_path, str(FORMATS / name))) == reference


def test_stdin_and_gzip_on_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = gzip.compress((FORMATS / "watch.jsonl").read_bytes())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert _essence(replay_jsonl(tmp_path, "-")) == _essence(
        replay_jsonl(tmp_path, str(FORMATS / "watch.jsonl"))
    )


def test_malformed_input_is_reported_with_file_and_line_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING"):
        records = events_only(replay_jsonl(tmp_path, str(FORMATS / "malformed.jsonl")))
    problems = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped ")]
    assert len(problems) >= 4
    assert all(f"{FORMATS / 'malformed.jsonl'}:" in line for line in problems)
    assert all("\n" not in line for line in problems)
    # The two intact lines and the wrong-typed Event (which still flows with what it has).
    assert sorted(r["attributes"]["k8s.event.uid"] for r in records)[-1] == "bad-types"
    assert len(records) == 3


def test_nothing_readable_exits_1_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("this is not json\n")
    assert main(["replay", str(bad), "--sink", "jsonl:/dev/null"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"kubevents: error: nothing could be read from {bad}"


def test_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(tmp_path / "nope.json")]) == 1
    assert "cannot read: No such file or directory" in capsys.readouterr().err


def test_bad_config_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("replay: {sumary: true}\n")
    assert main(["replay", "--config", str(cfg), str(DEMO)]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err
        == f"kubevents: error: {cfg}: at replay -> sumary: unknown key (did you mean 'summary'?)"
    )


def test_unknown_sink_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(DEMO), "--sink", "consol"]) == 2
    assert "unknown sink 'consol' (did you mean 'console'?)" in capsys.readouterr().err


def test_huge_and_odd_messages_survive_intact(tmp_path: Path) -> None:
    message = "x" * 65536 + " \x00\x1b[31m\u202e ünïcødé 🚀 \n\t"
    event = {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {"uid": "u1", "name": "n", "namespace": "ns"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ns"},
        "reason": "R",
        "type": "Warning",
        "message": message,
        "lastTimestamp": "2026-11-20T10:00:00Z",
    }
    src = tmp_path / "odd.jsonl"
    src.write_bytes(orjson.dumps(event) + b"\n")
    records = events_only(replay_jsonl(tmp_path, str(src)))  # (plus its one-event incident)
    assert [r["body"] for r in records] == [message]


def test_console_summary_lists_categories_and_top_reasons(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["replay", str(DEMO), "--sink", "console", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "kubevents summary" in out
    assert "By category:" in out and "Top reasons:" in out and "Top objects:" in out
    top = out.split("Top reasons:")[1].split("Top objects:")[0].strip().splitlines()
    assert len(top) == 3


def test_jsonl_on_stdout_sends_the_summary_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(FORMATS / "watch.jsonl"), "--sink", "jsonl"]) == 0
    captured = capsys.readouterr()
    for line in captured.out.splitlines():
        orjson.loads(line)
    assert "kubevents summary" in captured.err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith("kubevents ")


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("run", "replay", "rules", "check-config", "version"):
        assert command in out


def test_check_config_prints_the_effective_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("cluster_name: from-file\nreplay: {top: 3}\n")
    monkeypatch.setenv("KUBEVENTS_REPLAY_TOP", "5")
    assert main(["check-config", "--config", str(cfg), "--cluster-name", "from-flag"]) == 0
    import yaml

    effective = yaml.safe_load(capsys.readouterr().out)
    assert effective["cluster_name"] == "from-flag"
    assert effective["replay"]["top"] == 5
    assert effective["sinks"] == ["console"]


def test_shift_to_now_moves_the_newest_event_to_now_and_keeps_the_spacing(
    tmp_path: Path,
) -> None:
    from kubevents import app
    from kubevents.clock import FakeClock
    from kubevents.settings import load_settings

    now_ns = 1_900_000_000 * 1_000_000_000
    outputs = {}
    for shift in (False, True):
        out = tmp_path / f"shift-{shift}.jsonl"
        settings = load_settings(
            None,
            env={},
            overrides={"sinks": (f"jsonl:{out}",), "replay.summary": False,
                       "replay.shift_to_now": shift},
        )
        assert app.replay(settings, [str(FORMATS / "watch.jsonl")], clock=FakeClock(now_ns)) == 0
        outputs[shift] = [
            r for r in (orjson.loads(x) for x in out.read_bytes().splitlines())
            if r["event_name"] == "k8s.event"
        ]
    plain, shifted = outputs[False], outputs[True]
    assert len(plain) == len(shifted) > 1
    newest = max(ns_of(r["timestamp"]) for r in plain)
    offset = now_ns - newest
    assert max(ns_of(r["timestamp"]) for r in shifted) == now_ns
    assert [ns_of(r["timestamp"]) - ns_of(p["timestamp"]) for r, p in zip(shifted, plain,
            strict=True)] == [offset] * len(plain)


def ns_of(rfc3339: str) -> int:
    import calendar
    import time

    base, frac = rfc3339.removesuffix("Z").split(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) * 1_000_000_000 + int(frac)


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from kubevents import __version__

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"kubevents {__version__}\n"
