"""Telemetry tests push metrics to the protocol-faithful OTLP fake (fixture ``otlp_receiver``)."""

from tests.fakes.conftest_sinks import otlp_receiver  # noqa: F401
