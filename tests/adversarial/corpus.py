"""Hostile Events: what an attacker who can create Events (any Pod's service account with
``create events``, or a compromised node) can put into kubevents' input.

``corpus()`` returns (lines, expectations): JSON Lines of bare core/v1 Events, mixed with
lines that are not Events at all, and what kubevents must make of them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

MIB = 1024 * 1024
TIME = "2026-11-20T10:00:00Z"

INJECTIONS = [
    # Prometheus exposition / LogQL selectors / Loki JSON label text.
    'Back"Off',
    'x"} evil_total{a="1',
    'a\\"} 1\nfake_metric{b="2"} 3\n#',
    "}{,=\"'`$(id)",
    'k8s_namespace_name="kube-system"',
    "line1\nline2\rline3",
    "\\",
    '\\\\"\\n',
]
CONTROLS = "".join(chr(c) for c in range(0x20) if c != 0) + "\x7f\x1b[2J\x1b]0;pwned\x07\x9b31m"
UNICODE = "ünïcødé 日本語 العربية \u202eevil\u202c 👩‍👩‍👧 e\u0301 \u2028\u2029 \ufeff \u00a0 𝔘"


@dataclass
class Expect:
    events: int = 0
    """Valid Events (each becomes exactly one k8s.event record)."""
    bad: int = 0
    """Lines that are not Events (each reported on one line and counted)."""
    namespaces: set[str] = field(default_factory=set)
    reasons: set[str] = field(default_factory=set)
    messages: list[str] = field(default_factory=list)


def event(name: str, **fields: Any) -> dict[str, Any]:
    ns = fields.pop("namespace", "shop")
    obj: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": ns, "uid": f"uid-{name}"},
        "involvedObject": {
            "kind": "Pod",
            "namespace": ns,
            "name": f"web-{name}",
            "uid": f"o-{name}",
        },
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "type": "Warning",
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": TIME,
        "lastTimestamp": TIME,
        "count": 1,
    }
    for key, value in fields.items():
        obj[key] = value
    return obj


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = {"k": value} if i % 2 else [value]
    return value


def corpus() -> tuple[list[bytes], Expect]:
    lines: list[bytes] = []
    exp = Expect()
    n = 0

    def add(obj: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        lines.append(json.dumps(obj).encode())
        exp.events += 1
        exp.namespaces.add(obj["metadata"]["namespace"])
        reason = obj.get("reason")
        exp.reasons.add(reason if isinstance(reason, str) else "")
        msg = obj.get("message")
        exp.messages.append(msg if isinstance(msg, str) else "")

    def bad(raw: bytes) -> None:
        lines.append(raw)
        exp.bad += 1

    # Label injection: in reason, namespace, object and Event names, component, host.
    for i, text in enumerate(INJECTIONS):
        add(
            event(
                f"inj-{i}",
                namespace=text,
                reason=text,
                message=text,
                source={"component": text, "host": text},
                involvedObject={"kind": text, "namespace": text, "name": text, "uid": text},
            )
        )
    # Control characters and unicode in every field.
    for i, text in enumerate([CONTROLS, UNICODE, CONTROLS + UNICODE]):
        add(
            event(
                f"ctl-{i}",
                namespace=text,
                reason=text,
                message=text,
                type=text,
                action=text,
                reportingComponent=text,
                reportingInstance=text,
                source={"component": text, "host": text},
                involvedObject={
                    "kind": text,
                    "namespace": text,
                    "name": text,
                    "uid": text,
                    "fieldPath": text,
                    "apiVersion": text,
                },
            )
        )
    # 1 MiB messages, and a 64 KiB reason and namespace.
    add(event("big-msg", message="m" * MIB))
    add(event("big-msg-unicode", message="é" * (MIB // 2) + "\x00"))
    add(event("big-labels", reason="R" * 65536, namespace="n" * 65536))
    # Deep nesting (parses) and wrong-typed fields: coerced, never fatal.
    add(event("deep", involvedObject=nested(200), series=nested(100), related=nested(100)))
    add(event("wrong-1", count="abc", reason=["a", "b"], message={"x": 1}, type=7))
    add(event("wrong-2", count=-5, firstTimestamp=12345, lastTimestamp=True, source="kubelet"))
    add(event("wrong-3", count=10**30, involvedObject="Pod/web", eventTime=[1, 2]))
    add(event("wrong-4", count=True, metadata={"name": "wrong-4", "namespace": "shop", "uid": 5}))
    add(event("wrong-5", firstTimestamp="not a time", lastTimestamp="9999-99-99T99:99:99Z"))
    # Lines that are not Events: each one skipped, counted, reported on one line.
    bad(b'{"kind":"Pod","metadata":{"name":"not-an-event"}}')
    bad(b"[1, 2, 3]")
    bad(b'"just a string"')
    bad(b"null")
    bad(b'{"kind":"Event","metadata":{"name":"torn"')  # torn JSON
    bad(b"\xff\xfe\x00 binary \x1b[31m")  # not UTF-8
    bad(b'{"kind":"Event","x":' + b"[" * 5000 + b"]" * 5000 + b"}")  # deeper than parsers take
    bad(b'{"kind":"Event","message":"\\ud800"}')  # a lone surrogate
    return lines, exp


def flood(count: int) -> bytes:
    """``count`` Events, each with a unique reason, namespace and object: a cardinality bomb."""
    out = []
    for i in range(count):
        ns = f"ns-{i % 5000}"
        obj = event(
            f"flood-{i}",
            namespace=ns,
            reason=f"Reason{i}",
            message=f"unique message {i}",
            involvedObject={
                "kind": f"Kind{i % 997}",
                "namespace": ns,
                "name": f"obj-{i}",
                "uid": f"o-{i}",
            },
            firstTimestamp=f"2026-11-20T10:{(i // 1000) % 60:02d}:{(i // 17) % 60:02d}Z",
        )
        obj["lastTimestamp"] = obj["firstTimestamp"]
        out.append(orjson.dumps(obj))
    return b"\n".join(out) + b"\n"
