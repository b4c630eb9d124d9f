"""Sink tests run against the protocol-faithful fakes (fixtures ``otlp_receiver``, ``loki_receiver``)."""

from tests.fakes.conftest_sinks import loki_receiver, otlp_receiver  # noqa: F401
