"""Event updates in shorthand for the unit tests (times in seconds from T0): one builder
for every test that needs a :class:`KubeEvent` with a few fields of its own."""

from __future__ import annotations

from kubevents.model import KubeEvent, ObjectRef

S = 1_000_000_000
T0 = 1_795_000_000 * S


def ev(
    t: float,
    reason: str,
    name: str,
    *,
    ns: str = "shop",
    kind: str = "Pod",
    node: str = "",
    message: str = "",
    type_: str = "Warning",
    controller: str = "",
    uid: str = "",
    count: int = 1,
    instance: str | None = None,
    host: str = "",
) -> KubeEvent:
    """One Event update at ``t`` seconds; ``node``: reported by that node's kubelet.

    ``instance`` is the reportingInstance (default: ``node``), ``host`` the core/v1
    ``source.host``.
    """
    return KubeEvent(
        uid=uid or f"{name}:{reason}",
        name=f"{name}.1",
        namespace=ns or "default",
        reason=reason,
        type=type_,
        message=message,
        regarding=ObjectRef(kind=kind, namespace="" if kind == "Node" else ns, name=name),
        time_ns=T0 + int(t * S),
        first_time_ns=T0 + int(t * S),
        count=count,
        reporting_controller=controller or ("kubelet" if node else ""),
        reporting_instance=node if instance is None else instance,
        source_host=host,
    )
