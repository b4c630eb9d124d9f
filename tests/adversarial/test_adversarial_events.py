"""Hostile Events through every output: label injection (quotes, braces, newlines), control
characters, 1 MiB messages, deep nesting, wrong types, unicode in every field, and a flood
of unique reasons.

Asserted, output by output: jsonl parses and holds every Event once; the Prometheus
exposition parses (prometheus_client and `promtool check metrics`) with only documented
metric names and the hostile label values round-tripping exactly; the fake Loki decodes
every push (JSON and protobuf+snappy) and no Event field adds or changes a stream label;
the fake OTLP receiver decodes every export; the console prints one line per record with
no raw control character; each bad input line is counted and reported on one line; the
series count stays under the documented caps and memory stays bounded under the flood.
"""

from __future__ import annotations

import calendar
import logging
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from kubevents import app
from kubevents.settings import load_settings
from tests.adversarial.corpus import CONTROLS, INJECTIONS, TIME, UNICODE, corpus, flood
from tests.fakes.loki_receiver import FakeLoki
from tests.fakes.otlp_receiver import OtlpReceiver
from tests.faults.support import child_env
from tests.support.scraping import parse
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST = {
    "delivery.backoff_base_s": 0.05,
    "delivery.backoff_cap_s": 0.2,
    "delivery.batch_timeout_s": 0.05,
}
# Control characters that must never reach a terminal raw (C0 but newline, DEL, C1).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f\x80-\x9f]")
MAX_LABEL_BYTES = 1024  # docs/sinks.md, Loki "Safety"


def documented_metrics() -> set[str]:
    text = (ROOT / "docs" / "metrics.md").read_text()
    return set(re.findall(r"^\| `([a-z_:]+)` \|", text, re.M))


def prometheus_names(family_name: str, kind: str) -> set[str]:
    if kind == "counter":
        return {family_name + "_total", family_name + "_created"}
    if kind == "histogram":
        return {family_name + s for s in ("_bucket", "_count", "_sum", "_created")}
    return {family_name}


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    lines, expect = corpus()
    path = tmp_path_factory.mktemp("adversarial") / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path, expect


class Replay:
    """``kubevents replay`` (the command's own function) in a thread, serving /metrics."""

    def __init__(self, paths: list[Path], sinks: list[str], **overrides: Any) -> None:
        values: dict[str, Any] = {
            "sinks": tuple(sinks),
            "cluster_name": "adversarial",
            "replay.summary": False,
            "replay.hold_s": 60.0,
            "metrics.host": "127.0.0.1",
            "metrics.otlp": False,
            **FAST,
            **overrides,
        }
        settings = load_settings(None, env={}, overrides=values)
        self.stop = threading.Event()
        self.url = ""
        self.code: int | None = None
        self.error: BaseException | None = None
        ready = threading.Event()

        self.holding = threading.Event()
        """Set once the replay is over (pipeline closed, sinks flushed) and /metrics held."""

        def on_metrics(runtime: Any) -> None:
            self.url = runtime.server.url
            hold = runtime.hold

            def holding(seconds: float, stop: threading.Event | None = None) -> None:
                self.holding.set()
                hold(seconds, stop)

            runtime.hold = holding
            ready.set()

        def target() -> None:
            try:
                self.code = app.replay(
                    settings,
                    [str(p) for p in paths],
                    metrics_port=0,
                    on_metrics=on_metrics,
                    stop=self.stop,
                )
            except BaseException as e:
                self.error = e
            finally:
                ready.set()

        self.thread = threading.Thread(target=target, daemon=True, name="replay")
        self.thread.start()
        ready.wait(30)
        if self.error is not None:
            raise self.error

    def metrics_text(self) -> str:
        return requests.get(f"{self.url}/metrics", timeout=10).text

    def settled(self, records: int) -> bool:
        """The replay is over and every network sink exported or dropped all ``records``."""
        if not self.holding.is_set():
            return False
        samples = parse(self.metrics_text())
        done: dict[str, float] = {}
        for (name, labels), value in samples.items():
            if name in ("kubevents_sink_exported_total", "kubevents_sink_dropped_total"):
                sink = dict(labels)["sink"]
                done[sink] = done.get(sink, 0) + value
        queued = [v for (n, _), v in samples.items() if n == "kubevents_sink_queue_size"]
        return bool(done) and all(v == records for v in done.values()) and not any(queued)

    def join(self) -> int:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        assert self.code is not None
        return self.code


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def written_lines(path: Path) -> int:
    """Lines the jsonl sink has finished so far (a long record may be half written)."""
    return path.read_bytes().count(b"\n")


def promtool_check(text: str) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (make prometheus)")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text.encode(), capture_output=True, timeout=30
    )
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()


def ns_of(rfc3339: str) -> int:
    return calendar.timegm(time.strptime(rfc3339, "%Y-%m-%dT%H:%M:%SZ")) * 1_000_000_000


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.messages.append(record.getMessage())


@pytest.fixture(scope="module", params=["json", "protobuf"])
def hostile_run(
    request: pytest.FixtureRequest,
    corpus_file: tuple[Path, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Any]]:
    """The corpus replayed to jsonl, Loki (one encoding per param) and OTLP/gRPC at once."""
    path, expect = corpus_file
    out = tmp_path_factory.mktemp("hostile") / "out.jsonl"
    now = ns_of(TIME) + 60 * 1_000_000_000
    logs = _Collect()
    logging.getLogger("kubevents").addHandler(logs)
    with FakeLoki(now_ns=lambda: now) as loki, OtlpReceiver() as receiver:
        run = Replay(
            [path],
            [f"jsonl:{out}", f"loki:{loki.url}", f"otlp:http://{receiver.grpc_endpoint}"],
            **{"loki.encoding": request.param},
        )
        try:
            wait_until(lambda: out.exists() and run.settled(written_lines(out)), 30, "delivery")
            text = run.metrics_text()
        finally:
            assert run.join() == 1  # Loki refused the records of 1970: not delivered
            logging.getLogger("kubevents").removeHandler(logs)
        yield {
            "logs": logs.messages,
            "expect": expect,
            "records": read_jsonl(out),
            "metrics": text,
            "loki": loki,
            "otlp": receiver,
            "encoding": request.param,
        }


def test_jsonl_stays_valid_and_holds_every_event(hostile_run: dict[str, Any]) -> None:
    expect, records = hostile_run["expect"], hostile_run["records"]
    events = [r for r in records if r["event_name"] == "k8s.event"]
    assert len(events) == expect.events
    assert len({r["attributes"]["k8s.event.uid"] for r in events}) == expect.events
    # The jsonl sink writes the record as built: hostile text survives, byte for byte.
    bodies = [r["body"] for r in events]
    for text in [*INJECTIONS, CONTROLS, UNICODE]:
        assert text in bodies
    assert max(len(b) for b in bodies) == 1024 * 1024


def test_prometheus_exposition_parses_and_cannot_be_injected(
    hostile_run: dict[str, Any],
) -> None:
    text = hostile_run["metrics"]
    promtool_check(text)
    families = list(text_string_to_metric_families(text))
    documented = documented_metrics()
    allowed = set().union(
        *(prometheus_names(n.removesuffix("_total"), "counter") for n in documented)
    )
    allowed |= set().union(*(prometheus_names(n, "histogram") for n in documented)) | documented
    names = {s.name for f in families for s in f.samples}
    assert names <= allowed, f"undocumented (injected?) metrics: {sorted(names - allowed)}"
    assert not any("evil" in n or "fake_metric" in n for n in names)
    reasons = {
        s.labels.get("k8s_event_reason")
        for f in families
        for s in f.samples
        if s.name == "kubevents_events_total"
    }
    # Hostile values are escaped, not interpreted: they come back from the parser exactly.
    for text_ in INJECTIONS:
        assert text_ in reasons, f"{text_!r} did not round-trip through the exposition"
    # Every line of the exposition is a comment, a sample or empty: no raw newline leaked.
    # (Only "\n" ends a line in the text format; other control characters are legal raw.)
    for line in text.split("\n"):
        assert (
            line == "" or line.startswith("#") or re.match(r"^[a-zA-Z_:][a-zA-Z0-9_:]*[{ ]", line)
        )


def test_loki_pushes_decode_and_labels_cannot_be_injected(hostile_run: dict[str, Any]) -> None:
    loki, expect, records = hostile_run["loki"], hostile_run["expect"], hostile_run["records"]
    # Events without any parseable time carry timestamp 0 (1970); like Loki's own OTLP
    # ingestion, the Loki sink stamps those entries with their observed time, and Loki
    # stores them. Incident and pattern records computed later from those Events (a
    # resolution 15 minutes after 1970) keep that event time: Loki refuses them as too
    # old, and only them, and every one is counted as dropped.
    timeless = [r for r in records if r["timestamp"].startswith("1970-01-01T00:00:00.000000000Z")]
    assert timeless, "the corpus has Events without a time: the case is exercised"
    refused = [p for p in loki.pushes if p.status != 204]
    messages = " / ".join(p.message for p in refused)
    assert all(p.status == 400 and "too old" in p.message for p in refused), messages[:600]
    assert "timestamp too old: 1970-01-01T00:00:00Z" not in messages
    rejected = sum(p.rejected for p in loki.pushes)
    samples = parse(hostile_run["metrics"])
    dropped = sum(
        v
        for (n, labels), v in samples.items()
        if n == "kubevents_sink_dropped_total" and ("sink", "loki") in labels
    )
    too_old = ("kubevents_sink_dropped_total", (("reason", "too_old"), ("sink", "loki")))
    assert dropped == rejected == samples.get(too_old, 0)
    entries = loki.entries()
    assert len(entries) == len(records) - rejected
    cut = {ns.encode()[:MAX_LABEL_BYTES].decode("utf-8", "ignore") for ns in expect.namespaces}
    for entry in entries:
        assert set(entry.labels) <= {"service_name", "k8s_cluster_name", "k8s_namespace_name"}
        assert entry.labels["service_name"] == "kubevents"
        assert entry.labels["k8s_cluster_name"] == "adversarial"
        ns = entry.labels.get("k8s_namespace_name")
        assert ns is None or ns in cut, f"namespace label {ns!r} is not an input namespace"
    reasons = {e.structured_metadata.get("k8s_event_reason") for e in entries}
    for text in INJECTIONS:
        assert text in reasons


def test_every_log_message_of_the_run_is_one_line(hostile_run: dict[str, Any]) -> None:
    messages = hostile_run["logs"]
    assert any("skipped" in m for m in messages)
    assert [m for m in messages if "\n" in m or "\r" in m] == []


def test_otlp_exports_decode_and_keep_the_fields(hostile_run: dict[str, Any]) -> None:
    receiver, records = hostile_run["otlp"], hostile_run["records"]
    assert receiver.exports and all(
        e.outcome == "ok" for e in receiver.exports if e.signal == "logs"
    )
    logs = receiver.records()
    assert len(logs) == len(records)
    by_uid = {log.attributes.get("k8s.event.uid"): log for log in logs}
    for r in records:
        if r["event_name"] != "k8s.event":
            continue
        log = by_uid[r["attributes"]["k8s.event.uid"]]
        reason = r["attributes"].get("k8s.event.reason", "")
        if len(reason.encode()) <= 4096:
            assert log.attributes.get("k8s.event.reason", "") == reason
        assert len(log.body.encode()) <= 16384


@pytest.fixture(scope="module")
def console_run(
    corpus_file: tuple[Path, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]], Any]:
    """The corpus replayed by the real command to the console (colours forced) and jsonl."""
    path, expect = corpus_file
    out = tmp_path_factory.mktemp("console") / "same-run.jsonl"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubevents.cli",
            "replay",
            str(path),
            "--no-summary",
            "--sink",
            "console",
            "--sink",
            f"jsonl:{out}",
        ],
        capture_output=True,
        timeout=60,
        env=child_env(KUBEVENTS_CONSOLE_COLOR="always"),
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return result, read_jsonl(out), expect


def test_console_prints_one_line_per_record_without_raw_controls(
    console_run: tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]], Any],
) -> None:
    result, records, _ = console_run
    stdout = result.stdout.decode("utf-8")
    assert stdout.endswith("\n")
    lines = stdout[:-1].split("\n")  # only "\n" moves a terminal to a new line
    for line in lines:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)  # the sink's own colours (SGR) only
        assert not RAW_CONTROL.search(plain), f"raw control character in {plain[:200]!r}"
    assert len(lines) == len(records)  # a newline in a field never splits a record


def test_console_escapes_hostile_messages_and_object_names(
    console_run: tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]], Any],
) -> None:
    result, records, _ = console_run
    stdout = result.stdout.decode("utf-8")
    for text in ("line1\\nline2\\rline3", "\\x1b[2J", "\\x1b]0;pwned\\x07", "\\x9b31m"):
        assert text in stdout  # shown escaped (in the message and object columns)
    assert stdout.count("\n") >= len(records)


def test_bad_input_is_counted_and_reported_on_one_line_each(
    console_run: tuple[subprocess.CompletedProcess[bytes], list[dict[str, Any]], Any],
) -> None:
    result, records, expect = console_run
    assert sum(1 for r in records if r["event_name"] == "k8s.event") == expect.events
    stderr = result.stderr.decode("utf-8")
    reports = [ln for ln in stderr.split("\n") if "skipped" in ln]
    bad_lines = set(range(expect.events + 1, expect.events + expect.bad + 1))
    reported = {int(m.group(1)) for ln in reports if (m := re.search(r"\.jsonl:(\d+)\b", ln))}
    assert reported == bad_lines, (sorted(reported), sorted(bad_lines))
    assert all(len(ln) < 300 for ln in reports)
    assert not RAW_CONTROL.search(stderr.replace("\n", ""))
    assert "Traceback" not in stderr


def _replay_process(path: Path, tmp_path: Path, port: int, hold: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubevents.cli",
            "replay",
            str(path),
            "--no-summary",
            "--sink",
            f"jsonl:{tmp_path / (path.stem + '.out.jsonl')}",
            "--metrics-port",
            str(port),
            "--hold",
            str(hold),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=child_env(KUBEVENTS_METRICS_HOST="127.0.0.1", KUBEVENTS_CLUSTER_NAME="x"),
    )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _peak_rss_mib(pid: int) -> float:
    """The process's own peak RSS (VmHWM: unlike ru_maxrss, it does not include the
    forking parent's pages from before exec)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1)) / 1024


def _replay_and_measure(path: Path, tmp_path: Path, events: int) -> tuple[str, float, str]:
    """Replay ``path`` in a process; once all ``events`` are through, the /metrics text and
    the process's peak RSS (read while it holds /metrics)."""
    port = _free_port()
    proc = _replay_process(path, tmp_path, port, hold=120)
    try:

        def done() -> bool:
            assert proc.poll() is None, "the replay exited early"
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                return False
            # Every Event counted: also the ones whose records were held to settle.
            counted = sum(
                value
                for (name, _), value in parse(text).items()
                if name == "kubevents_events_total"
            )
            return counted == events

        wait_until(done, 120, "the replay")
        time.sleep(0.3)  # the pipeline closes before /metrics is held
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        peak = _peak_rss_mib(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    return text, peak, stderr.decode(errors="replace")


FLOOD = 50_000
SERIES_CAP = 5000  # docs/metrics.md, kubevents_events_total
REASON_CAP, NAMESPACE_CAP, KIND_CAP = 300, 200, 50


def test_a_flood_of_unique_reasons_stays_under_the_caps_and_in_bounded_memory(
    tmp_path: Path,
) -> None:
    hostile = tmp_path / "flood.jsonl"
    data = flood(FLOOD)
    hostile.write_bytes(data)
    # The same Events with one reason, namespace and kind: what memory costs without the flood.
    tame = tmp_path / "tame.jsonl"
    tame.write_bytes(
        re.sub(
            rb"Kind\d+", b"Kind", re.sub(rb"ns-\d+", b"ns", re.sub(rb"Reason\d+", b"Reason", data))
        )
    )
    del data
    text, flood_mib, stderr = _replay_and_measure(hostile, tmp_path, FLOOD)
    promtool_check(text)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    events = [s for s in families["kubevents_events"].samples if s.name == "kubevents_events_total"]
    assert sum(s.value for s in events) == FLOOD  # nothing uncounted
    assert len(events) <= SERIES_CAP
    for label, cap in (
        ("k8s_event_reason", REASON_CAP),
        ("k8s_namespace_name", NAMESPACE_CAP),
        ("k8s_object_kind", KIND_CAP),
    ):
        values = {s.labels[label] for s in events}
        assert len(values - {"__other__"}) <= cap, label
    overflow = [
        s for s in families["kubevents_events_overflow"].samples if s.name.endswith("_total")
    ]
    assert sum(s.value for s in overflow) > 0  # the caps say so
    assert len(text.encode()) < 16 * 1024 * 1024  # a scrape stays a scrape
    assert "Traceback" not in stderr

    _, tame_mib, _ = _replay_and_measure(tame, tmp_path, FLOOD)
    print(
        f"\nflood of {FLOOD}: peak RSS {flood_mib:.0f} MiB (tame: {tame_mib:.0f} MiB), "
        f"{len(events)} series, {len(text) // 1024} KiB exposition"
    )
    # Unique reasons, namespaces and kinds cost little more than repeated ones; the replay
    # (which holds its whole input to sort it) stays bounded.
    assert flood_mib - tame_mib < 48, (flood_mib, tame_mib)
    assert flood_mib < 250
