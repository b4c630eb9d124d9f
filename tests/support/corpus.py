"""The real-event corpus (tests/data/real/**/*.yaml): load, check, number the rows.

The format is tests/data/real/README.md; every key it lists is checked here and
nothing else is accepted, so a typo is an error, not a silently ignored label.
Each error is one line naming the file and the key: ``FILE: labels.incidents[0].cause:
row 9 does not exist (the excerpts have 6 Event rows)``.

Excerpts in ``describe`` or ``get-events`` format are read with the replay's own
text parser (``kubevents.source.kubectl_text``), ``json`` and ``yaml`` ones with
the replay's file parser: the corpus is read exactly as ``kubevents replay``
would read the same text. A row either parser cannot read fails the file: the
corpus is real output, so a row it cannot read is a parser bug to fix.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubevents.source import kubectl_text
from kubevents.source.replaying import Problem, parse_items

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "real"
DEFAULT_NOW = "2026-01-01T00:00:00Z"
SOURCE_KINDS = frozenset(
    {"github-issue", "github-pr", "post-mortem", "knowledge-base", "docs", "forum", "blog"}
)
FORMATS = frozenset({"describe", "get-events", "json", "yaml"})
AREAS = frozenset(
    {
        "storage",
        "node",
        "scheduling",
        "autoscaling",
        "image",
        "config",
        "probe",
        "lifecycle",
        "network",
        "dns",
        "hpa",
        "job",
        "service",
        "operator",
    }
)
_TOP = {"source", "says", "cut", "excerpts", "labels"}
_SOURCE = {"url", "title", "kind", "retrieved"}
_EXCERPT = {"format", "now", "object", "header", "text"}
_OBJECT = {"kind", "namespace", "name", "node"}
_LABELS = {"incidents", "apart"}
_INCIDENT = {"cause", "symptoms"}


class CorpusError(ValueError):
    """A corpus file that does not follow the format: one line, file and key."""


@dataclass(frozen=True, slots=True)
class Row:
    """One Event row of a corpus file, numbered as the labels number it."""

    number: int
    obj: dict[str, Any]
    """The Event as the replay reads it (core/v1 or events.k8s.io/v1 JSON)."""
    where: str
    """``excerpts[i]`` and the line in its text."""

    @property
    def uid(self) -> str:
        return str(self.obj.get("metadata", {}).get("uid", ""))


@dataclass(frozen=True, slots=True)
class Incident:
    """One labelled incident: the cause rows (any is the right root) and the symptoms."""

    index: int
    cause: tuple[int, ...]
    symptoms: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CorpusFile:
    path: Path
    url: str
    area: str
    rows: tuple[Row, ...]
    incidents: tuple[Incident, ...]
    apart: tuple[tuple[int, int], ...]
    notes: tuple[str, ...]
    """What the parser guessed (``<unknown>`` ages...), one line each."""

    @property
    def name(self) -> str:
        return _display(self.path)

    def row(self, number: int) -> Row:
        return self.rows[number - 1]


def corpus_files(root: Path = CORPUS) -> list[Path]:
    """Every corpus file under ``root``, in a stable order."""
    return sorted(root.glob("**/*.yaml"))


def load(path: Path) -> CorpusFile:
    """Load and check one corpus file; raises :class:`CorpusError` (one line)."""
    name = _display(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise CorpusError(f"{name}: cannot read: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CorpusError(f"{name}{line}: invalid YAML: {getattr(e, 'problem', e)}") from None
    check = _Checker(name)
    doc = check.mapping(doc, "", _TOP, required=_TOP)
    area = path.parent.name
    if area not in AREAS:
        check.fail("", f"area directory {area!r} is not one of {', '.join(sorted(AREAS))}")
    source = check.mapping(doc["source"], "source", _SOURCE, required=_SOURCE)
    url = check.string(source["url"], "source.url")
    if not re.match(r"^https?://\S+$", url):
        check.fail("source.url", f"{url!r} is not an http(s) URL")
    check.string(source["title"], "source.title")
    if source["kind"] not in SOURCE_KINDS:
        check.fail(
            "source.kind", f"{source['kind']!r} is not one of {', '.join(sorted(SOURCE_KINDS))}"
        )
    if not isinstance(source["retrieved"], dt.date) and not (
        isinstance(source["retrieved"], str) and re.match(r"^\d{4}-\d\d-\d\d$", source["retrieved"])
    ):
        check.fail("source.retrieved", f"{source['retrieved']!r} is not a date (YYYY-MM-DD)")
    check.string(doc["says"], "says")
    if doc["cut"] is not None:
        check.string(doc["cut"], "cut")
    excerpts = doc["excerpts"]
    if not isinstance(excerpts, list) or not excerpts:
        check.fail("excerpts", "expected a non-empty list of excerpts")
    rows: list[Row] = []
    notes: list[str] = []
    for index, raw in enumerate(excerpts):
        rows += _excerpt(check, raw, index, path, len(rows), notes)
    labels = check.mapping(doc["labels"], "labels", _LABELS, required=_LABELS)
    incidents = _incidents(check, labels["incidents"], rows)
    apart = _apart(check, labels["apart"], rows)
    return CorpusFile(path, url, area, tuple(rows), incidents, apart, tuple(notes))


def _excerpt(
    check: _Checker, raw: Any, index: int, path: Path, before: int, notes: list[str]
) -> list[Row]:
    at = f"excerpts[{index}]"
    excerpt = check.mapping(raw, at, _EXCERPT, required={"format", "text"})
    fmt = excerpt["format"]
    if fmt not in FORMATS:
        check.fail(f"{at}.format", f"{fmt!r} is not one of {', '.join(sorted(FORMATS))}")
    text = check.string(excerpt["text"], f"{at}.text")
    now_text = excerpt.get("now") or DEFAULT_NOW
    if isinstance(now_text, dt.datetime):
        now_text = now_text.isoformat()
    try:
        now_ns = kubectl_text.parse_reference_time(str(now_text))
    except ValueError as e:
        check.fail(f"{at}.now", str(e))
    if "object" in excerpt and fmt != "describe":
        check.fail(f"{at}.object", f"only describe excerpts name their object, this one is {fmt}")
    if "header" in excerpt and fmt not in ("describe", "get-events"):
        check.fail(
            f"{at}.header", f"only describe and get-events excerpts have a header, not {fmt}"
        )
    uid_name = f"{_display(path)}#{index}"
    if fmt in ("json", "yaml"):
        return _structured(check, text, at, uid_name, before)
    default = None
    if excerpt.get("object") is not None:
        obj = check.mapping(excerpt["object"], f"{at}.object", _OBJECT, required={"kind", "name"})
        if obj.get("kind") not in kubectl_text.CLUSTER_SCOPED and "namespace" not in obj:
            check.fail(f"{at}.object.namespace", "missing (default when the source does not say)")
        default = kubectl_text.DefaultObject(
            kind=str(obj.get("kind") or ""),
            namespace=str(obj.get("namespace") or ""),
            name=str(obj.get("name") or ""),
            node=str(obj.get("node") or ""),
        )
    header = excerpt.get("header")
    if header is not None:
        header = check.string(header, f"{at}.header")
    parsed = kubectl_text.parse_text(
        text, name=uid_name, now_ns=now_ns, default=default, header=header
    )
    if parsed.problems:
        first = parsed.problems[0]
        more = f" (and {len(parsed.problems) - 1} more)" if len(parsed.problems) > 1 else ""
        if first.line == 0:  # the header: key
            check.fail(f"{at}.header", first.message)
        check.fail(f"{at}.text", f"line {first.line}: {first.message}{more}")
    if not parsed.events:
        check.fail(f"{at}.text", "no Event rows (a kubectl header row, then rows)")
    notes += [f"{at}.text line {n.line}: {n.message}" for n in parsed.notes]
    return [Row(before + e.row, e.obj, f"{at} line {e.line}") for e in parsed.events]


def _structured(check: _Checker, text: str, at: str, name: str, before: int) -> list[Row]:
    problems: list[Problem] = []
    rows: list[Row] = []
    for item in parse_items(text.encode("utf-8"), f"{at}.text", problems.append):
        obj = dict(item.obj)
        meta = dict(obj.get("metadata") or {})
        if not meta.get("uid"):  # rows are told apart by uid in the replay's records
            meta["uid"] = f"{name}:{before + len(rows) + 1}"
        obj["metadata"] = meta
        rows.append(Row(before + len(rows) + 1, obj, item.where))
    if problems:
        check.fail(f"{at}.text", f"{problems[0].where}: {problems[0].message}")
    if not rows:
        check.fail(f"{at}.text", "no Events in it")
    return rows


def _incidents(check: _Checker, raw: Any, rows: list[Row]) -> tuple[Incident, ...]:
    if not isinstance(raw, list) or not raw:
        check.fail("labels.incidents", "expected a non-empty list of incidents")
    out = []
    for i, item in enumerate(raw):
        at = f"labels.incidents[{i}]"
        incident = check.mapping(item, at, _INCIDENT, required=_INCIDENT)
        cause = _row_list(check, incident["cause"], f"{at}.cause", rows, empty=False)
        symptoms = _row_list(check, incident["symptoms"], f"{at}.symptoms", rows, empty=True)
        both = set(cause) & set(symptoms)
        if both:
            check.fail(at, f"row {min(both)} is both cause and symptom")
        out.append(Incident(i, cause, symptoms))
    return tuple(out)


def _apart(check: _Checker, raw: Any, rows: list[Row]) -> tuple[tuple[int, int], ...]:
    if not isinstance(raw, list):
        check.fail("labels.apart", "expected a list of row pairs ([] when none)")
    out = []
    for i, pair in enumerate(raw):
        at = f"labels.apart[{i}]"
        numbers = _row_list(check, pair, at, rows, empty=False)
        if len(numbers) != 2 or numbers[0] == numbers[1]:
            check.fail(at, f"expected a pair of two different rows, got {pair!r}")
        out.append((numbers[0], numbers[1]))
    return tuple(out)


def _row_list(
    check: _Checker, raw: Any, at: str, rows: list[Row], *, empty: bool
) -> tuple[int, ...]:
    if not isinstance(raw, list) or (not raw and not empty):
        check.fail(at, "expected a list of row numbers" + ("" if empty else " (at least one)"))
    for number in raw:
        if isinstance(number, bool) or not isinstance(number, int):
            check.fail(at, f"{number!r} is not a row number")
        if not 1 <= number <= len(rows):
            check.fail(
                at, f"row {number} does not exist (the excerpts have {len(rows)} Event rows)"
            )
    return tuple(raw)


class _Checker:
    def __init__(self, name: str) -> None:
        self.name = name

    def fail(self, key: str, message: str) -> Any:
        raise CorpusError(f"{self.name}: {key + ': ' if key else ''}{message}")

    def mapping(
        self, raw: Any, at: str, allowed: set[str], *, required: set[str]
    ) -> dict[str, Any]:
        if not isinstance(raw, dict):
            self.fail(at, f"expected a mapping, got {type(raw).__name__}")
        for key in raw:
            if key not in allowed:
                self.fail(
                    f"{at + '.' if at else ''}{key}",
                    f"unknown key (expected {', '.join(sorted(allowed))})",
                )
        for key in sorted(required - set(raw)):
            self.fail(f"{at + '.' if at else ''}{key}", "missing")
        return raw

    def string(self, raw: Any, at: str) -> str:
        if not isinstance(raw, str) or not raw.strip():
            self.fail(at, "expected a non-empty string")
        return str(raw)


def _display(path: Path) -> str:
    try:
        return path.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)
