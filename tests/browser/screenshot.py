"""Regenerate docs/report-demo.png: the demo report's top, at half size, for the README.

Run: .venv/bin/python -m tests.browser.screenshot

Chromium scales the capture itself (``Page.captureScreenshot`` with a clip
scale), so no image library is needed to make the reduced copy.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kubevents.cli import main as kubevents
from tests.browser.cdp import Chromium

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
OUT = ROOT / "docs" / "report-demo.png"
WIDTH, HEIGHT, SCALE = 1280, 1500, 0.5


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "demo.html"
        if kubevents(["report", str(DEMO), "-o", str(page)]) != 0:
            return 1
        with Chromium(width=WIDTH, height=HEIGHT) as browser:
            session = browser.new_page()
            load = browser.load(page, session)
            if load.errors or load.requests:
                print(f"the page misbehaved: {load}", file=sys.stderr)
                return 1
            OUT.write_bytes(browser.screenshot(session, height=HEIGHT, scale=SCALE))
    print(f"{OUT.relative_to(ROOT)}: {OUT.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
