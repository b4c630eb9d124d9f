"""``kubevents report`` through the real CLI: inputs, records in and out, errors."""

from __future__ import annotations

import datetime
import re
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from kubevents.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
GOLDEN = ROOT / "tests" / "data" / "demo" / "golden.jsonl"
FORMATS = ROOT / "tests" / "data" / "formats"


def incident_ids(html: str) -> list[str]:
    return re.findall(r'<details class="incident" id="(inc-[0-9a-f]{12})"', html)


def replayed_incidents(records: Path) -> set[str]:
    """The incidents a replay's records announce, less those merged into another."""
    ids, merged = set(), set()
    for line in records.read_bytes().splitlines():
        record = orjson.loads(line)
        if record.get("event_name") == "kubevents.incident":
            attrs = record["attributes"]
            ids.add(attrs["kubevents.incident.id"])
            if attrs.get("kubevents.incident.state") == "merged":
                merged.add(attrs["kubevents.incident.id"])
    return ids - merged


def test_report_of_a_dump_equals_report_of_its_records(tmp_path: Path) -> None:
    """The same page from the Events and from the jsonl records their replay wrote."""
    records = tmp_path / "records.jsonl"
    assert main(["replay", str(DEMO), "--sink", f"jsonl:{records}", "--no-summary"]) == 0
    from_dump, from_records = tmp_path / "a.html", tmp_path / "b.html"
    assert main(["report", str(DEMO), "-o", str(from_dump)]) == 0
    assert main(["report", str(records), "-o", str(from_records)]) == 0
    a, b = from_dump.read_text(), from_records.read_text()
    assert incident_ids(a) == incident_ids(b)
    assert set(incident_ids(a)) == replayed_incidents(records)
    strip = re.compile(r"<footer>.*?</footer>", re.S)  # names the input files
    assert strip.sub("", a) == strip.sub("", b)


@pytest.mark.parametrize(
    "name", ["core-list.json", "core-list.yaml", "multi-doc.yaml", "watch.jsonl.gz", "bare.jsonl"]
)
def test_every_replay_format_is_read(name: str, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    assert main(["report", str(FORMATS / name), "-o", str(out)]) == 0
    html = out.read_text()
    assert re.search(r'id="total-records">[1-9]', html), name


def test_bad_record_lines_are_skipped_and_counted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = tmp_path / "records.jsonl"
    assert main(["replay", str(DEMO), "--sink", f"jsonl:{records}", "--no-summary"]) == 0
    lines = records.read_bytes().splitlines()
    broken = tmp_path / "broken.jsonl"
    broken.write_bytes(b"\n".join([lines[0], b'{"cut": ', *lines[1:], b"[]"]) + b"\n")
    out = tmp_path / "r.html"
    caplog.clear()
    assert main(["report", str(broken), "-o", str(out)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert f"{broken}:2: not JSON" in warnings[0]
    assert "2 input problems skipped" in out.read_text()
    records_shown = re.search(r'id="total-records">([\d,]+)<', out.read_text())
    assert records_shown is not None
    events = sum(1 for line in lines if orjson.loads(line)["event_name"] == "k8s.event")
    assert int(records_shown.group(1).replace(",", "")) == events


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "missing.jsonl: cannot read"),
        (["EMPTY"], "could be read from"),
    ],
)
def test_unreadable_input_is_one_line_and_exit_1(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text("")
    argv = [str(empty) if a == "EMPTY" else str(tmp_path / a) for a in args]
    out = tmp_path / "r.html"
    assert main(["report", *argv, "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kubevents: error: ") and message in err[0]
    assert not out.exists()


def test_unwritable_output_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "no" / "such" / "dir" / "r.html"
    assert main(["report", str(DEMO), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"kubevents: error: {out}: cannot write the report")


def test_grafana_link_per_incident(tmp_path: Path) -> None:
    out, records = tmp_path / "r.html", tmp_path / "records.jsonl"
    assert main(["replay", str(DEMO), "--sink", f"jsonl:{records}", "--no-summary"]) == 0
    assert main(["report", str(DEMO), "-o", str(out), "--grafana-url", "http://grafana:3000"]) == 0
    html = out.read_text()
    links = re.findall(r'<a class="grafana" href="([^"]+)"', html)
    assert len(links) == len(incident_ids(html)) == len(replayed_incidents(records))
    assert all(link.startswith("http://grafana:3000/explore?") for link in links)


_TIME = re.compile(rb"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)")
_UID = re.compile(rb"\b[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
_INCIDENT = re.compile(rb"inc-[0-9a-f]{4}([0-9a-f]{8})")


def demo_outages(copies: int, out: Path) -> Path:
    """The demo's records ``copies`` times, two hours apart, each copy's uids and
    incident ids its own: a dump of many outages, as a day's would be."""
    lines = GOLDEN.read_bytes().splitlines()
    with out.open("wb") as f:
        for k in range(copies):
            shift = datetime.timedelta(hours=2 * k)

            def later(m: re.Match[bytes], shift: datetime.timedelta = shift) -> bytes:
                t = datetime.datetime.strptime(m.group(1).decode(), "%Y-%m-%dT%H:%M:%S")
                return (t + shift).strftime("%Y-%m-%dT%H:%M:%S").encode()

            for line in lines:
                line = _TIME.sub(later, line)
                line = _UID.sub(lambda m, k=k: b"%08x" % k + m.group(1), line)
                line = _INCIDENT.sub(lambda m, k=k: b"inc-%04x" % k + m.group(1), line)
                f.write(line + b"\n")
    return out


def report_peak_mib(records: Path, page: Path) -> float:
    """Peak RSS of ``kubevents report`` in a process of its own: its ``VmHWM`` (Linux
    carries ``ru_maxrss`` over ``exec`` from the parent, here the test process)."""
    code = (
        "from kubevents.cli import main; "
        f"assert main(['report', {str(records)!r}, '-o', {str(page)!r}]) == 0; "
        "print(open('/proc/self/status').read())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    found = re.search(r"^VmHWM:\s+(\d+) kB", done.stdout, re.M)
    assert found is not None, done.stdout
    return int(found.group(1)) / 1024


def test_the_report_holds_aggregates_not_every_record(tmp_path: Path) -> None:
    """12x the records cost the report far less than holding them would.

    Measured (pure Python): 5 copies (2,700 Event records) 38 MiB, 60 copies (32,400)
    51 MiB; when the report held every record, 39 and 82 MiB. What grows is the
    incidents' counts (each copy has its own) and the records of the largest ones.
    """
    small = report_peak_mib(demo_outages(5, tmp_path / "small.jsonl"), tmp_path / "s.html")
    large = report_peak_mib(demo_outages(60, tmp_path / "large.jsonl"), tmp_path / "l.html")
    print(f"\nreport peak RSS: {small:.0f} MiB for 5 copies, {large:.0f} MiB for 60")
    assert large - small < 25, (small, large)
    html = (tmp_path / "l.html").read_text()
    assert re.search(r'id="total-records">32,400<', html)
    assert re.search(r'id="incident-count">480<', html)
