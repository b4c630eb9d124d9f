"""Pattern rules: defaults, precedence, layering, validation errors and rule tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubevents.conventions import Category, Severity
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.pattern_rules import (
    DEFAULT_POLICY,
    AnomalySettings,
    PatternRules,
    compile_pattern_rules,
    load_pattern_rules,
    parse_duration,
)
from kubevents.enrich.rules import read_rule_file
from kubevents.errors import RulesError
from kubevents.model import Classification, Enriched, KubeEvent, ObjectRef
from kubevents.ruletesting.patterns import run_patterns_test_file

ROOT = Path(__file__).resolve().parents[3]
S = 1_000_000_000


def enriched(
    reason: str = "BackOff",
    *,
    category: Category = Category.LIFECYCLE,
    severity: Severity = Severity.ERROR,
    type: str = "Warning",
    kind: str = "Pod",
    namespace: str = "shop",
) -> Enriched:
    event = KubeEvent(
        uid="u",
        name="n",
        namespace=namespace,
        reason=reason,
        type=type,
        message="m",
        regarding=ObjectRef(kind=kind, namespace=namespace, name="x"),
        time_ns=0,
        first_time_ns=0,
    )
    return Enriched(event, 1, 0, Classification(category, severity, None))


def write(directory: Path, body: str, name: str = "patterns.yaml") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text("version: 1\nkind: patterns\n" + textwrap.dedent(body))
    return path


def compile_(tmp_path: Path, body: str) -> PatternRules:
    return compile_pattern_rules([read_rule_file(write(tmp_path, body))])


RULES = """
defaults:
  window: 5m
rules:
  - id: by-category
    match: {category: Image}
    key: [reason, workload]
  - id: by-reason
    match: {reason: Failed}
    min_count: 5
  - id: by-reason-and-kind
    match: {reason: Failed, kind: Node}
    min_count: 7
  - id: urgent
    match: {namespace: prod}
    priority: 5
    min_count: 2
  - id: quiet-type
    match: {type: Normal}
    patterns: false
    anomalies: false
"""


@pytest.mark.parametrize(
    ("ev", "rule", "min_count"),
    [
        (enriched("Failed", category=Category.IMAGE), "by-reason", 5),  # a reason beats a category
        (enriched("Pulled", category=Category.IMAGE), "by-category", 3),
        (enriched("Failed", kind="Node"), "by-reason-and-kind", 7),  # more conditions first
        (enriched("Failed", namespace="prod"), "urgent", 2),  # priority first
        (enriched("Started", type="Normal"), "quiet-type", 3),
        (enriched("Anything"), None, 3),  # the defaults
    ],
)
def test_the_first_matching_rule_sets_the_policy(
    tmp_path: Path, ev: Enriched, rule: str | None, min_count: int
) -> None:
    policy = compile_(tmp_path, RULES).policy_for(ev)
    assert (policy.rule_id, policy.min_count) == (rule, min_count)


def test_fields_a_rule_leaves_out_come_from_the_defaults(tmp_path: Path) -> None:
    rules = compile_(tmp_path, RULES)
    image = rules.policy_for(enriched("Pulled", category=Category.IMAGE))
    assert (image.key, image.window_ns, image.quiet_ns) == (
        ("reason", "workload"),
        300 * S,
        600 * S,
    )
    assert rules.default.window_ns == 300 * S
    normal = rules.policy_for(enriched("Started", type="Normal"))
    assert (normal.patterns, normal.anomalies) == (False, False)


def test_later_layers_replace_and_disable_rules_and_merge_defaults(tmp_path: Path) -> None:
    base = write(tmp_path / "a", RULES + "anomaly: {alpha: 0.2, threshold: 5}\n")
    user = write(
        tmp_path / "b",
        """
        defaults: {min_count: 4}
        anomaly: {threshold: 6}
        rules:
          - id: by-reason
            match: {reason: Failed}
            min_count: 9
          - id: urgent
            disabled: true
        """,
    )
    rules = compile_pattern_rules([read_rule_file(base), read_rule_file(user)])
    assert rules.policy_for(enriched("Failed", namespace="prod")).min_count == 9
    assert (rules.default.window_ns, rules.default.min_count) == (300 * S, 4)
    assert (rules.anomaly.alpha, rules.anomaly.threshold) == (0.2, 6.0)
    assert [r.id for r in rules.rules] == [
        "by-reason-and-kind",
        "by-reason",
        "by-category",
        "quiet-type",
    ]


def test_the_shipped_rules_load_with_the_documented_defaults() -> None:
    rules = load_pattern_rules()
    assert rules.default == DEFAULT_POLICY
    assert rules.anomaly == AnomalySettings()
    routine = rules.policy_for(enriched("Scheduled", severity=Severity.INFO, type="Normal"))
    assert (routine.rule_id, routine.patterns, routine.anomalies) == ("routine", False, False)
    image = rules.policy_for(enriched("BackOff", category=Category.IMAGE))
    assert image.rule_id == "image-pull-failures"
    assert rules.policy_for(enriched("BackOff")).rule_id == "restart-back-off"
    assert rules.policy_for(enriched("Unhealthy", category=Category.HEALTH)).key == (
        "reason",
        "namespace",
        "workload",
        "template",
    )


def test_user_dirs_layer_over_the_shipped_rules(tmp_path: Path) -> None:
    write(tmp_path, "rules:\n  - {id: probe-failures, match: {reason: Unhealthy}, min_count: 10}\n")
    rules = load_pattern_rules([tmp_path])
    assert rules.policy_for(enriched("Unhealthy")).min_count == 10
    assert rules.policy_for(enriched("Unhealthy")).key == DEFAULT_POLICY.key


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    min_cont: 3\n",
            "patterns.yaml:4: rule 'r1': unknown key 'min_cont' (did you mean 'min_count'?)",
        ),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    key: [reasn, namespace]\n",
            "patterns.yaml:4: rule 'r1': unknown key field 'reasn' (did you mean 'reason'?)",
        ),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    key: [reason, reason]\n",
            "rule 'r1': key lists a field twice",
        ),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    key: []\n",
            "key must be a non-empty list",
        ),
        (
            "rules:\n  - id: r1\n    match: {category: Images}\n",
            "rule 'r1': unknown category 'Images' (did you mean 'Image'?)",
        ),
        (
            "rules:\n  - id: r1\n    match: {severity: eror}\n",
            "rule 'r1': unknown severity 'eror' (did you mean 'error'?)",
        ),
        (
            "rules:\n  - id: r1\n    match: {reasons: X}\n",
            "rule 'r1': match: unknown key 'reasons' (did you mean 'reason'?)",
        ),
        (
            "rules:\n  - id: r1\n    match: {}\n",
            "'match' must be a mapping with at least one condition",
        ),
        ("rules:\n  - id: R1\n    match: {reason: X}\n", "id must be lowercase"),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    window: 10 minutes\n",
            "rule 'r1': window: expected a duration like '10m' or '90s', got '10 minutes'",
        ),
        ("rules:\n  - id: r1\n    match: {reason: X}\n    quiet: 0s\n", "quiet: must be positive"),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    min_count: 0\n",
            "min_count: must be a whole number of at least 1, got 0",
        ),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    min_rate_per_minute: fast\n",
            "min_rate_per_minute: must be a number of at least 0, got 'fast'",
        ),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n    patterns: no-thanks\n",
            "rule 'r1': patterns must be true or false",
        ),
        (
            "rules:\n  - id: r1\n    match: {reason: X}\n  - id: r1\n    match: {reason: Y}\n",
            "patterns.yaml:6: rule 'r1': duplicate id (first defined on line 4)",
        ),
        (
            "defaults:\n  windw: 5m\n",
            "patterns.yaml:4: defaults: unknown key 'windw' (did you mean 'window'?)",
        ),
        ("anomaly:\n  alpha: 1.5\n", "patterns.yaml:4: anomaly: alpha: must be in (0, 1], got 1.5"),
        ("anomaly: 3\n", "anomaly: must be a mapping"),
        ("rule: []\n", "unknown key 'rule' (did you mean 'rules'?)"),
    ],
)
def test_mistakes_are_reported_on_one_line_with_file_line_and_rule(
    tmp_path: Path, body: str, message: str
) -> None:
    with pytest.raises(RulesError) as raised:
        compile_(tmp_path, body)
    assert message in str(raised.value)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("10m", 600), ("90s", 90), ("1h30m", 5400), ("250ms", 0.25), (45, 45), (1.5, 1.5)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, where="x") == int(seconds * S)


@pytest.mark.parametrize("value", ["", "10", "m", "-1m", "1d", True, None, [1]])
def test_bad_durations(value: object) -> None:
    with pytest.raises(RulesError, match=r"^x: "):
        parse_duration(value, where="x")


# -- patterns_test files ------------------------------------------------------------


def test_the_shipped_pattern_tests_pass() -> None:
    results = run_patterns_test_file(ROOT / "rules" / "tests" / "patterns_test.yaml")
    assert [r.failure for r in results if r.failure] == []
    assert len(results) >= 10


def test_a_failing_case_says_what_differed(tmp_path: Path) -> None:
    write(tmp_path, "rules: []\n")
    test = tmp_path / "tests" / "patterns_test.yaml"
    test.parent.mkdir()
    test.write_text(
        textwrap.dedent(
            """
            version: 1
            kind: patterns_test
            rule_files: [../patterns.yaml]
            tests:
              - name: passes
                events:
                  - {at: 0s, every: 10s, times: 3, reason: X, category: Other, severity: warning}
                expect:
                  - {state: started, at: 20s, count: 3, key: 'reason=X;kind=Pod;namespace=default'}
              - name: fails
                events:
                  - {at: 0s, every: 10s, times: 3, reason: X, category: Other, severity: warning}
                expire_at: 1h
                expect:
                  - {state: ongoing, at: 30s}
            """
        )
    )
    passed, failed = run_patterns_test_file(test, default_classifier=load_classifier)
    assert passed.failure is None
    assert failed.where.endswith("patterns_test.yaml:11")
    assert failed.failure == (
        "transition 1 state: expected 'ongoing', got 'started'; "
        "transition 1 at: expected 30s, got 20s; "
        "expected 1 transitions, got 2: started@20s, resolved@10m20s"
    )


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("{name: x, events: [{at: 0s}], expect: []}", "event: missing key 'reason'"),
        ("{name: x, events: [{reason: X}], expect: []}", "event: missing key 'at'"),
        (
            "{name: x, events: [{at: 0s, reason: X, colour: red}], expect: []}",
            "unknown key 'colour'",
        ),
        ("{name: x, events: [{at: 0s, reason: X, times: 0}], expect: []}", "times must be"),
        ("{name: x, events: [], expect: []}", "'events' must be a non-empty list"),
        (
            "{name: x, events: [{at: 0s, reason: X}], expect: [{stat: started}]}",
            "unknown key 'stat' (did you mean 'state'?)",
        ),
        (
            "{name: x, events: [{at: 0s, reason: X, category: Imag, severity: error}], expect: []}",
            "'Imag' is not a valid Category",
        ),
        (
            "{name: x, events: [{at: 0s, reason: X, workload: web}], expect: []}",
            "workload must be namespace/Kind/name",
        ),
    ],
)
def test_invalid_test_files_raise(tmp_path: Path, case: str, message: str) -> None:
    test = tmp_path / "t.yaml"
    test.write_text(f"version: 1\nkind: patterns_test\ntests:\n  - {case}\n")
    with pytest.raises(RulesError) as raised:
        run_patterns_test_file(test, default_rules=PatternRules, default_classifier=load_classifier)
    assert str(raised.value).startswith(f"{test}:4")
    assert message in str(raised.value)
