"""Events read back from the text kubectl prints: ``get events`` and ``describe``.

That text is how people share Events (tickets, chat, bug reports), so
``kubevents replay`` reads it like a dump. Every table is read from its header
row, whatever the kubectl version:

* ``kubectl get events``: ``LAST SEEN TYPE REASON OBJECT MESSAGE``, with
  ``NAMESPACE`` first for ``-A``; ``-o wide`` adds ``SUBOBJECT``, ``SOURCE``
  and, after the message, ``FIRST SEEN``, ``COUNT`` and ``NAME``;
* the old ``get events``: ``LASTSEEN FIRSTSEEN COUNT NAME KIND SUBOBJECT TYPE
  REASON SOURCE MESSAGE`` (also ``LAST SEEN  FIRST SEEN``, and without
  ``TYPE``);
* the ``Events:`` section of ``kubectl describe``: ``Type Reason Age From
  Message`` (``Age`` like ``3m``, ``2d3h``, ``74m (x8 over 74m)``), and the old
  ``FirstSeen LastSeen Count From SubObjectPath Type Reason Message``. The
  object is the one the describe header names (``Name:``, ``Namespace:``,
  ``Node:``), or the caller's default object when the excerpt has no header.

Columns are found at the header's positions (kubectl aligns them with a
tabwriter). A row that does not fit them (a paste that lost its alignment, tab
separated output) is split on tabs and runs of two or more spaces, and its cells
are matched to the columns by what they look like; empty optional cells
(``SUBOBJECT``, ``From``) may be missing. The message is the rest of the row.

Ages are relative: each becomes a time before ``now_ns``, the reference time
(``--now``; the file's modification time by default). A series, ``74m (x8 over
80m)`` or the ``COUNT`` and ``FIRST SEEN`` columns, becomes one Event with its
count and its first and last times. ``<unknown>`` and ``<invalid>`` ages (an
Event without the timestamp kubectl printed, or one in kubectl's future) take
the reference time, and are noted once per text.

Each row becomes one core/v1 Event object, the shape ``normalize`` reads, with a
uid made from the text's name and the row's number, so a replay of the same text
gives the same uids. The module is pure: no I/O, no clock; problems are returned,
one line each, never raised.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = [
    "CLUSTER_SCOPED",
    "DefaultObject",
    "ParsedText",
    "TextEvent",
    "TextProblem",
    "looks_like_text",
    "parse_reference_time",
    "parse_text",
]


@dataclass(frozen=True, slots=True)
class DefaultObject:
    """The object a ``describe`` Events section is about when no header names it."""

    kind: str = ""
    namespace: str = ""
    name: str = ""
    node: str = ""


@dataclass(frozen=True, slots=True)
class TextEvent:
    """One Event read from a table row."""

    row: int
    """The row's number among the text's Event rows (1, 2, ...; failed rows count too)."""
    line: int
    """The row's line number in the text (1-based)."""
    obj: dict[str, Any]
    """The Event, as core/v1 JSON (what ``normalize`` reads)."""


@dataclass(frozen=True, slots=True)
class TextProblem:
    """Something in the text that could not be used (or, for a note, was guessed)."""

    line: int
    message: str


@dataclass(slots=True)
class ParsedText:
    """What :func:`parse_text` read."""

    events: list[TextEvent] = field(default_factory=list)
    problems: list[TextProblem] = field(default_factory=list)
    """Rows or layouts that could not be read: each was skipped."""
    notes: list[TextProblem] = field(default_factory=list)
    """Things read but guessed (``<unknown>`` ages, an object nobody named)."""
    rows: int = 0
    """Event rows seen, read or not: the numbers :attr:`TextEvent.row` runs through."""


# --- cells ---------------------------------------------------------------------------

_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "y": 365 * 86_400}
_DURATION = r"(?:\d+[smhdy])+"
_RFC3339 = r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?"
_RFC1123Z = r"[A-Z][a-z]{2}, \d\d? [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d (?:[+-]\d{4}|[A-Z]{3})"
_STAMP = rf"(?:<unknown>|<invalid>|{_DURATION}|{_RFC3339}|{_RFC1123Z})"
_TIME_CELL = re.compile(rf"^({_STAMP})(?: \(x(\d+) (?:over|from|starting) ({_STAMP})\))?$")
_DURATION_PART = re.compile(r"(\d+)([smhdy])")
_UNKNOWN = ("<unknown>", "<invalid>")


@dataclass(frozen=True, slots=True)
class _Time:
    """A parsed time cell: the latest occurrence, and the series it may print."""

    ns: int
    unknown: bool
    count: int = 0
    first_ns: int | None = None


def _stamp_ns(text: str, now_ns: int) -> int | None:
    """A single age or timestamp as ns since the epoch; None for ``<unknown>``.

    Raises ValueError for a timestamp of the right shape that is no time (month 13).
    """
    if text in _UNKNOWN:
        return None
    if text[0].isdigit() and text[-1] in _UNIT_S:
        seconds = sum(int(n) * _UNIT_S[unit] for n, unit in _DURATION_PART.findall(text))
        return now_ns - seconds * 1_000_000_000
    try:
        if "," in text:
            parsed = parsedate_to_datetime(text)
        else:
            parsed = datetime.fromisoformat(text.replace(" ", "T", 1))
    except (TypeError, ValueError):
        raise ValueError(text) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1000


def _parse_time(cell: str, now_ns: int) -> _Time | None:
    """A time cell (``74m (x8 over 80m)``), or None when it is not one."""
    match = _TIME_CELL.match(cell)
    if match is None:
        return None
    last, count, first = match.groups()
    try:
        last_ns = _stamp_ns(last, now_ns)
        first_ns = _stamp_ns(first, now_ns) if first else None
    except ValueError:
        return None
    return _Time(
        ns=now_ns if last_ns is None else last_ns,
        unknown=last_ns is None,
        count=int(count) if count else 0,
        first_ns=first_ns,
    )


_TYPE = re.compile(r"^(?:Normal|Warning)$")
_REASON = re.compile(r"^[A-Za-z][\w.:-]*$")
_OBJECT = re.compile(r"^(?:[A-Za-z][A-Za-z0-9.-]*(?:/\S*)?|/\S+)$")
"""``kind/name``: lower case from ``kubectl get events``, as the API spells it from
``kubectl events`` (``Pod/web-0``), ``/name`` for an Event whose object has no kind."""
_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")
_NAME = re.compile(r"^[A-Za-z0-9][\w.:@-]*$")
_NAMESPACE = re.compile(r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")
_COUNT = re.compile(r"^\d+$")
_SUBOBJECT = re.compile(
    r"^(?:(?:spec|status|metadata)\.\S+|\S*\{[^{}]*\}|<none>|implicitly required container \S+)$"
)
_SOURCE = re.compile(r"^(?:\{[^{}]*\}|[A-Za-z0-9][\w./:-]*(?:, ?[\w./:-]+)?)$")

_ANY_TIME = re.compile(rf"^{_STAMP}(?: \(x\d+ (?:over|from|starting) {_STAMP}\))?$")


@dataclass(frozen=True, slots=True)
class _Column:
    key: str
    """last, first, type, reason, object, kind, name, namespace, count, subobject,
    source, message."""
    title: str
    """As the header spells it (for messages)."""
    start: int
    """Offset of the title in the header line."""

    @property
    def optional(self) -> bool:
        return self.key in ("subobject", "source")

    def accepts(self, cell: str) -> bool:
        if not cell:
            return self.optional
        pattern = _VALIDATORS.get(self.key)
        return pattern is None or pattern.match(cell) is not None


_VALIDATORS: dict[str, re.Pattern[str]] = {
    "last": _ANY_TIME,
    "first": _ANY_TIME,
    "type": _TYPE,
    "reason": _REASON,
    "object": _OBJECT,
    "kind": _KIND,
    "name": _NAME,
    "namespace": _NAMESPACE,
    "count": _COUNT,
    "subobject": _SUBOBJECT,
    "source": _SOURCE,
}

_TITLES = {
    "LAST SEEN": "last",
    "LASTSEEN": "last",
    "LAST": "last",
    "AGE": "last",
    "FIRST SEEN": "first",
    "FIRSTSEEN": "first",
    "TYPE": "type",
    "REASON": "reason",
    "OBJECT": "object",
    "KIND": "kind",
    "NAME": "name",
    "NAMESPACE": "namespace",
    "COUNT": "count",
    "SUBOBJECT": "subobject",
    "SUBOBJECTPATH": "subobject",
    "SOURCE": "source",
    "FROM": "source",
    "MESSAGE": "message",
}
_HEADER_TOKEN = re.compile(r"LAST SEEN|FIRST SEEN|\S+", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Layout:
    columns: tuple[_Column, ...]
    describe: bool
    """True for a describe Events table (the object comes from the section)."""
    aligned: bool = True
    """False for a header that came from another output (``header=``): its positions
    say nothing about these rows, which are then read by shape only."""

    @property
    def message_index(self) -> int:
        return next(i for i, c in enumerate(self.columns) if c.key == "message")


def _header(line: str) -> _Layout | None:
    """The layout of a header row, or None when ``line`` is not one."""
    if "\t" in line:
        line = line.expandtabs(8)
    columns: list[_Column] = []
    for match in _HEADER_TOKEN.finditer(line):
        title = match.group(0)
        key = _TITLES.get(" ".join(title.upper().split()))
        if key is None:
            return None
        columns.append(_Column(key, title, match.start()))
    keys = [c.key for c in columns]
    if "reason" not in keys or "message" not in keys or "last" not in keys:
        return None
    if len(set(keys)) != len(keys):
        return None
    describe = "object" not in keys and "name" not in keys
    return _Layout(tuple(columns), describe)


# --- rows ----------------------------------------------------------------------------

_EVENTS_LINE = re.compile(r"^Events:\s*(?:<none>)?$")
_EVENT_NAME = re.compile(r"\.[0-9a-f]{8,}$")
"""The suffix of an Event's name: its object's name, a dot, the creation time in hex."""
_SEPARATOR = re.compile(r"^[\s\-─=]+$")


class _RowError(ValueError):
    """A row that does not fit its header: the message says how."""


def _cells_at_positions(line: str, layout: _Layout) -> dict[str, str] | None:
    """The row's cells at the header's column positions, or None when it is not aligned."""
    if "\t" in line or not layout.aligned:
        return None
    columns = layout.columns
    cells: dict[str, str] = {}
    for i, column in enumerate(columns):
        start = column.start
        end = columns[i + 1].start if i + 1 < len(columns) else len(line)
        if start > 0 and start < len(line) and line[start - 1] != " ":
            return None  # a cell runs across this column's start
        cell = line[start:end]
        if cell and cell[0] == " " and cell.strip():
            return None  # content that starts after the column start: not aligned
        cells[column.key] = cell.strip()
    if not all(c.accepts(cells[c.key]) for c in columns if c.key != "message"):
        return None
    return cells


_CELL = re.compile(r"\S+(?: \S+)*")
_WORD = re.compile(r"\S+")
_MAX_SPLIT_WORDS = 6
"""A cell kubectl separated from the next by one space (old tab-padded output) is split
after at most this many words: the longest cell before a message, a date like
``Wed, 03 Jun 2015 11:46:35 -0700``, has six."""


def _cells_by_shape(line: str, layout: _Layout) -> dict[str, str]:
    """The row's cells split on tabs and runs of spaces, matched to columns by shape.

    Empty optional cells may be missing; a cell that holds two columns' values
    separated by a single space is split where the first value ends.
    """
    text = line.replace("\t", "  ")
    pieces = [(m.start(), m.end()) for m in _CELL.finditer(text)]
    m = layout.message_index
    before, after = layout.columns[:m], layout.columns[m + 1 :]
    needed = len(before) - sum(c.optional for c in before) + 1 + len(after)
    out: dict[str, str] = {}
    end = len(pieces)
    for column in reversed(after):
        end -= 1
        if end < 1:
            raise _RowError(_ragged(len(pieces), layout))
        cell = text[pieces[end][0] : pieces[end][1]]
        if not column.accepts(cell):
            raise _RowError(_mismatch(column, cell))
        out[column.key] = cell

    def assign(ci: int, at: int, xi: int) -> tuple[list[tuple[str, str]], int] | None:
        """Columns ci.. from offset ``at`` in piece xi on; the matches and where the
        message starts."""
        if xi < end and at >= pieces[xi][1]:
            xi += 1
            if xi < end:
                at = pieces[xi][0]
        if ci == len(before):
            return ([], at) if xi < end else None
        column = before[ci]
        if xi < end:
            cell = text[at : pieces[xi][1]]
            if column.accepts(cell):
                rest = assign(ci + 1, pieces[xi][1], xi)
                if rest is not None:
                    return [(column.key, cell), *rest[0]], rest[1]
            words = list(_WORD.finditer(text, at, pieces[xi][1]))
            for word in words[: min(len(words) - 1, _MAX_SPLIT_WORDS)]:
                prefix = text[at : word.end()]
                if column.accepts(prefix):
                    rest = assign(ci + 1, word.end() + 1, xi)
                    if rest is not None:
                        return [(column.key, prefix), *rest[0]], rest[1]
        if column.optional:
            rest = assign(ci + 1, at, xi)
            if rest is not None:
                return [(column.key, ""), *rest[0]], rest[1]
        return None

    matched = assign(0, pieces[0][0], 0) if end > 0 else None
    if matched is None:
        if len(pieces) < needed:
            raise _RowError(_ragged(len(pieces), layout))
        cells = [text[a:b] for a, b in pieces]
        raise _RowError(_first_mismatch(before, cells))
    out.update(matched[0])
    out["message"] = text[matched[1] : pieces[end - 1][1]].strip()
    return out


def _ragged(cells: int, layout: _Layout) -> str:
    return f"{cells} cells where the header has {len(layout.columns)} columns ({_titles(layout)})"


def _continues(line: str, layout: _Layout) -> bool:
    """True when ``line`` cannot be a row of ``layout``, only more of a message (a message
    on several lines, or a terminal's wrap): it has fewer cells than a row, and its first
    cell is no value of the first column."""
    cells = _CELL.findall(line.replace("\t", "  "))
    if not cells or len(cells) >= sum(not c.optional for c in layout.columns):
        return False
    column = layout.columns[0]
    if column.accepts(cells[0]):
        return False
    if column.key in ("last", "first"):  # a time may be glued to the next cell
        words = cells[0].split(" ")
        return not any(column.accepts(" ".join(words[:n])) for n in range(1, min(len(words), 6)))
    return True


def _first_mismatch(columns: Sequence[_Column], cells: Sequence[str]) -> str:
    """The first cell that cannot be its column's, for the error line."""
    xi = 0
    for column in columns:
        if xi < len(cells) and column.accepts(cells[xi]):
            xi += 1
        elif not column.optional:
            cell = cells[xi] if xi < len(cells) else ""
            return _mismatch(column, cell)
    return "the cells do not fit the header's columns"


def _mismatch(column: _Column, cell: str) -> str:
    what = {
        "last": "an age (like 3m, 2d3h, 74m (x8 over 80m), <unknown>) or a time",
        "first": "an age (like 3m, 2d3h, <unknown>) or a time",
        "type": "Normal or Warning",
        "reason": "a reason (one word)",
        "object": "kind/name",
        "kind": "a kind (like Pod)",
        "name": "a name",
        "namespace": "a namespace",
        "count": "a count",
    }.get(column.key, "a value")
    shown = cell if len(cell) <= 60 else cell[:57] + "..."
    return f"{column.title} {shown!r} is not {what}"


def _titles(layout: _Layout) -> str:
    return " ".join(c.title for c in layout.columns)


# --- describe sections ---------------------------------------------------------------

_KEY = re.compile(r"^([A-Z][A-Za-z ()/-]*?):(?:\s+(.*))?$")
_KIND_HINTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HorizontalPodAutoscaler", ("Reference", "Min replicas", "Max replicas")),
    ("CronJob", ("Schedule", "Concurrency Policy", "Last Schedule Time")),
    ("Job", ("Completions", "Parallelism", "Completion Mode")),
    ("DaemonSet", ("Desired Number of Nodes Scheduled",)),
    ("Deployment", ("StrategyType", "NewReplicaSet", "OldReplicaSets", "RollingUpdateStrategy")),
    ("StatefulSet", ("Update Strategy", "Volume Claims")),
    ("ReplicaSet", ("Pods Status",)),
    ("PersistentVolume", ("Reclaim Policy", "Claim")),
    ("PersistentVolumeClaim", ("Access Modes", "Used By", "VolumeMode", "Volume")),
    ("Node", ("Roles", "Taints", "Unschedulable", "ExternalID", "System Info", "PodCIDR")),
    ("Pod", ("Containers", "Start Time", "QoS Class", "Node", "Init Containers")),
    ("Service", ("Session Affinity", "Endpoints", "TargetPort", "LoadBalancer Ingress")),
    ("Ingress", ("Rules", "Default backend")),
)
CLUSTER_SCOPED = frozenset(
    {
        "Node",
        "PersistentVolume",
        "Namespace",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "CSINode",
        "VolumeAttachment",
        "NodeClaim",
        "NodePool",
        "ClusterIssuer",
        "CustomResourceDefinition",
        "PriorityClass",
    }
)
_KINDS = {
    kind.lower(): kind
    for kind in (
        "Pod",
        "Node",
        "ReplicaSet",
        "Deployment",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "PersistentVolumeClaim",
        "PersistentVolume",
        "Service",
        "Endpoints",
        "EndpointSlice",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Namespace",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "ReplicationController",
        "PodDisruptionBudget",
        "StorageClass",
        "VolumeAttachment",
        "Lease",
        "NodeClaim",
        "NodePool",
        "Machine",
        "Certificate",
        "ScaledObject",
        "VerticalPodAutoscaler",
        "Gateway",
        "HTTPRoute",
    )
}


def _kind_of(lower: str) -> str:
    """``replicaset`` -> ``ReplicaSet`` (kubectl prints OBJECT in lower case)."""
    base = lower.split(".", 1)[0]
    return _KINDS.get(base.lower()) or (base[:1].upper() + base[1:])


@dataclass(slots=True)
class _Section:
    """The object a describe output is about, as its header says."""

    line: int
    keys: dict[str, str] = field(default_factory=dict)
    events_seen: bool = False

    def object(self, default: DefaultObject | None) -> DefaultObject:
        name = self.keys.get("Name", "")
        kind = self.keys.get("Kind", "")
        if not kind:
            kind = next((k for k, hints in _KIND_HINTS if any(h in self.keys for h in hints)), "")
        if not kind and default is not None and default.name in ("", name):
            kind = default.kind
        node = self.keys.get("Node", "").split("/", 1)[0]
        if node == "<none>":
            node = ""
        if kind == "Node":
            node = name
        namespace = self.keys.get("Namespace", "")
        if default is not None and default.name in ("", name):
            namespace = namespace or default.namespace
            node = node or default.node
        return DefaultObject(kind=kind, namespace=namespace, name=name, node=node)


# --- the text ------------------------------------------------------------------------


_CANDIDATE = re.compile(rb"(?im)^[^\n]*\breason\b[^\n]*\bmessage\b[^\n]*$|^[ \t]*events:[^\n]*$")
"""Lines that may be a header row or an ``Events:`` line: one pass in C over the
bytes, so that a large JSON or YAML dump is not decoded line by line to find out."""


_ROW_LIKE = re.compile(rb"(?m)(?:^|[ \t]{2,})(?:Normal|Warning)[ \t]{2,}")
_STRUCTURED_START = re.compile(rb"^(?:---|- |[\w.\"'-]+:(?:\s|$))")


def looks_like_text(data: bytes) -> bool:
    """True when ``data`` holds a kubectl Events table (a header row or ``Events:``), or
    rows of one that lost their header (which :func:`parse_text` then reports) in a text
    that does not start like YAML."""
    for match in _CANDIDATE.finditer(data):
        line = match.group(0).decode("utf-8", errors="replace").replace("\xa0", " ")
        if _EVENTS_LINE.match(line.strip()) or _header(line) is not None:
            return True
    first = data.lstrip().split(b"\n", 1)[0]
    return _STRUCTURED_START.match(first) is None and _ROW_LIKE.search(data) is not None


def parse_reference_time(text: str) -> int:
    """An RFC 3339 time (``--now``) as ns since the epoch; ValueError when it is not one."""
    if re.fullmatch(_RFC3339, text.strip()) is None:
        raise ValueError(f"expected an RFC 3339 time like 2026-01-01T00:00:00Z, got {text!r}")
    try:
        ns = _stamp_ns(text.strip(), 0)
    except ValueError:
        ns = None
    if ns is None:
        raise ValueError(f"expected an RFC 3339 time like 2026-01-01T00:00:00Z, got {text!r}")
    return ns


def parse_text(
    text: str,
    *,
    name: str,
    now_ns: int,
    default: DefaultObject | None = None,
    header: str | None = None,
) -> ParsedText:
    """Read every Event row of ``text`` (kubectl ``get events`` or ``describe`` output).

    ``name`` names the text in uids (the file name, say); ``now_ns`` is the
    reference time ages count back from; ``default`` is the object of describe
    Events sections no header names; ``header`` a header row to read the rows
    with when the text has none of its own (an excerpt cut below it).
    """
    parser = _Parser(name, now_ns, default)
    if header is not None:
        lines = [h for h in header.splitlines() if h.strip() and not _SEPARATOR.match(h)]
        layout = _header(lines[0]) if len(lines) == 1 else None
        if layout is None:
            parser.problem(0, f"header {header.strip()!r} is not a kubectl Events header row")
        else:
            parser.layout = dataclasses.replace(layout, aligned=False)
            parser.section_default = True
    # Pages copied from a browser turn spaces into no-break spaces; kubectl prints none.
    parser.feed(text.replace("\xa0", " ").splitlines())
    return parser.result


class _Parser:
    def __init__(self, name: str, now_ns: int, default: DefaultObject | None) -> None:
        self.name = name
        self.now_ns = now_ns
        self.default = default
        self.result = ParsedText()
        self.layout: _Layout | None = None
        self.section: _Section | None = None
        self.section_default = False
        """True when the table in progress belongs to no Name: header."""
        self.unknown_ages = 0
        self.first_unknown = 0
        self.noted_object = False
        """Whether an unknown described object was noted (once per text)."""
        self.previous: TextEvent | None = None
        """The last row read in the table in progress (the one a continuation line extends)."""

    def problem(self, line: int, message: str) -> None:
        self.result.problems.append(TextProblem(line, message))

    def note(self, line: int, message: str) -> None:
        self.result.notes.append(TextProblem(line, message))

    def feed(self, lines: Sequence[str]) -> None:
        loose = 0  # line of the first Event-looking row outside any table
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped:
                if self.layout is not None and self.result.rows:
                    self.layout = None
                    self.previous = None
                continue
            layout = _header(line)
            if layout is not None:
                self.previous = None
                self.layout = layout
                self.section_default = self.section is None or not layout.describe
                continue
            if _SEPARATOR.match(line):
                continue
            if self.layout is not None:
                if line.startswith(("Name:", "Events:")):
                    self.layout = None
                    self._section_line(line, number)
                    continue
                self._row(line, number)
                continue
            if self._section_line(line, number):
                continue
            if not loose and re.search(r"(?:^|\s\s|\t)(?:Normal|Warning)(?:\s\s|\t)", line):
                loose = number
        if loose and not self.result.rows:
            self.problem(
                loose,
                "Event rows without a header row above them: expected a kubectl header like"
                " 'LAST SEEN TYPE REASON OBJECT MESSAGE' or 'Type Reason Age From Message'",
            )
        if self.unknown_ages:
            self.note(
                self.first_unknown,
                f"{self.unknown_ages} row(s) with age <unknown> or <invalid>:"
                " their time is the reference time",
            )

    def _section_line(self, line: str, number: int) -> bool:
        """Describe header keys (``Name:`` at column 0 starts a section); True if one."""
        if line[:1].isspace():
            return False
        if line.startswith("Events:"):
            if self.section is not None:
                self.section.events_seen = True
            return True
        match = _KEY.match(line.rstrip())
        if match is None:
            return False
        key, value = match.group(1), (match.group(2) or "").strip()
        if key == "Name" and (self.section is None or self.section.events_seen):
            self.section = _Section(number)
        if self.section is not None and not self.section.events_seen:
            self.section.keys.setdefault(key, value)
        return True

    def _row(self, line: str, number: int) -> None:
        assert self.layout is not None
        layout = self.layout
        try:
            cells = _cells_at_positions(line, layout) or _cells_by_shape(line, layout)
        except _RowError as e:
            if self.previous is not None and _continues(line, layout):
                # A message on several lines (kubelet mount errors print the mount
                # command and its output on lines of their own).
                message = self.previous.obj["message"]
                self.previous.obj["message"] = f"{message}\n{line.strip()}"
                return
            self.result.rows += 1
            self.previous = None
            self.problem(number, str(e))
            return
        self.result.rows += 1
        try:
            obj = self._event(cells, layout, number, self.result.rows)
        except _RowError as e:
            self.previous = None
            self.problem(number, str(e))
            return
        self.previous = TextEvent(self.result.rows, number, obj)
        self.result.events.append(self.previous)

    def _event(
        self, cells: dict[str, str], layout: _Layout, number: int, row: int
    ) -> dict[str, Any]:
        last = self._time(cells, "last", layout, number)
        first = self._time(cells, "first", layout, number) if "first" in cells else None
        count = int(cells["count"]) if cells.get("count") else (last.count or 1)
        last_ns = last.ns
        first_ns = first.ns if first is not None else (last.first_ns or last_ns)
        first_ns = min(first_ns, last_ns)
        kind, name, namespace, node = self._object(cells, layout, number)
        component, host = _source(cells.get("source", ""))
        if not host and component == "kubelet" and node:
            host = node
        # NAME is the Event's name next to OBJECT (-o wide) and in the 1.11 layout
        # (object name, a dot, hex); in older layouts it is the object's name.
        event_name = cells.get("name", "")
        if "object" not in cells and not _EVENT_NAME.search(event_name):
            event_name = ""
        # A cluster-scoped object's Events live in a namespace (default), the object in none.
        involved_namespace = "" if kind in CLUSTER_SCOPED else (namespace or "default")
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": event_name,
                "namespace": namespace or involved_namespace or "default",
                "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"kubevents:text:{self.name}:{row}")),
            },
            "involvedObject": {
                "kind": kind,
                "namespace": involved_namespace,
                "name": name,
                **(
                    {"fieldPath": cells["subobject"]}
                    if cells.get("subobject") not in (None, "", "<none>")
                    else {}
                ),
            },
            "reason": cells.get("reason", ""),
            "type": cells.get("type", ""),
            "message": cells.get("message", ""),
            "count": count,
            "firstTimestamp": _rfc3339(first_ns),
            "lastTimestamp": _rfc3339(last_ns),
            "source": {"component": component, **({"host": host} if host else {})},
        }

    def _time(self, cells: dict[str, str], key: str, layout: _Layout, number: int) -> _Time:
        cell = cells.get(key, "")
        parsed = _parse_time(cell, self.now_ns)
        if parsed is None:
            column = next(c for c in layout.columns if c.key == key)
            raise _RowError(_mismatch(column, cell))
        if parsed.unknown and key == "last":
            if not self.unknown_ages:
                self.first_unknown = number
            self.unknown_ages += 1
        return parsed

    def _object(
        self, cells: dict[str, str], layout: _Layout, number: int
    ) -> tuple[str, str, str, str]:
        """Kind, name, namespace and node of the row's involved object."""
        default = self.default
        if "object" in cells:
            kind_text, _, name = cells["object"].partition("/")
            kind = _kind_of(kind_text)
            namespace = cells.get("namespace") or (default.namespace if default else "")
            node = name if kind == "Node" else ""
            return kind, name, namespace, node
        if "kind" in cells:
            name = cells.get("name", "")
            name = _EVENT_NAME.sub("", name)
            namespace = cells.get("namespace") or (default.namespace if default else "")
            kind = cells["kind"]
            return kind, name, namespace, name if kind == "Node" else ""
        if self.section is not None and not self.section_default:
            obj = self.section.object(default)
        else:
            obj = default or DefaultObject()
        if not obj.name and not self.noted_object:
            self.noted_object = True
            self.note(
                number,
                "describe Events without a Name: header above them: the described object"
                " is unknown",
            )
        elif obj.name and not obj.kind and not self.noted_object:
            self.noted_object = True
            self.note(number, f"cannot tell the kind of the described object {obj.name!r}")
        return obj.kind, obj.name, obj.namespace, obj.node


def _source(cell: str) -> tuple[str, str]:
    """``kubelet, node-1``, ``{kubelet node-1}``, ``kubelet`` -> (component, host)."""
    cell = cell.strip()
    if cell.startswith("{") and cell.endswith("}"):
        component, _, host = cell[1:-1].strip().partition(" ")
        return component, host.strip()
    component, _, host = cell.partition(",")
    return component.strip(), host.strip()


def _rfc3339(ns: int) -> str:
    return datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
