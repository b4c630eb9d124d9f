"""Writes the same 8 Events in every input format `kubevents replay` accepts.

Run: .venv/bin/python tests/data/formats/generate.py
"""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path

import yaml

HERE = Path(__file__).parent
DEMO = HERE.parent / "demo" / "events.jsonl"


def core_events() -> list[dict]:
    """The last state of the first 8 core/v1 Events of the demo recording."""
    latest: dict[str, dict] = {}
    for line in DEMO.read_text().splitlines():
        obj = json.loads(line)["object"]
        if obj["apiVersion"] == "v1":
            latest[obj["metadata"]["uid"]] = obj
    chosen = [e for e in latest.values() if e.get("count", 1) > 1][:3] + [e for e in latest.values() if e.get("count", 1) == 1][:5]
    return chosen


def to_v1(core: dict) -> dict:
    """The events.k8s.io/v1 view of a core/v1 Event (the apiserver's conversion)."""
    out = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": core["metadata"],
           "regarding": core["involvedObject"], "note": core["message"], "reason": core["reason"],
           "type": core["type"], "eventTime": core.get("eventTime"),
           "reportingController": core.get("reportingComponent", ""),
           "reportingInstance": core.get("reportingInstance", ""),
           "deprecatedSource": core.get("source", {}), "deprecatedCount": core.get("count"),
           "deprecatedFirstTimestamp": core.get("firstTimestamp"), "deprecatedLastTimestamp": core.get("lastTimestamp")}
    return out


def main() -> None:
    events = core_events()
    items = [copy.deepcopy(e) for e in events]
    (HERE / "core-list.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items,
                                                     "metadata": {"resourceVersion": ""}}, indent=4) + "\n")
    (HERE / "events-v1-list.json").write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [to_v1(e) for e in events],
                                                          "metadata": {"resourceVersion": ""}}, indent=4) + "\n")
    (HERE / "core-list.yaml").write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": items,
                                                         "metadata": {"resourceVersion": ""}}, sort_keys=False))
    (HERE / "multi-doc.yaml").write_text("".join("---\n" + yaml.safe_dump(e, sort_keys=False) for e in events))
    (HERE / "watch-pretty.json").write_text("".join(json.dumps(e, indent=4) + "\n" for e in events))
    watch = "".join(json.dumps({"type": "ADDED", "object": e}, separators=(",", ":")) + "\n" for e in events)
    (HERE / "watch.jsonl").write_text(watch)
    (HERE / "bare.jsonl").write_text("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
    (HERE / "watch.jsonl.gz").write_bytes(gzip.compress(watch.encode(), mtime=0))
    good = watch.splitlines()
    bad_event = copy.deepcopy(events[0])
    bad_event["metadata"]["uid"] = "bad-types"
    bad_event["count"], bad_event["involvedObject"] = "three", None
    malformed = [good[0], good[1][: len(good[1]) // 2], "this is not JSON", "[1, 2]",
                 json.dumps({"type": "ADDED", "object": {"kind": "Pod", "metadata": {"name": "p"}}}),
                 json.dumps({"type": "ADDED", "object": bad_event}), good[2]]
    (HERE / "malformed.jsonl").write_text("\n".join(malformed) + "\n")


if __name__ == "__main__":
    main()
