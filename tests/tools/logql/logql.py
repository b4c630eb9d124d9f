"""Parse LogQL with Grafana's own grammar (``@grafana/lezer-logql``).

``check_logql(exprs)`` returns a list of error strings, empty when every
expression parses. It runs ``check.mjs`` (Node) once for the whole list and
installs the pinned grammar with ``npm ci`` on first use (``node_modules``
next to this file, git-ignored).

Grafana interpolates template variables before its Loki editor validates a
query, so the same is done here first: the interval macros (``$__auto``,
``$__interval``, ``$__rate_interval``, ``$__range``) become ``5m`` and any
other variable (``$name``, ``${name}``, ``${name:fmt}``, ``[[name]]``)
becomes its value from ``variables`` or, by default, a placeholder that is
valid inside a string or regex (``__V_name__V__``). Pass ``variables`` for a
variable used as a number or a label name.

Used by tests/dashboards and the rule tests; keep the interface stable.
Command line: ``python tests/tools/logql/logql.py 'expr' ...`` (or
expressions on stdin, one per line).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

__all__ = ["DIR", "check_logql", "ensure_installed", "interpolate", "label_names", "parse_results"]

DIR = Path(__file__).resolve().parent
CHECKER = DIR / "check.mjs"
PACKAGE = "@grafana/lezer-logql"

INTERVAL_MACROS = {
    "__auto": "5m",
    "__interval": "5m",
    "__rate_interval": "5m",
    "__range": "1h",
    "__interval_ms": "300000",
    "__range_s": "3600",
    "__range_ms": "3600000",
}

# Grafana's variable syntaxes: $name, ${name}, ${name:format}, ${name.path:format}, [[name]], [[name:format]]
_VARIABLE = re.compile(
    r"\$(\w+)"
    r"|\[\[(\w+)(?::(\w+))?\]\]"
    r"|\$\{(\w+)(?:\.([^:^}]+))?(?::([^}]+))?\}"
)


def interpolate(expr: str, variables: Mapping[str, str] | None = None) -> str:
    """Replace Grafana variables and macros in ``expr`` as described above."""
    values = dict(INTERVAL_MACROS)
    if variables:
        values.update(variables)

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(4)
        if name in values:
            return values[name]
        return f"__V_{name}__V__"

    return _VARIABLE.sub(replace, expr)


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError(
            "node is not installed: the LogQL grammar check needs Node.js (>= 20) and npm"
        )
    return node


def _installed() -> bool:
    """The grammar in node_modules is the version package-lock.json pins."""
    marker = DIR / "node_modules" / "@grafana" / "lezer-logql" / "package.json"
    if not marker.exists():
        return False
    lock = json.loads((DIR / "package-lock.json").read_text())
    pinned = lock["packages"][f"node_modules/{PACKAGE}"]["version"]
    return bool(json.loads(marker.read_text()).get("version") == pinned)


def ensure_installed() -> None:
    """Install the pinned grammar with ``npm ci`` unless it is already there (idempotent, process-safe)."""
    if _installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError(
            "npm is not installed: run `npm ci --prefix tests/tools/logql` on a machine with Node.js"
        )
    with open(DIR / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if _installed():
                return
            proc = subprocess.run(
                [npm, "ci", "--prefix", str(DIR), "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=DIR,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            if proc.returncode != 0 or not _installed():
                raise RuntimeError(
                    f"npm ci --prefix {DIR} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}"
                )
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def parse_results(exprs: list[str]) -> list[dict]:
    """Run the grammar on ``exprs`` as given (no interpolation); one result dict per expression."""
    ensure_installed()
    proc = subprocess.run(
        [_node(), str(CHECKER)],
        input=json.dumps(list(exprs)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
    )
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{CHECKER.name} failed ({proc.returncode}): {proc.stderr.strip()}")
    results = json.loads(proc.stdout)
    if len(results) != len(exprs):
        raise RuntimeError(
            f"{CHECKER.name} answered {len(results)} results for {len(exprs)} expressions"
        )
    return results


def check_logql(exprs: list[str], variables: Mapping[str, str] | None = None) -> list[str]:
    """Parse every expression with ``@grafana/lezer-logql``; return one message per invalid expression.

    An empty list means every expression is valid LogQL. Messages name the
    expression and the first error position (line, column) in the
    interpolated text.
    """
    exprs = list(exprs)
    if not exprs:
        return []
    interpolated = [interpolate(e, variables) for e in exprs]
    errors: list[str] = []
    for original, result in zip(exprs, parse_results(interpolated), strict=True):
        if result["ok"]:
            continue
        first = result["errors"][0]
        where = f"line {first['line']} column {first['column']}"
        detail = first.get("message") or f"near {first['near']!r}"
        shown = result["expr"]
        suffix = "" if shown == original else f" (interpolated: {shown!r})"
        errors.append(
            f"LogQL syntax error at {where}, {detail} ({len(result['errors'])} error node(s)) in {original!r}{suffix}"
        )
    return errors


def label_names(exprs: list[str], variables: Mapping[str, str] | None = None) -> list[dict]:
    """The label names each expression reads and defines, from Grafana's syntax tree.

    One dict per expression: ``selector`` (names in stream selectors), ``used`` (names read
    after them: label filters, ``unwrap``, ``by``/``without``, ``keep``/``drop``,
    ``label_format`` sources, ``{{.name}}`` in templates), ``defined`` (names the
    expression makes: ``label_format`` targets, ``json``/``regexp``/``pattern``
    extractions) and ``parsers`` (true when a parser may extract names only the line
    decides). Raises ``ValueError`` for an expression that does not parse.
    """
    exprs = list(exprs)
    if not exprs:
        return []
    interpolated = [interpolate(e, variables) for e in exprs]
    found = []
    for original, result in zip(exprs, parse_results(interpolated), strict=True):
        if not result["ok"]:
            raise ValueError(f"LogQL syntax error in {original!r}")
        found.append(result["names"])
    return found


def main(argv: list[str]) -> int:
    exprs = argv or [line for line in sys.stdin.read().splitlines() if line.strip()]
    errors = check_logql(exprs)
    for error in errors:
        print(error)
    if not errors:
        print(f"ok: {len(exprs)} LogQL expression(s) parsed")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
