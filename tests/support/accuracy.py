"""How right kubevents' incidents are on the real-event corpus (``make accuracy``).

Each corpus file (tests/data/real, see :mod:`tests.support.corpus`) is replayed
on its own through the real pipeline, in process: ``app.replay`` with a jsonl
sink, exactly ``kubevents replay FILE --sink jsonl:OUT`` on the file's Events.
Then, per labelled incident:

* **together**: one cause row and every symptom row are in one incident;
* **root**: that incident's root cause (``kubevents.incident.root_cause.uid`` on
  its latest ``kubevents.incident`` record) is one of the cause rows;
* **right**: both (the issue's 90 % goal counts these).

Per file, each ``apart`` pair in one incident is a **false merge**. Over all
Events: the share whose category is not ``Other``, and the share of Warning
Events with severity warning or above.

Incident ids follow merges: a ``kubevents.incident`` record with state ``merged``
and ``kubevents.incident.merged_into`` joins its id to the surviving one
(union-find, so a chain of merges resolves to the last survivor). An Event with
no incident id of its own is in the incident whose root cause it is (a cause
that opened nothing until its symptoms arrived).

This lives with the tests, not in bench/: it is the oracle of
tests/e2e/test_accuracy.py, reads test data, and measures correctness, not speed;
``make bench`` only prints its table as one more section.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kubevents import app
from kubevents.settings import load_settings
from tests.support.corpus import CORPUS, ROOT, CorpusError, CorpusFile, corpus_files, load

FIGURES = CORPUS / "accuracy.json"
INCIDENT_ID = "kubevents.incident.id"
SEVERE = frozenset({"warning", "error", "critical"})


@dataclass(frozen=True, slots=True)
class IncidentScore:
    file: str
    index: int
    together: bool
    root: bool
    incident: str
    """The incident the cause and symptoms share ("" when they share none)."""
    root_reason: str
    """Reason of that incident's root cause, or what the rows' incidents were."""

    @property
    def right(self) -> bool:
        return self.together and self.root


@dataclass(slots=True)
class FileScore:
    file: str
    events: int = 0
    categorized: int = 0
    warnings: int = 0
    warnings_severe: int = 0
    incidents: list[IncidentScore] = field(default_factory=list)
    apart: int = 0
    false_merges: list[tuple[int, int]] = field(default_factory=list)
    error: str = ""
    single: int = 0
    """Labelled incidents with a cause and no symptom: nothing to group, not scored."""


@dataclass(slots=True)
class Totals:
    files: int = 0
    failed_files: int = 0
    incidents: int = 0
    together: int = 0
    root: int = 0
    right: int = 0
    apart: int = 0
    false_merges: int = 0
    events: int = 0
    categorized: int = 0
    warnings: int = 0
    warnings_severe: int = 0
    single: int = 0

    def figures(self) -> dict[str, float]:
        """The guarded figures, in percent (false merges as a count)."""
        return {
            "incidents_right_pct": _pct(self.right, self.incidents),
            "together_pct": _pct(self.together, self.incidents),
            "root_cause_pct": _pct(self.root, self.incidents),
            "false_merges": float(self.false_merges),
            "categorized_pct": _pct(self.categorized, self.events),
            "warning_severity_pct": _pct(self.warnings_severe, self.warnings),
        }


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 100.0


class _Ids:
    """Union-find over incident ids: a merged id resolves to its survivor."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        root = key
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while key != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def merge(self, gone: str, survivor: str) -> None:
        a, b = self.find(gone), self.find(survivor)
        if a != b:
            self.parent[a] = b


def replay_records(corpus: CorpusFile, workdir: Path) -> list[dict[str, Any]]:
    """The jsonl records of ``kubevents replay`` on the file's Events (in process)."""
    events = workdir / "events.jsonl"
    out = workdir / "records.jsonl"
    events.write_bytes(b"".join(orjson.dumps(row.obj) + b"\n" for row in corpus.rows))
    out.unlink(missing_ok=True)
    settings = load_settings(
        None, env={}, overrides={"sinks": (f"jsonl:{out}",), "replay.summary": False}
    )
    app.replay(settings, [str(events)])
    return [orjson.loads(line) for line in out.read_bytes().splitlines() if line.strip()]


def score_file(corpus: CorpusFile, records: Sequence[dict[str, Any]]) -> FileScore:
    """Score one replayed corpus file against its labels."""
    score = FileScore(_relative(corpus.path))
    ids = _Ids()
    latest: dict[str, dict[str, Any]] = {}  # incident id -> attributes of its latest record
    by_uid: dict[str, set[str]] = {}  # Event uid -> incident ids of its records
    last_record: dict[str, dict[str, Any]] = {}  # Event uid -> its latest record
    for record in records:
        attrs = record.get("attributes", {})
        if record.get("event_name") == "kubevents.incident":
            incident = str(attrs.get(INCIDENT_ID, ""))
            latest[incident] = attrs
            into = attrs.get("kubevents.incident.merged_into")
            if attrs.get("kubevents.incident.state") == "merged" and into:
                ids.merge(incident, str(into))
            continue
        if record.get("event_name") != "k8s.event":
            continue
        uid = str(attrs.get("k8s.event.uid", ""))
        last_record[uid] = record
        incident = attrs.get(INCIDENT_ID)
        by_uid.setdefault(uid, set())
        if incident:
            by_uid[uid].add(str(incident))
    roots: dict[str, str] = {}  # resolved incident id -> root cause uid (its latest record)
    reasons: dict[str, str] = {}
    for incident, attrs in latest.items():
        survivor = ids.find(incident)
        if survivor == incident or survivor not in latest:
            roots[survivor] = str(attrs.get("kubevents.incident.root_cause.uid", ""))
            reasons[survivor] = str(attrs.get("kubevents.incident.root_cause.reason", ""))
    rooted: dict[str, set[str]] = {}
    for incident, uid in roots.items():
        rooted.setdefault(uid, set()).add(incident)

    def incidents_of(uid: str) -> set[str]:
        found = {ids.find(i) for i in by_uid.get(uid, set())}
        return found or rooted.get(uid, set())

    for record in last_record.values():
        attrs = record.get("attributes", {})
        score.events += 1
        score.categorized += attrs.get("kubevents.category") != "Other"
        if record.get("severity_text") == "Warning":
            score.warnings += 1
            score.warnings_severe += attrs.get("kubevents.severity") in SEVERE
    for labelled in corpus.incidents:
        if not labelled.symptoms:
            # A cause with no symptom the source shows links nothing: there is no
            # grouping to score (its "apart" pairs still are).
            score.single += 1
            continue
        symptom_sets = [incidents_of(corpus.row(n).uid) for n in labelled.symptoms]
        cause_sets = [incidents_of(corpus.row(n).uid) for n in labelled.cause]
        shared = set.intersection(*symptom_sets) if symptom_sets else set().union(*cause_sets)
        candidates = sorted(i for i in shared if any(i in c for c in cause_sets))
        cause_uids = {corpus.row(n).uid for n in labelled.cause}
        chosen = next((i for i in candidates if roots.get(i) in cause_uids), "")
        chosen = chosen or (candidates[0] if candidates else "")
        seen = sorted(set().union(*cause_sets, *symptom_sets))
        score.incidents.append(
            IncidentScore(
                file=score.file,
                index=labelled.index,
                together=bool(chosen),
                root=bool(chosen) and roots.get(chosen) in cause_uids,
                incident=chosen,
                root_reason=reasons.get(chosen, "") if chosen else f"{len(seen)} incidents",
            )
        )
    for a, b in corpus.apart:
        score.apart += 1
        if incidents_of(corpus.row(a).uid) & incidents_of(corpus.row(b).uid):
            score.false_merges.append((a, b))
    return score


def score_corpus(paths: Iterable[Path]) -> tuple[list[FileScore], Totals]:
    """Load, replay and score every file; a file that fails to load is a failed file."""
    scores: list[FileScore] = []
    totals = Totals()
    with tempfile.TemporaryDirectory(prefix="kubevents-accuracy-") as tmp:
        for path in paths:
            totals.files += 1
            try:
                corpus = load(path)
            except CorpusError as e:
                totals.failed_files += 1
                scores.append(FileScore(_relative(path), error=str(e)))
                continue
            score = score_file(corpus, replay_records(corpus, Path(tmp)))
            scores.append(score)
            _add(totals, score)
    return scores, totals


def _add(totals: Totals, score: FileScore) -> None:
    totals.incidents += len(score.incidents)
    totals.together += sum(i.together for i in score.incidents)
    totals.root += sum(i.root for i in score.incidents)
    totals.right += sum(i.right for i in score.incidents)
    totals.apart += score.apart
    totals.false_merges += len(score.false_merges)
    totals.events += score.events
    totals.categorized += score.categorized
    totals.warnings += score.warnings
    totals.warnings_severe += score.warnings_severe
    totals.single += score.single


def render(scores: Sequence[FileScore], totals: Totals) -> str:
    """The tables ``make accuracy`` prints: per file, per incident, totals."""
    w = max([len(s.file) for s in scores] + [4])
    lines = ["Per file", ""]
    lines.append(
        f"{'file':<{w}} {'events':>6} {'categ%':>6} {'warn>=W%':>8} {'right':>7} {'false merges':>12}"
    )
    for s in scores:
        if s.error:
            lines.append(f"{s.file:<{w}} LOAD ERROR: {s.error}")
            continue
        right = sum(i.right for i in s.incidents)
        lines.append(
            f"{s.file:<{w}} {s.events:>6} {_pct(s.categorized, s.events):>6} "
            f"{_pct(s.warnings_severe, s.warnings):>8} {right:>3}/{len(s.incidents):<3} "
            f"{len(s.false_merges):>8}/{s.apart:<3}"
        )
    lines += ["", "Per incident", ""]
    lines.append(f"{'file':<{w}} {'#':>2} {'together':>8} {'root':>5}  incident / root cause")
    for s in scores:
        for i in s.incidents:
            lines.append(
                f"{s.file:<{w}} {i.index:>2} {_yes(i.together):>8} {_yes(i.root):>5}  "
                f"{i.incident or '-'} {i.root_reason}"
            )
        for a, b in s.false_merges:
            lines.append(f"{s.file:<{w}}    FALSE MERGE: rows {a} and {b} share an incident")
    f = totals.figures()
    lines += [
        "",
        "Totals",
        "",
        f"files {totals.files} ({totals.failed_files} failed to load), "
        f"labelled incidents {totals.incidents} (and {totals.single} with no symptom row, not scored)",
        f"cause and symptoms together: {totals.together}/{totals.incidents} ({f['together_pct']}%)",
        f"root cause right:            {totals.root}/{totals.incidents} ({f['root_cause_pct']}%)",
        f"both (right):                {totals.right}/{totals.incidents} "
        f"({f['incidents_right_pct']}%)",
        f"false merges:                {totals.false_merges}/{totals.apart} apart pairs",
        f"categorized (not Other):     {totals.categorized}/{totals.events} Events "
        f"({f['categorized_pct']}%)",
        f"Warning at severity >= warning: {totals.warnings_severe}/{totals.warnings} "
        f"({f['warning_severity_pct']}%)",
    ]
    return "\n".join(lines) + "\n"


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


def _relative(path: Path) -> str:
    for base in (CORPUS, ROOT):
        try:
            return path.resolve().relative_to(base).as_posix()
        except ValueError:
            continue
    return str(path)


def committed_figures(path: Path = FIGURES) -> dict[str, float]:
    """The figures the accuracy test guards (``tests/data/real/accuracy.json``)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {key: float(value) for key, value in data["figures"].items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make accuracy", description="Score kubevents' incidents on the real-event corpus."
    )
    parser.add_argument("paths", nargs="*", type=Path, help="corpus files (default: all)")
    parser.add_argument(
        "--write", action="store_true", help=f"write the totals to {_relative(FIGURES)}"
    )
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR, format="kubevents: %(levelname)s: %(message)s")
    scores, totals = score_corpus(args.paths or corpus_files())
    sys.stdout.write(render(scores, totals))
    if args.write:
        FIGURES.write_text(
            json.dumps(
                {
                    "note": "Measured by `make accuracy` on the corpus in this directory; "
                    "tests/e2e/test_accuracy.py fails when a total falls below these "
                    "(or false merges rise above).",
                    "files": totals.files,
                    "incidents": totals.incidents,
                    "figures": totals.figures(),
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 1 if totals.failed_files else 0


if __name__ == "__main__":
    sys.exit(main())
