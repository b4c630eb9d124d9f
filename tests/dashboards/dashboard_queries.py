"""Read the generated dashboards: panels, queries, variables; and the checks the tests run.

Each ``*_errors`` function returns a list of messages (empty: the rule holds),
so the tests can show every violation at once and the negative tests can run
the same check on a broken copy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "grafana" / "dashboards"
METRICS_DOC = ROOT / "docs" / "metrics.md"

EXPECTED_UIDS = {
    "kubevents-overview.json": "kubevents-overview",
    "kubevents-incidents.json": "kubevents-incidents",
    "kubevents-explorer.json": "kubevents-explorer",
    "kubevents-health.json": "kubevents-health",
}
ALLOWED_DATASOURCE_UIDS = {"${datasource}", "${loki_datasource}", "-- Grafana --", "grafana"}
#: Panels that have no unit option (they show text or log lines, not numbers).
UNITLESS_PANEL_TYPES = {"logs", "row", "text", "news", "dashlist"}
#: Labels the scraper adds (not documented per metric in docs/metrics.md).
SCRAPE_LABELS = {"cluster", "job", "instance"}
GRAFANA_BUILTINS = {
    "__auto",
    "__interval",
    "__interval_ms",
    "__rate_interval",
    "__range",
    "__range_s",
    "__range_ms",
    "__all",
    "__url_time_range",
    "__value",
    "__data",
    "__field",
    "__series",
    "__from",
    "__to",
    "__dashboard",
    "__org",
    "__user",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load_all() -> dict[str, dict[str, Any]]:
    return {p.name: load(p) for p in sorted(DASHBOARDS_DIR.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # panel title or variable name
    kind: str  # "prometheus" or "loki"
    expr: str
    instant: bool = False


def _ds_type(ds: Any) -> str | None:
    if isinstance(ds, dict):
        return ds.get("type")
    return None


def queries(dashboard: dict[str, Any]) -> list[Query]:
    """Every panel target's and annotation's expression and every Prometheus query variable's selector."""
    uid = dashboard.get("uid", "?")
    found: list[Query] = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            kind = _ds_type(target.get("datasource")) or _ds_type(panel.get("datasource"))
            if kind is None:
                raise AssertionError(
                    f"{uid}: panel {panel.get('title')!r} target without a datasource type"
                )
            found.append(
                Query(
                    uid,
                    f"panel {panel.get('title')!r} ({target.get('refId')})",
                    kind,
                    target.get("expr", ""),
                    bool(target.get("instant")) or target.get("queryType") == "instant",
                )
            )
    for annotation in dashboard.get("annotations", {}).get("list", []):
        kind = _ds_type(annotation.get("datasource"))
        if kind in ("loki", "prometheus"):
            expr = annotation.get("expr") or (annotation.get("target") or {}).get("expr", "")
            found.append(Query(uid, f"annotation {annotation.get('name')!r}", kind, expr))
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        q = var.get("query")
        q = q.get("query", "") if isinstance(q, dict) else q
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q or "")
        if _ds_type(var.get("datasource")) == "prometheus" and m:
            found.append(Query(uid, f"variable {var['name']!r}", "prometheus", m.group(1)))
        else:
            found.append(
                Query(
                    uid,
                    f"variable {var['name']!r}",
                    _ds_type(var.get("datasource")) or "?",
                    q or "",
                )
            )
    return found


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


# ---------------------------------------------------------------------------
# Text helpers
# ---------------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')


def strip_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def ranges(expr: str) -> list[str]:
    """Contents of every `[...]` range outside string literals."""
    return re.findall(r"\[([^\]]*)\]", strip_strings(expr))


def call_arguments(expr: str, functions: set[str]) -> list[tuple[str, str]]:
    """(function, argument text) of every call of one of `functions`, outside strings."""
    text = strip_strings(expr)
    out = []
    for m in re.finditer(r"\b(" + "|".join(sorted(functions)) + r")\s*\(", text):
        depth, start = 0, m.end() - 1
        for i in range(start, len(text)):
            if text[i] == "(":
                depth += 1
            elif text[i] == ")":
                depth -= 1
                if depth == 0:
                    out.append((m.group(1), text[start + 1 : i]))
                    break
        else:
            out.append((m.group(1), text[start + 1 :]))
    return out


def variable_names(text: str) -> set[str]:
    names = set()
    for m in re.finditer(r"\$\{(\w+)(?:[.:][^}]*)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]", text):
        names.add(m.group(1) or m.group(2) or m.group(3))
    return names


# ---------------------------------------------------------------------------
# Structure checks
# ---------------------------------------------------------------------------


def identity_errors(name: str, d: dict[str, Any]) -> list[str]:
    errors = []
    if d.get("uid") != EXPECTED_UIDS.get(name):
        errors.append(f"{name}: uid {d.get('uid')!r}, expected {EXPECTED_UIDS.get(name)!r}")
    if not isinstance(d.get("uid"), str) or not 8 <= len(d["uid"]) <= 40:
        errors.append(f"{name}: uid must be a string of 8-40 characters")
    if "id" not in d or d["id"] is not None:
        errors.append(f"{name}: id must be null for provisioning, is {d.get('id', '<missing>')!r}")
    for key in ("title", "description"):
        if not d.get(key):
            errors.append(f"{name}: no dashboard {key}")
    if "kubevents" not in d.get("tags", []):
        errors.append(f"{name}: not tagged kubevents")
    return errors


def variable_errors(d: dict[str, Any]) -> list[str]:
    uid = d.get("uid")
    errors = []
    vs = variables(d)
    for name, ds_type in (("datasource", "prometheus"), ("loki_datasource", "loki")):
        v = vs.get(name)
        if v is None:
            errors.append(f"{uid}: no {name} variable")
        elif v.get("type") != "datasource" or v.get("query") != ds_type:
            errors.append(f"{uid}: {name} must be a datasource variable of type {ds_type}, is {v}")
    for name, label in (("cluster", "cluster"), ("namespace", "k8s_namespace_name")):
        v = vs.get(name)
        if v is None:
            errors.append(f"{uid}: no {name} variable")
            continue
        if v.get("type") != "query":
            errors.append(f"{uid}: {name} must be a query variable")
        if v.get("datasource") != {"type": "prometheus", "uid": "${datasource}"}:
            errors.append(
                f"{uid}: {name} must query ${{datasource}}, queries {v.get('datasource')}"
            )
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if not re.fullmatch(r"label_values\(\w+(\{.*\})?,\s*" + label + r"\)", q or ""):
            errors.append(f"{uid}: {name} must be label_values(<metric>, {label}), is {q!r}")
        if v.get("refresh") != 2:
            errors.append(f"{uid}: {name} must refresh on time range change (2)")
        if not (v.get("includeAll") and v.get("allValue") == ".*" and v.get("multi")):
            errors.append(f"{uid}: {name} must be multi-value with All = .*")
    return errors


def panel_errors(d: dict[str, Any]) -> list[str]:
    uid = d.get("uid")
    errors = []
    for p in panels(d):
        title = p.get("title")
        where = f"{uid}: panel {title!r}"
        if not title:
            errors.append(f"{uid}: a {p.get('type')} panel without a title")
        if p.get("type") == "row":
            continue
        if not p.get("description"):
            errors.append(f"{where}: no description")
        if p.get("type") not in UNITLESS_PANEL_TYPES and not p.get("fieldConfig", {}).get(
            "defaults", {}
        ).get("unit"):
            errors.append(f"{where}: no unit")
        if not p.get("targets"):
            errors.append(f"{where}: no targets")
        refs = [t.get("refId") for t in p.get("targets", [])]
        if any(not r for r in refs) or len(set(refs)) != len(refs):
            errors.append(f"{where}: refIds must be non-empty and unique, are {refs}")
        pos = p.get("gridPos", {})
        if not (
            1 <= pos.get("w", 0) <= 24
            and pos.get("x", -1) >= 0
            and pos["x"] + pos["w"] <= 24
            and pos.get("h", 0) > 0
        ):
            errors.append(f"{where}: bad gridPos {pos}")
    boxes = [(p.get("title"), p["gridPos"]) for p in panels(d) if "gridPos" in p]
    for i, (a, pa) in enumerate(boxes):
        for b, pb in boxes[i + 1 :]:
            if (
                pa["x"] < pb["x"] + pb["w"]
                and pb["x"] < pa["x"] + pa["w"]
                and pa["y"] < pb["y"] + pb["h"]
                and pb["y"] < pa["y"] + pa["h"]
            ):
                errors.append(f"{uid}: panels {a!r} and {b!r} overlap")
    return errors


def _datasource_refs(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource":
                yield f"{path}.{k}", v
            yield from _datasource_refs(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _datasource_refs(v, f"{path}[{i}]")


def datasource_errors(d: dict[str, Any]) -> list[str]:
    """Every datasource reference is one of the two variables; every panel and target names one."""
    uid = d.get("uid")
    errors = []
    for path, ref in _datasource_refs(d):
        if isinstance(ref, str):
            errors.append(
                f"{uid}: {path} is a bare string {ref!r}; use {{type, uid: ${{datasource}}}}"
            )
        elif isinstance(ref, dict) and ref.get("uid") not in ALLOWED_DATASOURCE_UIDS:
            errors.append(f"{uid}: {path} uses a hard-coded datasource uid {ref.get('uid')!r}")
    for p in panels(d):
        if p.get("type") == "row":
            continue
        ds = p.get("datasource")
        if not isinstance(ds, dict) or ds.get("uid") not in {"${datasource}", "${loki_datasource}"}:
            errors.append(f"{uid}: panel {p.get('title')!r} datasource must be a variable, is {ds}")
        for t in p.get("targets", []):
            tds = t.get("datasource")
            if tds is not None and (not isinstance(tds, dict) or tds != ds):
                errors.append(
                    f"{uid}: panel {p.get('title')!r} target {t.get('refId')} datasource {tds} != panel's"
                )
            expected = {"prometheus": "${datasource}", "loki": "${loki_datasource}"}.get(
                _ds_type(tds or ds) or ""
            )
            if (tds or ds or {}).get("uid") != expected:
                errors.append(
                    f"{uid}: panel {p.get('title')!r}: datasource type and variable do not match"
                )
    return errors


RANGE_FUNCTIONS_PROMQL = {"rate", "irate", "increase"}
RANGE_FUNCTIONS_LOGQL = {
    "rate",
    "count_over_time",
    "bytes_rate",
    "bytes_over_time",
    "absent_over_time",
    "sum_over_time",
    "avg_over_time",
    "max_over_time",
    "min_over_time",
    "first_over_time",
    "last_over_time",
    "stdvar_over_time",
    "stddev_over_time",
    "quantile_over_time",
    "rate_counter",
}


def promql_interval_errors(qs: list[Query]) -> list[str]:
    errors = []
    for q in qs:
        if q.kind != "prometheus":
            continue
        for fn, arg in call_arguments(q.expr, RANGE_FUNCTIONS_PROMQL):
            if "[$__rate_interval]" not in arg.replace(" ", ""):
                errors.append(
                    f"{q.dashboard} {q.where}: {fn}() without [$__rate_interval]: {q.expr}"
                )
        for r in ranges(q.expr):
            if r.strip() != "$__rate_interval":
                errors.append(
                    f"{q.dashboard} {q.where}: PromQL range [{r}] is not [$__rate_interval]: {q.expr}"
                )
    return errors


def logql_interval_errors(qs: list[Query]) -> list[str]:
    errors = []
    for q in qs:
        if q.kind != "loki":
            continue
        for fn, arg in call_arguments(q.expr, RANGE_FUNCTIONS_LOGQL):
            if "[$__auto]" not in arg.replace(" ", ""):
                errors.append(f"{q.dashboard} {q.where}: {fn}() without [$__auto]: {q.expr}")
        for r in ranges(q.expr):
            if r.strip() != "$__auto":
                errors.append(
                    f"{q.dashboard} {q.where}: LogQL range [{r}] is not [$__auto]: {q.expr}"
                )
    return errors


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)?\{([^{}]*)\}")


def selector_errors(qs: list[Query]) -> list[str]:
    """PromQL: every series selector filters on the cluster; LogQL: every stream is kubevents' in the cluster."""
    errors = []
    for q in qs:
        text = q.expr
        if q.where == "variable 'cluster'":
            continue  # the variable that lists the clusters
        if q.kind == "prometheus":
            names = promql_metric_names(text)
            for m in re.finditer(
                r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\{([^}]*)\})?(?!\s*\()", text
            ):
                if m.group(1) in names and 'cluster=~"$cluster"' not in (m.group(3) or ""):
                    errors.append(
                        f'{q.dashboard} {q.where}: {m.group(1)} without cluster=~"$cluster": {text}'
                    )
        elif q.kind == "loki":
            streams = re.findall(r"\{([^{}]*)\}", re.sub(r"\{\{[^}]*\}\}", "", text))
            if not streams:
                errors.append(f"{q.dashboard} {q.where}: no stream selector: {text}")
            for s in streams:
                # $stream: kubevents' stream matcher under either label profile of the sink
                if "$stream" not in s or 'k8s_cluster_name=~"$cluster"' not in s:
                    errors.append(
                        f"{q.dashboard} {q.where}: stream {{{s}}} is not kubevents' in $cluster"
                    )
    return errors


def link_errors(d: dict[str, Any], all_uids: set[str]) -> list[str]:
    uid = d.get("uid")
    errors = []
    tag_links = [
        link
        for link in d.get("links", [])
        if link.get("type") == "dashboards" and "kubevents" in link.get("tags", [])
    ]
    if not tag_links:
        errors.append(f"{uid}: no dashboards link on the kubevents tag")
    for link in tag_links:
        if not (link.get("includeVars") and link.get("keepTime")):
            errors.append(f"{uid}: the dashboards link must keep time and variables")
    text = json.dumps(d)
    for target in re.findall(r"/d/([\w-]+)", text):
        if target not in all_uids:
            errors.append(f"{uid}: a link points to unknown dashboard uid {target!r}")
    return errors


def variable_reference_errors(d: dict[str, Any]) -> list[str]:
    """Every $variable used in a query, title or link is defined (or a Grafana built-in)."""
    uid = d.get("uid")
    defined = set(variables(d)) | GRAFANA_BUILTINS
    errors = []
    used: set[str] = set()
    for p in panels(d):
        used |= variable_names(json.dumps(p))
    for v in variables(d).values():
        q = v.get("query")
        used |= variable_names(q if isinstance(q, str) else json.dumps(q))
    for name in sorted(used - defined):
        errors.append(f"{uid}: ${name} is used but not defined")
    return errors


# ---------------------------------------------------------------------------
# PromQL metric and label names
# ---------------------------------------------------------------------------

PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "and",
    "or",
    "unless",
    "offset",
    "inf",
    "nan",
    "atan2",
}


def _strip_groupings(text: str) -> str:
    return re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are neither functions, keywords nor labels."""
    text = strip_strings(expr)
    text = re.sub(r"\{[^}]*\}", " {} ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = _strip_groupings(text)
    names = set()
    for m in re.finditer(r"(?<![\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in PROMQL_KEYWORDS:
            continue
        names.add(name)
    return names


def promql_label_uses(expr: str) -> tuple[dict[str, set[str]], set[str]]:
    """(labels matched per metric selector, labels in by/without/on/ignoring clauses)."""
    text = expr
    per_metric: dict[str, set[str]] = {}
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}", text):
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", strip_strings(m.group(2))))
        per_metric.setdefault(m.group(1), set()).update(labels)
    grouping: set[str] = set()
    for m in re.finditer(
        r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", strip_strings(expr)
    ):
        grouping |= {x.strip() for x in m.group(1).split(",") if x.strip()}
    return per_metric, grouping


def documented_metrics(doc: str) -> dict[str, set[str]]:
    """Metric name -> documented labels, from the tables of docs/metrics.md.

    Histograms also document `<name>_bucket` (with `le`), `_sum` and `_count`.
    """
    metrics: dict[str, set[str]] = {}
    header: list[str] | None = None
    for line in doc.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if header is None:
            header = [c.lower() for c in cells]
            continue
        if set("".join(cells)) <= set("-: "):
            continue
        m = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[0])
        if not m or "name" not in header[0]:
            # pattern.md-style tables name the Prometheus metric in another column
            prom_col = header.index("prometheus") if "prometheus" in header else None
            if prom_col is None:
                continue
            m = re.fullmatch(r"`([a-zA-Z_:][a-zA-Z0-9_:]*)`", cells[prom_col])
            if not m:
                continue
        name = m.group(1)
        labels: set[str] = set()
        if "labels" in header:
            labels = set(re.findall(r"`([a-zA-Z_]\w*)`", cells[header.index("labels")]))
            labels |= set(
                re.findall(r"(?<![`\w])([a-z_][a-z0-9_]*)(?=\s*\()", cells[header.index("labels")])
            )
        kind = cells[header.index("type")].lower() if "type" in header else ""
        metrics.setdefault(name, set()).update(labels)
        if "histogram" in kind:
            for suffix in ("_sum", "_count"):
                metrics.setdefault(name + suffix, set()).update(labels)
            metrics.setdefault(name + "_bucket", set()).update(labels | {"le"})
    return metrics


def metric_errors(qs: list[Query], documented: dict[str, set[str]]) -> list[str]:
    """Every metric a PromQL query uses is documented, and so is every label it filters or groups on."""
    errors = []
    for q in qs:
        if q.kind != "prometheus":
            continue
        names = promql_metric_names(q.expr)
        for name in sorted(names - set(documented)):
            errors.append(f"{q.dashboard} {q.where}: metric {name} is not in docs/metrics.md")
        per_metric, grouping = promql_label_uses(q.expr)
        for name, labels in per_metric.items():
            if name not in documented:
                continue
            for label in sorted(labels - documented[name] - SCRAPE_LABELS):
                errors.append(
                    f"{q.dashboard} {q.where}: {name} has no label {label} in docs/metrics.md"
                )
        known = (
            set().union(*(documented.get(n, set()) for n in names)) | SCRAPE_LABELS
            if names
            else SCRAPE_LABELS
        )
        for label in sorted(grouping - known):
            errors.append(
                f"{q.dashboard} {q.where}: grouping label {label} is on none of {sorted(names)}"
            )
    return errors


# ---------------------------------------------------------------------------
# Grafana macro substitution for the parsers
# ---------------------------------------------------------------------------

PROMQL_MACROS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__auto": "5m"}


def promql_for_promtool(expr: str) -> str:
    """The expression as Prometheus would receive it: macros and variables replaced."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        return PROMQL_MACROS.get(name, ".*")

    return re.sub(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]", sub, expr)
