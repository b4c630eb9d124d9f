"""``kubevents replay`` on kubectl text: the real CLI, as a process, on real rows.

Rows are copied from public sources (cited at each); one row is broken on purpose
(an age kubectl never prints) to see it reported on one line and skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

# https://github.com/kubernetes/kubernetes/issues/19589 (old describe, tab separated)
DESCRIBE = (
    "Name:\t\t\t\tcluster-ssh-server-ouan5\n"
    "Namespace:\t\t\tdefault\n"
    "Node:\t\t\t\tgke-cluster-1-b4c97d4d-node-lx67/10.240.0.2\n"
    "Containers:\n"
    "  sshd:\n"
    "Events:\n"
    "  FirstSeen\tLastSeen\tCount\tFrom\t\t\t\t\t\tSubobjectPath\tReason\t\tMessage\n"
    "  ─────────\t────────\t─────\t────\t\t\t\t\t\t─────────────\t──────\t\t───────\n"
    "  12h\t\t9s\t\t4543\t{kubelet gke-cluster-1-b4c97d4d-node-lx67}\t\t\tFailedMount\t"
    'Unable to mount volumes for pod "cluster-ssh-server-ouan5_default": exit status 32\n'
)
# https://github.com/kubebb/core/pull/130 (get events -A); the third row's age is broken
GET_ALL = """NAMESPACE            LAST SEEN   TYPE      REASON                    OBJECT                                              MESSAGE
local-path-storage   9m32s       Warning   FailedMount               pod/local-path-provisioner-c49b7b56f-vjkz4          MountVolume.SetUp failed for volume "kube-api-access-pljgx" : failed to sync configmap cache: timed out waiting for the condition
local-path-storage   9m48s       Normal    SuccessfulCreate          replicaset/local-path-provisioner-c49b7b56f         Created pod: local-path-provisioner-c49b7b56f-vjkz4
local-path-storage   9x49s       Normal    ScalingReplicaSet         deployment/local-path-provisioner                   Scaled up replica set local-path-provisioner-c49b7b56f to 1
"""
MTIME = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubevents.cli", "replay", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def events(path: Path) -> list[dict[str, Any]]:
    records = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return [r for r in records if r["event_name"] == "k8s.event"]


def stamp(dt: datetime, seconds_before: int) -> str:
    t = datetime.fromtimestamp(dt.timestamp() - seconds_before, UTC)
    return t.strftime("%Y-%m-%dT%H:%M:%S.000000000Z")


def test_text_files_replay_in_occurrence_order_with_ages_before_the_mtime(
    tmp_path: Path,
) -> None:
    describe, get_all = tmp_path / "describe.txt", tmp_path / "get-all.txt"
    describe.write_text(DESCRIBE, encoding="utf-8")
    get_all.write_text(GET_ALL, encoding="utf-8")
    for path in (describe, get_all):
        os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    out = tmp_path / "out.jsonl"
    done = run(str(describe), str(get_all), "--sink", f"jsonl:{out}", "--no-summary")
    assert done.returncode == 0, done.stderr
    got = [
        (
            r["timestamp"],
            r["attributes"]["k8s.event.reason"],
            r["attributes"]["k8s.object.kind"],
            r["attributes"]["k8s.event.count"],
        )
        for r in events(out)
    ]
    assert got == [
        (stamp(MTIME, 9 * 60 + 48), "SuccessfulCreate", "ReplicaSet", 1),
        (stamp(MTIME, 9 * 60 + 32), "FailedMount", "Pod", 1),
        (stamp(MTIME, 9), "FailedMount", "Pod", 4543),
    ]
    # the broken row: one line, naming file and line, and the rest was read
    problems = [line for line in done.stderr.splitlines() if "skipped" in line]
    assert problems == [
        f"kubevents: WARNING: skipped {get_all}:4: LAST SEEN '9x49s' is not an age"
        " (like 3m, 2d3h, 74m (x8 over 80m), <unknown>) or a time"
    ]
    assert "Traceback" not in done.stderr


def test_now_sets_the_reference_time_and_stdin_is_read(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    done = run("-", "--now", "2026-01-01T00:00:00Z", "--sink", f"jsonl:{out}", stdin=GET_ALL)
    assert done.returncode == 0, done.stderr
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [r["timestamp"] for r in events(out)] == [
        stamp(start, 9 * 60 + 48),
        stamp(start, 9 * 60 + 32),
    ]
    assert "skipped <stdin>:4: LAST SEEN '9x49s'" in done.stderr
    assert "1 input problems" in done.stdout  # the summary counts the skipped row


def test_a_bad_now_is_a_usage_error_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "get-all.txt"
    path.write_text(GET_ALL, encoding="utf-8")
    done = run(str(path), "--now", "yesterday")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "kubevents: error: --now: expected an RFC 3339 time like 2026-01-01T00:00:00Z,"
        " got 'yesterday'"
    ]


def test_rows_without_their_header_are_one_line_naming_what_is_missing(tmp_path: Path) -> None:
    # https://github.com/kubernetes/kubernetes/issues/31768 prints the rows alone
    path = tmp_path / "rows.txt"
    path.write_text(
        "  4m        2m      2   {kubelet gke-utilicluster-default-pool-2a5b702b-hfyh}"
        "           Warning     FailedSync  Error syncing pod, skipping: timeout expired waiting"
        ' for volumes to attach/mount for pod "spartakus-collector-3999054429-atph7"/"default".'
        " list of unattached/unmounted volumes=[bigquery]\n",
        encoding="utf-8",
    )
    done = run(str(path), "--no-summary")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"kubevents: WARNING: skipped {path}:1: Event rows without a header row above them:"
        " expected a kubectl header like 'LAST SEEN TYPE REASON OBJECT MESSAGE' or"
        " 'Type Reason Age From Message'",
        f"kubevents: error: nothing could be read from {path}",
    ]
