"""Settings: one test per failure mode, and flags > env > file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevents.errors import ConfigError
from kubevents.settings import Settings, env_name, leaf_paths, load_settings, unknown_env


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "kubevents.yaml"
    path.write_text(text)
    return str(path)


def test_defaults() -> None:
    assert load_settings(None, env={}) == Settings()


def test_file_values(tmp_path: Path) -> None:
    s = load_settings(
        config(tmp_path, "cluster_name: prod\nreplay: {top: 3}\nsinks: jsonl\n"), env={}
    )
    assert (s.cluster_name, s.replay.top, s.sinks) == ("prod", 3, ("jsonl",))


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    path = config(
        tmp_path, "cluster_name: file\nreplay: {top: 3, summary: false}\nlog_level: error\n"
    )
    env = {"KUBEVENTS_CLUSTER_NAME": "env", "KUBEVENTS_REPLAY_TOP": "4"}
    s = load_settings(path, env=env, overrides={"cluster_name": "flag"})
    assert s.cluster_name == "flag"  # flag beats env and file
    assert s.replay.top == 4  # env beats file
    assert s.replay.summary is False  # file beats default
    assert s.log_level == "error"
    assert s.pipeline.batch_size == 512  # default


def test_env_parsing() -> None:
    env = {
        "KUBEVENTS_RULES_DIRS": "a, b",
        "KUBEVENTS_RULES_INCLUDE_SHIPPED": "no",
        "KUBEVENTS_PIPELINE_SERIES_TTL_S": "60.5",
        "KUBEVENTS_CONFIG": "ignored-meta",
    }
    s = load_settings(None, env=env)
    assert s.rules.dirs == ("a", "b")
    assert s.rules.include_shipped is False
    assert s.pipeline.series_ttl_s == 60.5


def test_variable_substitution_in_values_only(tmp_path: Path) -> None:
    path = config(tmp_path, "cluster_name: ${CLUSTER}\ninstance_id: ${POD:-fallback}\n")
    s = load_settings(path, env={"CLUSTER": "a: {b: c}"})
    assert s.cluster_name == "a: {b: c}"  # substituted text is never parsed as YAML
    assert s.instance_id == "fallback"


def test_every_leaf_has_an_env_name() -> None:
    names = [env_name(p) for p in leaf_paths()]
    assert "KUBEVENTS_REPLAY_SUMMARY" in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        (
            "replay: {sumary: true}\n",
            {},
            "at replay -> sumary: unknown key (did you mean 'summary'?)",
        ),
        ("clustr_name: x\n", {}, "at clustr_name: unknown key (did you mean 'cluster_name'?)"),
        ("replay: {top: many}\n", {}, "at replay -> top: expected an integer, got a string"),
        ("replay: {top: 0}\n", {}, "at replay -> top: must be at least 1"),
        ("replay: {summary: 1}\n", {}, "at replay -> summary: expected true or false, got int"),
        ("replay: [1]\n", {}, "at replay: expected a mapping, got a list"),
        (
            "log_level: verbose\n",
            {},
            "at log_level: expected one of debug, info, warning, error, got 'verbose'",
        ),
        ("rules: {dirs: [1]}\n", {}, "at rules -> dirs: expected a list of strings"),
        ("version: 2\n", {}, "at version: unsupported config version 2"),
        ("- 1\n", {}, "expected a mapping at the top of the config"),
        ("a: [\n", {}, "invalid YAML"),
        ("cluster_name: ${NOPE}\n", {}, "${NOPE} is not set and has no default"),
        (
            "otlp: {compression: zstd}\n",
            {},
            "at otlp -> compression: expected one of none, gzip (or empty: the default), got 'zstd'",
        ),
        ("sinks: []\n", {}, "at sinks: must name at least one sink"),
        ("watch: {backoff_base_s: -1}\n", {}, "at watch -> backoff_base_s: must be positive"),
        ("watch: {backoff_cap_s: 0.1}\n", {}, "at watch -> backoff_cap_s: must be at least"),
        ("a: &a [1]\nb: [*a, *a]\n" + "", {}, "at a: unknown key"),  # aliases, but small
        (
            "",
            {"KUBEVENTS_REPLAY_TOP": "x"},
            "environment: KUBEVENTS_REPLAY_TOP: expected a number, got 'x'",
        ),
        (
            "",
            {"KUBEVENTS_REPLAY_SUMMARY": "maybe"},
            "KUBEVENTS_REPLAY_SUMMARY: expected true or false",
        ),
    ],
)
def test_invalid_config_is_one_line_naming_the_key(
    tmp_path: Path, text: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(config(tmp_path, text), env=env)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_settings(str(tmp_path / "nope.yaml"), env={})


def test_empty_file_is_defaults(tmp_path: Path) -> None:
    assert load_settings(config(tmp_path, ""), env={}) == Settings()


def test_docs_config_md_is_generated_from_the_settings() -> None:
    from kubevents.settings.reference import field_docs, settings_reference

    path = Path(__file__).resolve().parents[2] / "docs" / "config.md"
    assert path.read_text() == settings_reference(), (
        "run: .venv/bin/python -m kubevents.settings.reference > docs/config.md"
    )
    assert set(field_docs(Settings)) >= {"cluster_name", "sinks", "log_level"}


@pytest.mark.parametrize(
    ("env", "warnings"),
    [
        # What Kubernetes sets for a Service named kubevents (docker links' style variables).
        (
            {
                "KUBEVENTS_SERVICE_HOST": "10.0.0.1",
                "KUBEVENTS_SERVICE_PORT": "9464",
                "KUBEVENTS_SERVICE_PORT_METRICS": "9464",
                "KUBEVENTS_PORT": "tcp://10.0.0.1:9464",
                "KUBEVENTS_PORT_9464_TCP": "tcp://10.0.0.1:9464",
                "KUBEVENTS_PORT_9464_TCP_PROTO": "tcp",
                "KUBEVENTS_PORT_9464_TCP_ADDR": "10.0.0.1",
            },
            [],
        ),
        (
            {"KUBEVENTS_REPLAY_SUMARY": "1"},
            [
                "environment: unknown variable KUBEVENTS_REPLAY_SUMARY ignored"
                " (did you mean 'KUBEVENTS_REPLAY_SUMMARY'?)"
            ],
        ),
        ({"KUBEVENTS_REPLAY_SUMMARY": "0", "KUBEVENTS_CONFIG": "x", "OTHER": "1"}, []),
    ],
)
def test_unknown_environment_variables_warn_and_service_variables_are_ignored(
    env: dict[str, str], warnings: list[str]
) -> None:
    load_settings(None, env=env)  # never an error
    assert unknown_env(env) == warnings


@pytest.mark.parametrize(
    ("text", "kind", "arg"),
    [
        ("console", "console", ""),
        ("jsonl:", "jsonl", ""),
        ("jsonl:out.jsonl", "jsonl", "out.jsonl"),
        ("otlp+http:http://collector:4318", "otlp+http", "http://collector:4318"),
        ("loki:https://loki:3100", "loki", "https://loki:3100"),
    ],
)
def test_a_sink_spec_splits_at_its_first_colon(text: str, kind: str, arg: str) -> None:
    (spec,) = load_settings(None, env={}, overrides={"sinks": [text]}).sink_specs
    assert (spec.kind, spec.arg, spec.text) == (kind, arg, text)
    assert spec.is_otlp == kind.startswith("otlp")


def test_watch_options_take_every_watch_setting_of_their_name() -> None:
    import dataclasses

    from kubevents.source.watching import WatchOptions

    changed = {
        "watch.field_selector": "type!=Normal",
        "watch.page_size": 7,
        "watch.timeout_s": 9,
        "watch.inactivity_timeout_s": 11.0,
        "watch.empty_watch_s": 2.5,
        "watch.backoff_base_s": 0.25,
        "watch.backoff_cap_s": 3.0,
    }
    watch = load_settings(None, env={}, overrides=changed).watch
    options = WatchOptions.from_settings(watch)
    names = [f.name for f in dataclasses.fields(WatchOptions)]
    assert sorted(names) == sorted(key.removeprefix("watch.") for key in changed)
    assert {name: getattr(options, name) for name in names} == {
        key.removeprefix("watch."): value for key, value in changed.items()
    }
