"""The reference: ``docs/config.md``, generated from the schema's field docstrings.

``python -m kubevents.settings.reference > docs/config.md``; a test fails when the
committed page is stale.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing
from typing import Any, Literal

from kubevents.settings.loading import env_name
from kubevents.settings.schema import Settings


def field_docs(cls: type) -> dict[str, str]:
    """The docstrings written under each field of a settings dataclass."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def settings_reference() -> str:
    """``docs/config.md``: every setting with its env name, default and docstring."""
    lines = [
        "# Configuration reference",
        "",
        "Generated from `exporter/kubevents/settings/schema.py` by `python -m kubevents.settings.reference`;",
        "a test fails when this page is stale. Precedence: flags > environment > file > defaults.",
        "",
        "| key | environment | type | default | description |",
        "| --- | --- | --- | --- | --- |",
    ]

    def walk(cls: type, instance: Any, prefix: tuple[str, ...]) -> None:
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        for f in dataclasses.fields(cls):
            value = getattr(instance, f.name)
            if dataclasses.is_dataclass(hints[f.name]):
                walk(typing.cast(type, hints[f.name]), value, (*prefix, f.name))
                continue
            path = (*prefix, f.name)
            kind = _hint_name(hints[f.name])
            default = list(value) if isinstance(value, tuple) else value
            lines.append(
                f"| `{'.'.join(path)}` | `{env_name(path)}` | {kind} | `{default!r}` | {docs.get(f.name, '')} |"
            )

    walk(Settings, Settings(), ())
    return "\n".join(lines) + "\n"


def _hint_name(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return "list of strings"
    return str(getattr(hint, "__name__", hint))


if __name__ == "__main__":
    print(settings_reference(), end="")
