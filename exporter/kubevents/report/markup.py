"""What every view of the report page shares: escaping, numbers, sections, options."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Final

MAX_ROWS: Final = 50
"""Rows of the pattern, object, reason and controller tables."""
MESSAGE_MAX: Final = 300
"""Characters of an Event message shown (up to 1000 more in its tooltip)."""


@dataclass(frozen=True, slots=True)
class PageOptions:
    """How the page is made."""

    title: str = "kubevents report"
    grafana_url: str = ""
    """Grafana base URL: each incident links to its records in Explore."""
    grafana_datasource: str = "loki"
    """uid of the Loki data source in that Grafana (grafana/provisioning: ``loki``)."""
    inputs: tuple[str, ...] = ()


def esc(text: object) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return escape(str(text), quote=True)


def num(value: int) -> str:
    """``12,345``."""
    return f"{value:,}"


def plural(n: int, noun: str) -> str:
    """``1 incident``, ``3 incidents``."""
    return f"{num(n)} {noun}{'s' * (n != 1)}"


def section(anchor: str, title: str, explain: str, content: str, extra: str = "") -> str:
    """One view: its heading, the line on how to read it, its content."""
    return (
        f'<section id="{anchor}"{extra}><h2>{esc(title)}</h2>'
        f'<p class="explain">{explain}</p>{content}</section>'
    )


def tooltip(message: str, shown: int = MESSAGE_MAX) -> str:
    """A title attribute with more of a message that was cut, else nothing."""
    if len(message) <= shown:
        return ""
    return f' title="{esc(message[: shown + 1000])}"'
