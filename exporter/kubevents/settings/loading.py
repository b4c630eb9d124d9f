"""The loader: YAML, then env, then flags, into :class:`~kubevents.settings.schema.Settings`.

Precedence is flags > ``KUBEVENTS_*`` environment variables > the config file
> defaults. Every problem is a :class:`~kubevents.errors.ConfigError` with a
one-line message that names the key (with a did-you-mean for typos)::

    kubevents.yaml: at replay -> sumary: unknown key (did you mean 'summary'?)

Nothing is ever "logged and replaced by the default": a process that stops
with a clear message beats one that runs quietly misconfigured.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from kubevents.errors import ConfigError, did_you_mean
from kubevents.safeload import LoadProblem, decode_utf8, load_yaml
from kubevents.settings.checks import check_values
from kubevents.settings.schema import CONFIG_VERSION, Settings, leaf_paths

ENV_PREFIX = "KUBEVENTS_"
# Environment variables that are not settings (they locate things).
ENV_META = frozenset({"KUBEVENTS_CONFIG", "KUBEVENTS_RULES_DIR", "KUBEVENTS_CACHE"})
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def load_settings(
    path: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from a file, the environment and flag overrides.

    Args:
        path: YAML config file, or None for defaults only.
        env: environment to read ``KUBEVENTS_*`` from (default ``os.environ``).
        overrides: flag values by dotted path (``"replay.summary": False``).

    Raises:
        ConfigError: anything invalid, with a one-line message naming the key.
    """
    env = os.environ if env is None else env
    raw: dict[str, Any] = _read_file(path, env) if path else {}
    source = path or "config"
    _check_version(raw, source)
    merged = _merge(raw, _from_env(env), source="environment")
    merged = _merge(merged, _nest(dict(overrides or {})), source="flags")
    settings: Settings = _build(Settings, merged, (), source)
    check_values(settings, source)
    return settings


def _read_file(path: str, env: Mapping[str, str]) -> dict[str, Any]:
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config: {e.strerror or e}") from e
    try:
        data = load_yaml(decode_utf8(raw), _YAML_LOADER)
    except LoadProblem as e:
        where = f"{path}:{e.line}" if e.line else path
        raise ConfigError(f"{where}: {e.message}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top of the config")
    substituted = _substitute(data, env, path)
    assert isinstance(substituted, dict)
    return substituted


def _substitute(value: Any, env: Mapping[str, str], path: str) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` inside string values only.

    Substituting after parsing means a variable can never inject YAML structure.
    """
    if isinstance(value, str):

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"{path}: ${{{name}}} is not set and has no default")

        return _VAR.sub(repl, value)
    if isinstance(value, dict):
        return {k: _substitute(v, env, path) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, env, path) for v in value]
    return value


def _check_version(raw: Mapping[str, Any], source: str) -> None:
    version = raw.get("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ConfigError(
            f"{source}: at version: unsupported config version {version!r} (expected 1)"
        )


def env_name(path: tuple[str, ...]) -> str:
    """``("replay", "summary")`` -> ``KUBEVENTS_REPLAY_SUMMARY``."""
    return ENV_PREFIX + "_".join(path).upper()


_SERVICE_VARIABLE = re.compile(
    r"^KUBEVENTS_(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT(?:_[A-Z0-9_]+)?)$"
)
"""What Kubernetes sets in every Pod of a namespace with a Service named ``kubevents``
(``KUBEVENTS_SERVICE_HOST``, ``KUBEVENTS_SERVICE_PORT_METRICS``, ``KUBEVENTS_PORT``,
``KUBEVENTS_PORT_9464_TCP_ADDR``...): not settings, ignored."""


def unknown_env(env: Mapping[str, str]) -> list[str]:
    """``KUBEVENTS_*`` variables that are neither settings, nor locations, nor the
    variables Kubernetes sets for a Service named ``kubevents``: each a one-line warning.

    Not an error: a variable left over from an older release, or set for another tool
    of the same name, must not stop the exporter; a typo is named with its correction.
    """
    by_name = {env_name(path) for path in leaf_paths()}
    warnings = []
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in ENV_META or name in by_name:
            continue
        if _SERVICE_VARIABLE.match(name):
            continue
        # Compared without the shared prefix, which would make every name look close.
        short = [n.removeprefix(ENV_PREFIX) for n in (*by_name, *ENV_META)]
        hint = did_you_mean(name.removeprefix(ENV_PREFIX), short)
        hint = hint.replace("mean '", f"mean '{ENV_PREFIX}")
        warnings.append(f"environment: unknown variable {name} ignored{hint}")
    return warnings


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    by_name = {env_name(path): path for path in leaf_paths()}
    values: dict[str, Any] = {}
    for name, text in env.items():
        path = by_name.get(name)
        if path is None:  # not a setting: see unknown_env
            continue
        values[".".join(path)] = _parse_env_value(text, leaf_paths()[path], name)
    return _nest(values)


def _parse_env_value(text: str, hint: Any, name: str) -> Any:
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"environment: {name}: expected true or false, got {text!r}")
    if hint is int or hint is float:
        try:
            return hint(text)
        except ValueError:
            raise ConfigError(f"environment: {name}: expected a number, got {text!r}") from None
    if typing.get_origin(hint) is tuple:
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in dotted.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _merge(base: dict[str, Any], top: dict[str, Any], *, source: str) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, source=source)
        else:
            out[key] = value
    return out


def _build(cls: type, raw: Any, path: tuple[str, ...], source: str) -> Any:
    where = f"{source}: at {' -> '.join(path)}" if path else source
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_type_name(raw)}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in raw:
        if key not in names:
            at = " -> ".join((*path, str(key)))
            raise ConfigError(f"{source}: at {at}: unknown key{did_you_mean(str(key), names)}")
    values = {}
    for name in names:
        if name in raw:
            values[name] = _convert(hints[name], raw[name], (*path, name), source)
    return cls(**values)


def _convert(hint: Any, value: Any, path: tuple[str, ...], source: str) -> Any:
    where = f"{source}: at {' -> '.join(path)}"
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, path, source)
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            listed = ", ".join(str(c) for c in choices if c != "")
            if "" in choices:
                listed += " (or empty: the default)"
            raise ConfigError(
                f"{where}: expected one of {listed}, got {value!r}{did_you_mean(str(value), choices)}"
            )
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {_type_name(value)}")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        raise ConfigError(f"{where}: unsupported type")  # no optional settings yet
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_type_name(value)}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_type_name(value)}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {_type_name(value)}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_type_name(value)}")
        return value
    raise ConfigError(f"{where}: unsupported type {hint!r}")


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
