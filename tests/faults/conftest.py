"""The fault suite's two forms.

``make test`` runs the short form: every scenario, scaled down to seconds. The long form
(``KUBEVENTS_CHAOS=1``, or ``--chaos`` when pytest is started on this directory) runs them at
full size: a 60 s API server outage, a 5 min collector outage, 20 kill -9s.

Each scenario writes its figures as JSON into ``KUBEVENTS_FAULTS_RESULTS`` (default: a
temporary directory); ``tests/faults/regenerate.py`` runs the long form and rewrites the
table of docs/reliability.md from them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.faults.support import Figures


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos", action="store_true", default=False, help="run the long form of tests/faults"
    )


@dataclass(frozen=True)
class Form:
    """Sizes of one form of the suite."""

    name: str
    apiserver_down_s: float
    collector_down_s: float
    kills: int
    failovers: int
    traffic_s: float
    rate: float
    timeout_s: float


SHORT = Form(
    "short",
    apiserver_down_s=3,
    collector_down_s=2,
    kills=3,
    failovers=1,
    traffic_s=2.5,
    rate=150,
    timeout_s=120,
)
LONG = Form(
    "long",
    apiserver_down_s=60,
    collector_down_s=300,
    kills=20,
    failovers=5,
    traffic_s=20,
    rate=300,
    timeout_s=1200,
)


def chaos_enabled(config: pytest.Config) -> bool:
    return os.environ.get("KUBEVENTS_CHAOS", "") not in ("", "0") or bool(
        config.getoption("chaos", default=False)
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not chaos_enabled(config):
        return
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.timeout(LONG.timeout_s))


@pytest.fixture(scope="session")
def form(pytestconfig: pytest.Config) -> Form:
    return LONG if chaos_enabled(pytestconfig) else SHORT


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("KUBEVENTS_FAULTS_RESULTS")
    return Path(env) if env else tmp_path_factory.mktemp("fault-figures")


@pytest.fixture
def figures(request: pytest.FixtureRequest, form: Form, results_dir: Path) -> Iterator[Figures]:
    """The scenario's figures; written (and printed) when the test ends, pass or fail."""
    name = request.node.name.removeprefix("test_").replace("[", "-").rstrip("]")
    fig = Figures(scenario=name, form=form.name)
    yield fig
    fig.write(results_dir)
    print("\n" + fig.line())
