"""Correlation rule files: compiled and indexed, layered by id, every mistake on one line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kubevents.conventions import Severity
from kubevents.enrich.correlation_rules import (
    compile_correlation_rules,
    load_correlation_rules,
)
from kubevents.enrich.rules import read_rule_file
from kubevents.errors import RulesError

M = 60_000_000_000

BASE = """version: 1
kind: correlation
defaults:
  window: 10m
  quiet: 15m
rules:
  - id: storage
    cause: {reason: [FailedMount, FailedAttachVolume], category: Storage}
    effect: {reason: BackOff, message: 'restarting'}
    join: [volume, node]
    window: 20m
  - id: oom
    cause: {reason: OOMKilling}
    effect: {reason: [BackOff, Killing]}
    join: node
"""


def compile_text(tmp_path: Path, *texts: str):  # type: ignore[no-untyped-def]
    files = []
    for i, text in enumerate(texts):
        path = tmp_path / f"{i}-correlation.yaml"
        path.write_text(text)
        files.append(read_rule_file(path, expected_kind="correlation"))
    return compile_correlation_rules(files)


def test_rules_are_indexed_by_the_reasons_of_each_side(tmp_path: Path) -> None:
    rules = compile_text(tmp_path, BASE)
    assert [r.id for r in rules.causes_by_reason["FailedMount"]] == ["storage"]
    assert [r.id for r in rules.effects_by_reason["BackOff"]] == ["storage", "oom"]
    assert "Pulled" not in rules.effects_by_reason
    storage = rules.rules_by_id["storage"]
    assert storage.join == ("volume", "node")
    assert storage.window_ns == 20 * M
    assert rules.rules_by_id["oom"].window_ns == 10 * M  # the default window
    assert rules.max_window_ns == 20 * M
    assert rules.defaults.quiet_ns == 15 * M
    assert rules.volume_reasons == {"FailedMount", "FailedAttachVolume", "BackOff"}
    assert rules.problem_severities == {Severity.WARNING, Severity.ERROR, Severity.CRITICAL}


def test_layers_replace_and_remove_rules_by_id_and_merge_defaults(tmp_path: Path) -> None:
    override = """version: 1
kind: correlation
defaults: {min_severity: error, group: [object]}
rules:
  - {id: oom, disabled: true}
  - id: storage
    cause: {reason: FailedMount}
    effect: {reason: Unhealthy}
    join: [object]
  - id: mine
    cause: {reason: Rebooted}
    effect: {reason: BackOff}
    join: [node]
"""
    rules = compile_text(tmp_path, BASE, override)
    assert [r.id for r in rules.rules] == ["storage", "mine"]
    assert rules.rules_by_id["storage"].join == ("object",)
    assert rules.defaults.min_severity is Severity.ERROR
    assert rules.defaults.group == ("object",)
    assert rules.defaults.quiet_ns == 15 * M  # kept from the first layer
    assert rules.problem_severities == {Severity.ERROR, Severity.CRITICAL}


def test_the_shipped_rules_compile() -> None:
    rules = load_correlation_rules()
    assert {"volume-attach-mount", "node-condition", "oom-kill", "scheduling-autoscaler",
            "rollout", "cni-sandbox", "config-missing"} <= set(rules.rules_by_id)


BAD = [
    ("  - id: x\n    cause: {reason: A}\n    effect: {reason: B}\n    join: [nodes]\n",
     ":8: rule 'x': join: unknown scope 'nodes' (did you mean 'node'?)"),
    ("  - id: x\n    cause: {reason: A}\n    effect: {reason: B}\n    join: []\n",
     ":8: rule 'x': join: must name at least one scope"),
    ("  - id: x\n    cause: {reason: A}\n    effect: {reson: B}\n    join: [node]\n",
     ":8: rule 'x': effect: unknown key 'reson' (did you mean 'reason'?)"),
    ("  - id: x\n    cause: {category: Storage}\n    effect: {reason: B}\n    join: [node]\n",
     ":8: rule 'x': cause: missing key 'reason'"),
    ("  - id: x\n    cause: {reason: A, category: Storag}\n    effect: {reason: B}\n    join: [node]\n",
     ":8: rule 'x': cause: unknown category 'Storag' (did you mean 'Storage'?)"),
    ("  - id: x\n    cause: {reason: A, message: '('}\n    effect: {reason: B}\n    join: [node]\n",
     ":8: rule 'x': cause: bad regex in message"),
    ("  - id: x\n    cause: {reason: A}\n    effect: {reason: B}\n    join: [node]\n    window: soon\n",
     ":8: rule 'x': window: expected a duration like '10m' or '90s', got 'soon'"),
    ("  - id: x\n    cause: {reason: A}\n    effect: {reason: B}\n    join: [node, node]\n",
     ":8: rule 'x': join: lists a scope twice"),
    ("  - id: X\n    cause: {reason: A}\n    effect: {reason: B}\n    join: [node]\n",
     ":8: rule 'X': id must be lowercase"),
    ("  - id: x\n    cause: {reason: A}\n    effect: {reason: B}\n    joins: [node]\n",
     ":8: rule 'x': unknown key 'joins' (did you mean 'join'?)"),
]


@pytest.mark.parametrize(("rule", "message"), BAD)
def test_mistakes_name_the_file_line_and_rule(tmp_path: Path, rule: str, message: str) -> None:
    text = "version: 1\nkind: correlation\ndefaults:\n  window: 10m\n\n\nrules:\n" + rule
    with pytest.raises(RulesError) as info:
        compile_text(tmp_path, text)
    assert str(info.value).startswith(str(tmp_path / "0-correlation.yaml") + message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("defaults", "message"),
    [
        ("{min_severity: warn}", "unknown min_severity 'warn' (did you mean 'warning'?)"),
        ("{qiet: 5m}", "unknown key 'qiet' (did you mean 'quiet'?)"),
        ("{group: [workloads]}", "group: unknown scope 'workloads' (did you mean 'workload'?)"),
        ("{quiet: 0s}", "quiet: must be positive"),
        ("[1, 2]", "must be a mapping"),
    ],
)
def test_bad_defaults(tmp_path: Path, defaults: str, message: str) -> None:
    with pytest.raises(RulesError, match=re.escape(message)):
        compile_text(tmp_path, f"version: 1\nkind: correlation\ndefaults: {defaults}\nrules: []\n")
