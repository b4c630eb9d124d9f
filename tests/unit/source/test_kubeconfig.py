"""kubeconfig files and in-cluster config become a ClientConfig, or one clear error line."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevents.errors import SourceError
from kubevents.source.credentials import ExecPlugin, StaticCredentials, TokenFile
from kubevents.source.kubeconfig import (
    ClientConfig,
    in_cluster_config,
    kubeconfig_config,
    kubeconfig_paths,
)

PREFIX = "cannot load Kubernetes client configuration: "


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(
    path: Path,
    *,
    clusters: dict[str, dict[str, Any]] | None = None,
    users: dict[str, dict[str, Any]] | None = None,
    contexts: dict[str, tuple[str, str]] | None = None,
    current: str | None = "main",
) -> Path:
    """Write a kubeconfig; by default one context ``main`` (cluster and user ``main``)."""
    clusters = {"main": {"server": "https://main.example:6443"}} if clusters is None else clusters
    users = {"main": {"token": "main-token"}} if users is None else users
    contexts = {"main": ("main", "main")} if contexts is None else contexts
    document: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": c} for n, c in clusters.items()],
        "users": [{"name": n, "user": u} for n, u in users.items()],
        "contexts": [{"name": n, "context": {"cluster": c, "user": u}} for n, (c, u) in contexts.items()],
    }
    if current is not None:
        document["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document))
    return path


def load(path: Path, context: str = "") -> ClientConfig:
    return kubeconfig_config([path], context=context)


def error_of(call: Any) -> str:
    with pytest.raises(SourceError) as info:
        call()
    message = str(info.value)
    assert message.startswith(PREFIX) and "\n" not in message
    return message.removeprefix(PREFIX)


# -- clusters -------------------------------------------------------------------------


def test_server_token_and_defaults(tmp_path: Path) -> None:
    config = load(kubeconfig(tmp_path / "config", clusters={"main": {"server": "https://k:6443/"}}))
    assert config.server == "https://k:6443"  # no trailing slash: paths are appended
    assert config.credentials.current().authorization == "Bearer main-token"
    assert (config.tls.verify, config.tls.ca_file, config.tls.ca_data, config.proxy_url) == (True, "", "", "")


def test_ca_data_wins_over_the_file_and_relative_files_are_next_to_the_kubeconfig(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "kube" / "config", clusters={
        "file": {"server": "https://a", "certificate-authority": "certs/ca.crt"},
        "both": {"server": "https://b", "certificate-authority": "/abs/ca.crt",
                 "certificate-authority-data": b64("PEM DATA")},
    }, contexts={"file": ("file", "main"), "both": ("both", "main")})
    file_only = load(path, "file").tls
    assert (file_only.ca_file, file_only.ca_data) == (str(tmp_path / "kube" / "certs" / "ca.crt"), "")
    both = load(path, "both").tls
    assert both.ca_data == "PEM DATA"  # used by the client in preference to ca_file


def test_insecure_and_tls_server_name(tmp_path: Path) -> None:
    tls = load(kubeconfig(tmp_path / "config", clusters={
        "main": {"server": "https://10.0.0.1", "insecure-skip-tls-verify": True, "tls-server-name": "api.internal"},
    })).tls
    assert (tls.verify, tls.server_name) == (False, "api.internal")


def test_proxy_url_from_the_cluster_or_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:3128")
    monkeypatch.setenv("NO_PROXY", "skipped.example")
    path = kubeconfig(tmp_path / "config", clusters={
        "own": {"server": "https://a.example", "proxy-url": "http://own-proxy:8080"},
        "env": {"server": "https://b.example"},
        "skipped": {"server": "https://skipped.example"},
    }, contexts={name: (name, "main") for name in ("own", "env", "skipped")})
    assert [load(path, name).proxy_url for name in ("own", "env", "skipped")] == [
        "http://own-proxy:8080", "http://env-proxy:3128", ""]


# -- users ------------------------------------------------------------------------------


def test_client_certificate_data_is_written_to_private_files(tmp_path: Path) -> None:
    config = load(kubeconfig(tmp_path / "config", users={
        "main": {"client-certificate-data": b64("CERT"), "client-key-data": b64("KEY")},
    }))
    auth = config.credentials.current()
    assert auth.authorization == "" and auth.client_cert is not None
    assert Path(auth.client_cert.cert_file).read_text() == "CERT"
    assert Path(auth.client_cert.key_file).read_text() == "KEY"
    assert Path(auth.client_cert.key_file).stat().st_mode & 0o077 == 0


def test_client_certificate_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    config = load(kubeconfig(tmp_path / "config", users={
        "main": {"client-certificate": "me.crt", "client-key": "/keys/me.key", "token": "t"},
    }))
    auth = config.credentials.current()
    assert auth.client_cert is not None
    assert (auth.client_cert.cert_file, auth.client_cert.key_file) == (str(tmp_path / "me.crt"), "/keys/me.key")
    assert auth.authorization == "Bearer t"


def test_basic_auth_token_file_and_anonymous(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    path = kubeconfig(tmp_path / "config", users={
        "basic": {"username": "admin", "password": "s3cret"},
        "file": {"tokenFile": "token"},
    }, contexts={"basic": ("main", "basic"), "file": ("main", "file"), "anonymous": ("main", "")})
    assert load(path, "basic").credentials.current().authorization == "Basic " + b64("admin:s3cret")
    file_credentials = load(path, "file").credentials
    assert isinstance(file_credentials, TokenFile)
    assert file_credentials.current().authorization == "Bearer from-a-file"
    anonymous = load(path, "anonymous").credentials
    assert isinstance(anonymous, StaticCredentials) and anonymous.current().authorization == ""


def test_an_exec_user_gets_a_plugin_with_its_command_resolved_like_kubectl(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", users={
        "relative": {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/auth",
                              "args": ["token"], "env": [{"name": "REGION", "value": "eu"}]}},
        "on-path": {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws"}},
    }, contexts={"relative": ("main", "relative"), "on-path": ("main", "on-path")})
    relative = load(path, "relative").credentials
    assert isinstance(relative, ExecPlugin)  # not run yet: load_client asks it once
    assert (relative.spec.command, relative.spec.args, dict(relative.spec.env)) == (
        str(tmp_path / "bin" / "auth"), ("token",), {"REGION": "eu"})
    on_path = load(path, "on-path").credentials
    assert isinstance(on_path, ExecPlugin) and on_path.spec.command == "aws"


# -- contexts and merging ---------------------------------------------------------------


def test_the_current_context_unless_one_is_named(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", clusters={
        "prod": {"server": "https://prod"}, "dev": {"server": "https://dev"},
    }, users={"main": {"token": "t"}}, contexts={"prod": ("prod", "main"), "dev": ("dev", "main")}, current="dev")
    assert load(path).server == "https://dev"
    assert load(path, "prod").server == "https://prod"


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path: Path) -> None:
    first = kubeconfig(tmp_path / "first", clusters={"shared": {"server": "https://first"}},
                       users={"main": {"token": "first-token"}}, contexts={"a": ("shared", "main")}, current=None)
    second = kubeconfig(tmp_path / "second", clusters={
        "shared": {"server": "https://second"}, "other": {"server": "https://other"},
    }, users={"main": {"token": "second-token"}}, contexts={"b": ("other", "main")}, current="b")
    config = kubeconfig_config([tmp_path / "missing", first, second])  # a missing file is skipped
    assert config.server == "https://other"  # current-context from the first file that sets it
    assert config.credentials.current().authorization == "Bearer first-token"  # first name wins
    assert kubeconfig_config([first, second], context="a").server == "https://first"


def test_kubeconfig_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert kubeconfig_paths("/x/config", {"KUBECONFIG": "/a:/b"}) == [Path("/x/config")]
    assert kubeconfig_paths("", {"KUBECONFIG": "/a::/b"}) == [Path("/a"), Path("/b")]
    monkeypatch.setenv("HOME", str(tmp_path))
    assert kubeconfig_paths("", {}) == [tmp_path / ".kube" / "config"]


# -- in-cluster -------------------------------------------------------------------------


def service_account(tmp_path: Path, token: str = "sa-token") -> Path:
    (tmp_path / "token").write_text(token)
    (tmp_path / "ca.crt").write_text("CA")
    return tmp_path


def test_in_cluster_from_the_environment_and_the_service_account_files(tmp_path: Path) -> None:
    account = service_account(tmp_path)
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    config = in_cluster_config(env, account)
    assert (config.server, config.tls.ca_file, config.source) == ("https://10.96.0.1:443", str(account / "ca.crt"), "in-cluster")
    assert isinstance(config.credentials, TokenFile)
    assert config.credentials.current().authorization == "Bearer sa-token"
    ipv6 = in_cluster_config({"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"}, account)
    assert ipv6.server == "https://[fd00::1]:443"


def test_in_cluster_errors(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert error_of(lambda: in_cluster_config({}, tmp_path)) == (
        "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set")
    assert error_of(lambda: in_cluster_config(env, tmp_path)) == (
        f"{tmp_path / 'ca.crt'}: the service account's CA certificate is missing")
    (tmp_path / "ca.crt").write_text("CA")
    assert error_of(lambda: in_cluster_config(env, tmp_path)).startswith(
        f"{tmp_path / 'token'}: cannot read the token file")
    (tmp_path / "token").write_text("\n")
    assert error_of(lambda: in_cluster_config(env, tmp_path)) == f"{tmp_path / 'token'}: the token file is empty"


# -- errors: the file and what is wrong, on one line -------------------------------------


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert error_of(lambda: load(missing)) == f"{missing}: file not found"
    assert error_of(lambda: kubeconfig_config([missing, tmp_path / "nope2"])) == (
        f"{missing}, {tmp_path / 'nope2'}: no kubeconfig file found")
    bad = tmp_path / "bad"
    bad.write_text("clusters: [unclosed\n")
    assert error_of(lambda: load(bad)).startswith(f"{bad}:2: invalid YAML: ")
    bad.write_text("- a list\n")
    assert error_of(lambda: load(bad)) == f"{bad}: not a kubeconfig (the top level is not a mapping)"
    bad.write_text("clusters: [{cluster: {server: https://x}}]\n")
    assert error_of(lambda: load(bad)) == f"{bad}: every entry of 'clusters' needs a name"


@pytest.mark.parametrize(("clusters", "users", "context", "expected"), [
    ({"main": {}}, None, "", "{file}: cluster 'main': 'server' is missing"),
    ({"main": {"server": "k:6443"}}, None, "", "{file}: cluster 'main': server 'k:6443' is not an http(s) URL"),
    ({"main": {"server": "https://k", "certificate-authority-data": "not base64!"}}, None, "",
     "{file}: cluster 'main': certificate-authority-data is not valid base64"),
    (None, {"main": {"client-certificate": "a.crt"}}, "",
     "{file}: user 'main': a client certificate needs both a certificate and a key"),
    (None, {"main": {"exec": {"command": "x"}}}, "",
     "{file}: user 'main': exec: apiVersion '' is not supported "
     "(use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)"),
    (None, {"main": {"exec": {"apiVersion": "client.authentication.k8s.io/v1"}}}, "",
     "{file}: user 'main': exec: 'command' is missing"),
    (None, None, "staging", "{file}: context 'staging' not found (contexts: main)"),
    (None, {"other": {}}, "", "{file}: context 'main': user 'main' not found"),
    ({"other": {"server": "https://k"}}, None, "", "{file}: context 'main': cluster 'main' not found"),
])
def test_configuration_errors_name_the_file_and_the_problem(
    tmp_path: Path, clusters: Any, users: Any, context: str, expected: str
) -> None:
    path = kubeconfig(tmp_path / "config", clusters=clusters, users=users)
    assert error_of(lambda: load(path, context)) == expected.format(file=path)


def test_no_current_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", current=None)
    assert error_of(lambda: load(path)) == f"{path}: no current-context is set; name one with --context"
