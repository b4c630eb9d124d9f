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


def _readme_block(starts: str) -> str:
    """The README's ```yaml block whose text starts with ``starts``."""
    blocks = (ROOT / "README.md").read_text().split("```yaml\n")[1:]
    chosen = [b.split("```", 1)[0] for b in blocks if b.startswith(starts)]
    assert len(chosen) == 1, f"no single README block starting with {starts!r}"
    return chosen[0]


def test_the_readme_rule_test_example_passes_as_written(tmp_path: Path) -> None:
    rules = tmp_path / "my-rules"
    (rules / "tests").mkdir(parents=True)
    (rules / "classification.yaml").write_text(
        _readme_block("version: 1\nkind: classification\nrules:")
    )
    test = _readme_block("# my-rules/tests/classification_test.yaml")
    (rules / "tests" / "classification_test.yaml").write_text(test)
    assert main(["rules", "check", str(rules)]) == 0
    assert main(["rules", "test", str(rules / "tests" / "classification_test.yaml")]) == 0
    # Without rule_files, the layers: the shipped rules with my-rules over them.
    layered = rules / "tests" / "layered_test.yaml"
    layered.write_text("\n".join(ln for ln in test.splitlines() if "rule_files" not in ln))
    assert main(["rules", "test", "--rules", str(rules), str(layered)]) == 0
