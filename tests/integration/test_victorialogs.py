"""kubevents' ``loki`` sink into a real log server: VictoriaLogs.

VictoriaLogs (Apache-2.0, built by tests/servers/build.sh from its Go module) takes Loki's
push API in both of kubevents' encodings, so it stands in for Loki here: Loki itself is
under the AGPL and is neither built nor run by this project (docs/testing.md).

What arrives is read back with LogsQL and checked record by record against the records
kubevents wrote to a jsonl sink at the same time, with the mapping of docs/sinks.md
written out independently below: stream labels, structured metadata, timestamp and line,
and nothing lost. Then the server is restarted in the middle of a stream of real
apiserver Events, with and without ``--spool``.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kubernetes import client as k8s

from tests.integration.kube import (
    bump,
    core_event,
    create_namespace,
    expected,
    occurrences,
    records,
    start_kubevents,
)
from tests.integration.servers import (
    KUBEVENTS_TOKEN,
    ROOT,
    KubeApiServer,
    VictoriaLogs,
    server_binary,
    stream_fields,
    wait_for,
)

pytestmark = pytest.mark.servers

DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
CLUSTER = "demo"


def ns_of(stamp: str) -> int:
    """RFC 3339 with up to nanoseconds (``...10:00:01.123456789Z``) -> Unix nanoseconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    seconds = int(dt.datetime.fromisoformat(head + "+00:00").timestamp())
    return seconds * 10**9 + int(frac.ljust(9, "0")[:9] or 0)


def as_string(value: Any) -> str:
    """An attribute value as docs/sinks.md says the Loki sink writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def underscores(name: str) -> str:
    return name.replace(".", "_")


INDEXED = ("service.name", "k8s.cluster.name", "k8s.namespace.name")


def documented_entry(record: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(stream labels, structured metadata) of one jsonl record, per docs/sinks.md."""
    resource = record["resource"]
    labels = {underscores(k): str(v) for k, v in resource.items() if k in INDEXED and v}
    metadata = {underscores(k): as_string(v) for k, v in resource.items() if k not in INDEXED}
    metadata |= {"scope_name": "kubevents", "scope_version": resource["service.version"]}
    metadata |= {underscores(k): as_string(v) for k, v in record["attributes"].items()}
    metadata["observed_timestamp"] = str(ns_of(record["observed_timestamp"]))
    metadata["severity_number"] = str(record["severity_number"])
    for field in ("severity_text", "event_name"):
        if record.get(field):
            metadata[field] = record[field]
    return labels, {k: v for k, v in metadata.items() if v != ""}


def check_every_record_arrived(vl: VictoriaLogs, written: list[dict[str, Any]]) -> None:
    """Every record once, with the documented labels, metadata, time and line."""
    stored = vl.query("*")
    # A record derived from an Event (incident, pattern) shares its observed time.
    by_key: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for entry in stored:
        key = (entry["observed_timestamp"], entry["event_name"], entry["_msg"])
        by_key.setdefault(key, []).append(entry)
    twins = Counter(
        (tuple(sorted(documented_entry(r)[0].items())), ns_of(r["timestamp"]), r["body"])
        for r in written
    )
    assert len(stored) == len(written)
    for record in written:
        labels, metadata = documented_entry(record)
        entry = by_key[(metadata["observed_timestamp"], record["event_name"], record["body"])].pop()
        assert stream_fields(entry["_stream"]) == labels, record
        fields = {k: v for k, v in entry.items() if not k.startswith("_")}
        # VictoriaLogs keeps the stream fields as plain fields too
        assert fields == {**metadata, **labels}, record
        assert entry["_msg"] == record["body"]
        # Loki's twins (same stream, time and line) are moved apart by a nanosecond each
        moved = ns_of(entry["_time"]) - ns_of(record["timestamp"])
        twin_key = (tuple(sorted(labels.items())), ns_of(record["timestamp"]), record["body"])
        assert 0 <= moved < twins[twin_key], (moved, record)
    assert not any(by_key.values()), "stored but never written"


@pytest.fixture(scope="module")
def victorialogs_binary() -> Path:
    return server_binary("victorialogs")


@pytest.fixture
def victorialogs(victorialogs_binary: Path, tmp_path: Path) -> Iterator[VictoriaLogs]:
    vl = VictoriaLogs.start(victorialogs_binary, tmp_path / "victorialogs")
    try:
        yield vl
    finally:
        vl.process.stop()


@pytest.mark.parametrize("encoding", ["json", "protobuf"])
def test_the_loki_sink_delivers_every_demo_record_as_documented(
    victorialogs: VictoriaLogs, tmp_path: Path, encoding: str
) -> None:
    out = tmp_path / "records.jsonl"
    code = "import sys; from kubevents.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "replay", str(DEMO),
         "--sink", f"loki:{victorialogs.loki_url}", "--sink", f"jsonl:{out}",
         "--no-summary", "--cluster-name", CLUSTER],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
        env={**_env(), "KUBEVENTS_LOKI_ENCODING": encoding},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    kinds = Counter(r["event_name"] for r in written)
    assert kinds["k8s.event"] > 500 and kinds["kubevents.incident"] and kinds["kubevents.pattern"]
    assert victorialogs.count() == len(written)
    check_every_record_arrived(victorialogs, written)


def test_the_k8s_monitoring_profile_streams_select_as_the_charts_queries_do(
    victorialogs: VictoriaLogs, tmp_path: Path
) -> None:
    """With ``loki.profile: k8s-monitoring`` the stream labels are the chart's (see
    tests/unit/sinks/test_loki_encode.py for the set), so its selectors find the Events."""
    out = tmp_path / "records.jsonl"
    code = "import sys; from kubevents.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.run(
        [sys.executable, "-c", code, "replay", str(DEMO),
         "--sink", f"loki:{victorialogs.loki_url}", "--sink", f"jsonl:{out}",
         "--no-summary", "--cluster-name", CLUSTER],
        capture_output=True, text=True, timeout=300, cwd=ROOT, check=False,
        env={**_env(), "KUBEVENTS_LOKI_PROFILE": "k8s-monitoring", "KUBEVENTS_LOKI_ENCODING": "protobuf"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    events = [r for r in written if r["event_name"] == "k8s.event"]
    assert victorialogs.count() == len(written)
    job = 'job="integrations/kubernetes/eventhandler"'
    assert victorialogs.count(f'_stream:{{{job},source="kubernetes-events"}}') == len(events)
    warnings = [r for r in events if r["severity_text"] == "Warning"]
    assert victorialogs.count(f'_stream:{{{job},level="Warning"}}') == len(warnings) > 0
    assert victorialogs.count(f'_stream:{{{job},level="Info"}}') == len(events) - len(warnings)
    shop = [r for r in events if r["resource"].get("k8s.namespace.name") == "shop"]
    assert victorialogs.count(f'_stream:{{cluster="{CLUSTER}",namespace="shop",source="kubernetes-events"}}') == len(shop)
    for entry in victorialogs.query(f'_stream:{{{job},source="kubernetes-events"}}'):
        labels = stream_fields(entry["_stream"])
        assert set(labels) - {"namespace", "k8s_namespace_name"} == {
            "job", "service_name", "source", "level", "reason", "cluster", "k8s_cluster_name"
        }, labels
        assert labels["reason"] == entry["k8s_event_reason"] and entry["name"] == entry["k8s_object_name"]


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("KUBEVENTS_")}


# -- a restart of the server in the middle of a stream ------------------------------------

RATE = 10.0  # Event writes a second: new Events, every third a repeat
STREAM_S = 12.0
DOWN_AT_S = 3.0
DOWN_S = 4.0


def stream_events(core: k8s.CoreV1Api, ns: str, during: threading.Thread) -> None:
    made: list[str] = []
    start = time.monotonic()
    for i in range(int(RATE * STREAM_S)):
        time.sleep(max(0.0, start + i / RATE - time.monotonic()))
        if during.ident is None and time.monotonic() - start >= DOWN_AT_S:
            during.start()
        if made and i % 3 == 2:
            bump(core, ns, made[i % len(made)])
        else:
            made.append(f"ev-{i}")
            core.create_namespaced_event(ns, core_event(ns, made[-1], 1, "BackOff"))
    during.join(60)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("spool", [False, True], ids=["memory", "spool"])
def test_a_server_restart_mid_stream_loses_nothing(
    apiserver: KubeApiServer, victorialogs: VictoriaLogs, tmp_path: Path, spool: bool
) -> None:
    """VictoriaLogs is down for 4 s in the middle of a stream of Events. Without a spool
    kubevents holds the records in memory and retries; with one, kubevents itself is also
    stopped (SIGTERM) while the server is down and started again after it is back: what
    was spooled is sent on start. Either way every record it wrote reaches the server."""
    ns = f"vl-restart-{'spool' if spool else 'memory'}"
    core = k8s.CoreV1Api(create_namespace(apiserver, tmp_path, ns))
    events_v1 = k8s.EventsV1Api(core.api_client)
    (tmp_path / "kubevents.yaml").write_text(
        f"watch:\n  namespaces: [{ns}]\ndelivery:\n  backoff_base_s: 0.2\n  backoff_cap_s: 1\n"
    )
    extra = ["--config", str(tmp_path / "kubevents.yaml"), "--sink", f"loki:{victorialogs.loki_url}"]
    if spool:
        extra += ["--spool", str(tmp_path / "spool")]
    procs = [start_kubevents(apiserver, tmp_path, KUBEVENTS_TOKEN, *extra)]
    failures: list[BaseException] = []

    def outage() -> None:
        try:
            victorialogs.process.stop()
            if spool:
                procs[-1].send_signal(signal.SIGTERM)
                assert procs[-1].wait(timeout=30) == 0
            time.sleep(DOWN_S)
            victorialogs.process.start()
            victorialogs.process.wait_ready(victorialogs.ready, timeout=60)
            if spool:
                procs.append(start_kubevents(apiserver, tmp_path, KUBEVENTS_TOKEN, *extra))
        except BaseException as e:  # reported by the test
            failures.append(e)

    try:
        wait_for(lambda: (tmp_path / "run.log").exists(), 30, "kubevents to start")
        time.sleep(2)  # the watch is up
        stream_events(core, ns, threading.Thread(target=outage))
        assert not failures, failures
        want = expected(events_v1, ns)

        def all_stored() -> bool:
            written = records([tmp_path / "out.jsonl"], ns)
            covered = {
                (r["attributes"]["k8s.event.uid"], n)
                for r in written
                for n in range(
                    r["attributes"]["k8s.event.count"] - r["attributes"]["kubevents.occurrences"] + 1,
                    r["attributes"]["k8s.event.count"] + 1,
                )
            }
            return occurrences(want) <= covered and victorialogs.count(
                f'k8s_namespace_name:="{ns}" event_name:="k8s.event"'
            ) >= len(written)

        wait_for(all_stored, 90, "every record in VictoriaLogs", interval=1)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
    written = records([tmp_path / "out.jsonl"], ns)
    stored = victorialogs.query(f'k8s_namespace_name:="{ns}" event_name:="k8s.event"')
    observed = Counter(e["observed_timestamp"] for e in stored)
    missing = [r for r in written if str(ns_of(r["observed_timestamp"])) not in observed]
    assert missing == [], f"{len(missing)} of {len(written)} records never reached the server"
    # every occurrence the API holds is in what the server holds
    covered = {
        (e["k8s_event_uid"], n)
        for e in stored
        for n in range(
            int(e["k8s_event_count"]) - int(e["kubevents_occurrences"]) + 1,
            int(e["k8s_event_count"]) + 1,
        )
    }
    assert occurrences(want) <= covered
    assert sum(want.values()) >= RATE * STREAM_S * 0.9  # the stream really ran
    # and the outage really hit it: a push was refused and retried (and, with the spool,
    # records waited on disk across the restart)
    log = (tmp_path / "run.log").read_text()
    assert "sink loki:" in log and "retrying" in log, log[-2000:]
    if spool:
        assert "stay in the spool for the next start" in log and "will be sent again" in log
