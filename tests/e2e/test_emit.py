"""`kubevents emit` and `kubevents.emit` against the fake apiserver: what a create meets.

The fake stores Events once and serves them through events.k8s.io/v1 with that API's
create validation, answers 409 AlreadyExists for a name it holds, 403 with the apiserver's
RBAC message, and scripted 429/503 answers: the retries, the idempotency and the errors are
what the real client code does over real HTTP. The real kube-apiserver is
tests/integration/test_app_events.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import kubevents
from kubevents.cli import main
from kubevents.emitting import EmitForbidden, app_event, post
from kubevents.errors import ApiError
from kubevents.source.kubeclient import ConnectionLost, api_path, load_client
from tests.fakes.apiserver import FakeApiServer
from tests.integration.servers import free_port

ENV = {"KUBEVENTS_REPORTING_INSTANCE": "runner-7"}


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server


@pytest.fixture
def kubeconfig(fake: FakeApiServer, tmp_path: Path) -> Path:
    return fake.write_kubeconfig(tmp_path / "kubeconfig")


def creates(fake: FakeApiServer) -> int:
    return sum(1 for r in fake.requests if r.method == "POST")


def test_emit_records_one_event_and_says_so(
    fake: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["emit", "--kubeconfig", str(kubeconfig), "--regarding", "deployment/web", "-n", "shop",
            "--reason", "DeployStarted", "--note", "v2.3 (pipeline 1234)", "--id", "pipeline-1234",
            "--reporting-controller", "ci.example.com/deployer"]  # fmt: skip
    assert main(argv) == 0
    (stored,) = fake.store.objects("events", namespace="shop")
    out = capsys.readouterr().out.strip()
    assert out == f"recorded Event shop/{stored['metadata']['name']} (DeployStarted on Deployment/web)"
    path = api_path("events.k8s.io/v1", "events", "shop", stored["metadata"]["name"])
    served = load_client(kubeconfig=str(kubeconfig)).request_json("GET", path)
    assert served["reportingController"] == "ci.example.com/deployer"
    assert served["regarding"]["kind"] == "Deployment" and served["note"] == "v2.3 (pipeline 1234)"

    # The CI job runs again: same id, same Event, nothing new, and it says so.
    assert main(argv) == 0
    assert len(fake.store.objects("events", namespace="shop")) == 1
    again = capsys.readouterr().out.strip()
    assert again.startswith(f"already recorded: Event shop/{stored['metadata']['name']} exists")
    assert "nothing new recorded" in again


def test_without_an_id_each_emit_is_a_new_event(fake: FakeApiServer, kubeconfig: Path) -> None:
    for _ in range(2):
        kubevents.emit("deployment/web", "ConfigChanged", "LOG_LEVEL=debug", namespace="shop",
                       kubeconfig=str(kubeconfig))  # fmt: skip
    assert len(fake.store.objects("events", namespace="shop")) == 2


def test_a_retry_after_a_lost_answer_is_not_recorded_twice(fake: FakeApiServer, kubeconfig: Path) -> None:
    event = app_event("deployment/web", "DeployStarted", namespace="shop", event_id="p-9", env=ENV)
    client = load_client(kubeconfig=str(kubeconfig))
    # The first attempt was stored, its answer lost (what the retry then meets).
    assert post(client, event).created
    fake.faults.where(method="POST").status(503, times=1)
    emitted = post(client, event, sleep=lambda s: None)
    assert (emitted.created, emitted.attempts) == (False, 2)
    assert len(fake.store.objects("events", namespace="shop")) == 1


@pytest.mark.parametrize(
    ("code", "retry_after", "waited"),
    [(503, None, "backoff"), (500, None, "backoff"), (429, 3, 3.0), (429, 120, 30.0)],
)
def test_a_server_that_fails_for_a_while_is_retried(
    fake: FakeApiServer, kubeconfig: Path, code: int, retry_after: int | None, waited: object
) -> None:
    fake.faults.where(method="POST").status(code, retry_after=retry_after, times=2)
    slept: list[float] = []
    event = app_event("deployment/web", "DeployStarted", namespace="shop", event_id="p-1", env=ENV)
    emitted = post(load_client(kubeconfig=str(kubeconfig)), event, sleep=slept.append)
    assert (emitted.created, emitted.attempts) == (True, 3)
    assert creates(fake) == 3 and len(fake.store.objects("events", namespace="shop")) == 1
    if waited == "backoff":
        assert 0.4 <= slept[0] <= 0.6 and 0.8 <= slept[1] <= 1.2  # 0.5 s, 1 s, ±20%
    else:
        assert slept == [waited, waited]  # Retry-After, capped at 30 s


def test_a_server_that_keeps_failing_is_an_error_after_four_attempts(
    fake: FakeApiServer, kubeconfig: Path
) -> None:
    fake.faults.where(method="POST").status(503, times=None)
    event = app_event("deployment/web", "DeployStarted", namespace="shop", env=ENV)
    with pytest.raises(ApiError) as raised:
        post(load_client(kubeconfig=str(kubeconfig)), event, sleep=lambda s: None)
    assert raised.value.status == 503 and creates(fake) == 4


def test_an_invalid_event_is_not_retried(fake: FakeApiServer, kubeconfig: Path) -> None:
    fake.faults.where(method="POST").status(422, times=None)
    event = app_event("deployment/web", "DeployStarted", namespace="shop", env=ENV)
    with pytest.raises(ApiError):
        post(load_client(kubeconfig=str(kubeconfig)), event, sleep=lambda s: None)
    assert creates(fake) == 1


def test_a_403_names_the_missing_rbac_rule_in_one_line(
    fake: FakeApiServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add_token("reader", user="system:serviceaccount:ci:deployer",
                   allow=[("list", "events.k8s.io", "events"), ("watch", "events.k8s.io", "events")])  # fmt: skip
    kubeconfig = fake.write_kubeconfig(tmp_path / "reader", token="reader")
    argv = ["emit", "--kubeconfig", str(kubeconfig), "--regarding", "deployment/web", "-n", "shop",
            "--reason", "DeployStarted"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kubevents: error: forbidden: ")
    assert 'User "system:serviceaccount:ci:deployer" cannot create resource "events"' in err
    assert "the missing RBAC rule is create on events in API group events.k8s.io in namespace shop" in err
    assert creates(fake) == 1  # a 403 is not retried
    with pytest.raises(EmitForbidden):
        kubevents.emit("deployment/web", "DeployStarted", namespace="shop", kubeconfig=str(kubeconfig))


def test_no_server_is_one_line_after_the_retries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with FakeApiServer() as dead:
        kubeconfig = dead.write_kubeconfig(tmp_path / "kubeconfig")
        config = kubeconfig.read_text().replace(str(dead.port), str(free_port()))
    kubeconfig.write_text(config)
    event = app_event("deployment/web", "DeployStarted", namespace="shop", env=ENV)
    slept: list[float] = []
    with pytest.raises(ConnectionLost):
        post(load_client(kubeconfig=str(kubeconfig)), event, sleep=slept.append)
    assert len(slept) == 3


def test_bad_input_is_exit_2_and_one_line_before_any_request(
    fake: FakeApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["emit", "--kubeconfig", str(kubeconfig), "--regarding", "deployment/web", "-n", "shop",
            "--reason", "Deployed"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--reason: 'Deployed' is not in the vocabulary" in err
    assert creates(fake) == 0
