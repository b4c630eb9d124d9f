"""The checks: what a type alone cannot express (ranges, one setting against another).

Each failed check is a :class:`~kubevents.errors.ConfigError` naming the key.
"""

from __future__ import annotations

from kubevents.errors import ConfigError
from kubevents.settings.schema import Settings
from kubevents.settings.values import parse_initial


def check_values(settings: Settings, source: str) -> None:
    """Checks that a type alone cannot express."""
    checks: tuple[tuple[bool, str, str], ...] = (
        (settings.replay.top >= 1, "replay -> top", "must be at least 1"),
        (settings.pipeline.batch_size >= 1, "pipeline -> batch_size", "must be at least 1"),
        (settings.pipeline.series_ttl_s > 0, "pipeline -> series_ttl_s", "must be positive"),
        (
            settings.pipeline.series_max_entries >= 1,
            "pipeline -> series_max_entries",
            "must be at least 1",
        ),
    )
    checks += (
        (bool(settings.sinks), "sinks", "must name at least one sink"),
        (settings.watch.page_size >= 1, "watch -> page_size", "must be at least 1"),
        (settings.watch.backoff_base_s > 0, "watch -> backoff_base_s", "must be positive"),
        (
            settings.watch.backoff_cap_s >= settings.watch.backoff_base_s,
            "watch -> backoff_cap_s",
            "must be at least backoff_base_s",
        ),
        (
            settings.watch.inactivity_timeout_s > 0,
            "watch -> inactivity_timeout_s",
            "must be positive",
        ),
        (settings.watch.empty_watch_s >= 0, "watch -> empty_watch_s", "must not be negative"),
        (settings.watch.throttle_s >= 0, "watch -> throttle_s", "must not be negative"),
        (settings.watch.object_cache_max >= 1, "watch -> object_cache_max", "must be at least 1"),
        (settings.watch.timeout_s >= 1, "watch -> timeout_s", "must be at least 1"),
        (settings.watch.queue_size >= 1, "watch -> queue_size", "must be at least 1"),
        (settings.watch.queue_max_bytes >= 1, "watch -> queue_max_bytes", "must be at least 1"),
        (
            settings.watch.checkpoint_interval_s > 0,
            "watch -> checkpoint_interval_s",
            "must be positive",
        ),
        (
            parse_initial(settings.watch.initial) is not None,
            "watch -> initial",
            f"expected all, none or since=DURATION (e.g. since=10m), got {settings.watch.initial!r}",
        ),
        (
            settings.leader.renew_s < settings.leader.lease_s,
            "leader -> renew_s",
            "must be below leader.lease_s",
        ),
        (
            settings.leader.retry_s < settings.leader.renew_s,
            "leader -> retry_s",
            "must be below leader.renew_s",
        ),
    )
    checks += _sink_checks(settings)
    for ok, at, problem in checks:
        if not ok:
            raise ConfigError(f"{source}: at {at}: {problem}")


def _sink_checks(settings: Settings) -> tuple[tuple[bool, str, str], ...]:
    """Checks of the network sink, delivery and metrics settings."""
    d, m = settings.delivery, settings.metrics
    return (
        (d.queue_size >= 1, "delivery -> queue_size", "must be at least 1"),
        (d.batch_size >= 1, "delivery -> batch_size", "must be at least 1"),
        (d.batch_timeout_s >= 0, "delivery -> batch_timeout_s", "must not be negative"),
        (d.backoff_base_s > 0, "delivery -> backoff_base_s", "must be positive"),
        (
            d.backoff_cap_s >= d.backoff_base_s,
            "delivery -> backoff_cap_s",
            "must be at least backoff_base_s",
        ),
        (d.max_body_bytes >= 64, "delivery -> max_body_bytes", "must be at least 64"),
        (d.max_attribute_bytes >= 64, "delivery -> max_attribute_bytes", "must be at least 64"),
        (d.spool_max_bytes >= 1 << 20, "delivery -> spool_max_bytes", "must be at least 1 MiB"),
        (d.flush_timeout_s >= 0, "delivery -> flush_timeout_s", "must not be negative"),
        (0 <= m.port <= 65535, "metrics -> port", "must be between 0 and 65535"),
        (m.otlp_interval_s > 0, "metrics -> otlp_interval_s", "must be positive"),
        (len(settings.loki.labels) <= 15, "loki -> labels", "at most 15 (Loki's label limit)"),
        (settings.replay.hold_s >= 0, "replay -> hold_s", "must not be negative"),
    )
