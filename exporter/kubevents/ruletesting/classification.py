"""Classification rule tests, in the spirit of ``promtool test rules``.

A test file names the rule files under test (``rule_files``, relative to the
test file; default: the configured rules) and a list of cases: an input
Event written in shorthand, and what the rules must conclude::

    version: 1
    kind: classification_test
    rule_files: [../classification.yaml]
    tests:
      - name: image pull back-off is an Image error
        event: {reason: BackOff, type: Warning, kind: Pod, message: 'Back-off pulling image "x"'}
        expect: {category: Image, severity: error, rule: image-pull-backoff}

Shorthand Event keys: ``reason`` (required), ``type`` (default Warning),
``kind`` (default Pod), ``component``, ``namespace``, ``name``, ``message``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kubevents.enrich.classify import Classifier, compile_classifier
from kubevents.enrich.rules import LineDict, check_keys
from kubevents.errors import RulesError
from kubevents.ruletesting.cases import CaseResult, open_test_file, shorthand_event

EXPECT_KEYS = ("category", "severity", "rule")
CASE_KEYS = ("name", "event", "expect")


def run_test_file(path: Path, default_classifier: Callable[[], Classifier]) -> list[CaseResult]:
    """Run every case in one classification test file.

    Raises:
        RulesError: the test file (or a rule file it names) is invalid.
    """
    classifier, cases = open_test_file(
        path,
        kind="classification_test",
        rule_kind="classification",
        compile_rules=compile_classifier,
        default_rules=default_classifier,
    )
    return [_run_case(case, path, classifier) for case in cases]


def _run_case(case: object, path: Path, classifier: Classifier) -> CaseResult:
    if not isinstance(case, LineDict):
        raise RulesError(f"{path}: each test must be a mapping")
    where = f"{path}:{case.line}"
    check_keys(case, allowed=CASE_KEYS, required=CASE_KEYS, where=where)
    name = str(case["name"])
    expect = case["expect"]
    if not isinstance(expect, dict) or not isinstance(case["event"], dict):
        raise RulesError(f"{where}: 'event' and 'expect' must be mappings")
    check_keys(expect, allowed=EXPECT_KEYS, where=f"{where}: expect")
    got = classifier.classify(shorthand_event(case["event"], where))
    actual = {"category": got.category.value, "severity": got.severity.value, "rule": got.rule_id}
    diffs = [
        f"{key}: expected {expect[key]!r}, got {actual[key]!r}"
        for key in EXPECT_KEYS
        if key in expect and expect[key] != actual[key]
    ]
    return CaseResult(where, name, "; ".join(diffs) if diffs else None)
