"""OTLP endpoint options: sink spec > settings > OTEL_EXPORTER_OTLP_<SIGNAL>_* > OTEL_EXPORTER_OTLP_* > default."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubevents.errors import ConfigError
from kubevents.settings import OtlpSettings
from kubevents.sinks.otlp_options import parse_headers, resolve_otlp

NONE = OtlpSettings()


@pytest.mark.parametrize(
    ("transport", "spec", "settings", "env", "url", "target", "secure"),
    [
        ("grpc", None, NONE, {}, "http://localhost:4317", "localhost:4317", False),
        (
            "http",
            None,
            NONE,
            {},
            "http://localhost:4318/v1/logs",
            "http://localhost:4318/v1/logs",
            False,
        ),
        ("grpc", "https://otel:4317", NONE, {}, "https://otel:4317", "otel:4317", True),
        ("grpc", "http://otel", NONE, {}, "http://otel", "otel:4317", False),
        ("grpc", "otel:4317", NONE, {}, "https://otel:4317", "otel:4317", True),  # no scheme: TLS
        (
            "grpc",
            "otel:4317",
            OtlpSettings(insecure=True),
            {},
            "http://otel:4317",
            "otel:4317",
            False,
        ),
        (
            "grpc",
            "otel:4317",
            NONE,
            {"OTEL_EXPORTER_OTLP_INSECURE": "true"},
            "http://otel:4317",
            "otel:4317",
            False,
        ),
        (
            "http",
            "https://otel.example.com/otlp",
            NONE,
            {},
            "https://otel.example.com/otlp/v1/logs",
            None,
            True,
        ),
        ("http", "http://c:4318/v1/logs", NONE, {}, "http://c:4318/v1/logs", None, False),
        # settings beat the environment, the spec beats both
        (
            "grpc",
            None,
            OtlpSettings(endpoint="http://from-settings:4317"),
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://from-env:4317"},
            "http://from-settings:4317",
            "from-settings:4317",
            False,
        ),
        (
            "grpc",
            "http://from-spec:4317",
            OtlpSettings(endpoint="http://from-settings:4317"),
            {},
            "http://from-spec:4317",
            "from-spec:4317",
            False,
        ),
        # the signal-specific variable wins, and is used as it is over HTTP
        (
            "http",
            None,
            NONE,
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318",
                "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://logs:9999/custom",
            },
            "http://logs:9999/custom",
            None,
            False,
        ),
        (
            "http",
            None,
            NONE,
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://generic:4318/"},
            "http://generic:4318/v1/logs",
            None,
            False,
        ),
        ("grpc", "http://[::1]:4317", NONE, {}, "http://[::1]:4317", "[::1]:4317", False),
    ],
)
def test_endpoint_resolution(
    transport: str,
    spec: str | None,
    settings: OtlpSettings,
    env: dict[str, str],
    url: str,
    target: str | None,
    secure: bool,
) -> None:
    options = resolve_otlp(
        transport=transport,  # type: ignore[arg-type]
        signal="logs",
        spec_endpoint=spec,
        settings=settings,
        env=env,
    )
    assert (options.url, options.target, options.secure) == (url, target or url, secure)


def test_metrics_use_their_own_path_and_variables() -> None:
    options = resolve_otlp(
        transport="http",
        signal="metrics",
        spec_endpoint=None,
        settings=NONE,
        env={
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318",
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "a=1",
        },
    )
    assert options.url == "http://c:4318/v1/metrics"
    assert options.headers == ()


def test_headers_merge_environment_file_and_settings(tmp_path: Path) -> None:
    file = tmp_path / "headers"
    file.write_text("# from a Secret\nx-file=1\n\nauthorization=Bearer file-token\n")
    options = resolve_otlp(
        transport="grpc",
        signal="logs",
        spec_endpoint=None,
        settings=OtlpSettings(headers_file=str(file), headers=("X-Settings=2",)),
        env={
            "OTEL_EXPORTER_OTLP_HEADERS": "authorization=Bearer%20env,x-generic=g",
            "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x-logs=l",
        },
    )
    # the signal-specific variable replaces the generic one; file and settings add to it
    assert dict(options.headers) == {
        "x-logs": "l",
        "x-file": "1",
        "authorization": "Bearer file-token",
        "x-settings": "2",
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
            "OTEL_EXPORTER_OTLP_COMPRESSION: expected gzip or none",
        ),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"}, "OTEL_EXPORTER_OTLP_TIMEOUT: expected a positive"),
        ({"OTEL_EXPORTER_OTLP_LOGS_TIMEOUT": "0"}, "OTEL_EXPORTER_OTLP_LOGS_TIMEOUT"),
        (
            {"OTEL_EXPORTER_OTLP_INSECURE": "maybe"},
            "OTEL_EXPORTER_OTLP_INSECURE: expected true or false",
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://x"}, "unsupported scheme 'ftp'"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:notaport"}, "invalid port"),
        ({"OTEL_EXPORTER_OTLP_CERTIFICATE": "/no/such/ca.pem"}, "no such file /no/such/ca.pem"),
    ],
)
def test_invalid_values_stop_with_the_variable_named(env: dict[str, str], message: str) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "otel:4317", **env}
    with pytest.raises(ConfigError, match=message):
        resolve_otlp(transport="grpc", signal="logs", spec_endpoint=None, settings=NONE, env=env)


def test_a_bad_header_never_shows_its_value() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_headers("good=1,Bearer s3cret", source="environment: OTEL_EXPORTER_OTLP_HEADERS")
    assert "s3cret" not in str(raised.value)
    assert "entry 2" in str(raised.value)


def test_timeout_and_compression_from_the_environment() -> None:
    options = resolve_otlp(
        transport="grpc",
        signal="logs",
        spec_endpoint=None,
        settings=NONE,
        env={"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_LOGS_COMPRESSION": "gzip"},
    )
    assert (options.timeout_s, options.compression) == (2.5, "gzip")
    explicit = resolve_otlp(
        transport="grpc",
        signal="logs",
        spec_endpoint=None,
        settings=OtlpSettings(timeout_s=1.0, compression="none"),
        env={"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"},
    )
    assert (explicit.timeout_s, explicit.compression) == (1.0, "none")


def test_display_never_shows_credentials() -> None:
    options = resolve_otlp(
        transport="http",
        signal="logs",
        spec_endpoint="https://user:pass@otel.example.com:4318",
        settings=NONE,
        env={},
    )
    assert "pass" not in options.display
    assert options.display == "https://otel.example.com:4318/v1/logs"
