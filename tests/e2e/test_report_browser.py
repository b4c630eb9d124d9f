"""The report page in a real headless Chromium: what it shows equals the replay summary.

Chromium (Debian's ``chromium`` package, installed by ``make test``) is driven
over the DevTools protocol (tests/browser/cdp.py): every network request,
console error and uncaught exception of the page is an event the test sees.
The numbers are read from the rendered page's text, then compared with the
text summary ``kubevents replay`` prints for the same input.
"""

from __future__ import annotations

import re
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubevents.cli import main
from tests.browser.cdp import Chromium, chromium_path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
SCENARIOS = sorted((ROOT / "tests" / "data" / "scenarios").glob("*.jsonl"))
DOCS_SHOT = ROOT / "docs" / "report-demo.png"


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    if chromium_path() is None:
        pytest.fail("chromium is not installed: `make test` installs it (Debian package chromium)")
    with Chromium() as chromium:
        yield chromium


@dataclass(frozen=True)
class Shown:
    """An incident as a summary or the page states it."""

    id: str
    state: str
    root_reason: str
    root_object: str
    events: int
    occurrences: int


INCIDENT = re.compile(
    r"^  (inc-[0-9a-f]{12})  \S+ \S+, (resolved|open): root cause (.+) (\S+)\n"
    r"    (\d+) events? \((\d+) occurrences?\)",
    re.M,
)


def block(text: str, title: str) -> list[str]:
    """The indented lines under ``title:`` in the summary."""
    lines = text.split(f"\n{title}:", 1)[1].split("\n")[1:]
    out = []
    for line in lines:
        if not line.startswith("  "):
            break
        out.append(line.strip())
    return out


def ranked(lines: list[str]) -> dict[str, int]:
    """``  76  Warning BackOff`` lines as {name: count}."""
    return {name: int(n) for n, name in (line.split(None, 1) for line in lines)}


def replay_summary(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[dict[str, Any], list[Shown]]:
    capsys.readouterr()
    assert main(["replay", str(path), "--sink", "jsonl:/dev/null", "--top", "100000"]) == 0
    text = capsys.readouterr().out
    totals = re.search(r"^(\d+) occurrences in (\d+) records", text, re.M)
    assert totals is not None, text
    count = re.search(r"^Incidents: (?:none|(\d+) \()", text, re.M)
    assert count is not None, text
    incidents = [
        Shown(m[1], m[2], m[3], m[4], int(m[5]), int(m[6])) for m in INCIDENT.finditer(text)
    ]
    patterns = [line for line in block(text, "Patterns") if line != "none"]
    anomalies = [line for line in block(text, "Anomalies") if line != "none"]
    return (
        {
            "occurrences": int(totals[1]),
            "records": int(totals[2]),
            "incidents": int(count[1] or 0),
            "reasons": ranked(block(text, "Top reasons")),
            "objects": ranked(block(text, "Top objects")),
            "pattern_counts": sorted((int(line.split()[0]) for line in patterns), reverse=True),
            "anomalies": len(anomalies),
        },
        incidents,
    )


PAGE_FACTS = """JSON.stringify({
  occurrences: document.getElementById('total-occurrences').textContent,
  records: document.getElementById('total-records').textContent,
  incidents: document.getElementById('incident-count').textContent,
  section: document.getElementById('incidents').dataset.count,
  lanes: document.querySelectorAll('svg.timeline g.lane').length,
  patterns: document.getElementById('pattern-count')?.textContent || '0',
  anomalies: document.getElementById('anomaly-count')?.textContent || '0',
  patternCounts: [...document.querySelectorAll('#pattern-table tbody tr')].map(
    r => r.cells[6].textContent),
  reasons: [...document.querySelectorAll('#noisy-reasons tbody tr')].map(
    r => [r.cells[0].textContent, r.cells[1].textContent]),
  objects: [...document.querySelectorAll('#noisy-objects tbody tr')].map(
    r => [r.cells[0].textContent, r.cells[1].textContent]),
  details: [...document.querySelectorAll('details.incident')].map(d => ({
    id: d.querySelector('.incident-id').textContent,
    resolved: d.querySelector('summary').textContent.includes(', resolved:'),
    reason: d.querySelector('.root-reason').textContent,
    object: d.querySelector('.root-object').textContent,
    events: d.querySelector('.events').textContent,
    occurrences: d.querySelector('.occurrences').textContent,
  })),
})"""


def _int(text: str) -> int:
    return int(text.replace(",", ""))


def page_facts(browser: Chromium, page: Path) -> tuple[Any, dict[str, Any]]:
    import json

    session = browser.new_page()
    load = browser.load(page, session)
    facts = json.loads(browser.evaluate(PAGE_FACTS, session))
    browser.close_page(session)
    return load, facts


@pytest.mark.parametrize("path", [DEMO, *SCENARIOS], ids=lambda p: p.parent.name + "/" + p.name)
def test_page_shows_what_the_summary_says(
    path: Path, browser: Chromium, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    totals, incidents = replay_summary(path, capsys)
    page = tmp_path / "report.html"
    assert main(["report", str(path), "-o", str(page)]) == 0
    load, facts = page_facts(browser, page)

    assert load.errors == []
    assert load.requests == []
    assert _int(facts["occurrences"]) == totals["occurrences"]
    assert _int(facts["records"]) == totals["records"]
    assert _int(facts["incidents"]) == _int(facts["section"]) == totals["incidents"]
    assert facts["lanes"] == totals["incidents"]
    # where it hurt: each listed reason and object has the summary's count, largest first
    for key in ("reasons", "objects"):
        listed = {name: _int(n) for name, n in facts[key]}
        assert listed and all(totals[key][name] == n for name, n in listed.items()), key
        assert (
            sorted(listed.values(), reverse=True)
            == sorted(totals[key].values(), reverse=True)[: len(listed)]
        )
    assert _int(facts["patterns"]) == len(totals["pattern_counts"])
    assert [_int(n) for n in facts["patternCounts"]] == totals["pattern_counts"][:50]
    assert _int(facts["anomalies"]) == totals["anomalies"]
    shown = [
        Shown(
            d["id"],
            "resolved" if d["resolved"] else "open",
            d["reason"],
            d["object"],
            _int(d["events"]),
            _int(d["occurrences"]),
        )
        for d in facts["details"]
    ]
    assert sorted(shown, key=lambda s: s.id) == sorted(incidents, key=lambda s: s.id)


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    page = tmp_path_factory.mktemp("report") / "demo.html"
    assert main(["report", str(DEMO), "-o", str(page), "--grafana-url", "http://grafana:3000"]) == 0
    return page


STYLE = """JSON.stringify({
  background: getComputedStyle(document.body).backgroundColor,
  nav: getComputedStyle(document.querySelector('nav')).display,
})"""


@pytest.mark.parametrize(
    ("media", "features", "background", "nav"),
    [
        ("", "light", "rgb(255, 255, 255)", "block"),
        ("", "dark", "rgb(21, 23, 26)", "block"),
        ("print", "dark", "rgb(255, 255, 255)", "none"),
    ],
)
def test_dark_theme_and_print(
    media: str, features: str, background: str, nav: str, browser: Chromium, demo_page: Path
) -> None:
    import json

    session = browser.new_page()
    browser.send(
        "Emulation.setEmulatedMedia",
        {"media": media, "features": [{"name": "prefers-color-scheme", "value": features}]},
        session=session,
    )
    load = browser.load(demo_page, session, settle_s=0.1)
    assert load.errors == [] and load.requests == []
    style = json.loads(browser.evaluate(STYLE, session))
    browser.close_page(session)
    assert style == {"background": background, "nav": nav}


def test_text_views_read_without_javascript(browser: Chromium, demo_page: Path) -> None:
    session = browser.new_page()
    browser.send("Emulation.setScriptExecutionDisabled", {"value": True}, session=session)
    load = browser.load(demo_page, session, settle_s=0.1)
    assert load.errors == [] and load.requests == []
    browser.send("Emulation.setScriptExecutionDisabled", {"value": False}, session=session)
    text = browser.evaluate("document.body.innerText", session)
    browser.close_page(session)
    for heading in ("Incident timeline", "Incidents", "Patterns and anomalies", "Where it hurt"):
        assert heading in text
    assert text.count("root cause") >= 5


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_screenshot_of_the_demo_report(demo_page: Path, tmp_path: Path) -> None:
    """``chromium --screenshot`` of the demo report, as a user would take it."""
    binary = chromium_path()
    assert binary is not None
    shot = tmp_path / "report.png"
    subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,1800",
            f"--screenshot={shot}",
            demo_page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert png_size(shot.read_bytes()) == (1280, 1800)


def test_reduced_screenshot_is_committed_and_shown() -> None:
    """docs/report-demo.png (``python -m tests.browser.screenshot``) is in the README."""
    width, _ = png_size(DOCS_SHOT.read_bytes())
    assert width <= 800 and DOCS_SHOT.stat().st_size < 200_000
    assert "docs/report-demo.png" in (ROOT / "README.md").read_text()


def test_printing_opens_every_incident(browser: Chromium, demo_page: Path) -> None:
    session = browser.new_page()
    load = browser.load(demo_page, session, settle_s=0.1)
    assert load.errors == [] and load.requests == []
    count_open = "[...document.querySelectorAll('details.incident')].filter(d => d.open).length"
    assert browser.evaluate(count_open, session) == 0
    pdf = browser.send("Page.printToPDF", {}, session=session)["data"]
    assert pdf.startswith("JVBERi")  # base64 of "%PDF"
    every = "document.querySelectorAll('details.incident').length"
    assert browser.evaluate(count_open, session) == browser.evaluate(every, session) > 0
    browser.close_page(session)
