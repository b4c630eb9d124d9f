"""The hostile-input catalogue: every input kubevents reads (Events, config, kubeconfig,
rules, secret files) and every output it writes, made hostile or unlucky, through the real
command in a child process.

For each case: exactly one stderr line names the file (and line) and the problem, no
traceback, every stderr line is one line of at most 400 characters, the documented exit
code, bounded time (wall clock) and memory (the child's peak RSS), and, when a good input
rides along, every one of its records is still emitted.

The good input is ``tests/data/formats/watch.jsonl`` (8 real Events, see its generator);
hostile Events are made from those Events, never written from scratch.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.faults.support import child_env

ROOT = Path(__file__).resolve().parents[2]
GOOD = ROOT / "tests" / "data" / "formats" / "watch.jsonl"
PRETTY = ROOT / "tests" / "data" / "formats" / "watch-pretty.json"
TIME_S = 30.0
"""Every case ends well within this (most in about a second: a Python start)."""
PEAK_MIB = 150.0
"""Peak RSS of any case (the child's VmHWM; every case measured under 45 MiB); the config
alias bomb grew past 440 MiB in 15 s before it was refused."""
MAX_LINE = 400


# -- the inputs -------------------------------------------------------------------------

GOOD_LINES = GOOD.read_bytes().splitlines()
GOOD_EVENT: dict[str, Any] = orjson.loads(GOOD_LINES[0])["object"]


def good_uids() -> set[str]:
    return {orjson.loads(line)["object"]["metadata"]["uid"] for line in GOOD_LINES}


def event_with(**fields: Any) -> dict[str, Any]:
    """The first good Event, with ``fields`` replaced (a new uid: it is another Event)."""
    obj = orjson.loads(orjson.dumps(GOOD_EVENT))
    obj["metadata"]["uid"] = "hostile-" + obj["metadata"]["uid"][8:]
    obj.update(fields)
    return obj


def nested_json(depth: int, open_: bytes = b'{"a":', close: bytes = b"}") -> bytes:
    return open_ * depth + b"1" + close * depth


def alias_bomb(prefix: str = "") -> str:
    """Nine anchors, each a list of nine aliases of the one before: 9**9 values expanded."""
    lines = [f'{prefix}a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{prefix}{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def utf16(data: bytes) -> bytes:
    return b"\xff\xfe" + data.decode().encode("utf-16-le")


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""

RULES = "version: 1\nkind: classification\n"


# -- running the command ----------------------------------------------------------------


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str
    seconds: float
    peak_mib: float


def kubevents(
    args: list[str],
    cwd: Path,
    *,
    stdin: bytes | None = None,
    close: tuple[int, ...] = (),
    stdout_path: str | None = None,
    env: dict[str, str] | None = None,
) -> Run:
    """The real command in a child; ``close``: file descriptors closed in it (0: stdin,
    1: stdout); ``stdout_path``: where stdout goes (``/dev/full``)."""
    out_path, err_path, in_path = cwd / ".stdout", cwd / ".stderr", cwd / ".stdin"
    in_path.write_bytes(stdin or b"")
    with (
        open(in_path, "rb") as fin,
        open(stdout_path or out_path, "wb") as fout,
        open(err_path, "wb") as ferr,
    ):

        def closing() -> None:
            for fd in close:
                os.close(fd)

        started = time.monotonic()
        hwm = cwd / ".vmhwm"
        proc = subprocess.Popen(
            [sys.executable, "-c", _MEASURED, str(hwm), *args],
            stdin=fin,
            stdout=fout,
            stderr=ferr,
            cwd=cwd,
            env=child_env(**(env or {})),
            preexec_fn=closing if close else None,  # closes fds only
        )
        timer = threading.Timer(TIME_S * 2, proc.kill)
        timer.start()
        try:
            proc.wait()
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
    stdout = b"" if stdout_path else out_path.read_bytes()
    peak = re.search(r"^VmHWM:\s+(\d+) kB", hwm.read_text(), re.M) if hwm.exists() else None
    assert peak, "the child did not report its peak RSS (killed?)"
    return Run(
        proc.returncode,
        stdout,
        err_path.read_bytes().decode("utf-8", "replace"),
        seconds,
        int(peak.group(1)) / 1024,
    )


_MEASURED = """\
import atexit, runpy, sys
path = sys.argv[1]
def peak():
    with open("/proc/self/status") as status, open(path, "w") as out:
        out.write(status.read())
atexit.register(peak)
sys.argv = ["kubevents", *sys.argv[2:]]
runpy.run_module("kubevents.cli", run_name="__main__")
"""
"""The command, reporting its own peak RSS (VmHWM: unlike ru_maxrss, it does not count
the pages the test runner had when it forked the child) at exit."""


# -- the catalogue ----------------------------------------------------------------------


@dataclass
class Case:
    id: str
    files: dict[str, bytes | str | Callable[[Path], None]]
    """Files to create in the case's directory (a callable is given the path to make)."""
    args: list[str]
    problem: str
    """A regex the one problem line of stderr matches (it also names the file); "" when
    no line is expected."""
    code: int
    good: bool = False
    """The good input rides along (``GOOD``): all its records must be emitted."""
    extra_records: int | None = 0
    """Events of the hostile input that are kept (repaired) besides the good ones (None:
    the hostile input holds the good Events themselves)."""
    stdin: bytes | None = None
    close: tuple[int, ...] = ()
    stdout_path: str | None = None
    env: dict[str, str] = field(default_factory=dict)


def _directory(path: Path) -> None:
    path.mkdir()


DEEP = 100_000
CASES = [
    # ---- Events: nesting and bombs
    Case("events: 100k nested arrays", {"deep.json": b"[" * DEEP + b"\n"}, ["replay", "deep.json"],
         r"skipped deep\.json:1: invalid JSON: nested too deeply", 0, good=True),
    Case("events: an Event holding 50k nested objects (JSON Lines)",
         {"deep.jsonl": GOOD_LINES[0] + b"\n" + orjson.dumps(event_with())[:-1]
          + b',"extra":' + nested_json(50_000) + b"}\n"},
         ["replay", "deep.jsonl"], r"skipped deep\.jsonl:2: invalid JSON: .*(deep|depth)", 0,
         good=True),
    Case("events: pretty-printed objects, one nested 50k deep",
         {"deep-pretty.json": PRETTY.read_bytes() + b"\n" + nested_json(50_000) + b"\n"},
         ["replay", "deep-pretty.json"],
         r"skipped deep-pretty\.json:\d+: invalid JSON: nested too deeply", 0, good=True),
    Case("events: YAML nested 5000 deep",
         {"deep.yaml": "kind: Event\nmessage: " + "[" * 5000 + "]" * 5000 + "\n"},
         ["replay", "deep.yaml"], r"skipped deep\.yaml:\d+: invalid YAML: .*(nest|deep)", 0,
         good=True),
    Case("events: a YAML alias bomb inside an Event",
         {"bomb.yaml": "kind: Event\ninvolvedObject: {kind: Pod, name: x}\nreason: x\n"
          + alias_bomb("x")},
         ["replay", "bomb.yaml"], r"skipped bomb\.yaml:1: invalid YAML: the document expands", 0,
         good=True),
    # ---- Events: compression
    Case("events: corrupt gzip (bytes flipped mid-stream)",
         {"bad.jsonl.gz": lambda p: p.write_bytes(_flipped(gzip.compress(
             b"\n".join(GOOD_LINES * 400))))},
         ["replay", "bad.jsonl.gz"],
         r"bad\.jsonl\.gz: gzip data (corrupt|ends before its end marker \(cut off\?\)) after", 0,
         good=True),
    Case("events: truncated gzip",
         {"cut.jsonl.gz": gzip.compress(b"\n".join(GOOD_LINES) + b"\n")[:-30]},
         ["replay", "cut.jsonl.gz"], r"cut\.jsonl\.gz: gzip data ends before its end marker \(cut off\?\) after [\d,]+ bytes", 0,
         good=True, extra_records=None),
    Case("events: gzip magic, then garbage", {"junk.gz": b"\x1f\x8b" + b"\x07" * 64},
         ["replay", "junk.gz"], r"junk\.gz: gzip data corrupt after 0 bytes", 0, good=True),
    Case("events: truncated bzip2",
         {"cut.jsonl.bz2": bz2.compress(b"\n".join(GOOD_LINES * 50))[:-40]},
         ["replay", "cut.jsonl.bz2"], r"cut\.jsonl\.bz2: bzip2 data ends before its end marker", 0, good=True),
    Case("events: corrupt xz",
         {"bad.jsonl.xz": lambda p: p.write_bytes(_flipped(lzma.compress(
             b"\n".join(GOOD_LINES * 50))))},
         ["replay", "bad.jsonl.xz"], r"bad\.jsonl\.xz: xz data corrupt after", 0, good=True),
    Case("events: a zip archive (not supported)", {"x.zip": b"PK\x03\x04" + b"\x00" * 40},
         ["replay", "x.zip"], r"skipped x\.zip: zip data is not supported: decompress it first", 0,
         good=True),
    Case("events: zstd (not supported)", {"x.zst": b"\x28\xb5\x2f\xfd" + b"\x00" * 32},
         ["replay", "x.zst"], r"skipped x\.zst: zstd data is not supported: decompress it first",
         0, good=True),
    # ---- Events: encodings
    Case("events: a byte that is not UTF-8 in a message (the Event is kept)",
         {"latin1.jsonl": orjson.dumps(event_with(message="caf")).replace(b'"caf"', b'"caf\xe9"')},
         ["replay", "latin1.jsonl"],
         r"latin1\.jsonl:1: bytes that are not UTF-8 replaced by U\+FFFD \(the Event is kept\)", 0,
         good=True, extra_records=1),
    Case("events: UTF-16 with a byte order mark (PowerShell's >)",
         {"utf16.jsonl": utf16(b"\n".join(GOOD_LINES[:3]).decode().replace(
             "fc57bcb8", "aaaaaaaa").encode())},
         ["replay", "utf16.jsonl"], "", 0, good=True, extra_records=1),
    Case("events: broken UTF-16", {"odd.jsonl": b"\xff\xfe{\x00\"\x00\xd8"},
         ["replay", "odd.jsonl"], r"odd\.jsonl: broken UTF-16 text", 0, good=True),
    Case("events: a binary line", {"bin.jsonl": b"\x00\xff\xfe\x1b[31m\x00\x00\n"},
         ["replay", "bin.jsonl"], r"skipped bin\.jsonl:1: ", 0, good=True),
    # ---- Events: files that cannot be read
    Case("events: a missing file", {}, ["replay", "nope.json"],
         r"skipped nope\.json: cannot read: No such file or directory", 0, good=True),
    Case("events: a directory", {"adir": _directory}, ["replay", "adir"],
         r"skipped adir: cannot read: Is a directory", 0, good=True),
    Case("events: a file that fails to read (EIO)", {}, ["replay", "/proc/self/mem"],
         r"skipped /proc/self/mem: cannot read: Input/output error", 0, good=True),
    Case("events: only a missing file", {}, ["replay", "nope.json"],
         r"error: nope\.json: cannot read: No such file or directory", 1),
    Case("events: stdin closed", {}, ["replay", "-"],
         r"skipped <stdin>: cannot read: standard input is closed", 0, good=True, close=(0,)),
    # ---- Events: malformed fields, repaired and kept
    Case("events: count 'abc' (repaired, kept)",
         {"count.jsonl": orjson.dumps(event_with(count="abc"))}, ["replay", "count.jsonl"],
         r"repaired count\.jsonl:1: Event .*: count 'abc' is not a count; taken as 1", 0,
         good=True, extra_records=1),
    Case("events: involvedObject null (repaired, kept)",
         {"noobj.jsonl": orjson.dumps(event_with(involvedObject=None))},
         ["replay", "noobj.jsonl"],
         r"repaired noobj\.jsonl:1: Event .*: involvedObject names no object", 0,
         good=True, extra_records=1),
    Case("events: type Bogus (repaired, kept)",
         {"type.jsonl": orjson.dumps(event_with(type="Bogus"))}, ["replay", "type.jsonl"],
         r"repaired type\.jsonl:1: Event .*: 'Bogus' is not Normal or Warning", 0,
         good=True, extra_records=1),
    # ---- Outputs: closed and full streams
    Case("stdout closed (console sink)", {}, ["replay", str(GOOD)],
         r"error: stdout: cannot write: it is closed", 1, close=(1,)),
    Case("stdout full (console sink)", {}, ["replay", str(GOOD), "--no-summary"],
         r"error: stdout: cannot write: No space left on device", 1, stdout_path="/dev/full"),
    Case("stdout full (the summary)", {}, ["replay", str(GOOD), "--sink", "jsonl:out.jsonl"],
         r"error: stdout: cannot write: No space left on device", 1, stdout_path="/dev/full"),
    Case("stdout closed (the summary)", {}, ["replay", str(GOOD), "--sink", "jsonl:o.jsonl"],
         r"error: stdout: cannot write: it is closed", 1, close=(1,)),
    Case("jsonl sink to a full device", {}, ["replay", str(GOOD), "--sink", "jsonl:/dev/full"],
         r"error: /dev/full: cannot write: No space left on device", 1),
    Case("jsonl sink to a missing directory", {},
         ["replay", str(GOOD), "--sink", "jsonl:no/dir/x.jsonl"],
         r"error: sinks: jsonl:no/dir/x\.jsonl: cannot open: No such file or directory", 2),
    Case("stderr closed (the problems have nowhere to go: the replay goes on)", {},
         ["replay", "nope.json"], "", 0, good=True, close=(2,)),
    Case("stderr closed, nothing readable (the exit code says it)", {},
         ["replay", "nope.json"], "", 1, close=(2,)),
    Case("check-config to a full stdout", {}, ["check-config"],
         r"error: stdout: cannot write: No space left on device", 1, stdout_path="/dev/full"),
    # ---- Config
    Case("config: not UTF-8", {"c.yaml": b"cluster_name: \xff\xfe\n"},
         ["check-config", "--config", "c.yaml"], r"error: c\.yaml:1: not UTF-8 text", 2),
    Case("config: nested 5000 deep", {"c.yaml": "cluster_name: " + "[" * 5000 + "]" * 5000},
         ["check-config", "--config", "c.yaml"], r"error: c\.yaml(:1)?: invalid YAML: .*nest", 2),
    Case("config: a mapping nested 5000 deep",
         {"c.yaml": "replay: " + "{a: " * 5000 + "1" + "}" * 5000},
         ["check-config", "--config", "c.yaml"], r"error: c\.yaml(:1)?: invalid YAML: .*nest", 2),
    Case("config: a YAML alias bomb", {"c.yaml": "cluster_name: x\n" + alias_bomb("x")},
         ["check-config", "--config", "c.yaml"], r"error: c\.yaml: the document expands", 2),
    Case("config: a YAML alias bomb (replay)", {"c.yaml": alias_bomb("x")},
         ["replay", "--config", "c.yaml", str(GOOD)], r"error: c\.yaml: the document expands", 2),
    Case("config: sinks: []", {"c.yaml": "sinks: []\n"}, ["check-config", "--config", "c.yaml"],
         r"error: c\.yaml: at sinks: must name at least one sink", 2),
    Case("config: watch.backoff_base_s -1", {"c.yaml": "watch: {backoff_base_s: -1}\n"},
         ["check-config", "--config", "c.yaml"],
         r"error: c\.yaml: at watch -> backoff_base_s: must be positive", 2),
    Case("config: a rules directory that does not exist", {},
         ["check-config", "--rules", "/nonexistent"],
         r"error: /nonexistent: rules directory not found", 2),
    Case("config: a spool directory that cannot be made", {},
         ["check-config"], r"error: delivery -> spool_dir: cannot use /proc/nope/loki", 2,
         env={"KUBEVENTS_SINKS": "loki:http://127.0.0.1:1",
              "KUBEVENTS_DELIVERY_SPOOL_DIR": "/proc/nope"}),
    Case("config: a headers file that is not UTF-8", {"h.txt": b"authorization=\xff\n"},
         ["check-config"], r"error: otlp -> headers_file: h\.txt:1: not UTF-8 text", 2,
         env={"KUBEVENTS_SINKS": "otlp", "KUBEVENTS_OTLP_HEADERS_FILE": "h.txt"}),
    Case("config: a Loki password file that is not UTF-8", {"pw": b"s3cr\xe9t\n"},
         ["check-config"], r"error: loki -> password_file: pw:1: not UTF-8 text", 2,
         env={"KUBEVENTS_SINKS": "loki:http://127.0.0.1:1", "KUBEVENTS_LOKI_USERNAME": "u",
              "KUBEVENTS_LOKI_PASSWORD_FILE": "pw"}),
    Case("config: an unknown KUBEVENTS_ variable (a warning)", {}, ["replay", "--no-summary"],
         r"WARNING: environment: unknown variable KUBEVENTS_REPLAY_SUMARY ignored "
         r"\(did you mean 'KUBEVENTS_REPLAY_SUMMARY'\?\)", 0, good=True,
         env={"KUBEVENTS_REPLAY_SUMARY": "0"}),
    Case("config: Kubernetes' service variables (ignored)", {}, ["replay", "--no-summary"],
         "", 0, good=True,
         env={"KUBEVENTS_SERVICE_HOST": "10.0.0.1", "KUBEVENTS_SERVICE_PORT": "9464",
              "KUBEVENTS_PORT_9464_TCP_ADDR": "10.0.0.1"}),
    Case("config: --hold without --metrics-port", {}, ["replay", str(GOOD), "--hold", "5"],
         r"error: --hold \(replay\.hold_s\) needs --metrics-port", 2),
    # ---- Kubeconfig
    Case("kubeconfig: not UTF-8", {"kc": b"apiVersion: v1\nclusters: \xff\n"},
         ["run", "--kubeconfig", "kc"],
         r"error: cannot load Kubernetes client configuration: kc:2: not UTF-8 text", 2),
    Case("kubeconfig: nested 5000 deep", {"kc": "apiVersion: v1\nclusters: " + "[" * 5000},
         ["run", "--kubeconfig", "kc"],
         r"error: cannot load Kubernetes client configuration: kc(:\d+)?: invalid YAML", 2),
    Case("kubeconfig: a YAML alias bomb", {"kc": KUBECONFIG + alias_bomb("x")},
         ["run", "--kubeconfig", "kc"],
         r"error: cannot load Kubernetes client configuration: kc: the document expands", 2),
    Case("kubeconfig: a token file that is not UTF-8",
         {"kc": KUBECONFIG.replace("{token: t}", "{tokenFile: tok}"), "tok": b"\xff\xfe"},
         ["run", "--kubeconfig", "kc"], r"tok:1: token file: not UTF-8 text", 2),
    Case("kubeconfig: a missing file", {}, ["run", "--kubeconfig", "nope"],
         r"error: cannot load Kubernetes client configuration: nope: file not found", 2),
    # ---- Rules
    Case("rules: not UTF-8", {"r/x.yaml": RULES.encode() + b"rules: \xff\n"},
         ["rules", "check", "r"], r"error: r/x\.yaml:3: not UTF-8 text", 2),
    Case("rules: nested 5000 deep", {"r/x.yaml": RULES + "rules: " + "[" * 5000 + "]" * 5000},
         ["rules", "check", "r"], r"error: r/x\.yaml(:\d+)?: invalid YAML: .*nest", 2),
    Case("rules: a YAML alias bomb", {"r/x.yaml": RULES + "rules: *i\n" + alias_bomb("x")},
         ["rules", "check", "r"], r"error: r/x\.yaml(:\d+)?: (invalid YAML|the document exp)", 2),
    Case("rules: a bomb under a known key", {"r/x.yaml": RULES + "rules:\n" + "".join(
        "  " + line + "\n" for line in ["- &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"] + [
            f"- &{n} [" + ", ".join([f"*{p}"] * 9) + "]" for p, n in zip("abcdefgh", "bcdefghi",
                                                                         strict=True)])},
         ["rules", "check", "r"], r"error: r/x\.yaml: the document expands", 2),
    Case("rules: replay --rules with a bad file", {"r/x.yaml": RULES.encode() + b"\xff"},
         ["replay", "--rules", "r", str(GOOD)], r"error: r/x\.yaml:3: not UTF-8 text", 2),
    Case("rules: a missing directory (rules check)", {}, ["rules", "check", "nope"],
         r"error: nope: rules directory not found", 2),
    Case("rules: a test file with an alias bomb",
         {"t.yaml": "version: 1\nkind: classification_test\n" + alias_bomb("x")},
         ["rules", "test", "t.yaml"], r"error: t\.yaml: the document expands", 2),
]


def _flipped(data: bytes) -> bytes:
    """``data`` with 40 bytes inverted in the middle."""
    b = bytearray(data)
    mid = len(b) // 2
    for i in range(mid, mid + 40):
        b[i] ^= 0xFF
    return bytes(b)


def _make(directory: Path, files: dict[str, bytes | str | Callable[[Path], None]]) -> None:
    for name, content in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(path)
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


def _records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_line_and_the_rest_goes_on(case: Case, tmp_path: Path) -> None:
    _make(tmp_path, case.files)
    args = list(case.args)
    out = tmp_path / "records.jsonl"
    if case.good:
        args += [str(GOOD), "--no-summary", "--sink", f"jsonl:{out}"]
    run = kubevents(
        args,
        tmp_path,
        stdin=case.stdin,
        close=case.close,
        stdout_path=case.stdout_path,
        env=case.env,
    )
    print(f"\n{case.id}: exit {run.code}, {run.seconds:.1f}s, peak RSS {run.peak_mib:.0f} MiB")
    where = f"{case.id}: exit {run.code}, stderr:\n{run.stderr[-3000:]}"
    assert "Traceback" not in run.stderr, where
    assert "Exception ignored" not in run.stderr, where
    lines = [ln for ln in run.stderr.split("\n") if ln]
    assert all(len(ln) <= MAX_LINE for ln in lines), where
    assert all(ln.startswith("kubevents: ") for ln in lines), where
    if case.problem:
        matching = [ln for ln in lines if re.search(case.problem, ln)]
        assert len(matching) == 1, where
    else:
        assert lines == [], where
    assert run.code == case.code, where
    assert run.seconds < TIME_S, f"{case.id}: {run.seconds:.1f}s"
    assert run.peak_mib < PEAK_MIB, f"{case.id}: peak RSS {run.peak_mib:.0f} MiB"
    if case.good:
        events = [r for r in _records(out) if r["event_name"] == "k8s.event"]
        uids = {r["attributes"]["k8s.event.uid"] for r in events}
        assert good_uids() <= uids, where  # every good Event was emitted
        if case.extra_records is not None:
            assert len(uids - good_uids()) == case.extra_records, where
