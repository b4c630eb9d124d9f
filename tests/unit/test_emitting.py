"""Application events without a server: the vocabulary, --regarding, validation, names.

What the API server does with them (201, 409, 403, retries) is tests/e2e/test_emit.py
against the fake and tests/integration/test_app_events.py against the real one.
"""

from __future__ import annotations

import datetime as dt

import pytest

from kubevents.emitting import VOCABULARY, Regarding, app_event, event_name, parse_regarding
from kubevents.enrich.classify import load_classifier
from kubevents.enrich.correlation_rules import load_correlation_rules
from kubevents.errors import ConfigError
from kubevents.ruletesting.cases import shorthand_event

T = dt.datetime(2026, 12, 6, 21, 0, 0, 123456, tzinfo=dt.UTC)
ENV = {"KUBEVENTS_REPORTING_INSTANCE": "runner-7"}


@pytest.mark.parametrize(
    ("text", "namespace", "api_version", "want"),
    [
        ("deployment/web", "shop", "", Regarding("apps/v1", "Deployment", "web", "shop")),
        ("deploy/web", "shop", "", Regarding("apps/v1", "Deployment", "web", "shop")),
        ("deployments/web", "shop", "", Regarding("apps/v1", "Deployment", "web", "shop")),
        ("Deployment/web", "shop", "", Regarding("apps/v1", "Deployment", "web", "shop")),
        ("sts/db", "shop", "", Regarding("apps/v1", "StatefulSet", "db", "shop")),
        ("cronjob/report", "ops", "", Regarding("batch/v1", "CronJob", "report", "ops")),
        ("ingresses/front", "shop", "", Regarding("networking.k8s.io/v1", "Ingress", "front", "shop")),
        ("node/node-1", "shop", "", Regarding("v1", "Node", "node-1", "")),
        ("Rollout/web", "shop", "argoproj.io/v1alpha1", Regarding("argoproj.io/v1alpha1", "Rollout", "web", "shop")),
        ("KafkaTopic/orders", "data", "kafka.strimzi.io/v1beta2",
         Regarding("kafka.strimzi.io/v1beta2", "KafkaTopic", "orders", "data")),
    ],
)  # fmt: skip
def test_regarding_is_kubectls_kind_slash_name(
    text: str, namespace: str, api_version: str, want: Regarding
) -> None:
    assert parse_regarding(text, namespace, api_version) == want


@pytest.mark.parametrize(
    ("text", "namespace", "api_version", "error"),
    [
        ("web", "shop", "", "--regarding: 'web' is not KIND/NAME"),
        ("deployment/", "shop", "", "is not KIND/NAME"),
        ("deployment/a/b", "shop", "", "is not KIND/NAME"),
        ("deploymnt/web", "shop", "", "unknown kind 'deploymnt' (did you mean 'deployment'?)"),
        ("kafkatopic/orders", "data", "", "give --regarding-api-version"),
        ("kafkatopic/orders", "data", "kafka.strimzi.io/v1beta2", "the kind is written as the API names it"),
        ("deployment/Web_1", "shop", "", "'Web_1' is not a Kubernetes object name"),
        ("deployment/web", "", "", "--namespace: required for a Deployment"),
        ("deployment/web", "Shop", "", "--namespace: 'Shop' is not a namespace name"),
    ],
)
def test_a_wrong_regarding_is_one_line_naming_the_flag(
    text: str, namespace: str, api_version: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=r"^--") as raised:
        parse_regarding(text, namespace, api_version)
    assert error in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"reason": "DeployStart"}, "--reason: 'DeployStart' is not in the vocabulary (did you mean 'DeployStarted'?)"),
        ({"reason": "BackOff"}, "--reason: 'BackOff' is not in the vocabulary"),
        ({"type": "Error"}, "--type: 'Error' is neither Normal nor Warning"),
        ({"note": "x" * 1025}, "--note: 1025 characters, the API takes at most 1024"),
        ({"action": "a" * 129}, "--action: longer than 128"),
        ({"reporting_controller": "ci example"}, "--reporting-controller: 'ci example' is not a qualified name"),
        ({"reporting_controller": "Ci.Example.com/deployer"}, "is not a qualified name"),
        ({"reporting_controller": "/deployer"}, "is not a qualified name"),
        ({"reporting_controller": "ci.example.com/" + "d" * 64}, "is not a qualified name"),
    ],
)  # fmt: skip
def test_a_wrong_value_is_one_line_naming_the_flag(kwargs: dict[str, str], error: str) -> None:
    args = {"reason": "DeployStarted", **kwargs}
    reason = args.pop("reason")
    with pytest.raises(ConfigError) as raised:
        app_event("deployment/web", reason, namespace="shop", env=ENV, **args)  # type: ignore[arg-type]
    assert error in str(raised.value) and "\n" not in str(raised.value)


def test_the_event_is_what_events_k8s_io_v1_validation_requires() -> None:
    event = app_event(
        "deployment/web", "DeployStarted", "v2.3 (pipeline 1234)", namespace="shop",
        event_id="pipeline-1234", reporting_controller="ci.example.com/deployer", now=T, env=ENV,
    )  # fmt: skip
    body = event.body()
    assert body["apiVersion"] == "events.k8s.io/v1" and body["kind"] == "Event"
    assert body["metadata"]["namespace"] == "shop"
    assert body["metadata"]["name"].startswith("web.")
    assert body["eventTime"] == "2026-12-06T21:00:00.123456Z"
    assert body["regarding"] == {
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "namespace": "shop",
    }  # fmt: skip
    assert (body["reason"], body["type"], body["action"], body["note"]) == (
        "DeployStarted", "Normal", "Deploy", "v2.3 (pipeline 1234)",
    )  # fmt: skip
    assert body["reportingController"] == "ci.example.com/deployer"
    assert body["reportingInstance"] == "runner-7"
    # what events.k8s.io/v1 refuses to be set on create (pkg/apis/core/validation/events.go)
    assert not {"firstTimestamp", "lastTimestamp", "count", "source", "series"} & set(body)


def test_defaults_come_from_the_vocabulary_and_the_environment() -> None:
    env = {"POD_NAMESPACE": "shop", "KUBEVENTS_REPORTING_CONTROLLER": "shop.example.com/api"}
    event = app_event("deployment/web", "MigrationFailed", now=T, env=env)
    assert event.regarding.namespace == "shop"
    assert (event.type, event.action) == ("Warning", "Migrate")
    assert event.reporting_controller == "shop.example.com/api"
    assert event.reporting_instance  # the host name
    default = app_event("deployment/web", "DeployStarted", namespace="shop", now=T, env={})
    assert default.reporting_controller == "kubevents/emit"


def test_a_cluster_scoped_object_has_its_event_in_default() -> None:
    event = app_event("node/node-1", "ManualIntervention", "drained for a kernel update", now=T, env=ENV)
    assert event.namespace == "default"
    assert "namespace" not in event.body()["regarding"]


WEB = Regarding("apps/v1", "Deployment", "web", "shop")


def test_an_id_names_the_same_event_every_time_and_only_that_one() -> None:
    later = T + dt.timedelta(minutes=5)
    name = event_name(WEB, "DeployStarted", "pipeline-1234", T)
    assert name == event_name(WEB, "DeployStarted", "pipeline-1234", later)
    others = {
        event_name(WEB, "DeploySucceeded", "pipeline-1234", T),  # the same pipeline's next step
        event_name(WEB, "DeployStarted", "pipeline-1235", T),
        event_name(Regarding("apps/v1", "Deployment", "api", "shop"), "DeployStarted", "pipeline-1234", T),
        event_name(Regarding("apps/v1", "Deployment", "web", "cart"), "DeployStarted", "pipeline-1234", T),
        event_name(Regarding("apps/v1", "StatefulSet", "web", "shop"), "DeployStarted", "pipeline-1234", T),
    }  # fmt: skip
    assert name not in others and len(others) == 5


def test_without_an_id_each_call_names_a_new_event() -> None:
    a = event_name(WEB, "DeployStarted", "", T)
    b = event_name(WEB, "DeployStarted", "", T + dt.timedelta(microseconds=1))
    assert a != b and a.startswith("web.") and b.startswith("web.")


def test_a_long_object_name_still_gives_a_valid_event_name() -> None:
    long = Regarding("apps/v1", "Deployment", "a" * 250, "shop")
    name = event_name(long, "DeployStarted", "x", T)
    assert len(name) <= 253 and name.startswith("a" * 236 + ".")


# -- the vocabulary and the rule pack agree ---------------------------------------------------

CLASSIFIER = load_classifier()
CAUSES = set(load_correlation_rules().rules_by_id["app-events.change"].cause.reasons)


@pytest.mark.parametrize("reason", sorted(VOCABULARY))
def test_every_reason_is_classified_by_the_pack_with_its_default_type(reason: str) -> None:
    entry = VOCABULARY[reason]
    event = shorthand_event(
        {"reason": reason, "type": entry.type, "kind": "Deployment", "namespace": "shop",
         "name": "web", "component": "ci.example.com/deployer"},
        "test",
    )  # fmt: skip
    result = CLASSIFIER.classify(event)
    assert result.rule_id is not None and result.rule_id.startswith("app-events.")
    # A Warning of the vocabulary is a failure (error); a Normal one is a change or a step.
    assert (result.severity.value == "error") == (entry.type == "Warning")


def test_the_changes_of_the_vocabulary_are_exactly_the_causes_of_the_pack() -> None:
    assert {r for r, entry in VOCABULARY.items() if entry.change} == CAUSES


def test_import_kubevents_loads_no_http_client_until_emit_is_used() -> None:
    import subprocess
    import sys

    code = (
        "import sys, kubevents; assert 'kubevents.emitting' not in sys.modules; "
        "assert 'urllib3' not in sys.modules; kubevents.emit; "
        "assert 'kubevents.emitting' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
