"""Helpers of the alert-rule tests: promtool, the metrics contract, a PromQL scanner.

PromQL is checked in two steps. Syntax: the real parser, ``promtool check
rules`` (Prometheus 2.42 from Debian), on the shipped files or on a temporary
rule file wrapping expressions taken from elsewhere (Grafana provisioning).
Names: ``promql_names`` scans an expression *that promtool accepted* and
returns its metric selectors (name + matcher label names) and the label names
of its ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right``
clauses. On valid PromQL a scanner is exact for these: the grammar puts a
metric name only where an identifier is not followed by ``(`` and is not a
keyword, a label name only before a matcher operator inside ``{}`` or in a
modifier's parenthesised list, and everything else that looks like a name
(durations, strings, numbers) has its own token. ``tests/rules`` tests the
scanner on the tricky cases.

The metrics kubevents exposes come from the tables of ``docs/metrics.md``,
the contract a real scrape is tested against (``tests/e2e/test_sinks_metrics.py``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS_DIR = ROOT / "rules" / "alerts"
ALERT_RULES = ALERTS_DIR / "kubevents.rules.yaml"
ALERT_TESTS = sorted((ALERTS_DIR / "tests").glob("*.yaml"))
LOKI_RULES_DIR = ROOT / "rules" / "loki"
RUNBOOKS = ROOT / "docs" / "runbooks"
GRAFANA_ALERTING = ROOT / "grafana" / "provisioning" / "alerting"
METRICS_DOC = ROOT / "docs" / "metrics.md"

RUNBOOK_BASE = "https://github.com/kubevents/kubevents/blob/main/docs/runbooks/"
"""The one base URL of every runbook_url (docs/alerts.md says how to change it)."""

SEVERITIES = ("critical", "warning", "info")

SCRAPER_LABELS = frozenset({"cluster", "job", "instance"})
"""Labels the scraper adds: `cluster` (external label / relabeling), `job`, `instance`."""

SCRAPER_METRICS: dict[str, frozenset[str]] = {"up": frozenset()}
"""Series Prometheus itself writes for every target."""


# --- promtool ---------------------------------------------------------------------------


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        raise RuntimeError("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def run_promtool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=cwd,
    )


def check_promql(exprs: Iterable[str]) -> subprocess.CompletedProcess[str]:
    """``promtool check rules`` on a temporary file with one recording rule per expression."""
    rules = [{"record": f"check:expr_{i}:value", "expr": e} for i, e in enumerate(exprs)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "exprs.rules.yaml"
        path.write_text(yaml.safe_dump({"groups": [{"name": "check", "rules": rules}]}))
        return run_promtool("check", "rules", path)


# --- rule files -------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


GRAFANA_UIDS = {"KUBEVENTS_PROMETHEUS_UID": "prometheus", "KUBEVENTS_LOKI_UID": "loki"}
"""The data source uid variables of grafana/provisioning and their documented defaults
(docs/alerts.md; deploy/compose sets them so)."""


def grafana_expand(text: str, env: dict[str, str] | None = None) -> str:
    """Grafana's interpolation of a provisioning file, for the uid variables: ``${NAME}``
    and ``$NAME`` become their value (Grafana's os.ExpandEnv; an unset one is empty)."""
    values = GRAFANA_UIDS if env is None else env
    for name in GRAFANA_UIDS:
        text = text.replace("${" + name + "}", values.get(name, "")).replace(
            "$" + name, values.get(name, "")
        )
    return text


def load_grafana(path: Path, env: dict[str, str] | None = None) -> Any:
    """A grafana/provisioning file as Grafana reads it with ``env`` (default: the defaults)."""
    return yaml.safe_load(grafana_expand(path.read_text(), env))


def prometheus_rules(path: Path = ALERT_RULES) -> list[dict[str, Any]]:
    """Every rule of a rule file, with its group name under ``_group``."""
    out = []
    for group in load_yaml(path)["groups"]:
        for rule in group["rules"]:
            out.append({**rule, "_group": group["name"]})
    return out


def alerts(path: Path = ALERT_RULES) -> list[dict[str, Any]]:
    return [r for r in prometheus_rules(path) if "alert" in r]


def recordings(path: Path = ALERT_RULES) -> list[dict[str, Any]]:
    return [r for r in prometheus_rules(path) if "record" in r]


# --- the metrics contract ---------------------------------------------------------------

_ROW = re.compile(
    r"^\| `([a-z0-9_]+)` \| (counter|gauge|histogram) \|[^|]*\|([^|]*)\| (stable|experimental) \|",
    re.MULTILINE,
)


def documented_metrics(text: str | None = None) -> dict[str, frozenset[str]]:
    """Prometheus series name -> label names, from the tables of docs/metrics.md.

    A histogram ``x`` stands for ``x_bucket`` (with ``le``), ``x_sum`` and ``x_count``.
    """
    if text is None:
        text = METRICS_DOC.read_text()
    out: dict[str, frozenset[str]] = {}
    for m in _ROW.finditer(text):
        name, kind = m.group(1), m.group(2)
        labels = frozenset(re.findall(r"`([a-z0-9_]+)`", m.group(3)))
        if kind == "histogram":
            out[f"{name}_bucket"] = labels | {"le"}
            out[f"{name}_sum"] = labels
            out[f"{name}_count"] = labels
        else:
            out[name] = labels
    return out


# --- PromQL scanner ---------------------------------------------------------------------

FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
LABEL_LIST_KEYWORDS = frozenset(["by", "without", "on", "ignoring", "group_left", "group_right"])
OTHER_KEYWORDS = frozenset(
    ["bool", "and", "or", "unless", "offset", "atan2", "start", "end", "inf", "nan"]
)

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?(?:\d+(?:ms|[smhdwy]))*)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){}\[\],@:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Selector:
    """One vector selector: the metric name (None for ``{__name__=~...}``) and its matcher labels."""

    metric: str | None
    labels: frozenset[str]


@dataclass
class PromQLNames:
    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        return {s.metric for s in self.selectors if s.metric is not None}


def _tokens(expr: str) -> Iterator[tuple[str, str]]:
    pos = 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            raise ValueError(f"cannot scan PromQL at {pos}: {expr[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        if kind != "ws":
            yield kind, m.group()


def promql_names(expr: str) -> PromQLNames:
    """Metric selectors and grouping labels of a (valid) PromQL expression."""
    toks = list(_tokens(expr))
    out = PromQLNames()
    i = 0
    brackets = 0  # inside [range] or [range:step]

    def matchers(start: int) -> tuple[int, set[str], str | None]:
        """Parse ``{...}`` from toks[start] == '{'; return (index after '}', labels, __name__ value)."""
        labels: set[str] = set()
        name = None
        j = start + 1
        while toks[j][1] != "}":
            kind, text = toks[j]
            if kind in ("ident", "string") and toks[j + 1][1] in ("=", "!=", "=~", "!~"):
                label = text if kind == "ident" else text[1:-1]
                op, value = toks[j + 1][1], toks[j + 2][1][1:-1]
                if label == "__name__":
                    name = value if op == "=" else None
                    if op != "=":
                        labels.add("__name__")
                else:
                    labels.add(label)
                j += 3
            else:
                j += 1  # ','
        return j + 1, labels, name

    while i < len(toks):
        kind, text = toks[i]
        nxt = toks[i + 1][1] if i + 1 < len(toks) else ""
        if text == "[":
            brackets += 1
        elif text == "]":
            brackets -= 1
        elif brackets:
            pass
        elif kind == "ident" and text in LABEL_LIST_KEYWORDS:
            if nxt == "(":
                j = i + 2
                while toks[j][1] != ")":
                    if toks[j][0] == "ident":
                        out.grouping.add(toks[j][1])
                    j += 1
                i = j
        elif kind == "ident" and (text in OTHER_KEYWORDS or text.lower() in ("inf", "nan")):
            pass
        elif kind == "ident" and text in AGGREGATIONS and nxt in ("by", "without"):
            pass  # sum by (...) (...)
        elif kind == "ident" and nxt == "(":
            if text not in FUNCTIONS and text not in AGGREGATIONS:
                raise ValueError(f"unknown PromQL function {text!r} in {expr!r}")
        elif kind == "ident":
            labels: set[str] = set()
            if nxt == "{":
                i, labels, _ = matchers(i + 1)
                out.selectors.append(Selector(text, frozenset(labels)))
                continue
            out.selectors.append(Selector(text, frozenset()))
        elif text == "{":
            i, labels, name = matchers(i)
            out.selectors.append(Selector(name, frozenset(labels)))
            continue
        i += 1
    return out


# --- cross-check ------------------------------------------------------------------------


@dataclass
class Catalog:
    """What an expression may name: exposed metrics, recording rules, label names."""

    metrics: dict[str, frozenset[str]]
    extra_labels: frozenset[str] = SCRAPER_LABELS

    @property
    def all_labels(self) -> frozenset[str]:
        labels: set[str] = set(self.extra_labels)
        for names in self.metrics.values():
            labels |= names
        return frozenset(labels)


def recording_catalog(
    rules: list[dict[str, Any]], exposed: dict[str, frozenset[str]]
) -> dict[str, frozenset[str]]:
    """Labels of each recorded series: its static labels plus the labels its expression keeps
    (the grouping labels when it aggregates, else the labels of the series it reads)."""
    known = dict(exposed)
    out: dict[str, frozenset[str]] = {}
    for rule in rules:  # rules may read earlier recordings
        names = promql_names(rule["expr"])
        if names.grouping:
            labels = set(names.grouping)
        else:
            labels = set()
            for s in names.selectors:
                labels |= known.get(s.metric or "", frozenset())
        labels |= set(rule.get("labels") or {})
        merged = out.get(rule["record"], frozenset()) | frozenset(labels)
        out[rule["record"]] = merged
        known[rule["record"]] = merged
    return out


def unknown_names(expr: str, catalog: Catalog, where: str) -> list[str]:
    """Problems with the metric and label names of ``expr``: one message each."""
    problems = []
    names = promql_names(expr)
    used_metrics: set[str] = set()
    for sel in names.selectors:
        if sel.metric is None:
            problems.append(f"{where}: selector without a fixed metric name cannot be checked")
            continue
        if sel.metric not in catalog.metrics:
            problems.append(f"{where}: unknown metric {sel.metric!r}")
            continue
        used_metrics.add(sel.metric)
        allowed = catalog.metrics[sel.metric] | catalog.extra_labels
        for label in sorted(sel.labels - allowed):
            problems.append(f"{where}: metric {sel.metric!r} has no label {label!r}")
    available = set(catalog.extra_labels)
    for metric in used_metrics:
        available |= catalog.metrics[metric]
    for label in sorted(names.grouping - available):
        problems.append(f"{where}: grouping label {label!r} is on none of the metrics used")
    return problems


_TEMPLATE_LABEL = re.compile(r"\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)")


def template_labels(text: str) -> set[str]:
    return set(_TEMPLATE_LABEL.findall(text))


# --- Grafana-managed alert rules --------------------------------------------------------


def grafana_rules() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """(file, group, rule) of every rule in grafana/provisioning/alerting."""
    out = []
    for path in sorted(GRAFANA_ALERTING.glob("*.y*ml")):
        for group in load_grafana(path).get("groups") or []:
            for rule in group.get("rules") or []:
                out.append((path, group, rule))
    return out


def grafana_queries(datasource: str) -> list[tuple[str, str]]:
    """(where, expr) of every query of one datasource uid in the Grafana alert rules."""
    out = []
    for _, _, rule in grafana_rules():
        for query in rule.get("data") or []:
            if query.get("datasourceUid") == datasource:
                out.append((f"{rule.get('title')}/{query.get('refId')}", query["model"]["expr"]))
    return out


def grafana_promql() -> list[tuple[str, str]]:
    return grafana_queries("prometheus")


def grafana_logql() -> list[tuple[str, str]]:
    return grafana_queries("loki")


# --- Loki rules -------------------------------------------------------------------------


def loki_rule_files() -> list[Path]:
    return sorted(LOKI_RULES_DIR.glob("*/*.yaml"))


def loki_rules() -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    out = []
    for path in loki_rule_files():
        for group in load_yaml(path)["groups"]:
            for rule in group["rules"]:
                out.append((path, group, rule))
    return out
