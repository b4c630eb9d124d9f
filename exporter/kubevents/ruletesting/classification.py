"""Rule unit tests, in the spirit of ``promtool test rules``.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubevents.enrich.classify import Classifier, compile_classifier
from kubevents.enrich.rules import (
    LineDict,
    check_keys,
    line_of,
    read_rule_file,
)
from kubevents.errors import RulesError
from kubevents.model import KubeEvent, ObjectRef

EVENT_KEYS = ("reason", "type", "kind", "component", "namespace", "name", "message")
EXPECT_KEYS = ("category", "severity", "rule")
CASE_KEYS = ("name", "event", "expect")
FILE_KEYS = ("version", "kind", "rule_files", "tests")

R = TypeVar("R")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one test case."""

    where: str
    name: str
    failure: str | None
    """None when the case passed; otherwise what differed."""


def shorthand_event(raw: dict[str, Any], where: str) -> KubeEvent:
    """Build a :class:`KubeEvent` from a test case's shorthand ``event``."""
    check_keys(raw, allowed=EVENT_KEYS, required=("reason",), where=f"{where}: event")
    ns = str(raw.get("namespace", "default"))
    return KubeEvent(
        uid="",
        name=f"{raw.get('name', 'test')}.test",
        namespace=ns,
        reason=str(raw["reason"]),
        type=str(raw.get("type", "Warning")),
        message=str(raw.get("message", "")),
        regarding=ObjectRef(
            kind=str(raw.get("kind", "Pod")), namespace=ns, name=str(raw.get("name", "test"))
        ),
        time_ns=0,
        first_time_ns=0,
        reporting_controller=str(raw.get("component", "")),
    )


def run_test_file(path: Path, default_classifier: Callable[[], Classifier]) -> list[CaseResult]:
    """Run every case in one classification test file.

    Raises:
        RulesError: the test file (or a rule file it names) is invalid.
    """
    file = read_rule_file(path, expected_kind="classification_test")
    check_keys(file.data, allowed=FILE_KEYS, required=("version", "kind", "tests"), where=str(path))
    classifier = _classifier_for(file.data, path, default_classifier)
    cases = file.data["tests"]
    if not isinstance(cases, list) or not cases:
        raise RulesError(f"{path}:{file.data.line}: 'tests' must be a non-empty list")
    return [_run_case(case, path, classifier) for case in cases]


def _classifier_for(
    data: LineDict, path: Path, default_classifier: Callable[[], Classifier]
) -> Classifier:
    names = data.get("rule_files")
    if names is None:
        return default_classifier()
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RulesError(
            f"{path}:{line_of(names) or data.line}: 'rule_files' must be a list of paths"
        )
    files = [read_rule_file(path.parent / name, expected_kind="classification") for name in names]
    return compile_classifier(files)


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


def open_test_file(
    path: Path,
    *,
    kind: str,
    rule_kind: str,
    allowed_keys: Sequence[str],
    compile_rules: Callable[[list[Any]], R],
    default_rules: Callable[[], R],
) -> tuple[R, list[Any]]:
    """The rules a ``<kind>`` test file runs against, and its cases.

    The rules are those of its ``rule_files`` (paths beside it, of ``rule_kind``),
    else ``default_rules()`` (the configured layers).

    Raises:
        RulesError: the test file (or a rule file it names) is invalid.
    """
    file = read_rule_file(path, expected_kind=kind)
    check_keys(
        file.data, allowed=allowed_keys, required=("version", "kind", "tests"), where=str(path)
    )
    names = file.data.get("rule_files")
    if names is None:
        rules = default_rules()
    elif isinstance(names, list) and all(isinstance(n, str) for n in names):
        rules = compile_rules(
            [read_rule_file(path.parent / n, expected_kind=rule_kind) for n in names]
        )
    else:
        raise RulesError(
            f"{path}:{line_of(names) or file.data.line}: 'rule_files' must be a list of paths"
        )
    cases = file.data["tests"]
    if not isinstance(cases, list) or not cases:
        raise RulesError(f"{path}:{file.data.line}: 'tests' must be a non-empty list")
    return rules, cases


def lazily(load: Callable[[], T]) -> Callable[[], T]:
    """``load``, called on first use only (a classifier that most cases never need)."""
    loaded: list[T] = []

    def get() -> T:
        if not loaded:
            loaded.append(load())
        return loaded[0]

    return get


def format_results(results: Sequence[CaseResult]) -> tuple[str, bool]:
    """Human-readable report and whether everything passed."""
    failed = [r for r in results if r.failure]
    lines = [f"FAILED {r.where}: {r.name}: {r.failure}" for r in failed]
    lines.append(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return "\n".join(lines), not failed
