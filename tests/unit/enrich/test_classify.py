"""Classification engine: precedence, indexing, defaults, layering and rule errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubevents.conventions import Category, Severity
from kubevents.enrich.classify import compile_classifier, load_classifier
from kubevents.enrich.rules import read_rule_file
from kubevents.errors import RulesError
from kubevents.model import Classification, KubeEvent
from tests.support.events import ev


def event(
    reason: str,
    message: str = "",
    *,
    type: str = "Warning",
    kind: str = "Pod",
    component: str = "kubelet",
    namespace: str = "shop",
) -> KubeEvent:
    return ev(0, reason, "x", ns=namespace, kind=kind, message=message, type_=type,
              controller=component)


def write(tmp_path: Path, body: str, name: str = "classification.yaml") -> Path:
    path = tmp_path / name
    path.write_text("version: 1\nkind: classification\n" + textwrap.dedent(body))
    return path


def classifier(tmp_path: Path, body: str):  # type: ignore[no-untyped-def]
    return compile_classifier([read_rule_file(write(tmp_path, body))])


RULES = """
rules:
  - id: backoff-restart
    description: restarting
    match: {reason: BackOff}
    category: Lifecycle
    severity: error
  - id: backoff-image
    description: pulling
    match: {reason: BackOff, message: 'pulling image'}
    category: Image
    severity: error
  - id: any-kube-system
    description: all of kube-system
    match: {namespace: kube-system}
    category: Node
    severity: critical
  - id: urgent-backoff
    description: priority wins over specificity
    match: {reason: BackOff, kind: Widget}
    category: Other
    severity: critical
    priority: 5
  - id: normal-started
    description: started
    match: {reason: Started, type: Normal, component: [kubelet, kubelite]}
    category: Lifecycle
    severity: info
"""


@pytest.mark.parametrize(
    ("ev", "rule"),
    [
        (event("BackOff", 'Back-off pulling image "x"'), "backoff-image"),  # more conditions first
        (event("BackOff", "Back-off restarting failed container"), "backoff-restart"),
        (event("BackOff", "pulling image", kind="Widget"), "urgent-backoff"),  # priority first
        (event("Anything", namespace="kube-system"), "any-kube-system"),  # generic rule, any reason
        (
            event("BackOff", namespace="kube-system"),
            "backoff-restart",
        ),  # equal specificity: file order
        (event("Started", type="Normal", component="kubelite"), "normal-started"),
        (event("Started", type="Warning"), None),
        (event("Started", type="Normal", component="other"), None),
    ],
)
def test_precedence(tmp_path: Path, ev: KubeEvent, rule: str | None) -> None:
    assert classifier(tmp_path, RULES).classify(ev).rule_id == rule


@pytest.mark.parametrize(
    ("type_", "expected"),
    [
        ("Warning", Classification(Category.OTHER, Severity.WARNING, None)),
        ("Normal", Classification(Category.OTHER, Severity.INFO, None)),
        ("", Classification(Category.OTHER, Severity.WARNING, None)),
        ("Error", Classification(Category.OTHER, Severity.WARNING, None)),
    ],
)
def test_unknown_reasons_fall_back_on_the_type(
    tmp_path: Path, type_: str, expected: Classification
) -> None:
    assert classifier(tmp_path, RULES).classify(event("NeverHeardOf", type=type_)) == expected


def test_defaults_can_be_overridden(tmp_path: Path) -> None:
    c = classifier(
        tmp_path, "defaults:\n  Warning: {category: Other, severity: error}\nrules: []\n"
    )
    assert c.classify(event("X")).severity is Severity.ERROR


def test_later_layer_replaces_and_disables_by_id(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = write(tmp_path / "a", RULES)
    user = write(
        tmp_path / "b",
        """
        rules:
          - id: backoff-restart
            description: user override
            match: {reason: BackOff}
            category: Health
            severity: warning
          - id: backoff-image
            disabled: true
        """,
    )
    c = compile_classifier([read_rule_file(base), read_rule_file(user)])
    got = c.classify(event("BackOff", "Back-off pulling image"))
    assert (got.rule_id, got.category) == ("backoff-restart", Category.HEALTH)


def test_user_dirs_layer_over_shipped(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        rules:
          - id: mine
            description: mine
            match: {reason: MyReason}
            category: Policy
            severity: critical
        """,
    )
    c = load_classifier([tmp_path], include_shipped=False)
    assert c.classify(event("MyReason")).rule_id == "mine"


RULE = "rules:\n  - id: r1\n    description: d\n    match: {reason: X}\n    category: Image\n    severity: error\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            RULE.replace("match:", "mach:"),
            ":4: rule 'r1': unknown key 'mach' (did you mean 'match'?)",
        ),
        (
            RULE.replace("Image", "Imag"),
            ":4: rule 'r1': unknown category 'Imag' (did you mean 'Image'?)",
        ),
        (RULE.replace("error", "fatal"), ":4: rule 'r1': unknown severity 'fatal'"),
        (
            RULE.replace("{reason: X}", "{reason: X, message: '(unclosed'}"),
            ":4: rule 'r1': bad regex in match.message: missing ), unterminated subpattern",
        ),
        (
            RULE + RULE.replace("rules:\n", ""),
            ":9: rule 'r1': duplicate id (first defined on line 4)",
        ),
        (
            RULE.replace("{reason: X}", "{reasn: X}"),
            "rule 'r1': match: unknown key 'reasn' (did you mean 'reason'?)",
        ),
        (
            RULE.replace("{reason: X}", "{}"),
            "rule 'r1': 'match' must be a mapping with at least one condition",
        ),
        (
            RULE.replace("{reason: X}", "{reason: X, type: Warn}"),
            "match.type 'Warn' is not Normal or Warning (did you mean 'Warning'?)",
        ),
        (RULE.replace("id: r1", "id: R 1"), "rule 'R 1': id must be lowercase"),
        (RULE.replace("    severity: error\n", ""), "rule 'r1': missing key 'severity'"),
        (
            RULE.replace("{reason: X}", "{reason: [X, 3]}"),
            "match.reason must be a non-empty string or list of strings",
        ),
        ("rules: {}\n", ": 'rules' must be a list"),
        ("rules:\n  - id: [\n", "invalid YAML"),
    ],
)
def test_invalid_rules_give_one_line_errors_naming_file_line_and_id(
    tmp_path: Path, body: str, message: str
) -> None:
    path = write(tmp_path, body)
    with pytest.raises(RulesError) as err:
        classifier(tmp_path, body)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(str(path))
    assert message in text


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("version: 2\nkind: classification\n", "unsupported version 2"),
        (
            "version: 1\nkind: clasification\n",
            "unknown kind 'clasification' (did you mean 'classification'?)",
        ),
        ("- a list\n", "expected a mapping at the top of the file"),
    ],
)
def test_bad_file_headers(tmp_path: Path, header: str, message: str) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(header)
    with pytest.raises(
        RulesError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")
    ):
        read_rule_file(path)


def test_missing_rules_dir(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="rules directory not found"):
        load_classifier([tmp_path / "nope"], include_shipped=False)
