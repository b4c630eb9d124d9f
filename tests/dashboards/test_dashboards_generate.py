"""The committed dashboards are exactly what grafana/generate.py produces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from dashboard_queries import DASHBOARDS_DIR, EXPECTED_UIDS, ROOT

from grafana import generate


def test_committed_json_equals_fresh_generation() -> None:
    fresh = generate.generate()
    assert sorted(fresh) == sorted(EXPECTED_UIDS)
    committed = {p.name: p.read_text() for p in DASHBOARDS_DIR.glob("*.json")}
    assert sorted(committed) == sorted(fresh), "extra or missing files in grafana/dashboards"
    stale = [name for name, text in fresh.items() if committed[name] != text]
    assert not stale, f"{stale} differ from a fresh generation: run python -m grafana.generate"


def test_generation_is_deterministic() -> None:
    assert generate.generate() == generate.generate()


def test_check_mode_passes_on_the_committed_files() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "grafana.generate", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_mode_fails_on_an_edited_or_extra_file(tmp_path: Path) -> None:
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert generate.main(["--check", "--out", str(tmp_path)]) == 0
    edited = tmp_path / "kubevents-health.json"
    data = json.loads(edited.read_text())
    data["title"] = "edited by hand"
    edited.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1
    assert generate.main(["--out", str(tmp_path)]) == 0
    (tmp_path / "stray.json").write_text("{}\n")
    assert generate.main(["--check", "--out", str(tmp_path)]) == 1


def test_files_are_valid_json_with_a_final_newline() -> None:
    for path in DASHBOARDS_DIR.glob("*.json"):
        text = path.read_text()
        assert text.endswith("}\n"), path
        json.loads(text)
