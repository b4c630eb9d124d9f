"""Where and how to reach an OTLP endpoint: the sink spec, the settings and ``OTEL_EXPORTER_OTLP_*``.

Precedence for every option: the sink spec (``otlp:URL``) for the endpoint,
then kubevents' settings (``otlp.*``: file, ``KUBEVENTS_OTLP_*``, flags), then
the signal-specific standard variable (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT``),
then the generic one (``OTEL_EXPORTER_OTLP_ENDPOINT``), then the default. As
the OpenTelemetry exporter specification says:

* the endpoint's scheme decides TLS: ``http://`` plaintext, ``https://`` TLS;
  a gRPC endpoint without a scheme is TLS unless ``insecure`` is set;
* OTLP/HTTP appends ``/v1/logs`` (or ``/v1/metrics``) to a base URL, but a
  signal-specific variable is used as it is;
* headers are ``name=value`` pairs separated by commas, values
  percent-decoded; the timeout variable is in milliseconds.

Unlike the SDK, an invalid value is not replaced by a default with a log
line: it stops kubevents with a :class:`~kubevents.errors.ConfigError`
naming the variable. Header values are secrets: no message ever contains one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from kubevents.errors import ConfigError
from kubevents.safeload import LoadProblem, decode_utf8
from kubevents.settings import OtlpSettings

Signal = Literal["logs", "metrics"]
TransportKind = Literal["grpc", "http"]

DEFAULT_GRPC = "http://localhost:4317"
DEFAULT_HTTP = "http://localhost:4318"
DEFAULT_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class OtlpOptions:
    """Resolved connection options of one OTLP exporter (gRPC or HTTP, one signal)."""

    url: str
    """HTTP: the full request URL. gRPC: ``scheme://host:port`` as configured."""
    target: str
    """gRPC: ``host:port``; HTTP: the same as ``url``."""
    secure: bool
    headers: tuple[tuple[str, str], ...]
    certificate: str
    """Path of the CA bundle, or ""."""
    client_certificate: str
    client_key: str
    compression: Literal["none", "gzip"]
    timeout_s: float

    @property
    def display(self) -> str:
        """The endpoint for log lines: no credentials, no query."""
        return display_url(self.url) if urlsplit(self.url).scheme else self.target

    def read_file(self, path: str, what: str) -> bytes:
        try:
            return Path(path).read_bytes()
        except OSError as e:
            raise ConfigError(f"otlp: cannot read the {what} {path}: {e.strerror or e}") from e


def display_url(url: str, *, path: bool = True) -> str:
    """``url`` for log lines: no credentials, no query (and no path unless ``path``)."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path if path else ''}"


def _env(env: Mapping[str, str], signal: Signal, name: str) -> tuple[str, str] | None:
    """(variable, value) of the signal-specific variable, else of the generic one."""
    for var in (f"OTEL_EXPORTER_OTLP_{signal.upper()}_{name}", f"OTEL_EXPORTER_OTLP_{name}"):
        value = env.get(var, "").strip()
        if value:
            return var, value
    return None


def parse_headers(text: str, *, source: str) -> list[tuple[str, str]]:
    """``a=1,b=x%20y`` -> ``[("a", "1"), ("b", "x y")]``; names lower-cased (gRPC metadata).

    Raises:
        ConfigError: an entry is not ``name=value`` (the message never shows a value).
    """
    pairs = []
    for index, item in enumerate(text.split(","), start=1):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        name = unquote(name).strip().lower()
        if not sep or not name or any(ch in name for ch in " \t\r\n:"):
            raise ConfigError(f"{source}: header entry {index} is not name=value")
        pairs.append((name, unquote(value).strip()))
    return pairs


def read_headers_file(path: str) -> list[tuple[str, str]]:
    """``name=value`` lines of a file (blank lines and ``#`` comments skipped)."""
    try:
        text = decode_utf8(Path(path).read_bytes())
    except OSError as e:
        raise ConfigError(f"otlp -> headers_file: cannot read {path}: {e.strerror or e}") from e
    except LoadProblem as e:
        raise ConfigError(f"otlp -> headers_file: {path}:{e.line}: {e.message}") from None
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pairs += parse_headers(line, source=f"{path}:{number}")
    return pairs


def resolve_otlp(
    *,
    transport: TransportKind,
    signal: Signal,
    spec_endpoint: str | None,
    settings: OtlpSettings,
    env: Mapping[str, str] | None = None,
) -> OtlpOptions:
    """The connection options for one exporter.

    Raises:
        ConfigError: an invalid endpoint, header list, compression, timeout or file.
    """
    env = os.environ if env is None else env
    url, as_is, source = _endpoint(transport, signal, spec_endpoint, settings, env)
    parts = urlsplit(url if "://" in url else f"//{url}")
    if parts.scheme not in ("", "http", "https"):
        raise ConfigError(f"{source}: unsupported scheme {parts.scheme!r} (use http or https)")
    if not parts.hostname:
        raise ConfigError(f"{source}: no host in the endpoint")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"{source}: invalid port in the endpoint") from None
    if parts.scheme:
        secure = parts.scheme == "https"
    else:
        insecure_var = _env(env, signal, "INSECURE")
        insecure = settings.insecure or (
            insecure_var is not None and _bool(insecure_var[1], insecure_var[0])
        )
        secure = not insecure
    default_port = 4317 if transport == "grpc" else (443 if secure else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    target = f"{host}:{port or default_port}"
    if transport == "http":
        scheme = "https" if secure else "http"
        path = parts.path.rstrip("/")
        if not as_is and not path.endswith(f"/v1/{signal}"):
            path = f"{path}/v1/{signal}"
        full = f"{scheme}://{host}{f':{port}' if port else ''}{path or '/'}"
    else:
        full = url if parts.scheme else f"{'https' if secure else 'http'}://{target}"
    return OtlpOptions(
        url=full,
        target=target if transport == "grpc" else full,
        secure=secure,
        headers=tuple(_headers(signal, settings, env)),
        certificate=_path_option(settings.certificate, env, signal, "CERTIFICATE"),
        client_certificate=_path_option(
            settings.client_certificate, env, signal, "CLIENT_CERTIFICATE"
        ),
        client_key=_path_option(settings.client_key, env, signal, "CLIENT_KEY"),
        compression=_compression(settings, env, signal),
        timeout_s=_timeout(settings, env, signal),
    )


def _endpoint(
    transport: TransportKind,
    signal: Signal,
    spec_endpoint: str | None,
    settings: OtlpSettings,
    env: Mapping[str, str],
) -> tuple[str, bool, str]:
    """(endpoint, used as-is, where it came from)."""
    if spec_endpoint:
        return spec_endpoint, False, "sinks"
    if settings.endpoint:
        return settings.endpoint, False, "otlp -> endpoint"
    specific = f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
    if env.get(specific, "").strip():
        return env[specific].strip(), transport == "http", f"environment: {specific}"
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip():
        return (
            env["OTEL_EXPORTER_OTLP_ENDPOINT"].strip(),
            False,
            "environment: OTEL_EXPORTER_OTLP_ENDPOINT",
        )
    return (DEFAULT_GRPC if transport == "grpc" else DEFAULT_HTTP), False, "default endpoint"


def _headers(
    signal: Signal, settings: OtlpSettings, env: Mapping[str, str]
) -> list[tuple[str, str]]:
    merged: dict[str, str] = {}
    found = _env(env, signal, "HEADERS")
    if found is not None:
        merged.update(parse_headers(found[1], source=f"environment: {found[0]}"))
    if settings.headers_file:
        merged.update(read_headers_file(settings.headers_file))
    for index, item in enumerate(settings.headers):
        merged.update(parse_headers(item, source=f"otlp -> headers -> {index}"))
    return list(merged.items())


def _path_option(configured: str, env: Mapping[str, str], signal: Signal, name: str) -> str:
    if configured:
        path, source = configured, f"otlp -> {name.lower()}"
    else:
        found = _env(env, signal, name)
        if found is None:
            return ""
        source, path = f"environment: {found[0]}", found[1]
    if not Path(path).is_file():
        raise ConfigError(f"{source}: no such file {path}")
    return path


def _compression(
    settings: OtlpSettings, env: Mapping[str, str], signal: Signal
) -> Literal["none", "gzip"]:
    if settings.compression:
        return "gzip" if settings.compression == "gzip" else "none"
    found = _env(env, signal, "COMPRESSION")
    if found is None:
        return "none"
    value = found[1].lower()
    if value not in ("none", "gzip"):
        raise ConfigError(f"environment: {found[0]}: expected gzip or none, got {found[1]!r}")
    return "gzip" if value == "gzip" else "none"


def _timeout(settings: OtlpSettings, env: Mapping[str, str], signal: Signal) -> float:
    if settings.timeout_s > 0:
        return settings.timeout_s
    found = _env(env, signal, "TIMEOUT")
    if found is None:
        return DEFAULT_TIMEOUT_S
    try:
        millis = float(found[1])
    except ValueError:
        millis = -1.0
    if millis <= 0:
        raise ConfigError(
            f"environment: {found[0]}: expected a positive number of milliseconds, got {found[1]!r}"
        )
    return millis / 1000.0


def _bool(text: str, var: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    raise ConfigError(f"environment: {var}: expected true or false, got {text!r}")
