"""Pattern rules: which Events group together, and how often is "a pattern".

``rules/patterns.yaml`` sets the similarity key and the thresholds; rules
override them per reason, category, severity, type, kind or namespace::

    version: 1
    kind: patterns
    defaults:                       # every field optional; these are the built-in values
      key: [reason, kind, namespace]
      window: 10m                   # sliding window, in event time
      min_count: 3                  # a pattern needs this many occurrences in the window...
      min_rate_per_minute: 0.5      # ...at this rate or faster
      quiet: 10m                    # resolved once the condition has not held for this long
    anomaly:
      bucket: 1m                    # rate baseline resolution
      alpha: 0.1                    # EWMA weight of the newest bucket
      warmup: 10m                   # no anomaly before this much event time was seen
      threshold: 4.0                # score (z) at which a bucket is anomalous
      min_count: 10                 # ...and at least this many occurrences in it
      min_ratio: 3.0                # ...and at least this many times the baseline
      idle: 1h                      # forget a series quiet for this long
    rules:
      - id: probe-failures
        description: Probe failures of one workload, one kind of failure.
        match: {reason: Unhealthy}  # reason, category, severity, type, kind, namespace
        key: [reason, namespace, workload, template]
        min_count: 5
      - id: routine
        match: {severity: [info, debug]}
        patterns: false             # never grouped into patterns
        anomalies: false            # never scored for anomalies

The first matching rule decides, trying higher ``priority`` first, then
rules that name a ``reason``, then rules with more conditions, then file
order. A field the rule does not set comes from ``defaults`` (never from a
less specific rule), so each rule reads on its own. Files are layered like
classification rules: ``defaults`` and ``anomaly`` merge key by key, rules
replace each other by ``id`` and ``disabled: true`` removes one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from kubevents.conventions import Category, Severity
from kubevents.enrich.rules import (
    LineDict,
    RuleFile,
    check_keys,
    layered_rules,
    line_of,
    rule_files,
    rule_location,
    string_set,
)
from kubevents.errors import RulesError, did_you_mean
from kubevents.model import Enriched

KEY_FIELDS: Final = (
    "reason",
    "kind",
    "namespace",
    "type",
    "component",
    "category",
    "severity",
    "workload",
    "node",
    "template",
)
"""What a similarity key can be made of (see ``patterns.key_values``)."""

MATCH_KEYS: Final = ("reason", "category", "severity", "type", "kind", "namespace")
POLICY_KEYS: Final = ("key", "window", "min_count", "min_rate_per_minute", "quiet")
RULE_KEYS: Final = (
    "id",
    "description",
    "match",
    *POLICY_KEYS,
    "patterns",
    "anomalies",
    "priority",
    "disabled",
)
ANOMALY_KEYS: Final = ("bucket", "alpha", "warmup", "threshold", "min_count", "min_ratio", "idle")
FILE_KEYS: Final = ("version", "kind", "defaults", "anomaly", "rules")

_NS: Final = 1_000_000_000
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_DURATION = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_NS: Final = {"ms": 1_000_000, "s": _NS, "m": 60 * _NS, "h": 3600 * _NS}
_CACHE_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class PatternPolicy:
    """How the Events one rule matches are grouped and judged."""

    rule_id: str | None
    """The rule that gave this policy, or None for the defaults."""
    key: tuple[str, ...] = ("reason", "kind", "namespace")
    window_ns: int = 600 * _NS
    min_count: int = 3
    min_rate_per_minute: float = 0.5
    quiet_ns: int = 600 * _NS
    patterns: bool = True
    """False: these Events are never grouped into patterns."""
    anomalies: bool = True
    """False: these Events are never scored for anomalies."""


DEFAULT_POLICY: Final = PatternPolicy(rule_id=None)


@dataclass(frozen=True, slots=True)
class AnomalySettings:
    """How the occurrence-rate baseline is kept and when a rate breaks from it."""

    bucket_ns: int = 60 * _NS
    alpha: float = 0.1
    warmup_ns: int = 600 * _NS
    threshold: float = 4.0
    min_count: int = 10
    min_ratio: float = 3.0
    idle_ns: int = 3600 * _NS


@dataclass(frozen=True, slots=True)
class PatternRule:
    """One compiled rule. Empty condition sets mean "any"."""

    id: str
    reasons: frozenset[str]
    categories: frozenset[str]
    severities: frozenset[str]
    types: frozenset[str]
    kinds: frozenset[str]
    namespaces: frozenset[str]
    policy: PatternPolicy
    priority: int = 0
    order: int = 0

    @property
    def precedence(self) -> tuple[int, int, int, int]:
        """Sort key: priority, then naming a reason, then more conditions, then order."""
        sets = (self.categories, self.severities, self.types, self.kinds, self.namespaces)
        specificity = sum(1 for s in sets if s) + bool(self.reasons)
        return (-self.priority, -bool(self.reasons), -specificity, self.order)

    def matches(self, fields: tuple[str, str, str, str, str, str]) -> bool:
        """True when every condition holds; ``fields`` as in :data:`MATCH_KEYS`."""
        reason, category, severity, type_, kind, namespace = fields
        return (
            (not self.reasons or reason in self.reasons)
            and (not self.categories or category in self.categories)
            and (not self.severities or severity in self.severities)
            and (not self.types or type_ in self.types)
            and (not self.kinds or kind in self.kinds)
            and (not self.namespaces or namespace in self.namespaces)
        )


class PatternRules:
    """Compiled pattern rules: the policy for any Event, and the anomaly settings."""

    def __init__(
        self,
        rules: Sequence[PatternRule] = (),
        default: PatternPolicy = DEFAULT_POLICY,
        anomaly: AnomalySettings | None = None,
    ) -> None:
        self.rules = tuple(sorted(rules, key=lambda r: r.precedence))
        self.default = default
        self.anomaly = anomaly or AnomalySettings()
        generic = [r for r in self.rules if not r.reasons]
        by_reason: dict[str, list[PatternRule]] = {}
        for rule in self.rules:
            for reason in sorted(rule.reasons):
                by_reason.setdefault(reason, []).append(rule)
        self._generic = tuple(generic)
        # Candidates per known reason, generic rules merged in precedence order.
        self._by_reason = {
            reason: tuple(sorted([*specific, *generic], key=lambda r: r.precedence))
            for reason, specific in by_reason.items()
        }
        self._cache: dict[tuple[str, ...], PatternPolicy] = {}
        # Cache by (reason, category, severity) only, unless a rule looks further:
        # namespaces are many, and would make the cache miss all the time.
        self._wide = any(r.types or r.kinds or r.namespaces for r in self.rules)
        # The pattern and the anomaly detector ask for the same Event one after the
        # other: the second asks the Event the first did and gets its answer back (an
        # Enriched is frozen, so the same object has the same policy).
        self._last: Enriched | None = None
        self._last_policy = default

    def policy_for(self, enriched: Enriched) -> PatternPolicy:
        """The policy of the first rule matching ``enriched``, else the defaults."""
        if enriched is self._last:
            return self._last_policy
        event, cls = enriched.event, enriched.classification
        ref = event.regarding
        # Category and Severity are str enums: the members themselves are the values.
        if self._wide:
            key: tuple[str, ...] = (
                event.reason,
                cls.category,
                cls.severity,
                event.type,
                ref.kind,
                ref.namespace or event.namespace,
            )
        else:
            key = (event.reason, cls.category, cls.severity)
        policy = self._cache.get(key)
        if policy is None:
            fields = (
                event.reason,
                cls.category,
                cls.severity,
                event.type,
                ref.kind,
                ref.namespace or event.namespace,
            )
            policy = self._lookup(fields)
            if len(self._cache) >= _CACHE_MAX:
                # Reasons are unbounded: start over rather than grow (results are the same).
                self._cache.clear()
            self._cache[key] = policy
        self._last = enriched
        self._last_policy = policy
        return policy

    def policy_of(self, fields: tuple[str, str, str, str, str, str]) -> PatternPolicy:
        """The policy for an Event given as its fields, as in :data:`MATCH_KEYS` (uncached)."""
        return self._lookup(fields)

    def _lookup(self, fields: tuple[str, str, str, str, str, str]) -> PatternPolicy:
        for rule in self._by_reason.get(fields[0], self._generic):
            if rule.matches(fields):
                return rule.policy
        return self.default


def load_pattern_rules(dirs: Sequence[Path] = (), *, include_shipped: bool = True) -> PatternRules:
    """Build :class:`PatternRules` from the shipped ``patterns`` files and ``dirs``."""
    return compile_pattern_rules(rule_files("patterns", dirs=dirs, include_shipped=include_shipped))


def compile_pattern_rules(files: Sequence[RuleFile]) -> PatternRules:
    """Validate and compile pattern rule files (in layer order).

    Raises:
        RulesError: one line naming the file, the line, the rule id and the problem.
    """
    defaults: dict[str, tuple[object, str]] = {}
    anomaly: dict[str, tuple[object, str]] = {}
    for file in files:
        check_keys(file.data, allowed=FILE_KEYS, required=("version", "kind"), where=str(file.path))
        for name, target, allowed in (
            ("defaults", defaults, POLICY_KEYS),
            ("anomaly", anomaly, ANOMALY_KEYS),
        ):
            raw = file.data.get(name)
            if raw is None:
                continue
            where = f"{file.path}:{line_of(raw) or file.data.line}: {name}"
            if not isinstance(raw, dict):
                raise RulesError(f"{where}: must be a mapping")
            check_keys(raw, allowed=allowed, where=where)
            target.update({key: (value, where) for key, value in raw.items()})
    default = DEFAULT_POLICY
    for key, (value, where) in defaults.items():
        default = _policy(default, {key: value}, where)
    rules = [
        _compile_rule(file, rule, order, default)
        for order, (file, rule) in enumerate(layered_rules(files))
    ]
    return PatternRules(rules, default, _anomaly(anomaly))


def _compile_rule(
    file: RuleFile, rule: LineDict, order: int, default: PatternPolicy
) -> PatternRule:
    where = rule_location(file, rule)
    check_keys(rule, allowed=RULE_KEYS, required=("id", "match"), where=where)
    if not _ID.match(rule["id"]):
        raise RulesError(f"{where}: id must be lowercase letters, digits, '-' or '.'")
    match = rule["match"]
    if not isinstance(match, dict) or not match:
        raise RulesError(f"{where}: 'match' must be a mapping with at least one condition")
    check_keys(match, allowed=MATCH_KEYS, where=f"{where}: match")
    categories = string_set(match, "category", where)
    _check_choices(categories, [c.value for c in Category], "category", where)
    severities = string_set(match, "severity", where)
    _check_choices(severities, [s.value for s in Severity], "severity", where)
    priority = rule.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RulesError(f"{where}: priority must be an integer")
    policy = _policy(replace(default, rule_id=rule["id"]), rule, where)
    for flag in ("patterns", "anomalies"):
        if not isinstance(rule.get(flag, True), bool):
            raise RulesError(f"{where}: {flag} must be true or false")
    policy = replace(
        policy, patterns=rule.get("patterns", True), anomalies=rule.get("anomalies", True)
    )
    return PatternRule(
        id=rule["id"],
        reasons=string_set(match, "reason", where),
        categories=categories,
        severities=severities,
        types=string_set(match, "type", where),
        kinds=string_set(match, "kind", where),
        namespaces=string_set(match, "namespace", where),
        policy=policy,
        priority=priority,
        order=order,
    )


def _policy(base: PatternPolicy, raw: Mapping[str, Any], where: str) -> PatternPolicy:
    """``base`` with the policy fields ``raw`` sets, validated."""
    changes: dict[str, Any] = {}
    if "key" in raw:
        changes["key"] = _key(raw["key"], where)
    if "window" in raw:
        changes["window_ns"] = parse_duration(raw["window"], where=f"{where}: window")
    if "quiet" in raw:
        changes["quiet_ns"] = parse_duration(raw["quiet"], where=f"{where}: quiet")
    if "min_count" in raw:
        changes["min_count"] = _positive_int(raw["min_count"], f"{where}: min_count")
    if "min_rate_per_minute" in raw:
        changes["min_rate_per_minute"] = _number(
            raw["min_rate_per_minute"], f"{where}: min_rate_per_minute", minimum=0.0
        )
    return replace(base, **changes)


def _anomaly(raw: Mapping[str, tuple[object, str]]) -> AnomalySettings:
    changes: dict[str, Any] = {}
    for name, (value, where) in raw.items():
        at = f"{where}: {name}"
        if name in ("bucket", "warmup", "idle"):
            ns = parse_duration(value, where=at, allow_zero=name == "warmup")
            changes[f"{name}_ns"] = ns
        elif name == "min_count":
            changes[name] = _positive_int(value, at)
        elif name == "alpha":
            alpha = _number(value, at, minimum=0.0)
            if not 0.0 < alpha <= 1.0:
                raise RulesError(f"{at}: must be in (0, 1], got {value!r}")
            changes[name] = alpha
        else:  # threshold, min_ratio
            changes[name] = _number(value, at, minimum=0.0)
    return AnomalySettings(**changes)


def parse_duration(value: object, *, where: str, allow_zero: bool = False) -> int:
    """``10m``, ``90s``, ``1h30m``, ``250ms`` or a number of seconds, in nanoseconds.

    Raises:
        RulesError: not a duration, or not positive.
    """
    if isinstance(value, bool):
        raise RulesError(f"{where}: expected a duration like '10m' or '90s', got {value!r}")
    if isinstance(value, int | float):
        ns = int(value * _NS)
    elif isinstance(value, str) and _DURATION.match(value.strip()):
        ns = sum(
            int(float(number) * _UNIT_NS[unit])
            for number, unit in _DURATION_PART.findall(value.strip())
        )
    else:
        raise RulesError(f"{where}: expected a duration like '10m' or '90s', got {value!r}")
    if ns < 0 or (ns == 0 and not allow_zero):
        raise RulesError(f"{where}: must be {'0 or more' if allow_zero else 'positive'}")
    return ns


def _key(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise RulesError(f"{where}: key must be a non-empty list of fields {list(KEY_FIELDS)}")
    for name in value:
        if name not in KEY_FIELDS:
            raise RulesError(f"{where}: unknown key field {name!r}{did_you_mean(name, KEY_FIELDS)}")
    if len(set(value)) != len(value):
        raise RulesError(f"{where}: key lists a field twice")
    return tuple(value)


def _check_choices(values: frozenset[str], choices: list[str], name: str, where: str) -> None:
    for value in sorted(values):
        if value not in choices:
            raise RulesError(f"{where}: unknown {name} {value!r}{did_you_mean(value, choices)}")


def _positive_int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RulesError(f"{where}: must be a whole number of at least 1, got {value!r}")
    return value


def _number(value: object, where: str, *, minimum: float) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < minimum:
        raise RulesError(f"{where}: must be a number of at least {minimum:g}, got {value!r}")
    return float(value)
