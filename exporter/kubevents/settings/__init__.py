"""Settings: the schema, its loader, its checks and its reference page, one module each.

* ``schema.py``: the typed tree (frozen dataclasses, :class:`Settings` at the root);
  the field docstrings are the documentation.
* ``loading.py``: YAML, then ``KUBEVENTS_*`` environment variables, then flags, into
  that tree (:func:`load_settings`); every problem is a one-line ``ConfigError``.
* ``checks.py``: what a type alone cannot express (ranges, one setting against another).
* ``values.py``: what some values mean once parsed (durations, ``watch.initial``, the
  ``kind:arg`` sink specs, parsed once into :class:`SinkSpec`).
* ``reference.py``: ``docs/config.md``, generated from the schema (not imported here).

What may be imported: the standard library, PyYAML, ``kubevents.errors`` and
``kubevents.safeload``; nothing else of kubevents (every other layer reads settings,
so settings sit below them all; ``.importlinter`` holds that).
"""

from kubevents.settings.loading import ENV_META, ENV_PREFIX, env_name, load_settings, unknown_env
from kubevents.settings.schema import (
    CONFIG_VERSION,
    ConsoleSettings,
    CorrelationSettings,
    DeliverySettings,
    FilterSettings,
    JsonlSettings,
    LeaderSettings,
    LokiSettings,
    MetricsSettings,
    OtlpSettings,
    PipelineSettings,
    ReplaySettings,
    RulesSettings,
    Settings,
    WatchSettings,
    leaf_paths,
)
from kubevents.settings.values import OTLP_SINKS, SinkSpec, parse_duration_s, parse_initial

__all__ = [
    "CONFIG_VERSION",
    "ENV_META",
    "ENV_PREFIX",
    "OTLP_SINKS",
    "ConsoleSettings",
    "CorrelationSettings",
    "DeliverySettings",
    "FilterSettings",
    "JsonlSettings",
    "LeaderSettings",
    "LokiSettings",
    "MetricsSettings",
    "OtlpSettings",
    "PipelineSettings",
    "ReplaySettings",
    "RulesSettings",
    "Settings",
    "SinkSpec",
    "WatchSettings",
    "env_name",
    "leaf_paths",
    "load_settings",
    "parse_duration_s",
    "parse_initial",
    "unknown_env",
]
