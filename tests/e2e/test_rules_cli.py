"""`kubevents rules test|check`: the promtool-like workflow for rule files."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevents.cli import main

ROOT = Path(__file__).resolve().parents[2]

RULES = """version: 1
kind: classification
rules:
  - id: image-backoff
    description: Back-off pulling an image.
    match: {reason: BackOff, message: 'pulling image'}
    category: Image
    severity: error
"""


def make(tmp_path: Path, tests: str) -> Path:
    (tmp_path / "classification.yaml").write_text(RULES)
    path = tmp_path / "tests.yaml"
    path.write_text(
        "version: 1\nkind: classification_test\nrule_files: [classification.yaml]\ntests:\n" + tests
    )
    return path


PASSING = """  - name: image back-off
    event: {reason: BackOff, message: 'Back-off pulling image "x"'}
    expect: {category: Image, severity: error, rule: image-backoff}
"""
FAILING = """  - name: wrong expectation
    event: {reason: BackOff, message: 'Back-off restarting failed container'}
    expect: {category: Image}
"""


def test_passing_tests(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "test", str(make(tmp_path, PASSING))]) == 0
    assert capsys.readouterr().out.strip() == "1 passed, 0 failed"


def test_failing_test_names_file_line_case_and_difference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(tmp_path, PASSING + FAILING)
    assert main(["rules", "test", str(path)]) == 1
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [
        f"FAILED {path}:8: wrong expectation: category: expected 'Image', got 'Other'",
        "1 passed, 1 failed",
    ]


def test_bad_test_file_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = make(
        tmp_path, "  - name: x\n    event: {reson: BackOff}\n    expect: {category: Image}\n"
    )
    assert main(["rules", "test", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"kubevents: error: {path}:5: event: unknown key 'reson' (did you mean 'reason'?)"


def test_check_reports_the_first_bad_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "classification.yaml").write_text(
        RULES.replace("category: Image", "category: Images")
    )
    assert main(["rules", "check", str(tmp_path)]) == 2
    assert "unknown category 'Images' (did you mean 'Image'?)" in capsys.readouterr().err


def test_shipped_rules_check_and_their_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "check"]) == 0
    tests = sorted(str(p) for p in (ROOT / "rules" / "tests").glob("*.yaml"))
    assert tests
    assert main(["rules", "test", *tests]) == 0
    assert capsys.readouterr().out.strip().endswith(" failed")
