"""What the three kinds of rule test file share: the file's frame, the Event shorthand, the
timeline of a case, and the report.

A test file is ``version``, ``kind``, ``rule_files`` (paths beside it; default: the
configured rules) and ``tests``, a non-empty list of cases (:func:`open_test_file`). An
Event is written in shorthand (:func:`shorthand_event`); pattern and correlation cases
are timelines of such Events at offsets from :data:`T0_NS` (:func:`timeline_case`,
:func:`repeat_times`), each classified by the rules unless it says otherwise
(:func:`classification_of`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar

from kubevents.conventions import Category, Severity
from kubevents.enrich.classify import Classifier
from kubevents.enrich.pattern_rules import parse_duration
from kubevents.enrich.rules import LineDict, check_keys, line_of, read_rule_file
from kubevents.errors import RulesError
from kubevents.model import Classification, KubeEvent, ObjectRef

EVENT_KEYS: Final = ("reason", "type", "kind", "component", "namespace", "name", "message")
FILE_KEYS: Final = ("version", "kind", "rule_files", "tests")
T0_NS: Final = 1_767_225_600_000_000_000
"""Time zero of every timeline case: 2026-01-01T00:00:00Z (offsets are what tests read)."""

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


def open_test_file(
    path: Path,
    *,
    kind: str,
    rule_kind: str,
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
    check_keys(file.data, allowed=FILE_KEYS, required=("version", "kind", "tests"), where=str(path))
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


def timeline_case(
    case: object, path: Path, case_keys: Sequence[str]
) -> tuple[LineDict, str, list[Any], list[Any]]:
    """A pattern or correlation case, its location, its ``events`` and its ``expect``.

    Raises:
        RulesError: the case is not a mapping of ``case_keys`` with a non-empty list
            of events and a list of expectations.
    """
    if not isinstance(case, LineDict):
        raise RulesError(f"{path}: each test must be a mapping")
    where = f"{path}:{case.line}"
    check_keys(case, allowed=case_keys, required=("name", "events", "expect"), where=where)
    events, expect = case["events"], case["expect"]
    if not isinstance(events, list) or not events or not isinstance(expect, list):
        raise RulesError(f"{where}: 'events' must be a non-empty list and 'expect' a list")
    return case, where, events, expect


def repeat_times(raw: dict[str, Any], where: str) -> list[int]:
    """When a timeline entry happens: ``at``, then every ``every`` for ``times`` times."""
    start = parse_duration(raw["at"], where=f"{where}: at", allow_zero=True)
    times = raw.get("times", 1)
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise RulesError(f"{where}: times must be a whole number of at least 1")
    every = parse_duration(raw["every"], where=f"{where}: every") if "every" in raw else 0
    return [T0_NS + start + i * every for i in range(times)]


def classification_of(
    raw: dict[str, Any], event: KubeEvent, where: str, classify: Callable[[], Classifier]
) -> Classification:
    """The entry's ``category`` and ``severity``, else what the classification rules say."""
    if "category" in raw and "severity" in raw:
        base = Classification(Category.OTHER, Severity.WARNING, None)
    else:
        base = classify().classify(event)
    try:
        category = Category(str(raw["category"])) if "category" in raw else base.category
        severity = Severity(str(raw["severity"])) if "severity" in raw else base.severity
    except ValueError as e:
        raise RulesError(f"{where}: {e}") from None
    return Classification(category, severity, base.rule_id)


def offset(time_ns: int) -> str:
    """``1m30s`` after time zero (or the raw value before it)."""
    seconds, rest = divmod(time_ns - T0_NS, 1_000_000_000)
    if seconds < 0:
        return str(time_ns)
    minutes, secs = divmod(seconds, 60)
    text = (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs or not minutes else "")
    return text + (f"+{rest}ns" if rest else "")
