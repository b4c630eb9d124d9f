"""``kubevents report``: one self-contained HTML page of what happened, for a post-mortem.

The page is built from kubevents' records (``reading.py``: jsonl records as they
are, Event dumps replayed into records first), aggregated (``model.py``) and
rendered as HTML with inline SVG charts (``page.py``, ``charts.py``,
``style.py``). It loads nothing from the network and reads without JavaScript.
docs/report.md explains each view.

May import: everything below the command line (``kubevents.app`` to replay a dump into
records, ``kubevents.source`` to read inputs, ``kubevents.enrich``, ``kubevents.settings``);
only ``kubevents.cli`` imports it (``.importlinter``: layers).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kubevents.enrich.pattern_rules import PatternRules, load_pattern_rules
from kubevents.errors import InputError
from kubevents.report.model import ReportData, build
from kubevents.report.page import PageOptions, render
from kubevents.report.reading import open_inputs
from kubevents.settings import Settings
from kubevents.source.replaying import Problem

logger = logging.getLogger(__name__)


class _Problems:
    """Logs each input problem on one line and counts them (shown on the page)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, problem: Problem) -> None:
        self.count += 1
        logger.warning("skipped %s: %s", problem.where, problem.message)


def _rules(settings: Settings) -> PatternRules:
    return load_pattern_rules(
        [Path(d) for d in settings.rules.dirs], include_shipped=settings.rules.include_shipped
    )


def collect(settings: Settings, paths: Sequence[str]) -> ReportData:
    """What the report shows, from its inputs (read three times, never held: model.py)."""
    problems = _Problems()
    with open_inputs(settings, paths, problems) as inputs:
        data = build(inputs, rules=_rules(settings))
    data.problems = problems.count  # known once the records have all been read
    return data


def report_html(data: ReportData, settings: Settings, options: PageOptions) -> str:
    """The page of ``data``."""
    return render(data, _rules(settings), options)


def write_report(
    settings: Settings,
    paths: Sequence[str],
    output: str,
    *,
    grafana_url: str = "",
    grafana_datasource: str = "loki",
    title: str = "",
) -> ReportData:
    """Read ``paths``, write the page to ``output`` (atomically: a reader never sees half)."""
    data = collect(settings, paths)
    options = PageOptions(
        title=title or "kubevents report",
        grafana_url=grafana_url,
        grafana_datasource=grafana_datasource,
        inputs=tuple("<stdin>" if p == "-" else os.path.basename(p) for p in paths),
    )
    html = report_html(data, settings, options)
    target = Path(output)
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent or Path("."), prefix=f".{target.name}.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(html)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        os.replace(tmp, target)
    except OSError as e:
        raise InputError(f"{output}: cannot write the report: {e.strerror or e}") from e
    return data
