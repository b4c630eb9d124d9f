"""The written-out constructors of the per-Event classes (kubevents.model's docstring).

Each must take exactly the parameters, in the order and with the defaults, that
``dataclass`` would generate from its fields, and set every field from them.
"""

from __future__ import annotations

import dataclasses

import pytest

from kubevents.conventions import Category, Severity
from kubevents.enrich.incidents import IncidentState, IncidentTransition, RootCause
from kubevents.model import Classification, Correlation, Enriched, KubeEvent, ObjectRef
from kubevents.records import OutputRecord

CLASSES = [
    ObjectRef,
    KubeEvent,
    Classification,
    Correlation,
    Enriched,
    OutputRecord,
    RootCause,
    IncidentTransition,
]

_REF = ObjectRef("Pod", "ns", "web-1", "u-1", "v1", "7", "spec.containers{app}")
_EVENT = KubeEvent("e-1", "web-1.17", "ns", "BackOff", "Warning", "m", _REF, 20, 10)
_CLS = Classification(Category.HEALTH, Severity.ERROR, "crash")
_ROOT = RootCause("e-1", "BackOff", "ns/Pod/web-1", "ns", 20, Category.HEALTH, Severity.ERROR, 10)


def _values(cls: type) -> dict[str, object]:
    """A value of the field's type for every field, each unlike the field's default
    and unlike the others (the compiled constructor checks types: no plain sentinels)."""
    by_type: dict[str, list[object]] = {
        "str": [f"s{i}" for i in range(30)],
        "int": list(range(100, 130)),
    }
    special: dict[str, object] = {
        "regarding": ObjectRef("Node", "", "n-1"),
        "related": ObjectRef("Pod", "ns", "db-0"),
        "repairs": ("count: x",),
        "event": _EVENT,
        "classification": _CLS,
        "correlation": Correlation("ns/Pod/web-1"),
        "category": Category.HEALTH,
        "severity": Severity.ERROR,
        "attributes": {"k": "v"},
        "rule_id": "r-1",
        "owners": (ObjectRef("ReplicaSet", "ns", "web-7d9f8c6b5d"),),
        "subject": ObjectRef("Deployment", "ns", "web"),
        "root_cause": True,
        "state": IncidentState.MERGED,
        "root": _ROOT,
        "workloads": ("ns/Deployment/web",),
        "nodes": ("node-1",),
        "namespaces": ("ns",),
        "categories": (("Health", 2),),
        "aliases": ("inc-0123456789ab",),
    }
    out: dict[str, object] = {}
    for field in dataclasses.fields(cls):
        if field.name in special:
            out[field.name] = special[field.name]
        else:
            kind = field.type if isinstance(field.type, str) else field.type.__name__
            out[field.name] = by_type[kind].pop(0)
    return out


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_the_constructor_has_the_fields_defaults_and_requires_the_others(cls: type) -> None:
    # Behaviour, not inspect.signature: a compiled constructor shows no signature.
    fields = dataclasses.fields(cls)
    assert all(field.default_factory is dataclasses.MISSING for field in fields)
    values = _values(cls)
    required = {field.name: values[field.name] for field in fields if field.default is dataclasses.MISSING}
    made = cls(**required)
    for field in fields:
        expected = required.get(field.name, field.default)
        assert getattr(made, field.name) == expected, field.name
    for name in required:
        with pytest.raises(TypeError):
            cls(**{other: value for other, value in required.items() if other != name})
    with pytest.raises(TypeError):
        cls(**required, not_a_field=1)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_the_constructor_sets_every_field_and_the_class_stays_frozen(cls: type) -> None:
    # A distinct value per field: a field set from the wrong parameter shows.
    values = _values(cls)
    assert all(values[field.name] != field.default for field in dataclasses.fields(cls))
    made = cls(**values)
    assert {name: getattr(made, name) for name in values} == values
    by_position = cls(*values.values())
    assert by_position == made
    first = next(iter(values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, first, None)
    required = {f.name: values[f.name] for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
    assert dataclasses.replace(cls(**required), **values) == made
