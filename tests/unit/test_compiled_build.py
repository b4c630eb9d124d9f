"""The compiled build (setup.py, ``make compiled``) compiles exactly the hot path.

``make test`` runs the unit tests twice: on the editable install, where every
module must be plain Python, and on the compiled build
(``TESTS_EXPECT_COMPILED=1``), where every module of ``setup.HOT_PATH`` must be
the C extension mypyc made, so that pass cannot quietly test Python instead.
"""

from __future__ import annotations

import ast
import importlib
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def hot_path() -> list[str]:
    """``setup.HOT_PATH`` as module names, read without running setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    (node,) = [n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "HOT_PATH"]
    paths: list[str] = ast.literal_eval(node.value)
    return [p.removeprefix("exporter/").removesuffix(".py").replace("/", ".") for p in paths]


def test_the_hot_path_names_existing_modules_of_the_package() -> None:
    modules = hot_path()
    assert "kubevents.enrich.correlate" in modules and "kubevents.sinks.otlp_encode" in modules
    for module in modules:
        assert (ROOT / "exporter" / (module.replace(".", "/") + ".py")).is_file(), module


def test_the_hot_path_is_compiled_exactly_in_the_compiled_build() -> None:
    expect = os.environ.get("TESTS_EXPECT_COMPILED") == "1"
    for module in hot_path():
        path = str(importlib.import_module(module).__file__)
        assert path.endswith(".so") == expect, (module, path)
    # What is not on the hot path stays Python in both builds.
    assert str(importlib.import_module("kubevents.app").__file__).endswith(".py")
