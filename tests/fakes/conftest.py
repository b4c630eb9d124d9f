"""Fixtures for the fakes: a throwaway PKI and the fake apiserver, over HTTP and HTTPS.

Each test gets its own server (and so its own store, faults and request log);
bookmarks come every 0.1 s so that watch tests stay fast. Stopping the server
ends its watches and fails the test's teardown if a connection thread hangs.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

# The OTLP and Loki receiver fixtures live beside their fakes; the absolute import keeps one
# copy of each fake module (pytest imports this directory as both tests.fakes and fakes).
from tests.fakes.conftest_sinks import loki_receiver, otlp_receiver  # noqa: F401

from .apiserver import FakeApiServer
from .certs import Pki, make_pki

TEST_BOOKMARK_INTERVAL = 0.1


@pytest.fixture(scope="session")
def fake_pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a server certificate for 127.0.0.1/localhost, made once per session."""
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def fake_apiserver() -> Iterator[FakeApiServer]:
    """A running fake apiserver over plain HTTP."""
    with FakeApiServer(bookmark_interval=TEST_BOOKMARK_INTERVAL) as server:
        yield server


@pytest.fixture
def fake_apiserver_tls(fake_pki: Pki) -> Iterator[FakeApiServer]:
    """A running fake apiserver over HTTPS, its certificate signed by ``fake_pki``'s CA."""
    with FakeApiServer(tls=fake_pki, bookmark_interval=TEST_BOOKMARK_INTERVAL) as server:
        yield server


@pytest.fixture
def fake_api_client(fake_apiserver: FakeApiServer) -> Iterator[k8s.ApiClient]:
    """A real kubernetes ApiClient for ``fake_apiserver``."""
    with k8s.ApiClient(fake_apiserver.kube_config()) as api_client:
        yield api_client
