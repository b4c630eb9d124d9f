"""Where the API server is and who we are to it: in-cluster config or kubeconfig files.

:func:`in_cluster_config` reads what a pod is given: the server from the
``KUBERNETES_SERVICE_HOST``/``_PORT`` environment, the service account's
token (re-read every minute: it rotates) and CA certificate from files.

:func:`kubeconfig_config` reads kubeconfig files the way kubectl does for the
fields kubevents supports: the ``KUBECONFIG`` files merged (first name wins),
the context (``--context`` or ``current-context``), its cluster (server,
``certificate-authority`` / ``-data``, ``insecure-skip-tls-verify``,
``tls-server-name``, ``proxy-url``) and its user (``token`` / ``tokenFile``,
``client-certificate`` / ``client-key`` and their ``-data`` forms, ``username``
/ ``password``, ``exec`` plugins, and a legacy ``auth-provider`` through the
kubernetes package: see ``credentials.py``). Relative file paths are relative
to the kubeconfig file that holds them.

Both give a :class:`ClientConfig`; every problem is a
:class:`~kubevents.errors.SourceError` whose one line names the file and what
is wrong in it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from kubevents.safeload import LoadProblem, decode_utf8, load_yaml
from kubevents.source.credentials import (
    Auth,
    AuthProviderToken,
    ClientCert,
    Credentials,
    ExecPlugin,
    StaticCredentials,
    TokenFile,
    basic,
    bearer,
    config_error,
    exec_spec,
    pem_file,
)

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EXEC_EXTENSION = "client.authentication.k8s.io/exec"
"""The cluster extension whose content an exec plugin gets as ``spec.cluster.config``."""


@dataclass(frozen=True, slots=True)
class Tls:
    """How to check the API server's certificate."""

    ca_file: str = ""
    ca_data: str = ""
    """PEM text (``certificate-authority-data``); wins over ``ca_file`` as in client-go."""
    verify: bool = True
    """False: ``insecure-skip-tls-verify`` (testing only)."""
    server_name: str = ""
    """The name to expect in the certificate (``tls-server-name``), if not the host's."""


@dataclass(frozen=True)
class ClientConfig:
    """Everything needed to talk to one API server, from in-cluster config or a kubeconfig."""

    server: str
    """``https://host:port``, without a trailing slash."""
    credentials: Credentials
    tls: Tls = Tls()
    proxy_url: str = ""
    source: str = ""
    """Where this came from ("in-cluster", the kubeconfig files), for messages."""


def in_cluster_config(
    env: Mapping[str, str] | None = None, account_dir: Path = SERVICE_ACCOUNT_DIR
) -> ClientConfig:
    """The pod's service account: the server from the environment, the token and CA from files."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise config_error(
            "in-cluster", "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"
        )
    ca_file = account_dir / "ca.crt"
    if not ca_file.is_file():
        raise config_error(ca_file, "the service account's CA certificate is missing")
    host = f"[{host}]" if ":" in host else host  # an IPv6 address
    server = f"https://{host}:{port}"
    return ClientConfig(
        server=server,
        # Bound service-account tokens rotate: TokenFile reads the file again every minute.
        credentials=TokenFile(account_dir / "token"),
        tls=Tls(ca_file=str(ca_file)),
        proxy_url=_proxy_from_env(server),
        source="in-cluster",
    )


def kubeconfig_paths(explicit: str = "", env: Mapping[str, str] | None = None) -> list[Path]:
    """The kubeconfig files to read, as kubectl finds them.

    ``--kubeconfig`` names one file; else ``KUBECONFIG`` lists files separated
    by ``os.pathsep`` (``:``), merged; else ``~/.kube/config``.
    """
    env = os.environ if env is None else env
    if explicit:
        return [Path(explicit).expanduser()]
    listed = [Path(p).expanduser() for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    return listed or [Path.home() / ".kube" / "config"]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One named cluster, user or context, and the file it came from."""

    fields: Mapping[str, Any]
    file: Path


@dataclass
class _Kubeconfig:
    """The merge of one or more kubeconfig files (see :func:`read_kubeconfigs`)."""

    clusters: dict[str, _Entry]
    users: dict[str, _Entry]
    contexts: dict[str, _Entry]
    current_context: str
    files: list[Path]

    @property
    def where(self) -> str:
        return ", ".join(map(str, self.files))


def read_kubeconfigs(paths: list[Path]) -> _Kubeconfig:
    """Read and merge kubeconfig files the way kubectl does for these fields.

    The first file that names a cluster, user or context wins for that name;
    the first ``current-context`` set wins. Files that do not exist are
    skipped, as kubectl skips them in ``KUBECONFIG``, unless none exists.
    """
    merged = _Kubeconfig({}, {}, {}, "", [])
    for path in paths:
        document = _read_yaml(path, required=len(paths) == 1)
        if document is None:
            continue
        merged.files.append(path)
        merged.current_context = merged.current_context or str(
            document.get("current-context") or ""
        )
        for section, key, into in (
            ("clusters", "cluster", merged.clusters),
            ("users", "user", merged.users),
            ("contexts", "context", merged.contexts),
        ):
            for name, fields in _named_entries(document, section, key, path):
                into.setdefault(name, _Entry(fields, path))
    if not merged.files:
        raise config_error(", ".join(map(str, paths)), "no kubeconfig file found")
    return merged


def _read_yaml(path: Path, *, required: bool) -> Mapping[str, Any] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError as e:
        if required:
            raise config_error(path, "file not found") from e
        return None
    except OSError as e:
        raise config_error(path, f"cannot read it ({e.strerror})") from e
    try:
        document = load_yaml(decode_utf8(raw), _YAML_LOADER)
    except LoadProblem as e:
        raise config_error(f"{path}:{e.line}" if e.line else path, e.message) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise config_error(path, "not a kubeconfig (the top level is not a mapping)")
    return document


def _named_entries(
    document: Mapping[str, Any], section: str, key: str, path: Path
) -> list[tuple[str, Mapping[str, Any]]]:
    """``[{"name": n, key: {...}}, ...]`` as (name, fields) pairs, checked."""
    entries = document.get(section) or []
    if not isinstance(entries, list):
        raise config_error(path, f"'{section}' must be a list")
    pairs: list[tuple[str, Mapping[str, Any]]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("name"):
            raise config_error(path, f"every entry of '{section}' needs a name")
        fields = entry.get(key) or {}
        if not isinstance(fields, dict):
            raise config_error(path, f"{section[:-1]} {entry['name']!r}: '{key}' must be a mapping")
        pairs.append((str(entry["name"]), fields))
    return pairs


def kubeconfig_config(paths: list[Path], *, context: str = "") -> ClientConfig:
    """The ClientConfig of ``context`` (default: the current context) in the merged files."""
    merged = read_kubeconfigs(paths)
    name = context or merged.current_context
    if not name:
        raise config_error(merged.where, "no current-context is set; name one with --context")
    chosen = merged.contexts.get(name)
    if chosen is None:
        known = ", ".join(sorted(merged.contexts)) or "none"
        raise config_error(merged.where, f"context {name!r} not found (contexts: {known})")
    cluster_name = str(chosen.fields.get("cluster") or "")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise config_error(chosen.file, f"context {name!r}: cluster {cluster_name!r} not found")
    user_name = str(chosen.fields.get("user") or "")
    user = merged.users.get(user_name)
    if user_name and user is None:
        raise config_error(chosen.file, f"context {name!r}: user {user_name!r} not found")
    server, tls, proxy_url = _cluster(cluster, cluster_name)
    credentials = _user_credentials(
        user or _Entry({}, chosen.file),
        where=f"{(user or chosen).file}: user {user_name!r}",
        cluster_info=_cluster_info(server, tls, cluster),
        config_file=str(paths[0]) if len(paths) == 1 else "",
        context=name,
    )
    return ClientConfig(
        server=server, credentials=credentials, tls=tls, proxy_url=proxy_url, source=merged.where
    )


def _cluster(entry: _Entry, name: str) -> tuple[str, Tls, str]:
    """(server, TLS settings, proxy URL) of a kubeconfig cluster."""
    fields, where = entry.fields, f"{entry.file}: cluster {name!r}"
    server = str(fields.get("server") or "").rstrip("/")
    if not server:
        raise config_error(where, "'server' is missing")
    if urlsplit(server).scheme not in ("http", "https"):
        raise config_error(where, f"server {server!r} is not an http(s) URL")
    ca_data = _data_field(fields, "certificate-authority-data", where)
    tls = Tls(
        ca_file=_file_field(fields, "certificate-authority", entry.file),
        ca_data=ca_data.decode(errors="replace") if ca_data else "",
        verify=not fields.get("insecure-skip-tls-verify", False),
        server_name=str(fields.get("tls-server-name") or ""),
    )
    proxy_url = str(fields.get("proxy-url") or "") or _proxy_from_env(server)
    if urlsplit(proxy_url).scheme.startswith("socks"):
        raise config_error(where, f"proxy {proxy_url!r}: SOCKS proxies are not supported")
    return server, tls, proxy_url


def _user_credentials(
    entry: _Entry, *, where: str, cluster_info: Mapping[str, Any], config_file: str, context: str
) -> Credentials:
    """The credential source of a kubeconfig user (see ``credentials.py``)."""
    fields = entry.fields
    cert = _client_cert(fields, where, entry.file)
    if isinstance(fields.get("exec"), dict):
        spec = exec_spec(
            fields["exec"], where=where, base_dir=entry.file.parent, cluster_info=cluster_info
        )
        return ExecPlugin(spec, static_cert=cert)
    if fields.get("token"):
        return StaticCredentials(Auth(bearer(str(fields["token"])), cert))
    token_file = _file_field(fields, "tokenFile", entry.file)
    if token_file:
        return TokenFile(Path(token_file), client_cert=cert)
    if fields.get("username"):
        return StaticCredentials(
            Auth(basic(str(fields["username"]), str(fields.get("password") or "")), cert)
        )
    if fields.get("auth-provider"):
        return AuthProviderToken(config_file=config_file, context=context, static_cert=cert)
    return StaticCredentials(Auth("", cert))


def _client_cert(fields: Mapping[str, Any], where: str, file: Path) -> ClientCert | None:
    """The user's client certificate and key as files; ``-data`` fields win over file fields."""
    cert_data = _data_field(fields, "client-certificate-data", where)
    key_data = _data_field(fields, "client-key-data", where)
    cert_file = pem_file(cert_data, "cert") if cert_data else ""
    key_file = pem_file(key_data, "key") if key_data else ""
    cert_file = cert_file or _file_field(fields, "client-certificate", file)
    key_file = key_file or _file_field(fields, "client-key", file)
    if bool(cert_file) != bool(key_file):
        raise config_error(where, "a client certificate needs both a certificate and a key")
    return ClientCert(cert_file, key_file) if cert_file else None


def _data_field(fields: Mapping[str, Any], key: str, where: str) -> bytes:
    """A base64 ``...-data`` field, decoded (empty when absent)."""
    value = fields.get(key)
    if not value:
        return b""
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError) as e:
        raise config_error(where, f"{key} is not valid base64") from e


def _file_field(fields: Mapping[str, Any], key: str, file: Path) -> str:
    """A file path field; a relative path is relative to the kubeconfig file, as in kubectl."""
    value = fields.get(key)
    if not value:
        return ""
    path = Path(str(value)).expanduser()
    return str(path if path.is_absolute() else file.parent / path)


def _cluster_info(server: str, tls: Tls, entry: _Entry) -> dict[str, Any]:
    """``spec.cluster`` of an ExecCredential, for plugins that ask ``provideClusterInfo``."""
    info: dict[str, Any] = {"server": server, "insecure-skip-tls-verify": not tls.verify}
    if tls.server_name:
        info["tls-server-name"] = tls.server_name
    if tls.ca_data:
        info["certificate-authority-data"] = base64.b64encode(tls.ca_data.encode()).decode()
    elif tls.ca_file:
        # Unreadable: left out; the TLS handshake will say so, with a clearer message.
        with contextlib.suppress(OSError):
            ca = Path(tls.ca_file).read_bytes()
            info["certificate-authority-data"] = base64.b64encode(ca).decode()
    for extension in entry.fields.get("extensions") or []:
        if isinstance(extension, dict) and extension.get("name") == EXEC_EXTENSION:
            info["config"] = extension.get("extension")
    return info


def _proxy_from_env(server: str) -> str:
    """``HTTPS_PROXY``/``HTTP_PROXY`` for ``server`` unless ``NO_PROXY`` excludes it (as client-go)."""
    parts = urlsplit(server)
    proxy = urllib.request.getproxies().get(parts.scheme, "")
    if proxy and urllib.request.proxy_bypass(parts.netloc):
        return ""
    return proxy
