"""docs/attributes.md is the contract: it must match conventions.py and the real output."""

from __future__ import annotations

import re
from pathlib import Path

from kubevents import conventions as c

ROOT = Path(__file__).resolve().parents[2]
ROW = re.compile(
    r"^\| `([a-z0-9_.]+)` \| (string|int|bool|double) \| (stable|receiver-compatible|experimental) \|", re.MULTILINE
)


def documented() -> dict[str, str]:
    """Attribute name -> type, from the tables of docs/attributes.md."""
    text = (ROOT / "docs" / "attributes.md").read_text()
    return {m.group(1): m.group(2) for m in ROW.finditer(text)}


def statuses() -> dict[str, str]:
    """Attribute name -> status, from the same tables."""
    text = (ROOT / "docs" / "attributes.md").read_text()
    return {m.group(1): m.group(3) for m in ROW.finditer(text)}


# The names of docs/attributes.md that OpenTelemetry's semantic conventions define
# (semconv v1.43.0, as go.opentelemetry.io/otel v1.45.0's semconv/v1.43.0 lists them).
SEMCONV = {
    "service.name", "service.version", "service.instance.id", "k8s.cluster.name",
    "k8s.namespace.name", "k8s.pod.name", "k8s.node.name", "k8s.deployment.name",
    "k8s.replicaset.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.job.name",
    "k8s.cronjob.name", "k8s.replicationcontroller.name", "k8s.hpa.name",
    "k8s.persistentvolumeclaim.name", "k8s.service.name", "k8s.resourcequota.name",
}  # fmt: skip


def test_stable_means_defined_by_the_semantic_conventions() -> None:
    """Outside kubevents' own namespace, a name semconv does not define is at most
    receiver-compatible: it is only as stable as the Collector receiver that writes it."""
    status = statuses()
    not_semconv_but_stable = sorted(
        n for n, s in status.items()
        if s == "stable" and n not in SEMCONV and not n.startswith("kubevents.")
    )  # fmt: skip
    assert not_semconv_but_stable == []
    receiver = sorted(n for n, s in status.items() if s == "receiver-compatible")
    assert receiver and all(n.startswith(("k8s.event.", "k8s.object.")) for n in receiver)


def declared() -> set[str]:
    """Every attribute key conventions.py declares (resource and record)."""
    values = {v for k, v in vars(c).items() if k.isupper() and isinstance(v, str) and "." in v}
    values -= {c.EVENT_NAME_EVENT, c.EVENT_NAME_INCIDENT, c.EVENT_NAME_PATTERN}
    kinds = {c.kind_name_key(kind) for kind in c.SEMCONV_KINDS}
    return values | {k for k in kinds if k}


def test_docs_list_exactly_the_declared_attributes() -> None:
    docs, code = set(documented()), declared()
    assert sorted(code - docs) == [], "declared in conventions.py but not documented"
    assert sorted(docs - code) == [], "documented but not declared in conventions.py"


def test_real_output_uses_only_documented_attributes_with_documented_types(
    jsonl_demo_records,
) -> None:  # type: ignore[no-untyped-def]
    docs = documented()
    seen: dict[str, set[str]] = {}
    for record in jsonl_demo_records:
        for key, value in {**record["resource"], **record["attributes"]}.items():
            kind = {bool: "bool", int: "int", str: "string", float: "double"}[type(value)]
            seen.setdefault(key, set()).add(kind)
    undocumented = sorted(set(seen) - set(docs))
    assert undocumented == []
    wrong = {k: v for k, v in seen.items() if v != {docs[k]}}
    assert wrong == {}
