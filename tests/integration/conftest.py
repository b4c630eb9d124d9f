"""The real apiserver the integration tests share, and server logs on failure.

One kube-apiserver (with its etcd) serves the whole session: starting one takes seconds,
and each test module works in a namespace of its own. The RBAC of deploy/kubernetes/base
is applied as is, so ``KUBEVENTS_TOKEN`` has exactly what a deployed kubevents has.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client as k8s

from tests.integration.kube import api_client, apply_rbac
from tests.integration.servers import RUNNING, Etcd, KubeApiServer, server_binary


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    workdir = tmp_path_factory.mktemp("apiserver")
    etcd = Etcd.start(server_binary("etcd"), workdir / "etcd")
    api = KubeApiServer.start(server_binary("kube-apiserver"), etcd, workdir / "api")
    try:
        admin = api_client(api, workdir)
        k8s.CoreV1Api(admin).create_namespace({"metadata": {"name": "kubevents"}})
        apply_rbac(admin)
        yield api
    finally:
        api.process.stop()
        etcd.process.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Add the tail of every running server's log to a failing test's report."""
    report = yield
    if getattr(report, "failed", False):
        for process in RUNNING:
            report.sections.append((f"{process.name} log ({process.log})", process.tail(40)))
    return report
