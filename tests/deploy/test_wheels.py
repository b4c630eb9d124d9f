"""What `pip install kubevents` gets: the compiled manylinux wheel, or the sdist's pure Python.

`make wheel` (a step of `make test`, behind the compiled build) writes both to
.build/wheels. Each is installed here into a fresh virtual environment with its
dependencies, as a user's pip would, and must replay the demo recording to the
golden output: the wheel with the hot path compiled, the sdist with none of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.e2e.test_golden_demo import DEMO, GOLDEN, INSTANCE, mask

ROOT = Path(__file__).resolve().parents[2]
WHEELS = ROOT / ".build" / "wheels"
HOT_PATH = ["kubevents.normalize", "kubevents.enrich.correlate", "kubevents.sinks.otlp_encode"]


def built(pattern: str) -> Path:
    found = sorted(WHEELS.glob(pattern))
    if not found:
        message = f"no {pattern} in {WHEELS}: run `make wheel`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found[-1]


def venv(path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path / "bin"


def pip_install(bin_dir: Path, *args: str) -> None:
    subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
        check=True,
        timeout=600,
    )


def module_files(bin_dir: Path) -> list[str]:
    code = "import importlib,sys\nfor m in sys.argv[1:]: print(importlib.import_module(m).__file__)"
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", code, *HOT_PATH],
        check=True, capture_output=True, text=True, cwd="/",
    ).stdout
    return out.split()


def replay_demo(bin_dir: Path, out: Path) -> bytes:
    env = {**os.environ, "KUBEVENTS_INSTANCE_ID": INSTANCE, "KUBEVENTS_RULES_DIR": str(ROOT / "rules")}
    env.pop("PYTHONPATH", None)  # the installed package, not this checkout's sources
    subprocess.run(
        [str(bin_dir / "kubevents"), "replay", str(DEMO), "--sink", f"jsonl:{out}", "--no-summary"],
        check=True, env=env, cwd="/", timeout=300,
    )
    return mask(out.read_bytes())


def test_the_wheel_is_manylinux_and_holds_the_compiled_hot_path() -> None:
    wheel = built("kubevents-*-manylinux*.whl")
    assert "-cp311-cp311-" in wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    for module in HOT_PATH:
        stem = module.replace(".", "/")
        assert any(n.startswith(stem + ".cpython-311") and n.endswith(".so") for n in names), module
    assert "kubevents/cli.py" in names


def test_the_sdist_builds_pure_python_where_no_wheel_fits() -> None:
    sdist = built("kubevents-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
    assert any(n.endswith("/setup.py") for n in names)
    assert any(n.endswith("/exporter/kubevents/enrich/correlate.py") for n in names)
    assert not any(n.endswith(".so") for n in names)


def test_pip_users_get_the_compiled_build_from_the_wheel_and_pure_python_from_the_sdist(
    tmp_path: Path,
) -> None:
    wheel, sdist = built("kubevents-*-manylinux*.whl"), built("kubevents-*.tar.gz")
    bin_dir = venv(tmp_path / "venv")

    pip_install(bin_dir, str(wheel))
    files = module_files(bin_dir)
    assert all(f.endswith(".so") and str(tmp_path) in f for f in files), files
    assert replay_demo(bin_dir, tmp_path / "wheel.jsonl") == GOLDEN.read_bytes()

    # The same environment, the package replaced by the sdist's build (dependencies kept).
    pip_install(bin_dir, "--force-reinstall", "--no-deps", str(sdist))
    files = module_files(bin_dir)
    assert all(f.endswith(".py") and str(tmp_path) in f for f in files), files
    assert replay_demo(bin_dir, tmp_path / "sdist.jsonl") == GOLDEN.read_bytes()
