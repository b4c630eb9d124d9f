"""rules/loki in a real Loki: the ruler loads every rule, and every expression gives, on the
demo recording pushed by kubevents' own Loki sink, what an independent Python count of the
same records gives.

The demo recording is shifted to end a few minutes ago (Loki's queriers only ask the
ingesters about recent data), replayed through the real CLI to a real Loki (the binary
``tests/servers/build.sh`` builds) and to a jsonl file; the jsonl records are the oracle's
input. Query times fall on half seconds, so no record sits on a window's edge.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import requests
import yaml

from kubevents.cli import main
from tests.integration.servers import free_port, server_binary
from tests.rules.rules_support import LOKI_RULES_DIR, ROOT, loki_rules

pytestmark = pytest.mark.servers

DEMO = ROOT / "tests" / "data" / "demo" / "events.jsonl"
CONFIG = Path(__file__).resolve().parent / "loki" / "loki-ruler.yaml"
_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

Labels = frozenset[tuple[str, str]]
Result = dict[Labels, float]


def _shift(value: Any, delta: dt.timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    if isinstance(value, str) and _TIME.match(value):
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
        return (
            parsed.strftime("%Y-%m-%dT%H:%M:%S")
            + (f".{parsed.microsecond:06d}" if "." in value else "")
            + "Z"
        )
    return value


def _ts(record: dict[str, Any]) -> float:
    stamp = record["timestamp"]
    seconds = dt.datetime.fromisoformat(stamp[:19] + "+00:00").timestamp()
    return seconds + float("0." + stamp[20:29]) if len(stamp) > 20 else seconds


class LokiProcess:
    def __init__(self, workdir: Path) -> None:
        self.http = free_port()
        self.url = f"http://127.0.0.1:{self.http}"
        self.rules = workdir / "rules"
        shutil.copytree(LOKI_RULES_DIR, self.rules)
        env = {
            "LOKI_DIR": str(workdir / "data"),
            "LOKI_RULES": str(self.rules),
            "LOKI_HTTP_PORT": str(self.http),
            "LOKI_GRPC_PORT": str(free_port()),
        }
        self.log = workdir / "loki.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [
                    str(server_binary("loki")),
                    f"-config.file={CONFIG}",
                    "-config.expand-env=true",
                    "-target=all",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if requests.get(f"{self.url}/ready", timeout=2).text.strip() == "ready":
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(f"Loki not ready in 120 s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def query(self, expr: str, at: float) -> requests.Response:
        return requests.get(
            f"{self.url}/loki/api/v1/query", params={"query": expr, "time": f"{at:.3f}"}, timeout=30
        )

    def instant(self, expr: str, at: float) -> Result:
        answer = self.query(expr, at)
        assert answer.status_code == 200, f"{answer.status_code} {answer.text[:300]} for {expr}"
        data = answer.json()["data"]
        assert data["resultType"] == "vector"
        return {
            frozenset((k, v) for k, v in s["metric"].items() if v != ""): float(s["value"][1])
            for s in data["result"]
        }


@pytest.fixture(scope="module")
def loki_with_demo(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LokiProcess, list[dict[str, Any]]]]:
    tmp = tmp_path_factory.mktemp("loki-ruler")
    events = [orjson.loads(line) for line in DEMO.read_bytes().splitlines()]
    stamps = [
        dt.datetime.fromisoformat(m.decode().replace("Z", "+00:00"))
        for m in re.findall(rb'"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"', DEMO.read_bytes())
    ]
    last = max(stamps)
    target = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=30)
    delta = target - last
    shifted = tmp / "events.jsonl"
    shifted.write_bytes(b"\n".join(orjson.dumps(_shift(e, delta)) for e in events) + b"\n")
    loki = LokiProcess(tmp)
    try:
        out = tmp / "records.jsonl"
        code = main(
            [
                "replay",
                str(shifted),
                "--no-summary",
                "--cluster-name",
                "demo",
                "--sink",
                f"jsonl:{out}",
                "--sink",
                f"loki:{loki.url}",
            ]
        )
        assert code == 0
        records = [orjson.loads(line) for line in out.read_bytes().splitlines()]
        yield loki, records
    finally:
        loki.stop()


# --- the oracle: what Loki stores for a record, and the rules written in Python --------


def loki_labels(record: dict[str, Any]) -> dict[str, str]:
    """Stream labels and structured metadata of a record, as Loki has them (docs/sinks.md)."""

    def text(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (list, dict)):
            return json.dumps(value)
        return str(value)

    labels = {k.replace(".", "_"): text(v) for k, v in record.get("resource", {}).items()}
    labels |= {k.replace(".", "_"): text(v) for k, v in record.get("attributes", {}).items()}
    labels["severity_text"] = record.get("severity_text", "")
    return labels


def count_by(
    records: list[dict[str, Any]],
    at: float,
    window: float,
    keep: Callable[[dict[str, str]], bool],
    by: tuple[str, ...],
) -> Counter[Labels]:
    out: Counter[Labels] = Counter()
    for record in records:
        if not at - window < _ts(record) <= at:
            continue
        labels = loki_labels(record)
        if labels.get("service_name") != "kubevents" or not keep(labels):
            continue
        out[frozenset((k, labels[k]) for k in by if labels.get(k, ""))] += 1
    return out


def above(counts: Counter[Labels], threshold: float) -> Result:
    return {k: float(v) for k, v in counts.items() if v > threshold}


def is_event(lab: dict[str, str]) -> bool:
    return lab.get("k8s_event_uid", "") != ""


REASONS = {
    "FailedMount",
    "FailedAttachVolume",
    "FailedCreatePodSandBox",
    "Evicted",
    "Preempted",
    "FailedCreate",
    "BackoffLimitExceeded",
}


def oracle_warning_storm(
    records: list[dict[str, Any]], at: float, threshold: float = 200
) -> Result:
    counts = count_by(
        records,
        at,
        600,
        lambda lab: lab["severity_text"] == "Warning" and is_event(lab),
        ("k8s_cluster_name", "k8s_namespace_name"),
    )
    return above(counts, threshold)


def oracle_reason_storm(records: list[dict[str, Any]], at: float, threshold: float = 20) -> Result:
    counts = count_by(
        records,
        at,
        600,
        lambda lab: lab.get("k8s_event_reason") in REASONS and lab["severity_text"] == "Warning",
        ("k8s_cluster_name", "k8s_namespace_name", "k8s_event_reason"),
    )
    return above(counts, threshold)


def oracle_crash_looping(records: list[dict[str, Any]], at: float, threshold: float = 5) -> Result:
    def keep(lab: dict[str, str]) -> bool:
        return (
            lab.get("k8s_event_reason") == "BackOff"
            and lab.get("kubevents_category") == "Lifecycle"
            and lab.get("kubevents_severity") == "error"
            and lab.get("kubevents_workload", "") != ""
        )

    counts = count_by(
        records, at, 900, keep, ("k8s_cluster_name", "k8s_namespace_name", "kubevents_workload")
    )
    return above(counts, threshold)


def oracle_critical_incident(records: list[dict[str, Any]], at: float) -> Result:
    by = (
        "k8s_cluster_name",
        "kubevents_incident_id",
        "kubevents_category",
        "kubevents_incident_root_cause_reason",
        "kubevents_incident_root_cause_object",
    )
    open_ = count_by(
        records,
        at,
        900,
        lambda lab: (
            lab.get("kubevents_incident_state") in ("started", "ongoing")
            and lab.get("kubevents_severity") == "critical"
        ),
        by,
    )
    resolved = count_by(
        records,
        at,
        900,
        lambda lab: lab.get("kubevents_incident_state") == "resolved",
        ("kubevents_incident_id",),
    )
    gone = {dict(k).get("kubevents_incident_id") for k in resolved}
    return {
        k: float(v) for k, v in open_.items() if dict(k).get("kubevents_incident_id") not in gone
    }


def oracle_critical_events(records: list[dict[str, Any]], at: float) -> Result:
    counts = count_by(
        records,
        at,
        300,
        lambda lab: lab.get("kubevents_severity") == "critical" and is_event(lab),
        ("k8s_cluster_name", "k8s_event_reason", "k8s_node_name"),
    )
    return above(counts, 0)


def oracle_no_events(records: list[dict[str, Any]], at: float) -> Result:
    if any(at - 3600 < _ts(r) <= at for r in records):
        return {}
    return {frozenset({("service_name", "kubevents")}): 1.0}


def oracle_rate(
    keep: Callable[[dict[str, str]], bool], by: tuple[str, ...]
) -> Callable[[list[dict[str, Any]], float], Result]:
    def oracle(records: list[dict[str, Any]], at: float) -> Result:
        return {k: v / 300 for k, v in count_by(records, at, 300, keep, by).items()}

    return oracle


ORACLES: dict[str, Callable[[list[dict[str, Any]], float], Result]] = {
    "KubeventsLokiWarningStorm": oracle_warning_storm,
    "KubeventsLokiReasonStorm": oracle_reason_storm,
    "KubeventsLokiWorkloadCrashLooping": oracle_crash_looping,
    "KubeventsLokiCriticalIncident": oracle_critical_incident,
    "KubeventsLokiCriticalEvents": oracle_critical_events,
    "KubeventsLokiNoEvents": oracle_no_events,
    "k8s_cluster_namespace_type:kubevents_loki_events:rate5m": oracle_rate(
        is_event, ("k8s_cluster_name", "k8s_namespace_name", "severity_text")
    ),
    "k8s_cluster_namespace_reason:kubevents_loki_warning_events:rate5m": oracle_rate(
        lambda lab: lab["severity_text"] == "Warning" and is_event(lab),
        ("k8s_cluster_name", "k8s_namespace_name", "k8s_event_reason"),
    ),
    "k8s_cluster_namespace_workload:kubevents_loki_error_events:rate5m": oracle_rate(
        lambda lab: (
            lab.get("kubevents_severity") in ("error", "critical")
            and lab.get("kubevents_workload", "") != ""
            and is_event(lab)
        ),
        ("k8s_cluster_name", "k8s_namespace_name", "kubevents_workload"),
    ),
}

RULES = {r.get("alert") or r["record"]: r for _, _, r in loki_rules()}


def _times(records: list[dict[str, Any]], extra_after: float = 0) -> list[float]:
    first = min(map(_ts, records))
    last = max(map(_ts, records))
    return [
        int(first) + 0.5 + step
        for step in range(0, int(last - first) + 900 + int(extra_after), 180)
    ]


def _close(a: Result, b: Result) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) <= 1e-9 * max(1.0, abs(b[k])) for k in a)


def test_every_rule_has_an_oracle() -> None:
    assert set(RULES) == set(ORACLES)


def test_ruler_loads_every_rule(loki_with_demo: tuple[LokiProcess, list[dict[str, Any]]]) -> None:
    loki, _ = loki_with_demo
    answer = requests.get(f"{loki.url}/loki/api/v1/rules", timeout=10)
    assert answer.status_code == 200, answer.text
    loaded = yaml.safe_load(answer.text)
    ours = {p.name: yaml.safe_load(p.read_text()) for p in (LOKI_RULES_DIR / "fake").glob("*.yaml")}
    assert set(loaded) == set(ours)
    for namespace, document in ours.items():
        got = {g["name"]: g for g in loaded[namespace]}
        for group in document["groups"]:
            assert group["name"] in got
            names = [r.get("alert") or r.get("record") for r in got[group["name"]]["rules"]]
            assert names == [r.get("alert") or r.get("record") for r in group["rules"]]
            exprs = [r["expr"].strip() for r in got[group["name"]]["rules"]]
            assert exprs == [r["expr"].strip() for r in group["rules"]]


@pytest.mark.parametrize("name", sorted(ORACLES))
def test_rule_matches_oracle_on_the_demo(
    name: str, loki_with_demo: tuple[LokiProcess, list[dict[str, Any]]]
) -> None:
    loki, records = loki_with_demo
    oracle = ORACLES[name]
    expr = RULES[name]["expr"]
    extra = 3900 if name == "KubeventsLokiNoEvents" else 0
    mismatches = []
    for at in _times(records, extra):
        got, want = loki.instant(expr, at), oracle(records, at)
        if not _close(got, want):
            mismatches.append(f"t={at}: Loki {got} != expected {want}")
    assert mismatches == [], "\n".join(mismatches[:5])


# Lowered thresholds: the demo is small, so show that each storm alert fires on it.
Oracle = Callable[[list[dict[str, Any]], float], Result]

LOWERED: dict[str, tuple[str, str, Oracle]] = {
    "KubeventsLokiWarningStorm": ("> 200", "> 20", lambda r, t: oracle_warning_storm(r, t, 20)),
    "KubeventsLokiReasonStorm": ("> 20", "> 3", lambda r, t: oracle_reason_storm(r, t, 3)),
    "KubeventsLokiWorkloadCrashLooping": ("> 5", "> 2", lambda r, t: oracle_crash_looping(r, t, 2)),
}


@pytest.mark.parametrize("name", sorted(LOWERED))
def test_alert_fires_with_a_lower_threshold(
    name: str, loki_with_demo: tuple[LokiProcess, list[dict[str, Any]]]
) -> None:
    loki, records = loki_with_demo
    old, new, oracle = LOWERED[name]
    assert old in RULES[name]["expr"]
    expr = RULES[name]["expr"].replace(old, new)
    fired = 0
    for at in _times(records):
        got, want = loki.instant(expr, at), oracle(records, at)
        assert _close(got, want), f"t={at}: Loki {got} != expected {want}"
        fired += bool(got)
    assert fired, f"{name} never fired with threshold {new}"


def test_alerts_that_fire_on_the_demo_as_shipped(
    loki_with_demo: tuple[LokiProcess, list[dict[str, Any]]],
) -> None:
    loki, records = loki_with_demo
    for name in (
        "KubeventsLokiCriticalIncident",
        "KubeventsLokiCriticalEvents",
        "KubeventsLokiNoEvents",
    ):
        extra = 3900 if name == "KubeventsLokiNoEvents" else 0
        assert any(loki.instant(RULES[name]["expr"], at) for at in _times(records, extra)), name


# --- negative ---------------------------------------------------------------------------


def test_a_misspelled_label_is_caught(
    loki_with_demo: tuple[LokiProcess, list[dict[str, Any]]],
) -> None:
    loki, records = loki_with_demo
    expr = RULES["KubeventsLokiCriticalEvents"]["expr"].replace(
        "kubevents_severity", "kubevents_sevrity"
    )
    assert any(
        not _close(loki.instant(expr, at), oracle_critical_events(records, at))
        for at in _times(records)
    ), "a rule on a label kubevents does not write went unnoticed"


def test_loki_rejects_broken_logql(
    loki_with_demo: tuple[LokiProcess, list[dict[str, Any]]],
) -> None:
    loki, _ = loki_with_demo
    answer = loki.query(
        'sum by (k8s_namespace_name) (count_over_time({service_name="kubevents"} | [10m]))',
        time.time(),
    )
    assert answer.status_code == 400
    assert "parse error" in answer.text
