"""Fixtures of the dashboard tests: the committed dashboards and their queries."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from dashboard_queries import ROOT, Query, load_all, queries

# grafana/ (the generator) is imported from the repository root, also under a bare `pytest`.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(scope="session")
def dashboards() -> dict[str, dict[str, Any]]:
    found = load_all()
    assert found, "no grafana/dashboards/*.json: run python -m grafana.generate"
    return found


@pytest.fixture(scope="session")
def all_queries(dashboards: dict[str, dict[str, Any]]) -> list[Query]:
    return [q for d in dashboards.values() for q in queries(d)]
