"""The tools tests/deploy runs: kustomize (or kubectl's) and composecheck, built by build.sh."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.servers import GO_MISSING, needs_go

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(__file__).resolve().parent / "build.sh"

Render = Callable[[Path], list[dict[str, Any]]]


def built_tool(name: str) -> Path:
    """The tool's binary, built by tests/deploy/build.sh when missing (a no-op when cached)."""
    path = Path(subprocess.run([str(BUILD), "--path", name], check=True, capture_output=True,
                               text=True).stdout.strip())
    if not path.is_file():
        build = subprocess.run([str(BUILD), name], capture_output=True, text=True)
        if build.returncode == GO_MISSING:
            needs_go(build.stdout.strip())
        assert build.returncode == 0 and path.is_file(), build.stdout + build.stderr
    return path


@pytest.fixture(scope="session")
def kustomize_command() -> list[str]:
    """`kustomize build` from build.sh (pinned), else `kubectl kustomize` when it is installed."""
    try:
        return [str(built_tool("kustomize")), "build"]
    except (AssertionError, pytest.fail.Exception, pytest.skip.Exception):
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise
        return [kubectl, "kustomize"]


@pytest.fixture(scope="session")
def render(kustomize_command: list[str]) -> Render:
    """Render one kustomization directory to its objects."""
    cache: dict[Path, list[dict[str, Any]]] = {}

    def _render(path: Path) -> list[dict[str, Any]]:
        if path not in cache:
            out = subprocess.run([*kustomize_command, str(path)], capture_output=True, text=True)
            assert out.returncode == 0, f"{' '.join(kustomize_command)} {path}: {out.stderr}"
            cache[path] = [doc for doc in yaml.safe_load_all(out.stdout) if doc]
        return cache[path]

    return _render


@pytest.fixture(scope="session")
def composecheck() -> Path:
    return built_tool("composecheck")


@pytest.fixture(scope="session")
def crdcheck() -> Path:
    return built_tool("crdcheck")
