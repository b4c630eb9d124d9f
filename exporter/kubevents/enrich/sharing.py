"""One copy of each repeated name, for state that outlives the Events.

Parsing JSON makes a new string for every value, so each Event brings its
own copy of its namespace, kind, reason and node names. State that keeps
such names for hours (the owner resolver's tables, pattern groups) would
keep one copy per entry: 100,000 learned Pods held 100,000 copies of a few
hundred namespaces and node names, about 140 bytes each. A
:class:`SharedStrings` hands out the first copy it saw instead.
"""

from __future__ import annotations

from typing import Final

MAX_SHARED: Final = 4096
"""Distinct names a :class:`SharedStrings` keeps before it starts over."""


class SharedStrings:
    """The first copy of each name seen, bounded.

    Only for names from small sets (namespaces, nodes, kinds, reasons), never
    for object names or uids: those do not repeat, and would only churn the
    table. Past ``max_entries`` distinct names it starts over; what is stored
    already keeps its copy, so a stream of novel names costs one bounded
    table and no more. Not ``sys.intern``: in Python 3.12 interned strings
    are never freed.
    """

    def __init__(self, *, max_entries: int = MAX_SHARED) -> None:
        self.max_entries = max_entries
        self._strings: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._strings)

    def __call__(self, text: str) -> str:
        """The shared copy of ``text`` (equal to it): :meth:`copy_of`."""
        return self.copy_of(text)

    def copy_of(self, text: str) -> str:
        """The shared copy of ``text`` (equal to it).

        The compiled build's callers call this method directly; calling the instance
        itself goes through ``__call__``'s Python-level wrapper (its arguments parsed
        as for any callable object), about 2% of the correlate stage when the hot path
        did so.
        """
        strings = self._strings
        shared = strings.get(text)
        if shared is None:
            if len(strings) >= self.max_entries:
                strings.clear()
            shared = strings[text] = text
        return shared
