"""Fixtures for the sink fakes: an OTLP receiver (gRPC and HTTP) and Loki's push API.

Each test gets its own servers on ``127.0.0.1:0`` (and so its own faults and
records); teardown stops them, ending any call still waiting on a delay.

Load them as a plugin (``pytest -p tests.fakes.conftest_sinks``) or import
them into a conftest.py::

    from tests.fakes.conftest_sinks import loki_receiver, otlp_receiver  # noqa: F401

The imports are absolute (``tests.fakes...``) on purpose: pytest imports the
test modules of this directory as ``fakes.*``, and one module object per fake
keeps ``isinstance`` and the type annotations honest.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.loki_receiver import FakeLoki
from tests.fakes.otlp_receiver import OtlpReceiver


@pytest.fixture
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A running OTLP receiver: gRPC at ``.grpc_endpoint``, HTTP at ``.http_endpoint()``."""
    with OtlpReceiver() as receiver:
        yield receiver


@pytest.fixture
def loki_receiver() -> Iterator[FakeLoki]:
    """A running fake Loki (push API at ``.push_url``) with Loki's default limits."""
    with FakeLoki() as loki:
        yield loki
