"""Reading untrusted text and YAML without a traceback, a hang or a memory blow-up.

Every file kubevents reads (config, kubeconfig, rules, replay inputs) goes
through these checks, so each hostile input fails the same way: one
:class:`LoadProblem` naming the line and the problem, which the caller turns
into its own error (``ConfigError``, ``RulesError``, a skipped replay document).

* :func:`decode_utf8`: bytes that are not UTF-8 are reported with their line
  and column instead of a ``UnicodeDecodeError``.
* :func:`load_yaml`: deep nesting is refused by the parser's depth limit
  (libyaml) or by the recursion limit (the pure-Python parser), and a
  document whose aliases expand past :data:`MAX_NODES` values (a "billion
  laughs" bomb) is refused before anything walks it. PyYAML shares an
  aliased value instead of copying it, so the bomb costs nothing until some
  code walks the tree; the walk here counts the expansion without doing it.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_NODES = 1_000_000
"""Values a YAML document may expand to, aliases expanded. The largest shipped rule file
has about 3 000; a kubeconfig or config a few hundred; a replayed List a few per Event."""

MAX_DEPTH = 200
"""Nesting of a YAML document's values. Kubernetes objects are a dozen levels deep."""


class LoadProblem(ValueError):
    """Text or YAML that cannot be used; ``line`` is 1-based, 0 when unknown."""

    def __init__(self, message: str, line: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


def decode_utf8(data: bytes) -> str:
    """``data`` as text (a leading BOM dropped).

    Raises:
        LoadProblem: a byte sequence that is not UTF-8, with its line and column.
    """
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        byte = data[e.start]
        raise LoadProblem(f"not UTF-8 text (byte 0x{byte:02x} at column {column})", line) from None


def load_yaml(text: str | bytes, loader: type[Any]) -> Any:
    """Parse one YAML document with ``loader`` and check its size and depth.

    Raises:
        LoadProblem: invalid YAML, nested too deeply, or aliases that expand too far.
    """
    try:
        document = yaml.load(text, Loader=loader)  # the loaders passed are safe loaders
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 0
        problem = getattr(e, "problem", None) or str(e).split("\n", 1)[0]
        raise LoadProblem(f"invalid YAML: {problem}", line) from None
    except RecursionError:
        raise LoadProblem(f"invalid YAML: nested more than {MAX_DEPTH} levels deep") from None
    check_tree(document)
    return document


def check_tree(document: object, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a parsed document that nests deeper than ``max_depth`` or expands (shared
    values counted at every place they appear) to more than ``max_nodes`` values.

    Iterative, and each shared value is sized once: linear in the document as parsed.

    Raises:
        LoadProblem: what the limit was.
    """
    sizes: dict[int, int] = {}
    # (value, depth, children done?) — a post-order walk without recursion.
    stack: list[tuple[object, int, bool]] = [(document, 1, False)]
    while stack:
        value, depth, done = stack.pop()
        if not isinstance(value, dict | list):
            continue
        key = id(value)
        if key in sizes and not done:
            continue
        children = list(value.values()) if isinstance(value, dict) else value
        if not done:
            if depth > max_depth:
                raise LoadProblem(f"nested more than {max_depth} levels deep")
            sizes[key] = -1  # being sized: a cycle (YAML allows none in safe loading) stops here
            stack.append((value, depth, True))
            stack.extend((child, depth + 1, False) for child in children)
            continue
        total = 1 + len(children)
        for child in children:
            if isinstance(child, dict | list):
                total += max(sizes.get(id(child), 0), 0)
        sizes[key] = total
        if total > max_nodes:
            raise LoadProblem(
                f"the document expands to more than {max_nodes:,} values (YAML aliases)"
            )
