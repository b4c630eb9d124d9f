"""The Dockerfile, checked by rules (no Docker engine here) and by building the wheel it copies."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines() if line.strip() and not line.startswith("#")
]


def test_multi_stage_with_pinned_base() -> None:
    froms = [i for i in INSTRUCTIONS if i.startswith("FROM")]
    assert len(froms) == 2
    base = next(i for i in INSTRUCTIONS if i.startswith("ARG PYTHON_IMAGE="))
    assert ":latest" not in base and re.search(r":\d+\.\d+", base)


def test_runs_as_a_numeric_non_root_user() -> None:
    users = [i for i in INSTRUCTIONS if i.startswith("USER")]
    assert users and re.fullmatch(r"USER [1-9]\d*:[1-9]\d*", users[-1])


def test_final_stage_has_no_build_tools_or_caches() -> None:
    final = INSTRUCTIONS[[i for i, x in enumerate(INSTRUCTIONS) if x.startswith("FROM")][-1]:]
    runs = " ".join(i for i in final if i.startswith("RUN"))
    assert "--no-cache-dir" in runs and "--no-index" in runs  # nothing fetched in the final stage
    assert not re.search(r"apt-get|gcc|build-essential", runs)


def test_the_build_stage_compiles_the_hot_path() -> None:
    build = INSTRUCTIONS[: [i for i, x in enumerate(INSTRUCTIONS) if x.startswith("FROM")][-1]]
    assert any(re.search(r"apt-get install .*\bgcc\b", i) for i in build)  # mypyc needs a C compiler
    assert any(i.startswith("COPY") and "setup.py" in i.split() for i in build)
    assert any(i.startswith("RUN KUBEVENTS_COMPILE=1 pip wheel") for i in build)


def test_exec_form_entrypoint_and_oci_labels() -> None:
    assert any(re.fullmatch(r'ENTRYPOINT \["kubevents"\]', i) for i in INSTRUCTIONS)
    labels = " ".join(i for i in INSTRUCTIONS if i.startswith("LABEL"))
    for key in ("title", "version", "source", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_dockerignore_admits_exactly_what_the_build_copies() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copies = [i.split()[1:-1] for i in INSTRUCTIONS if i.startswith("COPY") and "--from" not in i]
    for sources in copies:
        for source in sources:
            assert any(source == a or source.startswith(a.split("*")[0]) for a in allowed), source


def test_the_wheel_the_image_installs_builds_and_ships_the_package(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("kubevents-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "kubevents/cli.py" in names and "kubevents/py.typed" in names
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kubevents = kubevents.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
