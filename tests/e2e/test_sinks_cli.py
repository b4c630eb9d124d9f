"""The sink flags on the real command line: precedence, errors, and secrets never printed."""

from __future__ import annotations

import pytest
import yaml

from kubevents.cli import main
from tests.e2e.sinks_support import DEMO


def test_check_config_shows_the_sink_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 0
    defaults = yaml.safe_load(capsys.readouterr().out)
    assert defaults["metrics"]["port"] == 9464
    assert defaults["delivery"]["queue_full"] == "block"
    assert defaults["loki"]["labels"] == ["service.name", "k8s.cluster.name", "k8s.namespace.name"]


def test_secrets_are_redacted_in_check_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBEVENTS_OTLP_HEADERS", "authorization=Bearer s3cret,x-team=a")
    monkeypatch.setenv("KUBEVENTS_LOKI_PASSWORD", "hunter2")
    monkeypatch.setenv("KUBEVENTS_LOKI_BEARER_TOKEN", "t0ken")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    for secret in ("s3cret", "hunter2", "t0ken"):
        assert secret not in out
    printed = yaml.safe_load(out)
    assert printed["otlp"]["headers"] == ["authorization=<redacted>", "x-team=<redacted>"]
    assert printed["loki"]["password"] == "<redacted>"


def test_replay_help_lists_the_sink_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    text = capsys.readouterr().out
    for flag in ("--spool", "--metrics-port", "--hold", "otlp+http[:URL]", "loki:URL"):
        assert flag in text


@pytest.mark.parametrize(
    ("sink", "message"),
    [
        ("loki", "loki needs Loki's URL"),
        ("otlp:ftp://collector:4317", "unsupported scheme 'ftp'"),
        ("otlp+htttp:http://x", "unknown sink 'otlp+htttp' (did you mean 'otlp+http'?)"),
    ],
)
def test_bad_sinks_stop_with_one_line(
    capsys: pytest.CaptureFixture[str], sink: str, message: str
) -> None:
    assert main(["replay", str(DEMO), "--no-summary", "--sink", sink]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_network_sink_given_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "replay",
        str(DEMO),
        "--no-summary",
        "--sink",
        "loki:http://a:1",
        "--sink",
        "loki:http://b:2",
    ]
    assert main(args) == 2
    assert "loki is given twice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KUBEVENTS_DELIVERY_QUEUE_FULL": "drop_newest"}, "expected one of block, drop_oldest"),
        ({"KUBEVENTS_DELIVERY_QUEUE_SIZE": "0"}, "delivery -> queue_size: must be at least 1"),
        ({"KUBEVENTS_METRICS_PORT": "70000"}, "metrics -> port: must be between 0 and 65535"),
    ],
)
def test_bad_delivery_settings_stop_with_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 2
    assert message in capsys.readouterr().err
