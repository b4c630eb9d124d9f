"""Who kubevents is to the API server: the credential sources of ``kubeclient.py``.

A credential source answers one question before every request, "what do I
send now?" (:class:`Auth`: an ``Authorization`` header and/or a client
certificate), and hears one thing back, "the server said 401"
(:meth:`Credentials.invalidate`). Asking before every request, rather than
once at start, is what lets a long-running watcher survive credentials that
change under it:

* :class:`TokenFile` re-reads its file at most once a minute: the bound
  service-account token of a pod is rotated by the kubelet (hourly), and a
  ``tokenFile`` in a kubeconfig may be rotated by whoever wrote it;
* :class:`ExecPlugin` runs a kubeconfig ``exec`` credential plugin and runs
  it again when the credential it printed expires, or after a 401;
* :class:`AuthProviderToken` hands a legacy ``auth-provider`` user (gcp,
  azure, oidc) to the ``kubernetes`` package's loader, imported only there;
* :class:`StaticCredentials` is everything that never changes (an inline
  token, basic auth, client certificate files, or nothing at all).

A 401 never makes the request itself retry (kubevents owns retries): the
failed request raises as it always did, and the next one asks again.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import logging
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from kubevents.errors import ClientConfigError, SourceError, clip
from kubevents.safeload import LoadProblem, decode_utf8

logger = logging.getLogger(__name__)

CONFIG_ERROR = "cannot load Kubernetes client configuration"
"""The prefix of every configuration error (the CLI prints it on one line)."""

TOKEN_REREAD_S = 60.0
"""How often a token file is read again; client-go's file token source uses a minute too."""

EXEC_TIMEOUT_S = 60.0
"""An ``exec`` plugin that has not answered by then has failed (it may be waiting for input
no one will type: kubevents never runs one interactively)."""

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
)


def config_error(where: object, what: str) -> ClientConfigError:
    """The one-line error for a configuration that cannot be used: where it is, what is wrong."""
    return ClientConfigError(f"{CONFIG_ERROR}: {where}: {what}")


@dataclass(frozen=True, slots=True)
class ClientCert:
    """A client certificate and its key, as files (what Python's ssl module loads)."""

    cert_file: str
    key_file: str


@dataclass(frozen=True, slots=True)
class Auth:
    """What to send with one request."""

    authorization: str = ""
    """The ``Authorization`` header value (``Bearer ...``, ``Basic ...``), or empty."""
    client_cert: ClientCert | None = None


class Credentials(Protocol):
    """A source of :class:`Auth`, asked before every request."""

    def current(self) -> Auth:
        """What to send now.

        Raises:
            SourceError: the credentials cannot be had (a plugin failed, say).
        """

    def invalidate(self) -> None:
        """The server rejected the last :class:`Auth` (401): get fresh ones next time."""


class StaticCredentials:
    """Credentials that never change: an inline token, basic auth, certificate files, none."""

    def __init__(self, auth: Auth) -> None:
        self._auth = auth

    def current(self) -> Auth:
        return self._auth

    def invalidate(self) -> None:
        return None


def bearer(token: str) -> str:
    return f"Bearer {token}"


def basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class TokenFile:
    """A bearer token read from a file, and read again at most every ``reread_s``.

    The first read happens here, so a missing or empty file is a configuration
    error at start. A later read that fails keeps the previous token (with a
    warning): the kubelet replaces the file atomically, so that is a passing
    state, and the server will say 401 if the old token is really dead.
    """

    def __init__(
        self,
        path: Path,
        *,
        client_cert: ClientCert | None = None,
        reread_s: float = TOKEN_REREAD_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._client_cert = client_cert
        self._reread_s = reread_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._token = self._read()
        self._read_at = monotonic()

    def current(self) -> Auth:
        with self._lock:
            if self._monotonic() - self._read_at >= self._reread_s:
                self._reread()
            return Auth(bearer(self._token), self._client_cert)

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = float("-inf")  # read again before the next request

    def _reread(self) -> None:
        try:
            self._token = self._read()
        except SourceError as e:
            logger.warning("%s; keeping the previous token", e)
        self._read_at = self._monotonic()

    def _read(self) -> str:
        try:
            token = decode_utf8(self.path.read_bytes()).strip()
        except OSError as e:
            raise config_error(self.path, f"cannot read the token file ({e.strerror})") from e
        except LoadProblem as e:
            raise config_error(f"{self.path}:{e.line}", f"token file: {e.message}") from None
        if not token:
            raise config_error(self.path, "the token file is empty")
        return token


@dataclass(frozen=True, slots=True)
class ExecSpec:
    """A kubeconfig user's ``exec`` section, checked; see :func:`exec_spec`."""

    command: str
    args: tuple[str, ...]
    env: Mapping[str, str]
    api_version: str
    cluster_info: Mapping[str, Any] | None
    """``spec.cluster`` for the plugin when the user asks ``provideClusterInfo``."""
    where: str
    """The kubeconfig file and user, for error messages."""


def exec_spec(
    section: Mapping[str, Any],
    *,
    where: str,
    base_dir: Path,
    cluster_info: Mapping[str, Any],
) -> ExecSpec:
    """Check a kubeconfig ``exec`` section; resolve the command as kubectl does.

    A command with a path separator but not absolute is relative to the
    directory of the kubeconfig file it came from; a bare name is looked up
    on ``PATH`` when it runs.
    """
    command = section.get("command")
    if not isinstance(command, str) or not command:
        raise config_error(where, "exec: 'command' is missing")
    api_version = str(section.get("apiVersion") or "")
    if api_version not in EXEC_API_VERSIONS:
        raise config_error(
            where,
            f"exec: apiVersion {api_version!r} is not supported "
            f"(use {' or '.join(EXEC_API_VERSIONS)})",
        )
    if section.get("interactiveMode") == "Always":
        raise config_error(where, "exec: interactiveMode Always needs a terminal kubevents lacks")
    args = section.get("args") or []
    env = section.get("env") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise config_error(where, "exec: 'args' must be a list of strings")
    if not isinstance(env, list) or not all(isinstance(e, dict) and "name" in e for e in env):
        raise config_error(where, "exec: 'env' must be a list of {name, value}")
    if os.sep in command and not os.path.isabs(command):
        command = str(base_dir / command)
    return ExecSpec(
        command=command,
        args=tuple(args),
        env={str(e["name"]): str(e.get("value") or "") for e in env},
        api_version=api_version,
        cluster_info=cluster_info if section.get("provideClusterInfo") else None,
        where=where,
    )


class ExecPlugin:
    """Credentials printed by a kubeconfig ``exec`` plugin (an ExecCredential on stdout).

    The plugin runs on first use and again when the credential's
    ``expirationTimestamp`` has passed or the server answered 401; without an
    expiry, the credential is kept until a 401. ``static_cert`` is the user's
    own client certificate, used unless the plugin prints one.
    """

    def __init__(
        self,
        spec: ExecSpec,
        *,
        static_cert: ClientCert | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec = spec
        self._static_cert = static_cert
        self._clock = clock
        self._lock = threading.Lock()
        self._auth: Auth | None = None
        self._expires_at: float | None = None
        self.runs = 0
        """How many times the plugin ran (tests, and debugging a chatty plugin)."""

    def current(self) -> Auth:
        with self._lock:
            expired = self._expires_at is not None and self._clock() >= self._expires_at
            if self._auth is None or expired:
                self._auth, self._expires_at = self._run()
            return self._auth

    def invalidate(self) -> None:
        with self._lock:
            self._auth = None

    def _run(self) -> tuple[Auth, float | None]:
        spec = self.spec
        self.runs += 1
        stdout = self._execute()
        try:
            credential = orjson.loads(stdout)
        except orjson.JSONDecodeError as e:
            raise self._error(f"printed no JSON ({e})") from e
        if not isinstance(credential, dict) or credential.get("kind") != "ExecCredential":
            raise self._error("did not print an ExecCredential")
        if credential.get("apiVersion") != spec.api_version:
            raise self._error(
                f"printed apiVersion {credential.get('apiVersion')!r}, not {spec.api_version!r}"
            )
        status = credential.get("status")
        if not isinstance(status, dict):
            raise self._error("printed an ExecCredential without a status")
        return self._auth_of(status), self._expiry_of(status)

    def _execute(self) -> bytes:
        spec = self.spec
        # KUBERNETES_EXEC_INFO tells the plugin how it is run, as client-go does.
        info: dict[str, Any] = {"interactive": False}
        if spec.cluster_info is not None:
            info["cluster"] = dict(spec.cluster_info)
        exec_info = {"apiVersion": spec.api_version, "kind": "ExecCredential", "spec": info}
        env = {**os.environ, **spec.env, "KUBERNETES_EXEC_INFO": orjson.dumps(exec_info).decode()}
        try:
            done = subprocess.run(
                [spec.command, *spec.args],
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=EXEC_TIMEOUT_S,
                check=False,
            )
        except FileNotFoundError as e:
            raise self._error("not found") from e
        except subprocess.TimeoutExpired as e:
            raise self._error(f"did not answer within {EXEC_TIMEOUT_S:g} s (killed)") from e
        except (OSError, subprocess.SubprocessError) as e:
            raise self._error(f"could not run: {e}") from e
        if done.returncode != 0:
            stderr = clip(done.stderr.decode(errors="replace")) or "no message"
            raise self._error(f"exited with status {done.returncode}: {stderr}")
        return done.stdout

    def _auth_of(self, status: Mapping[str, Any]) -> Auth:
        token = str(status.get("token") or "")
        cert_data = status.get("clientCertificateData")
        key_data = status.get("clientKeyData")
        if bool(cert_data) != bool(key_data):
            raise self._error("printed clientCertificateData without clientKeyData or vice versa")
        cert = self._static_cert
        if cert_data and key_data:
            cert = ClientCert(
                pem_file(str(cert_data).encode(), "cert"), pem_file(str(key_data).encode(), "key")
            )
        if not token and cert is None:
            raise self._error("printed neither a token nor a client certificate")
        return Auth(bearer(token) if token else "", cert)

    def _expiry_of(self, status: Mapping[str, Any]) -> float | None:
        stamp = status.get("expirationTimestamp")
        if not stamp:
            return None
        try:
            return datetime.fromisoformat(str(stamp)).timestamp()
        except ValueError as e:
            raise self._error(f"printed a bad expirationTimestamp {stamp!r}") from e

    def _error(self, what: str) -> ClientConfigError:
        return config_error(self.spec.where, f"exec plugin {self.spec.command!r} {what}")


class AuthProviderToken:
    """A user with a legacy ``auth-provider`` (gcp, azure, oidc), through the kubernetes package.

    Those providers are deprecated (client-go dropped them for exec plugins) and
    involve cloud SDKs and token refresh flows we have no reason to rewrite, so
    this one case pays for importing the ``kubernetes`` package: its loader
    reads the same kubeconfig and context, and its refresh hook runs before
    every request (the hook itself decides whether the token needs refreshing).
    """

    def __init__(self, *, config_file: str, context: str, static_cert: ClientCert | None) -> None:
        try:  # only here: see the module docstring
            from kubernetes import client as k8s_client
            from kubernetes import config as k8s_config
        except ImportError:
            raise config_error(
                config_file or "kubeconfig",
                "its user has a legacy auth-provider, which needs the kubernetes package: "
                "pip install 'kubevents[auth-provider]', or give the user an exec plugin",
            ) from None

        configuration: Any = k8s_client.Configuration()
        try:
            k8s_config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped in the client
                config_file=config_file or None,
                context=context or None,
                client_configuration=configuration,
                persist_config=False,
            )
        except (k8s_config.ConfigException, OSError) as e:
            raise config_error(config_file or "kubeconfig", f"auth-provider: {clip(str(e))}") from e
        self._configuration = configuration
        self._static_cert = static_cert
        self._lock = threading.Lock()

    def current(self) -> Auth:
        with self._lock:
            return Auth(authorization_of(self._configuration), self._static_cert)

    def invalidate(self) -> None:
        return None  # the refresh hook looks at the token's expiry itself


def authorization_of(configuration: Any) -> str:
    """The ``Authorization`` header a ``kubernetes`` package Configuration would send.

    Read through ``auth_settings()``, which runs the loader's refresh hook
    first; the package has named the key ``authorization`` and ``BearerToken``
    in different versions, and this works with both.
    """
    for setting in configuration.auth_settings().values():
        if setting.get("in") == "header" and str(setting.get("key")).lower() == "authorization":
            return str(setting.get("value") or "")
    return ""


# -- PEM data from a kubeconfig or a plugin, as files --------------------------------

_pem_files: list[str] = []
_pem_lock = threading.Lock()


def pem_file(data: bytes, purpose: str) -> str:
    """Write ``data`` (a certificate or key) to a private temporary file; returns its path.

    Python's ssl module loads client certificates from files only. The file is
    readable by this user alone and removed when the process exits.
    """
    fd, path = tempfile.mkstemp(prefix=f"kubevents-{purpose}-", suffix=".pem")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    with _pem_lock:
        if not _pem_files:
            atexit.register(_remove_pem_files)
        _pem_files.append(path)
    return path


def _remove_pem_files() -> None:
    with _pem_lock:
        for path in _pem_files:
            with contextlib.suppress(OSError):
                os.unlink(path)
        _pem_files.clear()
