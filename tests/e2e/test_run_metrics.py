"""`kubevents run` end to end: the object cache feeds correlation, /metrics shows the watch,
and /healthz and /readyz answer from the runner.

Runs against the fake apiserver through the real kubernetes client, as
``test_watch.py`` does, with the object cache on and the metrics server up.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.test_sinks_metrics import documented, run_only, scraped
from tests.e2e.test_watch import Exporter, records, settings_for
from tests.fakes.apiserver import FakeApiServer, make_event
from tests.support.scraping import scrape
from tests.support.waiting import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def values(url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Samples of one metric: sorted label pairs -> value ({} while the server is not up)."""
    try:
        samples = scrape(url)
    except requests.ConnectionError:
        return {}
    return {labels: value for (n, labels), value in samples.items() if n == name}


def owned_pod(name: str, *, owner_kind: str, owner: str, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": owner_kind,
                    "name": owner,
                    "uid": "u-" + owner,
                    "controller": True,
                }
            ],
        },
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "app:1"}]},
    }


def replica_set(name: str, deployment: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment,
                    "uid": "u-" + deployment,
                    "controller": True,
                }
            ],
        },
        "spec": {"selector": {"matchLabels": {"app": deployment}}},
    }


@pytest.fixture
def fake() -> Any:
    with FakeApiServer(bookmark_interval=0.1, timeout_scale=0.2) as server:
        yield server


def test_the_object_cache_gives_owners_and_nodes_that_names_cannot(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    # Neither name proves an owner ("api-x2k4p" could be any controller's Pod), and the
    # scheduler reports the Event: only the cache knows the Deployment and the node.
    fake.store.create(replica_set("api-main", "api"))
    fake.store.create(
        owned_pod("api-x2k4p", owner_kind="ReplicaSet", owner="api-main", node="node-7")
    )
    port = free_port()
    settings = settings_for(
        fake,
        tmp_path,
        **{"watch.object_cache": True, "metrics.port": port, "metrics.host": "127.0.0.1"},
    )
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "out.jsonl"
    with Exporter(settings, out):
        wait_until(
            lambda: all(
                values(url, "kubevents_watch_lists_total").get((("resource", r),), 0) >= 1
                for r in ("pods", "replicasets")
            )
        )
        fake.store.create(
            make_event(
                "sched-1",
                namespace="shop",
                reason="FailedScheduling",
                event_type="Warning",
                message="0/3 nodes are available: 3 Insufficient cpu.",
                object_name="api-x2k4p",
                component="default-scheduler",
            )
        )
        wait_until(lambda: len(records(out)) == 1)
    (record,) = records(out)
    attributes = record["attributes"]
    assert attributes["kubevents.workload"] == "shop/Deployment/api"
    assert (attributes["k8s.replicaset.name"], attributes["k8s.deployment.name"]) == (
        "api-main",
        "api",
    )
    assert attributes["k8s.node.name"] == "node-7"


def test_metrics_show_the_watch_leadership_checkpoints_and_probes(
    fake: FakeApiServer, tmp_path: Path
) -> None:
    fake.store.create(make_event("e-1", namespace="shop", reason="BackOff", event_type="Warning"))
    port = free_port()
    settings = settings_for(
        fake,
        tmp_path,
        **{
            "watch.object_cache": True,
            "watch.checkpoint": str(tmp_path / "checkpoint.json"),
            "cluster_name": "test-cluster",  # target_info has k8s_cluster_name only when set
            "metrics.port": port,
            "metrics.host": "127.0.0.1",
        },
    )
    url = f"http://127.0.0.1:{port}"
    events = fake.faults.where(path=r"/events$")
    # The first two lists (the API version probe, then the watch's list): an API error each;
    # the watch counts its own and retries.
    events.status(429, retry_after=0, times=2)
    events.expire(after_events=0, times=1)  # the first watch: 410 Expired, then a relist
    with Exporter(settings, tmp_path / "out.jsonl"):
        wait_until(
            lambda: (
                values(url, "kubevents_watch_relists_total").get(
                    (("reason", "expired"), ("resource", "events"))
                )
                == 1
            )
        )
        assert values(url, "kubevents_watch_api_errors_total") == {
            (("code", "429"), ("resource", "events")): 1.0,
            (("code", "410"), ("resource", "events")): 1.0,
        }
        wait_until(
            lambda: (
                values(url, "kubevents_checkpoint_writes_total").get((("result", "success"),), 0)
                > 0
            )
        )
        wait_until(
            lambda: (
                values(url, "kubevents_watch_streams").get(
                    (("resource", "events"), ("state", "established"))
                )
                == 1
            )
        )
        assert requests.get(f"{url}/healthz", timeout=5).status_code == 200
        ready = requests.get(f"{url}/readyz", timeout=5)
        assert (ready.status_code, ready.text.strip()) == (200, "watching")
        assert values(url, "kubevents_leader") == {(): 1.0}
        assert values(url, "kubevents_pipeline_queue_capacity") == {(): 10_000.0}
        lag = values(url, "kubevents_watch_lag_seconds")[()]
        newest = values(url, "kubevents_watch_last_event_timestamp_seconds")[()]
        assert lag >= 0 and newest > 1_500_000_000
        result = scraped(url)
    docs = documented()
    assert sorted(set(result) - set(docs)) == [], "scraped but not in docs/metrics.md"
    assert {n: v for n, v in result.items() if v != docs[n]} == {}, "labels differ from docs"
    assert sorted(run_only() - set(result)) == [], "documented under Watch, not scraped"
