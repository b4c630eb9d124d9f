"""Correlation rules: which Events cause which, joined on what, for how long.

``rules/correlation.yaml`` holds the defaults of incident grouping and the
causal rules that link Events across objects::

    version: 1
    kind: correlation
    defaults:
      window: 10m                 # a link (cause -> effect, or same scope) holds this long
      quiet: 15m                  # an incident resolves after this much event time without Events
      group: [object, workload]   # problem Events of the same scope share an incident
      min_severity: warning       # what counts as a problem (opens and groups incidents)
    rules:
      - id: volume-attach-mount
        description: Volume attach/mount failures, then the Pods that need the volume fail.
        cause: {reason: [FailedAttachVolume, FailedMount], category: Storage}
        effect: {reason: [FailedCreatePodSandBox, BackOff, Unhealthy, Killing]}
        join: [volume, object, node]   # object, workload, node, volume, namespace
        window: 15m                    # optional; default: defaults.window
        sole_node: false               # optional: an effect whose node is unknown is on the
                                       # only node that had this rule's cause in the window
        overcomes: false               # optional: the effect shows the cause's failure is
                                       # over; it never groups with it (no link either way)
        opens: true                    # optional: false: the cause alone opens no incident

A side (``cause`` / ``effect``) needs ``reason`` (a string or a list; rules
are indexed by reason, so an Event whose reason no rule names costs one
dict lookup) and may narrow it with ``type``, ``kind``, ``category``,
``component`` and ``message`` (a Python regex, searched only after an
index hit). Files are layered like classification rules: ``defaults``
merge key by key, rules replace each other by ``id``, ``disabled: true``
removes one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

from kubevents.conventions import Category, Severity
from kubevents.enrich.pattern_rules import parse_duration
from kubevents.enrich.rules import (
    LineDict,
    RuleFile,
    check_keys,
    layered_rules,
    line_of,
    message_regex,
    rule_files,
    rule_location,
    string_set,
)
from kubevents.errors import RulesError, did_you_mean
from kubevents.model import KubeEvent

SCOPES: Final = ("object", "workload", "node", "volume", "namespace")
"""What two Events can have in common (see ``correlate.py`` for each key)."""
SIDE_KEYS: Final = ("reason", "type", "kind", "category", "component", "message")
DEFAULT_KEYS: Final = ("window", "quiet", "group", "min_severity")
RULE_KEYS: Final = (
    "id",
    "description",
    "cause",
    "effect",
    "join",
    "window",
    "sole_node",
    "overcomes",
    "opens",
    "disabled",
)
FILE_KEYS: Final = ("version", "kind", "defaults", "rules")
SEVERITY_RANK: Final = {
    Severity.DEBUG: 0,
    Severity.INFO: 1,
    Severity.WARNING: 2,
    Severity.ERROR: 3,
    Severity.CRITICAL: 4,
}
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
_NS: Final = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Side:
    """One side of a causal rule. Empty condition sets mean "any"."""

    reasons: frozenset[str]
    types: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    components: frozenset[str] = frozenset()
    message: re.Pattern[str] | None = None

    def matches(self, event: KubeEvent, category: Category) -> bool:
        """Every condition but the reason (indexed) and the message (checked last)."""
        return (
            (not self.types or event.type in self.types)
            and (not self.kinds or event.regarding.kind in self.kinds)
            and (not self.categories or category in self.categories)
            and (not self.components or event.reporting_controller in self.components)
        )

    def matches_message(self, message: str) -> bool:
        """The message condition (true when there is none)."""
        return self.message is None or self.message.search(message) is not None


@dataclass(frozen=True, slots=True)
class CausalRule:
    """Events matching ``cause`` explain later Events matching ``effect`` in the same scope."""

    id: str
    index: int
    """Position in the layered rules: part of the link keys, cheaper than the id."""
    cause: Side
    effect: Side
    join: tuple[str, ...]
    window_ns: int
    sole_node: bool = False
    """An effect about a Pod whose node is unknown is taken to be on the only node that
    had this rule's cause within the window (the effect is only ever recorded for Pods
    of a node in that state: the node controller's NodeNotReady, an eviction)."""
    opens: bool = True
    """A problem Event that matches the cause opens an incident at once; False: it is a
    lone problem Event until a second one comes (it still explains effects, late ones too)."""
    overcomes: bool = False
    """The effect shows that the cause's failure is over (a controller's next stage
    failing): an effect never joins, through a group link, an incident or lone Event of
    the same scope rooted at the cause. Such a rule links nothing."""


@dataclass(frozen=True, slots=True)
class CorrelationDefaults:
    """How incidents group without a rule, and when they end."""

    window_ns: int = 600 * _NS
    quiet_ns: int = 900 * _NS
    group: tuple[str, ...] = ("object", "workload")
    min_severity: Severity = Severity.WARNING

    def is_problem(self, severity: Severity) -> bool:
        """True when an Event of ``severity`` may open and group incidents."""
        return SEVERITY_RANK[severity] >= SEVERITY_RANK[self.min_severity]


class CorrelationRules:
    """Compiled correlation rules, indexed by the reasons of each side."""

    def __init__(
        self,
        rules: Sequence[CausalRule] = (),
        defaults: CorrelationDefaults | None = None,
    ) -> None:
        self.rules = tuple(rules)
        self.defaults = defaults or CorrelationDefaults()
        causes: dict[str, list[CausalRule]] = {}
        effects: dict[str, list[CausalRule]] = {}
        overcome: dict[str, tuple[set[str], set[str]]] = {}
        for rule in self.rules:
            if rule.overcomes:
                for reason in rule.effect.reasons:
                    reasons, scopes = overcome.setdefault(reason, (set(), set()))
                    reasons |= rule.cause.reasons
                    scopes |= set(rule.join)
                continue
            for reason in sorted(rule.cause.reasons):
                causes.setdefault(reason, []).append(rule)
            for reason in sorted(rule.effect.reasons):
                effects.setdefault(reason, []).append(rule)
        self.causes_by_reason = {reason: tuple(found) for reason, found in causes.items()}
        self.effects_by_reason = {reason: tuple(found) for reason, found in effects.items()}
        self.overcome_by_reason = {
            reason: (frozenset(causes_), frozenset(scopes))
            for reason, (causes_, scopes) in overcome.items()
        }
        """Effect reason -> (the root reasons it shows to be over, the scopes)."""
        self.max_window_ns = max(
            [self.defaults.window_ns, *(rule.window_ns for rule in self.rules)]
        )
        self.rules_by_id = {rule.id: rule for rule in self.rules}
        self.ids_by_index = {rule.index: rule.id for rule in self.rules}
        self.problem_severities = frozenset(
            severity for severity in Severity if self.defaults.is_problem(severity)
        )
        """Severities that open and group incidents (a set: one lookup per Event)."""
        self.volume_reasons = frozenset(
            reason
            for rule in self.rules
            if "volume" in rule.join
            for reason in rule.cause.reasons | rule.effect.reasons
        )
        """Reasons whose Events need their volume keys (a message scan) for a rule."""
        self.group_volumes = "volume" in self.defaults.group
        """Every problem Event needs its volume keys (``volume`` is a group scope)."""
        self.sole_node_rules = frozenset(rule.index for rule in self.rules if rule.sole_node)
        """Rules whose effects may take the node of the only node with their cause."""
        """Every problem Event needs its volume keys (``volume`` is a group scope)."""


def load_correlation_rules(
    dirs: Sequence[Path] = (), *, include_shipped: bool = True
) -> CorrelationRules:
    """Build :class:`CorrelationRules` from the shipped ``correlation`` files and ``dirs``."""
    return compile_correlation_rules(
        rule_files("correlation", dirs=dirs, include_shipped=include_shipped)
    )


def compile_correlation_rules(files: Sequence[RuleFile]) -> CorrelationRules:
    """Validate and compile correlation rule files (in layer order).

    Raises:
        RulesError: one line naming the file, the line, the rule id and the problem.
    """
    defaults = CorrelationDefaults()
    for file in files:
        check_keys(file.data, allowed=FILE_KEYS, required=("version", "kind"), where=str(file.path))
        raw = file.data.get("defaults")
        if raw is None:
            continue
        where = f"{file.path}:{line_of(raw) or file.data.line}: defaults"
        if not isinstance(raw, dict):
            raise RulesError(f"{where}: must be a mapping")
        check_keys(raw, allowed=DEFAULT_KEYS, where=where)
        defaults = _defaults(defaults, raw, where)
    rules = [
        _compile_rule(file, rule, index, defaults)
        for index, (file, rule) in enumerate(layered_rules(files))
    ]
    return CorrelationRules(rules, defaults)


def _defaults(base: CorrelationDefaults, raw: Mapping[str, Any], where: str) -> CorrelationDefaults:
    changes: dict[str, Any] = {}
    if "window" in raw:
        changes["window_ns"] = parse_duration(raw["window"], where=f"{where}: window")
    if "quiet" in raw:
        changes["quiet_ns"] = parse_duration(raw["quiet"], where=f"{where}: quiet")
    if "group" in raw:
        changes["group"] = _scopes(raw["group"], f"{where}: group", allow_empty=True)
    if "min_severity" in raw:
        value = raw["min_severity"]
        names = [s.value for s in Severity]
        if value not in names:
            raise RulesError(
                f"{where}: unknown min_severity {value!r}{did_you_mean(str(value), names)}"
            )
        changes["min_severity"] = Severity(value)
    return replace(base, **changes)


def _compile_rule(
    file: RuleFile, rule: LineDict, index: int, defaults: CorrelationDefaults
) -> CausalRule:
    where = rule_location(file, rule)
    check_keys(rule, allowed=RULE_KEYS, required=("id", "cause", "effect", "join"), where=where)
    if not _ID.match(rule["id"]):
        raise RulesError(f"{where}: id must be lowercase letters, digits, '-' or '.'")
    window = (
        parse_duration(rule["window"], where=f"{where}: window")
        if "window" in rule
        else defaults.window_ns
    )
    join = _scopes(rule["join"], f"{where}: join", allow_empty=False)
    sole_node = rule.get("sole_node", False)
    if not isinstance(sole_node, bool):
        raise RulesError(f"{where}: sole_node must be true or false")
    if sole_node and "node" not in join:
        raise RulesError(f"{where}: sole_node needs 'node' in join")
    overcomes = rule.get("overcomes", False)
    if not isinstance(overcomes, bool):
        raise RulesError(f"{where}: overcomes must be true or false")
    opens = rule.get("opens", True)
    if not isinstance(opens, bool):
        raise RulesError(f"{where}: opens must be true or false")
    return CausalRule(
        id=rule["id"],
        index=index,
        cause=_side(rule["cause"], f"{where}: cause"),
        effect=_side(rule["effect"], f"{where}: effect"),
        join=join,
        window_ns=window,
        sole_node=sole_node,
        overcomes=overcomes,
        opens=opens,
    )


def _side(raw: object, where: str) -> Side:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a mapping with at least a reason")
    check_keys(raw, allowed=SIDE_KEYS, required=("reason",), where=where)
    categories = string_set(raw, "category", where)
    names = [c.value for c in Category]
    for category in sorted(categories):
        if category not in names:
            raise RulesError(
                f"{where}: unknown category {category!r}{did_you_mean(category, names)}"
            )
    return Side(
        reasons=string_set(raw, "reason", where),
        types=string_set(raw, "type", where),
        kinds=string_set(raw, "kind", where),
        categories=categories,
        components=string_set(raw, "component", where),
        message=message_regex(raw.get("message"), where),
    )


def _scopes(value: object, where: str, *, allow_empty: bool) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RulesError(f"{where}: must be a list of scopes {list(SCOPES)}")
    if not values and not allow_empty:
        raise RulesError(f"{where}: must name at least one scope {list(SCOPES)}")
    for scope in values:
        if scope not in SCOPES:
            raise RulesError(f"{where}: unknown scope {scope!r}{did_you_mean(scope, SCOPES)}")
    if len(set(values)) != len(values):
        raise RulesError(f"{where}: lists a scope twice")
    return tuple(values)
