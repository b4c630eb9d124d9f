"""Every name a LogQL expression reads is one the loki sink really writes.

Loki is under the AGPL, so this project does not run it (docs/testing.md); what running
the dashboards' and the Loki ruler's queries on it used to catch beyond syntax is mostly a
name that the records do not carry: a label the sink never writes, or writes under
another name (``reason`` for ``k8s_event_reason``, ``namespace`` for
``k8s_namespace_name``). Such a query is valid LogQL and silently finds nothing.

So the demo recording goes through kubevents' own pipeline and its real Loki encoder,
under each label profile, and the stream label and structured-metadata names it writes
are collected. Grafana's grammar (@grafana/lezer-logql) then names, for every expression
of the dashboards and of rules/loki, the labels its stream selectors use and the names it
reads after them; each must be among those written (stream selectors: among the stream
labels).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest
from dashboard_queries import ROOT, Query

from grafana.common import STREAM_MATCHERS
from kubevents import __version__
from kubevents.records import OutputRecord, ResourceInfo
from kubevents.sinks.loki_encode import PROFILES, LokiMapper
from tests.rules.rules_support import loki_rules
from tests.tools.logql.logql import label_names

DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"

LOKI_NAMES = frozenset({"__error__", "__error_details__", "detected_level"})
"""Names Loki itself adds to every entry it returns (parse errors, and the level it
derives from ``severity_number``)."""


def _ns(stamp: str) -> int:
    head, _, frac = stamp.rstrip("Z").partition(".")
    seconds = int(dt.datetime.fromisoformat(head + "+00:00").timestamp())
    return seconds * 10**9 + int(frac.ljust(9, "0")[:9] or 0)


def _records(path: Path) -> Iterable[OutputRecord]:
    for line in path.read_bytes().splitlines():
        r = orjson.loads(line)
        yield OutputRecord(
            timestamp_ns=_ns(r["timestamp"]),
            observed_ns=_ns(r["observed_timestamp"]),
            severity_number=r["severity_number"],
            severity_text=r["severity_text"],
            event_name=r["event_name"],
            body=r["body"],
            namespace=r["resource"].get("k8s.namespace.name", ""),
            attributes=r["attributes"],
        )


@pytest.fixture(scope="module")
def demo_records(tmp_path_factory: pytest.TempPathFactory) -> list[OutputRecord]:
    out = tmp_path_factory.mktemp("names") / "records.jsonl"
    code = "import sys; from kubevents.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "replay", str(DEMO), "--sink", f"jsonl:{out}",
         "--no-summary", "--cluster-name", "demo"],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return list(_records(out))


def written(records: list[OutputRecord], profile: str) -> tuple[set[str], set[str]]:
    """(stream label names, structured-metadata names) the sink writes for ``records``."""
    mapper = LokiMapper(ResourceInfo(__version__, "test", "demo"), profile=profile)
    labels: set[str] = set()
    metadata: set[str] = set()
    for stream in mapper.streams(records):
        labels.update(name for name, _ in stream.labels)
        for entry in stream.entries:
            metadata.update(name for name, _ in entry.metadata)
    return labels, metadata


def name_errors(
    exprs: list[tuple[str, str]], labels: set[str], metadata: set[str], stream: str
) -> list[str]:
    """One message per name an expression reads that the sink does not write."""
    found = label_names([e for _, e in exprs], {"stream": stream})
    errors = []
    for (where, expr), names in zip(exprs, found, strict=True):
        for name in names["selector"]:
            if name not in labels:
                errors.append(f"{where}: stream label {name!r} is not written: {expr}")
        known = labels | metadata | LOKI_NAMES | set(names["defined"])
        for name in names["used"]:
            if name not in known and not names["parsers"]:
                errors.append(f"{where}: {name!r} is neither a label nor metadata: {expr}")
    return errors


def dashboard_exprs(queries: list[Query]) -> list[tuple[str, str]]:
    return [(f"{q.dashboard} {q.where}", q.expr) for q in queries if q.kind == "loki"]


def rule_exprs() -> list[tuple[str, str]]:
    return [
        (f"{path.name} {rule.get('alert') or rule.get('record')}", rule["expr"])
        for path, _group, rule in loki_rules()
    ]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_dashboard_query_reads_only_names_the_sink_writes(
    all_queries: list[Query], demo_records: list[OutputRecord], profile: str
) -> None:
    labels, metadata = written(demo_records, profile)
    exprs = dashboard_exprs(all_queries)
    assert len(exprs) >= 15
    assert name_errors(exprs, labels, metadata, STREAM_MATCHERS[profile]) == []


def test_every_loki_rule_reads_only_names_the_sink_writes(demo_records: list[OutputRecord]) -> None:
    """The ruler's rules are written for kubevents' own labels (docs/alerts.md)."""
    labels, metadata = written(demo_records, "kubevents")
    exprs = rule_exprs()
    assert len(exprs) >= 5
    assert name_errors(exprs, labels, metadata, STREAM_MATCHERS["kubevents"]) == []


def test_the_profiles_differ_where_the_chart_does(demo_records: list[OutputRecord]) -> None:
    """The check can only catch a wrong name if the profiles really write different ones."""
    ours, _ = written(demo_records, "kubevents")
    chart, chart_metadata = written(demo_records, "k8s-monitoring")
    assert ours == {"service_name", "k8s_cluster_name", "k8s_namespace_name"}
    assert {"job", "namespace", "reason", "level", "cluster"} <= chart
    assert {"name", "node", "k8s_event_reason"} <= chart_metadata


@pytest.mark.parametrize(
    ("expr", "wrong"),
    [
        ('{$stream, k8s_cluster_name=~"$cluster"} | reason="BackOff"', "'reason'"),
        ('{$stream, k8s_namespace="shop"}', "'k8s_namespace'"),
        ('sum by (k8s_event_reasons) (count_over_time({$stream} [5m]))', "'k8s_event_reasons'"),
        ('sum(sum_over_time({$stream} | unwrap kubevents_occurence [5m]))', "'kubevents_occurence'"),
        ('{$stream} | line_format "{{.k8s_object}}"', "'k8s_object'"),
        ('{$stream, k8s_event_reason="BackOff"}', "'k8s_event_reason'"),  # metadata, not a label
    ],
)
def test_a_name_the_sink_does_not_write_is_reported(
    demo_records: list[OutputRecord], expr: str, wrong: str
) -> None:
    labels, metadata = written(demo_records, "kubevents")
    errors = name_errors([("t", expr)], labels, metadata, STREAM_MATCHERS["kubevents"])
    assert len(errors) == 1 and wrong in errors[0], errors
    # and the same names are accepted where the sink does write them
    fine = (
        'sum by (k8s_namespace_name) (sum_over_time({$stream, k8s_cluster_name=~"$cluster"}'
        ' | k8s_event_reason="BackOff" | unwrap kubevents_occurrences [5m]))'
    )
    assert name_errors([("t", fine)], labels, metadata, STREAM_MATCHERS["kubevents"]) == []


def test_the_chart_profile_has_its_own_label_names(demo_records: list[OutputRecord]) -> None:
    labels, metadata = written(demo_records, "k8s-monitoring")
    errors = name_errors([("t", '{job="x", k8s_event_uid="y"} | kind="Pod"')], labels, metadata, "")
    assert len(errors) == 2 and "'k8s_event_uid'" in errors[0] and "'kind'" in errors[1], errors
