"""Classification: every Event gets a category and a severity from rules.

Rules are compiled once into immutable matchers. Precedence is explicit: the
first matching rule wins, trying higher ``priority`` first, then rules with
more conditions (a reason+message rule beats a reason-only rule), then file
order. Rules that name a reason are indexed by it, so the common case (an
exact reason) costs a dict lookup and no regex scan; a message regex only
runs after the cheap conditions passed.

``match.component`` names the reporting controller; a value with ``*`` is a
glob (``managed/*``), for operators that name their recorders after the
resource they reconcile. Packs (``rules/packs/``) match on it wherever a
reason is shared with core Kubernetes (``Failed``, ``Created``, ``Synced``),
so that a pack never changes how a core Event is classified.

When nothing matches, the Kubernetes type decides (``defaults:``) and the
result says so (``rule_id`` is None), so unclassified reasons can be counted.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kubevents.conventions import Category, Severity
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
from kubevents.model import Classification, KubeEvent

RULE_KEYS = ("id", "description", "match", "category", "severity", "priority", "disabled")
MATCH_KEYS = ("reason", "type", "kind", "component", "namespace", "message")
FILE_KEYS = ("version", "kind", "defaults", "rules")
EVENT_TYPES = ("Normal", "Warning")
_ID = re.compile(r"^[a-z0-9][a-z0-9.-]*$")

FALLBACK = {
    "Normal": Classification(Category.OTHER, Severity.INFO, None),
    "Warning": Classification(Category.OTHER, Severity.WARNING, None),
}


@dataclass(frozen=True, slots=True)
class ClassificationRule:
    """One compiled rule. Empty condition sets mean "any"."""

    id: str
    reasons: frozenset[str]
    types: frozenset[str]
    kinds: frozenset[str]
    components: frozenset[str]
    namespaces: frozenset[str]
    message: re.Pattern[str] | None
    result: Classification
    priority: int
    order: int
    component_glob: re.Pattern[str] | None = None
    """The ``match.component`` values with ``*``, as one anchored regex."""

    @property
    def specificity(self) -> int:
        """How many conditions the rule has."""
        sets = (self.reasons, self.types, self.kinds, self.namespaces)
        has_component = bool(self.components) or self.component_glob is not None
        return sum(1 for s in sets if s) + has_component + (self.message is not None)

    def matches(self, event: KubeEvent) -> bool:
        """True when every condition of the rule holds for ``event``."""
        return self.matches_but_message(event) and (
            self.message is None or self.message.search(event.message) is not None
        )

    def matches_but_message(self, event: KubeEvent) -> bool:
        """True when every condition but ``message`` holds for ``event``."""
        if self.types and event.type not in self.types:
            return False
        if self.kinds and event.regarding.kind not in self.kinds:
            return False
        if (self.components or self.component_glob is not None) and not self._component_matches(
            event.reporting_controller
        ):
            return False
        return not self.namespaces or event.regarding.namespace in self.namespaces

    def _component_matches(self, component: str) -> bool:
        if component in self.components:
            return True
        return self.component_glob is not None and self.component_glob.match(component) is not None


def _sort_key(rule: ClassificationRule) -> tuple[int, int, int]:
    return (-rule.priority, -rule.specificity, rule.order)


MEMO_MESSAGES: Final = 1024
"""Messages whose message conditions a candidate list remembers (then it starts over)."""
MEMO_MESSAGE_MAX: Final = 256
"""Longer messages are not remembered (each is searched again): a memo's size is bounded."""
_MEMO_RULES: Final = 30
"""Message rules of a candidate list that the memo covers: two bits each in a small int."""


class _Candidates:
    """The rules one reason (or none) may match, in precedence order, with a memo of
    their message conditions.

    Messages repeat: a series update says what its Event said, and many Pods fail
    the same probe or wait on the same nodes with the same words. The regular
    expressions of the message conditions were most of the stage's time, so the
    list remembers, per message, which of its message rules it tested (bit ``2i``)
    and which matched (bit ``2i + 1``). The other conditions are tested every
    time, so the result is the one the rules give.
    """

    def __init__(self, rules: tuple[ClassificationRule, ...]) -> None:
        self.rules = rules
        slots: list[int] = []
        n = 0
        for rule in rules:
            if rule.message is not None and n < _MEMO_RULES:
                slots.append(2 * n)
                n += 1
            else:
                slots.append(-1)
        self.slots = tuple(slots)
        """Per rule: the bit of its message condition in the memo, or -1."""
        self.memo: dict[str, int] = {}

    def classify(self, event: KubeEvent) -> ClassificationRule | None:
        message = event.message
        known = -1  # the memo's bits of this message, looked up at the first need
        rules, slots = self.rules, self.slots
        for i in range(len(rules)):  # indexes: compiled, zip() is a call to the builtin
            rule = rules[i]
            if not rule.matches_but_message(event):
                continue
            slot = slots[i]
            pattern = rule.message
            if pattern is None:
                return rule
            if slot < 0 or len(message) > MEMO_MESSAGE_MAX:
                if pattern.search(message) is not None:
                    return rule
                continue
            if known < 0:
                known = self.memo.get(message, 0)
            if known >> slot & 1:
                if known >> (slot + 1) & 1:
                    return rule
                continue
            matched = pattern.search(message) is not None
            known |= (3 if matched else 1) << slot
            memo = self.memo
            if message not in memo and len(memo) >= MEMO_MESSAGES:
                memo.clear()  # bounded; the results do not change
            memo[message] = known
            if matched:
                return rule
        return None


class Classifier:
    """Assigns a :class:`Classification` to each Event; the same Event always gets the
    same result. Its memos of message conditions (:class:`_Candidates`) only ever hold
    what the rules give, so a call from another thread still gets the rules' result."""

    def __init__(
        self,
        rules: Sequence[ClassificationRule],
        defaults: dict[str, Classification] | None = None,
    ) -> None:
        self.rules = tuple(sorted(rules, key=_sort_key))
        self.defaults = {**FALLBACK, **(defaults or {})}
        generic = [r for r in self.rules if not r.reasons]
        by_reason: dict[str, list[ClassificationRule]] = {}
        for rule in self.rules:
            for reason in rule.reasons:
                by_reason.setdefault(reason, []).append(rule)
        self._generic = tuple(generic)
        # Candidate lists per known reason, generic rules merged in precedence order.
        self._by_reason = {
            reason: tuple(sorted([*specific, *generic], key=_sort_key))
            for reason, specific in by_reason.items()
        }
        self._candidates = {reason: _Candidates(rules) for reason, rules in self._by_reason.items()}
        self._generic_candidates = _Candidates(self._generic)

    def classify(self, event: KubeEvent) -> Classification:
        """Return the first matching rule's result, or the type's default."""
        candidates = self._candidates.get(event.reason)
        if candidates is None:
            candidates = self._generic_candidates
        rule = candidates.classify(event)
        if rule is not None:
            return rule.result
        return self.defaults.get(event.type, self.defaults["Warning"])


def load_classifier(
    dirs: Sequence[Path] = (),
    *,
    include_shipped: bool = True,
    disabled_packs: Collection[str] = (),
) -> Classifier:
    """Build a :class:`Classifier` from the shipped rules and ``dirs``, layered by id,
    with every pack but ``disabled_packs``."""
    return compile_classifier(
        rule_files(
            "classification",
            dirs=dirs,
            include_shipped=include_shipped,
            disabled_packs=disabled_packs,
        )
    )


def compile_classifier(files: Sequence[RuleFile]) -> Classifier:
    """Validate and compile classification rule files (in layer order)."""
    defaults: dict[str, Classification] = {}
    for file in files:
        check_keys(file.data, allowed=FILE_KEYS, required=("version", "kind"), where=str(file.path))
        defaults.update(_defaults(file))
    compiled = [
        _compile_rule(file, rule, order) for order, (file, rule) in enumerate(layered_rules(files))
    ]
    return Classifier(compiled, defaults)


def _defaults(file: RuleFile) -> dict[str, Classification]:
    raw = file.data.get("defaults") or {}
    where = f"{file.path}:{line_of(raw) or file.data.line}: defaults"
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a mapping of Normal/Warning")
    out = {}
    for event_type, value in raw.items():
        if event_type not in EVENT_TYPES:
            raise RulesError(
                f"{where}: unknown type {event_type!r}{did_you_mean(event_type, EVENT_TYPES)}"
            )
        if not isinstance(value, dict):
            raise RulesError(f"{where}: {event_type} must be a mapping")
        check_keys(
            value, allowed=("category", "severity"), required=("category", "severity"), where=where
        )
        out[event_type] = Classification(
            _category(value["category"], where), _severity(value["severity"], where), None
        )
    return out


def _compile_rule(file: RuleFile, rule: LineDict, order: int) -> ClassificationRule:
    where = rule_location(file, rule)
    check_keys(
        rule, allowed=RULE_KEYS, required=("id", "match", "category", "severity"), where=where
    )
    if not _ID.match(rule["id"]):
        raise RulesError(f"{where}: id must be lowercase letters, digits, '-' or '.'")
    match = rule["match"]
    if not isinstance(match, dict) or not match:
        raise RulesError(f"{where}: 'match' must be a mapping with at least one condition")
    check_keys(match, allowed=MATCH_KEYS, where=f"{where}: match")
    types = string_set(match, "type", where)
    for event_type in types:
        if event_type not in EVENT_TYPES:
            raise RulesError(
                f"{where}: match.type {event_type!r} is not Normal or Warning{did_you_mean(event_type, EVENT_TYPES)}"
            )
    priority = rule.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise RulesError(f"{where}: priority must be an integer")
    components = string_set(match, "component", where)
    globs = sorted(c for c in components if "*" in c)
    return ClassificationRule(
        id=rule["id"],
        reasons=string_set(match, "reason", where),
        types=types,
        kinds=string_set(match, "kind", where),
        components=components.difference(globs),
        component_glob=re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None,
        namespaces=string_set(match, "namespace", where),
        message=message_regex(match.get("message"), where, "match.message"),
        result=Classification(
            _category(rule["category"], where), _severity(rule["severity"], where), rule["id"]
        ),
        priority=priority,
        order=order,
    )


def _category(value: object, where: str) -> Category:
    try:
        return Category(str(value))
    except ValueError:
        names = [c.value for c in Category]
        raise RulesError(
            f"{where}: unknown category {value!r}{did_you_mean(str(value), names)}"
        ) from None


def _severity(value: object, where: str) -> Severity:
    try:
        return Severity(str(value))
    except ValueError:
        names = [s.value for s in Severity]
        raise RulesError(
            f"{where}: unknown severity {value!r}{did_you_mean(str(value), names)}"
        ) from None
