"""Writes the same 8 Events in every input format ``kubevents replay`` accepts, plus malformed.jsonl.

Run: .venv/bin/python tests/data/formats/generate.py

The 8 Events are built here (``eventkit``), not taken from the demo, so this
script does not depend on the demo's. They are the last state of each Event
(3 of them repeated, one a scheduler Event with a ``series``), served the way
each tool prints them:

* kubectl (``-o json``, ``-o yaml``, ``-w -o json``) prints keys sorted, JSON
  indented by 4 spaces, YAML with lists flush with their key;
* the raw watch API (``watch.jsonl``) streams compact JSON in Go field order;
* ``events-v1-list.json`` is the events.k8s.io/v1 view of the same Events
  (the apiserver's conversion), so a replay of any file yields the same
  normalized Events. README.md lists the files and the bad lines of
  ``malformed.jsonl``.
"""

from __future__ import annotations

import copy
import gzip
import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from eventkit import (
    SCHEDULER,
    EventState,
    Recording,
    controller,
    dumps,
    kubelet,
    msg_pull_not_found,
    msg_scheduled,
    render,
)

HERE = Path(__file__).parent


def events() -> list[EventState]:
    """Eight Events of one rollout gone wrong, plus a node condition, in creation order."""
    rec = Recording("kubevents formats", first_rv=51_904_400)
    image = "registry.example.com/shop/web:v2.3.1"
    deploy = rec.ref("Deployment", "web", "shop")
    rec.event(0, deploy, "ScalingReplicaSet", "Scaled up replica set web-7d9f8c6b5d to 2",
              controller("deployment-controller"))
    pod = rec.pod("shop", "web-7d9f8c6b5d-x2k4p")
    rec.event(0.4, pod, "Scheduled", msg_scheduled("shop", pod.name, "node-1"), SCHEDULER, action="Binding")
    ref, k = pod.container("web"), kubelet("node-1")
    rec.event(1, ref, "Pulling", f'Pulling image "{image}"', k)
    failed = rec.event(2, ref, "Failed", msg_pull_not_found(image), k, warning=True)
    rec.again(failed, 17, 42, 87)
    back = rec.event(3, ref, "BackOff", f'Back-off pulling image "{image}"', k, warning=True)
    rec.every(back, 33, 30, 6)
    pending = rec.pod("shop", "web-7d9f8c6b5d-q8r7m")
    scheduling = rec.event(0.5, pending, "FailedScheduling",
                           "0/6 nodes are available: 6 Insufficient cpu. preemption: 0/6 nodes are available: 6 No"
                           " preemption victims found for incoming pod.", SCHEDULER, warning=True, action="Scheduling")
    rec.every(scheduling, 61, 60, 2)
    node = rec.node("node-5")
    rec.event(45, node, "NodeHasDiskPressure", "Node node-5 status is now: NodeHasDiskPressure", kubelet("node-5"))
    unhealthy = rec.event(50, rec.pod("monitoring", "grafana-77f5d98d84-bl52k").container("grafana"), "Unhealthy",
                          'Readiness probe failed: Get "http://10.244.2.9:3000/api/health": dial tcp 10.244.2.9:3000:'
                          " connect: connection refused", kubelet("node-2"), warning=True)
    rec.every(unhealthy, 60, 10, 4)
    rec.watch_lines()  # assigns resourceVersions
    return rec.final_states()


def served(states: list[EventState], view: str) -> list[dict[str, Any]]:
    """Each Event's last state as a list serves it in one API version."""
    return [render(e, e.rv, view) for e in states]


def kubectl_json(obj: Any) -> str:
    return json.dumps(obj, indent=4, sort_keys=True, ensure_ascii=False) + "\n"


def kubectl_yaml(obj: Any) -> str:
    return yaml.safe_dump(obj, sort_keys=True, allow_unicode=True, default_flow_style=False)


def a_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def main() -> None:
    states = events()
    core, v1 = served(states, "core"), served(states, "events")
    (HERE / "core-list.json").write_text(kubectl_json(a_list(core)))
    (HERE / "events-v1-list.json").write_text(kubectl_json(a_list(v1)))
    (HERE / "core-list.yaml").write_text(kubectl_yaml(a_list(core)))
    (HERE / "multi-doc.yaml").write_text("".join("---\n" + kubectl_yaml(e) for e in core))
    (HERE / "watch-pretty.json").write_text("".join(kubectl_json(e) for e in core))
    watch = [dumps({"type": "ADDED", "object": e}) for e in core]
    (HERE / "watch.jsonl").write_text("".join(line + "\n" for line in watch))
    (HERE / "bare.jsonl").write_text("".join(dumps(e) + "\n" for e in core))
    (HERE / "watch.jsonl.gz").write_bytes(gzip.compress("".join(line + "\n" for line in watch).encode(), mtime=0))

    # malformed.jsonl: README.md documents every line. The two intact Events are chosen
    # with uids that sort before "bad-types" (a test reads the last uid in sorted order).
    good = [line for line, e in zip(watch, core, strict=True) if e["metadata"]["uid"] < "bad-types"]
    assert len(good) >= 3, "pick other Events for malformed.jsonl"
    bad = copy.deepcopy(core[3])
    bad["metadata"]["uid"] = "bad-types"
    bad["count"], bad["involvedObject"] = "three", None
    malformed = [
        good[0],
        good[1][: len(good[1]) // 2],  # 2: truncated mid-object
        "this is not JSON",  # 3
        "[1, 2]",  # 4: JSON, but an array
        dumps({"type": "ADDED", "object": {"apiVersion": "v1", "kind": "Pod",
                                            "metadata": {"name": "web-7d9f8c6b5d-x2k4p", "namespace": "shop"}}}),
        dumps({"type": "ADDED", "object": bad}),  # 6: an Event with wrong-typed fields
        good[2],
    ]
    (HERE / "malformed.jsonl").write_text("".join(line + "\n" for line in malformed))
    print(f"{HERE}: {len(states)} Events in 9 files")


if __name__ == "__main__":
    main()
