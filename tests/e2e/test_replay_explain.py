"""``kubevents replay --explain``: the chain of an incident, through the real CLI.

The input is a real ``kubectl describe pod`` Events table (piraeus-operator#473, as
copied into tests/data/real/storage/): two generic mount timeouts listed before the
specific failure that explains them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

from tests.support.corpus import load

CORPUS = Path(__file__).resolve().parents[1] / "data" / "real"
SOURCE = CORPUS / "storage" / "piraeus-ip-node-name-stat-source-device.yaml"


def replay(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    dump = tmp_path / "events.jsonl"  # the corpus loader's Events (the kubectl text parser's)
    dump.write_bytes(b"".join(orjson.dumps(row.obj) + b"\n" for row in load(SOURCE).rows))
    return subprocess.run(
        [sys.executable, "-m", "kubevents.cli", "replay", str(dump), "--no-summary",
         "--sink", f"jsonl:{tmp_path / 'out.jsonl'}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_explain_prints_the_root_cause_and_why_each_event_joined(tmp_path: Path) -> None:
    done = replay(tmp_path, "--explain", "all")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    (title,) = [line for line in lines if line.startswith("inc-")]
    assert "FailedMount (default/Pod/unnamed) then 2 events" in title
    assert any(line.strip().startswith("root cause  FailedMount default/Pod/unnamed") for line in lines)
    joined = [line for line in lines if "<-" in line]
    # The two timeouts came first (negative offsets): the first opened the incident, the
    # second followed the mount failure's link on the same Pod.
    assert len(joined) == 2
    assert all(line.split()[0].startswith("-") for line in joined)
    assert "<- opened it; the root cause came later and explained it" in joined[0]
    assert "<- volume-attach-mount via object" in joined[1]


def test_explain_of_an_unknown_id_is_one_line_and_exit_1(tmp_path: Path) -> None:
    done = replay(tmp_path, "--explain", "inc-000000000000")
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "--explain inc-000000000000: no incident has this id" in line
