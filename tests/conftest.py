"""Shared fixtures: the repo paths and a replay of the demo recording."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from kubevents.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"


@pytest.fixture(scope="session")
def jsonl_demo_records(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The jsonl records of a replay of the demo recording (real CLI, in-process)."""
    out = tmp_path_factory.mktemp("demo") / "records.jsonl"
    code = main(
        ["replay", str(DEMO), "--sink", f"jsonl:{out}", "--no-summary", "--cluster-name", "demo"]
    )
    assert code == 0
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]
