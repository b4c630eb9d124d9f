"""docs/attributes.md is the contract: it must match conventions.py and the real output."""

from __future__ import annotations

import re
from pathlib import Path

from kubevents import conventions as c

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| `([a-z0-9_.]+)` \| (string|int|bool|double) \| (stable|experimental) \|", re.MULTILINE
)


def documented() -> dict[str, str]:
    """Attribute name -> type, from the tables of docs/attributes.md."""
    text = (ROOT / "docs" / "attributes.md").read_text()
    return {m.group(1): m.group(2) for m in ROW.finditer(text)}


def declared() -> set[str]:
    """Every attribute key conventions.py declares (resource and record)."""
    values = {v for k, v in vars(c).items() if k.isupper() and isinstance(v, str) and "." in v}
    values -= {c.EVENT_NAME_EVENT, c.EVENT_NAME_INCIDENT, c.EVENT_NAME_PATTERN}
    kinds = {c.kind_name_key(kind) for kind in c.SEMCONV_KINDS}
    return values | {k for k in kinds if k}


def test_docs_list_exactly_the_declared_attributes() -> None:
    docs, code = set(documented()), declared()
    assert sorted(code - docs) == [], "declared in conventions.py but not documented"
    assert sorted(docs - code) == [], "documented but not declared in conventions.py"


def test_real_output_uses_only_documented_attributes_with_documented_types(
    jsonl_demo_records,
) -> None:  # type: ignore[no-untyped-def]
    docs = documented()
    seen: dict[str, set[str]] = {}
    for record in jsonl_demo_records:
        for key, value in {**record["resource"], **record["attributes"]}.items():
            kind = {bool: "bool", int: "int", str: "string", float: "double"}[type(value)]
            seen.setdefault(key, set()).add(kind)
    undocumented = sorted(set(seen) - set(docs))
    assert undocumented == []
    wrong = {k: v for k, v in seen.items() if v != {docs[k]}}
    assert wrong == {}
