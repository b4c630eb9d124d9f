"""The real servers of the integration suite: etcd, kube-apiserver, otelcol and VictoriaLogs.

Each runs as a child process of the test session, on loopback ports picked at run time,
from the binaries ``tests/servers/build.sh`` builds (or finds cached) from the pinned Go
modules. A server's output goes to a log file in pytest's temporary directory, which
pytest keeps after the run, so a failure can be read after the fact; the conftest adds
the tail of every running server's log to the report of a failing test.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
import requests
import yaml

from tests.fakes.certs import Pki, make_pki
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "tests" / "servers" / "build.sh"
CONFIGS = ROOT / "tests" / "servers" / "configs"

ADMIN_TOKEN = "admin-token"
KUBEVENTS_TOKEN = "kubevents-token"  # bound by deploy/kubernetes/base's RBAC
WEAK_TOKEN = "weak-token"  # authenticated, no RBAC binding at all
KUBEVENTS_USER = "system:serviceaccount:kubevents:kubevents"
WEAK_USER = "system:serviceaccount:kubevents:weak"


class ServerUnavailable(RuntimeError):
    """A server binary could not be built; the message is build.sh's one line."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel's pick)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary(name: str) -> Path:
    """Build (or reuse from the cache) one server and return its binary.

    build.sh is idempotent and takes a lock, so concurrent sessions share one build.
    Without Go (build.sh exits 3) the caller's test is skipped with build.sh's one line
    naming what to install, so a newcomer's ``make test`` still runs every other layer; in
    CI (``CI`` set) that is a failure instead: CI must run the real servers.
    """
    proc = subprocess.run(
        [str(BUILD), name], capture_output=True, text=True, timeout=3600, check=False
    )
    if proc.returncode == GO_MISSING:
        needs_go(proc.stdout.strip() or proc.stderr.strip())
    if proc.returncode != 0:
        raise ServerUnavailable((proc.stdout + proc.stderr).strip().splitlines()[-1])
    path = subprocess.run(
        [str(BUILD), "--path", name], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(path)


GO_MISSING = 3
"""build.sh's exit status when Go is missing or too old (and a build is needed)."""


def needs_go(message: str) -> NoReturn:
    """Skip (fail in CI) a test whose server cannot be built without Go."""
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI must build the real servers)", pytrace=False)
    pytest.skip(message)


def server_version(name: str) -> str:
    """The pinned version of a server, as build.sh keys its cache (``v1.37.2``)."""
    path = server_binary(name)
    return path.parent.parent.name.removeprefix(f"{name}-")


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """:func:`wait_until` for a server starting up: refused or failing requests mean "not yet"."""
    wait_until(
        check, timeout, what, interval=interval, ignoring=(requests.RequestException, OSError)
    )


RUNNING: list[Process] = []  # read by the conftest's report hook


@dataclass
class Process:
    """One server process whose stdout and stderr go to ``log``."""

    name: str
    argv: Sequence[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                start_new_session=True,
            )
        RUNNING.append(self)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_ready(self, check: Callable[[], bool], timeout: float) -> None:
        """Wait for ``check``, failing at once (with the log's tail) if the process died."""

        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"{self.name} exited during start-up:\n{self.tail()}")
            return check()

        try:
            wait_for(ready, timeout, f"{self.name} to be ready")
        except AssertionError as err:
            raise AssertionError(f"{err}\n--- {self.log} ---\n{self.tail()}") from None

    def tail(self, lines: int = 25) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM, then SIGKILL if it does not exit within ``timeout``."""
        if self in RUNNING:
            RUNNING.remove(self)
        if not self.alive():
            return
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


# -- etcd ---------------------------------------------------------------------------------


@dataclass
class Etcd:
    """A single-member etcd on loopback, without fsync (test data only)."""

    process: Process
    url: str

    @classmethod
    def start(cls, binary: Path, workdir: Path) -> Etcd:
        client, peer = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        argv = [
            str(binary),
            "--name=test",
            f"--data-dir={workdir / 'data'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=test={peer_url}",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        etcd = cls(Process("etcd", argv, workdir / "etcd.log").start(), url)
        etcd.process.wait_ready(etcd.healthy, timeout=30)
        return etcd

    def healthy(self) -> bool:
        return requests.get(f"{self.url}/health", timeout=2).json().get("health") == "true"

    def revision(self) -> int:
        """etcd's current revision (what a resourceVersion is, for the apiserver)."""
        key = base64.b64encode(b"/registry").decode()
        answer = requests.post(f"{self.url}/v3/kv/range", json={"key": key}, timeout=5)
        answer.raise_for_status()
        return int(answer.json()["header"]["revision"])

    def compact(self, revision: int | None = None) -> int:
        """Compact the history up to ``revision`` (default: now); returns it.

        A watch or list from an older resourceVersion then gets 410 Expired.
        """
        revision = revision or self.revision()
        answer = requests.post(
            f"{self.url}/v3/kv/compaction",
            json={"revision": str(revision), "physical": True},
            timeout=30,
        )
        answer.raise_for_status()
        return revision


# -- kube-apiserver -----------------------------------------------------------------------


def _service_account_keys(directory: Path) -> tuple[Path, Path]:
    """The key pair the apiserver signs (and checks) service account tokens with."""
    key, pub = directory / "sa.key", directory / "sa.pub"
    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(key)],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        ["openssl", "pkey", "-in", str(key), "-pubout", "-out", str(pub)],
        check=True,
        capture_output=True,
    )
    return key, pub


def _token_file(path: Path) -> Path:
    """Static tokens: an admin, kubevents' service account, and one RBAC knows nothing of."""
    sa_groups = "system:serviceaccounts,system:serviceaccounts:kubevents"
    path.write_text(
        f'{ADMIN_TOKEN},admin,admin-uid,"system:masters"\n'
        f'{KUBEVENTS_TOKEN},{KUBEVENTS_USER},kubevents-uid,"{sa_groups}"\n'
        f'{WEAK_TOKEN},{WEAK_USER},weak-uid,"{sa_groups}"\n'
    )
    return path


@dataclass
class KubeApiServer:
    """A real kube-apiserver (RBAC, static tokens, self-signed serving cert) on loopback."""

    process: Process
    url: str
    pki: Pki
    etcd: Etcd

    @classmethod
    def start(cls, binary: Path, etcd: Etcd, workdir: Path) -> KubeApiServer:
        pki = make_pki(workdir / "pki", name="kube-apiserver")
        sa_key, sa_pub = _service_account_keys(workdir / "pki")
        port = free_port()
        argv = [
            str(binary),
            f"--etcd-servers={etcd.url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            # The "kubernetes" Service's endpoints may not be a loopback address (as envtest).
            "--endpoint-reconciler-type=none",
            f"--secure-port={port}",
            f"--cert-dir={workdir / 'certs'}",
            f"--tls-cert-file={pki.cert_file}",
            f"--tls-private-key-file={pki.key_file}",
            f"--token-auth-file={_token_file(workdir / 'tokens.csv')}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            f"--service-account-key-file={sa_pub}",
            f"--service-account-signing-key-file={sa_key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--service-cluster-ip-range=10.96.0.0/24",
            # No controller-manager runs here, so no namespace gets its "default" service
            # account; the admission plugin that requires one would refuse every Pod.
            "--disable-admission-plugins=ServiceAccount",
            # The apiserver compacts etcd itself every minute (default 5m) so expired
            # resourceVersions are a real condition here too; tests compact on demand.
            "--etcd-compaction-interval=1m",
            "--profiling=false",
            "--v=1",
        ]
        api = cls(Process("kube-apiserver", argv, workdir / "kube-apiserver.log").start(),
                  f"https://127.0.0.1:{port}", pki, etcd)  # fmt: skip
        api.process.wait_ready(api.ready, timeout=120)
        return api

    def session(self, token: str = ADMIN_TOKEN) -> requests.Session:
        http = requests.Session()
        # Not the environment's CA bundle (REQUESTS_CA_BUNDLE would override ``verify``)
        # nor its proxies: loopback, our own CA.
        http.trust_env = False
        http.headers["Authorization"] = f"Bearer {token}"
        http.verify = str(self.pki.ca_file)
        return http

    def ready(self) -> bool:
        return self.session().get(f"{self.url}/readyz", timeout=5).status_code == 200

    def write_kubeconfig(self, path: Path, token: str = ADMIN_TOKEN) -> Path:
        """A kubeconfig with one context, ``test``, for ``token``."""
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "test",
                    "cluster": {
                        "server": self.url,
                        "certificate-authority": str(self.pki.ca_file),
                    },
                }
            ],
            "users": [{"name": "test", "user": {"token": token}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path


# -- otelcol ------------------------------------------------------------------------------


@dataclass
class Otelcol:
    """A Collector built with the builder; records land as OTLP-JSON lines in ``out``."""

    process: Process
    grpc: str
    http: str
    out: Path
    health: str

    @classmethod
    def start(
        cls, binary: Path, config: Path, workdir: Path, env: dict[str, str] | None = None
    ) -> Otelcol:
        ports = {k: free_port() for k in ("OTELCOL_GRPC_PORT", "OTELCOL_HTTP_PORT")}
        ports["OTELCOL_HEALTH_PORT"] = free_port()
        out = workdir / "otelcol-out.jsonl"
        variables = {**{k: str(v) for k, v in ports.items()}, "OTELCOL_OUT": str(out)}
        variables.update(env or {})
        argv = [str(binary), f"--config={config}"]
        col = cls(
            Process("otelcol", argv, workdir / "otelcol.log", env=variables).start(),
            f"http://127.0.0.1:{ports['OTELCOL_GRPC_PORT']}",
            f"http://127.0.0.1:{ports['OTELCOL_HTTP_PORT']}",
            out,
            f"http://127.0.0.1:{ports['OTELCOL_HEALTH_PORT']}",
        )
        col.process.wait_ready(col.ready, timeout=60)
        return col

    def ready(self) -> bool:
        return requests.get(self.health, timeout=2).status_code == 200

    def _written(
        self, resources_key: str, scope_key: str, item_key: str
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
        """``(resource attributes, scope, item)`` of every item written so far under
        ``resources_key``
        (``resourceLogs``/``scopeLogs``/``logRecords`` or the metrics' names)."""
        if not self.out.exists():
            return
        for line in self.out.read_text().splitlines():
            if not line.endswith("}"):
                continue  # a line being written
            for resource_items in json.loads(line).get(resources_key, []):
                resource = flatten(resource_items.get("resource", {}).get("attributes", []))
                for scope_items in resource_items.get(scope_key, []):
                    for item in scope_items.get(item_key, []):
                        yield resource, scope_items.get("scope", {}), item

    def log_records(self) -> list[dict[str, Any]]:
        """Every log record written so far, each with its resource's attributes."""
        return [
            {
                **rec,
                "resource": resource,
                "scope": scope,
                "attrs": flatten(rec.get("attributes", [])),
            }
            for resource, scope, rec in self._written("resourceLogs", "scopeLogs", "logRecords")
        ]

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric written so far (OTLP-JSON), each with its resource's attributes
        (``resource``) and its scope (``scope``)."""
        return [
            {**metric, "resource": resource, "scope": scope}
            for resource, scope, metric in self._written(
                "resourceMetrics", "scopeMetrics", "metrics"
            )
        ]


def otlp_value(value: dict[str, Any]) -> Any:
    """The Python value of an OTLP-JSON AnyValue (ints are strings in OTLP-JSON)."""
    if "intValue" in value:
        return int(value["intValue"])
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    return value


def flatten(attributes: list[dict[str, Any]]) -> dict[str, Any]:
    return {a["key"]: otlp_value(a.get("value", {})) for a in attributes}


# -- victorialogs -------------------------------------------------------------------------


@dataclass
class VictoriaLogs:
    """VictoriaLogs (single node) with its data in a temp dir.

    It takes Loki's push API (``/insert/loki/api/v1/push``, JSON and protobuf+snappy) and
    OTLP logs (``/insert/opentelemetry/v1/logs``), and answers LogsQL on
    ``/select/logsql/query``. Loki's stream labels become its stream fields (``_stream``),
    structured metadata plain fields, the line ``_msg`` and the timestamp ``_time``.
    Message parsing is off (``-loki.disableMessageParsing``): a body that happens to be a
    JSON object stays the body. The retention is long enough for recordings of any age.
    """

    process: Process
    url: str
    data: Path

    @classmethod
    def start(cls, binary: Path, workdir: Path, port: int | None = None) -> VictoriaLogs:
        port = port or free_port()
        data = workdir / "data"
        argv = [
            str(binary),
            f"-storageDataPath={data}",
            f"-httpListenAddr=127.0.0.1:{port}",
            "-retentionPeriod=100y",
            "-futureRetention=1y",
            "-loki.disableMessageParsing",
            "-loggerLevel=WARN",
        ]
        vl = cls(Process("victorialogs", argv, workdir / "victorialogs.log").start(),
                 f"http://127.0.0.1:{port}", data)  # fmt: skip
        vl.process.wait_ready(vl.ready, timeout=60)
        return vl

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def loki_url(self) -> str:
        """The base URL kubevents' ``loki:`` sink takes (it appends ``/loki/api/v1/push``)."""
        return f"{self.url}/insert"

    @property
    def otlp_url(self) -> str:
        """The base URL an OTLP/HTTP exporter takes (it appends ``/v1/logs``)."""
        return f"{self.url}/insert/opentelemetry"

    def ready(self) -> bool:
        return requests.get(f"{self.url}/health", timeout=2).status_code == 200

    def restart(self) -> None:
        """Stop (SIGTERM) and start again on the same port and data."""
        self.process.stop()
        self.process.start()
        self.process.wait_ready(self.ready, timeout=60)

    def flush(self) -> None:
        """Make everything ingested so far visible to queries at once."""
        requests.get(f"{self.url}/internal/force_flush", timeout=30).raise_for_status()

    def query(self, logsql: str = "*", limit: int = 0) -> list[dict[str, str]]:
        """``/select/logsql/query``: every matching entry, each with all its fields."""
        params = {"query": logsql}
        if limit:
            params["limit"] = str(limit)
        answer = requests.post(f"{self.url}/select/logsql/query", data=params, timeout=60)
        assert answer.status_code == 200, f"{logsql}: {answer.status_code} {answer.text[:500]}"
        return [json.loads(line) for line in answer.text.splitlines() if line.strip()]

    def count(self, logsql: str = "*") -> int:
        self.flush()
        answer = requests.post(
            f"{self.url}/select/logsql/query",
            data={"query": f"{logsql} | stats count() n"},
            timeout=60,
        )
        assert answer.status_code == 200, f"{logsql}: {answer.status_code} {answer.text[:500]}"
        rows = [json.loads(line) for line in answer.text.splitlines() if line.strip()]
        return int(rows[0]["n"]) if rows else 0


def stream_fields(stream: str) -> dict[str, str]:
    """VictoriaLogs' ``_stream`` value (``{a="1",b="2"}``) as a dict."""
    fields: dict[str, str] = {}
    for match in re.finditer(r'([\w.]+)="((?:[^"\\]|\\.)*)"', stream):
        fields[match.group(1)] = json.loads(f'"{match.group(2)}"')
    return fields
