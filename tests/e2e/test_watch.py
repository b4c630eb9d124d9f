"""`kubevents run` against the fake apiserver, through the real kubernetes client.

Every test checks the same two things with counts: every occurrence in the
API server is exported (nothing lost), and no (Event, count) is exported
twice (nothing repeated) — across watch drops, server timeouts, 410s, empty
200s, 429/5xx storms, restarts and failovers.
"""

from __future__ import annotations

import gc
import itertools
import re
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from kubevents import app
from kubevents.enrich.rules import RuleFile
from kubevents.running import SWITCH_INTERVAL_S
from kubevents.settings import Settings, load_settings
from tests.fakes.apiserver import ExpiredWatch, FakeApiServer, make_event
from tests.support.waiting import wait_until

_names = itertools.count()


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer(bookmark_interval=0.1, timeout_scale=0.2) as server:
        yield server


def settings_for(fake: FakeApiServer, tmp_path: Path, **overrides: Any) -> Settings:
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    base: dict[str, Any] = {
        "watch.kubeconfig": str(kubeconfig),
        "sinks": (f"jsonl:{tmp_path / 'out.jsonl'}",),
        "watch.timeout_s": 1,  # x0.2 timeout_scale: the server ends each watch after 0.2 s
        "watch.backoff_base_s": 0.01,
        "watch.backoff_cap_s": 0.05,
        "watch.checkpoint_interval_s": 0.1,
        "watch.object_cache": False,
        "metrics.port": 0,  # no /metrics server: tests never bind a fixed port
    }
    base.update(overrides)
    return load_settings(None, env={}, overrides=base)


class Exporter:
    """`kubevents run` in a thread, writing jsonl, until stopped."""

    def __init__(self, settings: Settings, out: Path) -> None:
        self.settings, self.out = settings, out
        self.stop = threading.Event()
        self.result: list[int] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(app.run_cluster(settings, stop=self.stop))
        )

    def __enter__(self) -> Exporter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "kubevents run did not stop within 10 s"
        assert self.result == [0]


def records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]
    return [r for r in lines if r["event_name"] == "k8s.event"]


def expected(fake: FakeApiServer) -> dict[str, int]:
    """Occurrences per Event uid in the API server now."""
    return {e["metadata"]["uid"]: e.get("count") or 1 for e in fake.store.objects("events")}


def emitted(recs: list[dict[str, Any]]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for r in recs:
        totals[r["attributes"]["k8s.event.uid"]] += r["attributes"]["kubevents.occurrences"]
    return dict(totals)


def repeats(recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    pairs = Counter(
        (r["attributes"]["k8s.event.uid"], r["attributes"]["k8s.event.count"]) for r in recs
    )
    return [pair for pair, n in pairs.items() if n > 1]


def coverage(recs: list[dict[str, Any]]) -> Counter[tuple[str, int]]:
    """How many times each occurrence (uid, n) is covered by a record.

    A record with count c and occurrences k stands for occurrences c-k+1..c.
    """
    covered: Counter[tuple[str, int]] = Counter()
    for r in recs:
        a = r["attributes"]
        count, new = a["k8s.event.count"], a["kubevents.occurrences"]
        for n in range(count - new + 1, count + 1):
            covered[(a["k8s.event.uid"], n)] += 1
    return covered


def lost(fake: FakeApiServer, recs: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Occurrences in the API server that no record covers."""
    covered = coverage(recs)
    return [
        (uid, n)
        for uid, count in expected(fake).items()
        for n in range(1, count + 1)
        if not covered[(uid, n)]
    ]


def repeated(recs: list[dict[str, Any]]) -> int:
    """Occurrences covered more than once."""
    return sum(times - 1 for times in coverage(recs).values() if times > 1)


def create(fake: FakeApiServer, n: int, **fields: Any) -> list[str]:
    names = []
    for _ in range(n):
        name = f"ev-{next(_names)}"
        fake.store.create(
            make_event(
                name,
                namespace="shop",
                reason="BackOff",
                event_type="Warning",
                message="Back-off restarting failed container",
                **fields,
            )
        )
        names.append(name)
    return names


def bump(fake: FakeApiServer, name: str) -> None:
    """One more occurrence of a series Event (MODIFIED with count + 1)."""
    fake.store.patch(name, lambda o: {**o, "count": o["count"] + 1}, namespace="shop")


def converge(fake: FakeApiServer, out: Path, timeout: float = 10.0) -> list[dict[str, Any]]:
    wait_until(lambda: emitted(records(out)) == expected(fake), timeout)
    return records(out)


def test_every_occurrence_exactly_once_in_both_api_versions(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    names = create(fake, 5)
    sys.setswitchinterval(0.005)  # Python's default; kubevents run shortens it (running.py)
    for api in ("events.k8s.io/v1", "v1"):
        out = tmp_path / api.replace("/", "_")
        out.mkdir()
        with Exporter(settings_for(fake, out, **{"watch.api": api}), out / "out.jsonl"):
            converge(fake, out / "out.jsonl")
            for name in names[:3]:
                bump(fake, name)
                bump(fake, name)
            create(fake, 2)
            recs = converge(fake, out / "out.jsonl")
        assert repeats(recs) == []
        # One record per update that added occurrences: 7 Events, 6 bumps (and the second
        # API version's run starts fresh, so it sees the previous run's Events too).
        assert len(recs) == (13 if api == "events.k8s.io/v1" else 9 + 6)
        assert all(r["attributes"]["kubevents.source_api"] == api for r in recs)
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL_S)


def test_a_running_exporter_keeps_no_rule_file_as_read(fake: FakeApiServer, tmp_path: Path) -> None:
    """The rule files are read once to build the stages; once running, only what the stages
    compiled stays (the files as read held about 1 MiB of a 40 MiB process at rest)."""

    def rule_files_alive() -> int:
        gc.unfreeze()  # the exporter freezes what it built (app.tune_gc): count that too
        gc.collect()
        return sum(isinstance(o, RuleFile) for o in gc.get_objects())

    create(fake, 2)
    before = rule_files_alive()
    with Exporter(settings_for(fake, tmp_path), tmp_path / "out.jsonl"):
        converge(fake, tmp_path / "out.jsonl")  # the pipeline runs: its stages are built
        assert rule_files_alive() == before


def test_unchanged_updates_and_deletions_are_not_emitted(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    (name,) = create(fake, 1)
    with Exporter(settings_for(fake, tmp_path), tmp_path / "out.jsonl"):
        converge(fake, tmp_path / "out.jsonl")
        fake.store.patch(
            name,
            lambda o: {**o, "metadata": {**o["metadata"], "labels": {"x": "y"}}},
            namespace="shop",
        )
        fake.store.delete(name, namespace="shop")
        (other,) = create(fake, 1)
        wait_until(lambda: len(records(tmp_path / "out.jsonl")) == 2)
    assert [r["attributes"]["k8s.event.name"] for r in records(tmp_path / "out.jsonl")] == [
        name,
        other,
    ]


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(
            lambda f: f.faults.cut_stream(after_events=2, mid_line=True, times=5), id="cut-mid-line"
        ),
        pytest.param(lambda f: f.faults.status(429, retry_after=0, times=6), id="429-storm"),
        pytest.param(lambda f: f.faults.status(503, times=3), id="503"),
        pytest.param(lambda f: f.faults.status(500, times=3), id="500"),
        pytest.param(lambda f: f.faults.stall(seconds=0.5, times=2), id="stall"),
    ],
)
def test_no_loss_no_repeats_across_faults(
    fake: FakeApiServer, tmp_path: Path, fault: Callable[[FakeApiServer], object]
) -> None:
    names = create(fake, 10)
    fault(fake)
    settings = settings_for(fake, tmp_path, **{"watch.inactivity_timeout_s": 0.3})
    with Exporter(settings, tmp_path / "out.jsonl"):
        for round_ in range(3):
            for name in names:
                bump(fake, name)
            create(fake, 3)
            time.sleep(0.05 * round_)
        recs = converge(fake, tmp_path / "out.jsonl", timeout=15)
    assert repeats(recs) == []


@pytest.mark.parametrize(
    "mode", [ExpiredWatch.ERROR_EVENT, ExpiredWatch.HTTP_410, ExpiredWatch.EMPTY_200]
)
def test_expired_resource_version_relists_without_repeats(
    fake: FakeApiServer, tmp_path: Path, mode: ExpiredWatch
) -> None:
    fake.expired_watch = mode
    names = create(fake, 5)
    with Exporter(settings_for(fake, tmp_path), tmp_path / "out.jsonl"):
        converge(fake, tmp_path / "out.jsonl")
        fake.faults.expire(after_events=0, times=2)
        for name in names:
            bump(fake, name)
        fake.compact(fake.store.resource_version)
        create(fake, 3)
        recs = converge(fake, tmp_path / "out.jsonl")
    assert repeats(recs) == []
    assert len(_lists(fake)) >= 2  # the initial list, then at least one relist


def _lists(fake: FakeApiServer) -> list[Any]:
    return [
        r for r in fake.requests.matching(method="GET", watch=False) if r.path.endswith("/events")
    ]


def test_relists_are_visible_in_the_request_log(fake: FakeApiServer, tmp_path: Path) -> None:
    fake.expired_watch = ExpiredWatch.EMPTY_200
    create(fake, 2)
    with Exporter(settings_for(fake, tmp_path), tmp_path / "out.jsonl"):
        converge(fake, tmp_path / "out.jsonl")
        fake.compact(fake.store.resource_version)
        fake.faults.empty_200(times=1)
        create(fake, 1)
        converge(fake, tmp_path / "out.jsonl")
    assert len(_lists(fake)) >= 2  # the initial list and at least one relist


def test_restart_resumes_from_the_checkpoint(fake: FakeApiServer, tmp_path: Path) -> None:
    checkpoint = tmp_path / "cp.json"
    names = create(fake, 4)
    first = tmp_path / "first"
    first.mkdir()
    with Exporter(
        settings_for(fake, first, **{"watch.checkpoint": str(checkpoint)}), first / "out.jsonl"
    ):
        converge(fake, first / "out.jsonl")
    # While kubevents is down: more occurrences and new Events.
    for name in names:
        bump(fake, name)
    create(fake, 2)
    second = tmp_path / "second"
    second.mkdir()
    with Exporter(
        settings_for(fake, second, **{"watch.checkpoint": str(checkpoint)}), second / "out.jsonl"
    ):
        wait_until(
            lambda: (
                emitted(records(first / "out.jsonl") + records(second / "out.jsonl"))
                == expected(fake)
            )
        )
    both = records(first / "out.jsonl") + records(second / "out.jsonl")
    assert repeats(both) == []
    assert (
        len(records(second / "out.jsonl")) == 6
    )  # 4 bumps + 2 new, nothing of the first run again


def test_restart_after_expiry_relists_and_skips_what_was_emitted(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    checkpoint = tmp_path / "cp.json"
    names = create(fake, 4)
    first = tmp_path / "first"
    first.mkdir()
    with Exporter(
        settings_for(fake, first, **{"watch.checkpoint": str(checkpoint)}), first / "out.jsonl"
    ):
        converge(fake, first / "out.jsonl")
    bump(fake, names[0])
    fake.compact(fake.store.resource_version)  # the checkpoint's resourceVersion is gone
    second = tmp_path / "second"
    second.mkdir()
    with Exporter(
        settings_for(fake, second, **{"watch.checkpoint": str(checkpoint)}), second / "out.jsonl"
    ):
        wait_until(
            lambda: (
                emitted(records(first / "out.jsonl") + records(second / "out.jsonl"))
                == expected(fake)
            )
        )
    assert [r["attributes"]["k8s.event.count"] for r in records(second / "out.jsonl")] == [2]


@pytest.mark.parametrize(("initial", "emitted_count"), [("all", 3), ("none", 0)])
def test_initial_policy_on_first_start(
    fake: FakeApiServer, tmp_path: Path, initial: str, emitted_count: int
) -> None:
    create(fake, 3)
    with Exporter(
        settings_for(fake, tmp_path, **{"watch.initial": initial}), tmp_path / "out.jsonl"
    ):
        time.sleep(0.5)  # time for the initial list: "none" must still have written nothing
        wait_until(
            lambda: len(records(tmp_path / "out.jsonl")) >= emitted_count, what="the initial list"
        )
        assert len(records(tmp_path / "out.jsonl")) == emitted_count
        create(fake, 1)
        wait_until(lambda: len(records(tmp_path / "out.jsonl")) == emitted_count + 1)


def test_forbidden_names_the_missing_permission_and_keeps_retrying(
    fake: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake.add_token("weak", user="system:serviceaccount:kubevents:weak", allow=[("get", "", "pods")])
    kubeconfig = fake.write_kubeconfig(tmp_path / "weak-kubeconfig", token="weak")
    settings = settings_for(
        fake, tmp_path, **{"watch.kubeconfig": str(kubeconfig), "watch.api": "events.k8s.io/v1"}
    )
    with caplog.at_level("WARNING"), Exporter(settings, tmp_path / "out.jsonl"):
        wait_until(lambda: "403 Forbidden" in caplog.text, timeout=5)
    lines = [r.getMessage() for r in caplog.records if "403 Forbidden" in r.getMessage()]
    assert len(lines) == 1  # logged once, then retried quietly
    assert (
        'RBAC must allow list and watch on resource "events" in API group events.k8s.io cluster-wide'
        in lines[0]
    )


def test_a_1_mib_event_with_odd_unicode_passes_through(fake: FakeApiServer, tmp_path: Path) -> None:
    create(fake, 1)
    big = "x" * (1024 * 1024) + " ünïcødé \x00\x1b"
    with Exporter(settings_for(fake, tmp_path), tmp_path / "out.jsonl"):
        fake.store.create(make_event("huge", namespace="shop", message=big))
        converge(fake, tmp_path / "out.jsonl")
    bodies = [r["body"] for r in records(tmp_path / "out.jsonl")]
    assert big in bodies


def test_the_checkpoint_keeps_only_the_events_still_remembered(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    # The tracker holds 3 Events: the checkpoint's emitted counts follow it as it evicts
    # by size and forgets deleted Events, while checkpoints are written in between.
    checkpoint = tmp_path / "cp.json"
    settings = settings_for(
        fake, tmp_path, **{"watch.checkpoint": str(checkpoint), "pipeline.series_max_entries": 3}
    )

    def saved() -> set[str]:
        if not checkpoint.exists():
            return set()
        return set(orjson.loads(checkpoint.read_bytes())["emitted"])

    def uids(names: list[str]) -> set[str]:
        return {
            e["metadata"]["uid"]
            for e in fake.store.objects("events")
            if e["metadata"]["name"] in names
        }

    with Exporter(settings, tmp_path / "out.jsonl"):
        first = create(fake, 3)
        converge(fake, tmp_path / "out.jsonl")
        wait_until(lambda: saved() == uids(first))
        second = create(fake, 2)  # evicts the two oldest
        wait_until(lambda: saved() == uids(first[2:] + second))
        gone = uids(second[:1])
        fake.store.delete(second[0], namespace="shop")  # DELETED: forgotten
        wait_until(lambda: saved() == uids(first[2:] + second[1:]) and not saved() & gone)


def test_an_outage_is_one_warning_naming_the_resource_and_one_line_when_it_is_back(
    fake: FakeApiServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    create(fake, 3)
    fake.faults.status(503, times=4)
    settings = settings_for(fake, tmp_path, **{"watch.api": "events.k8s.io/v1"})
    with caplog.at_level("DEBUG", logger="kubevents"), Exporter(settings, tmp_path / "out.jsonl"):
        wait_until(lambda: len(records(tmp_path / "out.jsonl")) == 3, timeout=10)
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name.startswith("kubevents")]
    about = "watch events (events.k8s.io/v1, all namespaces): "
    warnings = [m for level, m in lines if level == "WARNING" and m.startswith(about)]
    assert len(warnings) == 1, warnings  # one per outage, not one per attempt
    assert re.search(r"API error 503.*; retrying in \d+\.\ds, then with backoff up to", warnings[0])
    retries = [m for level, m in lines if level == "DEBUG" and m.startswith(about + "API error")]
    assert len(retries) == 3  # the other attempts, quietly
    infos = [m for level, m in lines if level == "INFO" and m.startswith(about)]
    assert re.fullmatch(re.escape(about) + r"back after \d+s \(4 failed attempts\)", infos[0])
    assert infos[1] == about + "listed; watching"  # only once the server answered
    assert not [m for _, m in lines if m.startswith("watching ")]
