"""Credential sources: token files re-read as they rotate, exec plugins re-run as they expire."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubevents.errors import SourceError
from kubevents.source.credentials import (
    AuthProviderToken,
    ExecPlugin,
    ExecSpec,
    TokenFile,
    exec_spec,
)

V1 = "client.authentication.k8s.io/v1"
PREFIX = "cannot load Kubernetes client configuration: "


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- token files ----------------------------------------------------------------------------


def test_a_token_file_is_read_again_after_a_minute_not_before(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first\n")
    clock = Clock()
    source = TokenFile(path, monotonic=clock)
    path.write_text("rotated")  # the kubelet rotates the bound token
    clock.now += 59
    assert source.current().authorization == "Bearer first"
    clock.now += 1
    assert source.current().authorization == "Bearer rotated"


def test_a_401_makes_the_next_request_read_the_token_file_again(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("old")
    source = TokenFile(path, monotonic=Clock())
    path.write_text("new")
    source.invalidate()
    assert source.current().authorization == "Bearer new"


def test_a_failed_re_read_keeps_the_previous_token(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "token"
    path.write_text("kept")
    clock = Clock()
    source = TokenFile(path, monotonic=clock)
    path.write_text("")
    clock.now += 60
    assert source.current().authorization == "Bearer kept"
    assert f"{path}: the token file is empty; keeping the previous token" in caplog.text


# -- exec plugins ---------------------------------------------------------------------------

PLUGIN = """\
#!{python}
# A credential plugin: prints an ExecCredential; counts its runs in runs.txt.
import json, os, pathlib, sys
here = pathlib.Path({here!r})
runs = here / "runs.txt"
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
(here / "exec_info.json").write_text(os.environ.get("KUBERNETES_EXEC_INFO", ""))
mode = os.environ.get("MODE", "token")
if mode == "fail":
    sys.stderr.write("no credentials for you\\n")
    sys.exit(3)
if mode == "hang":  # waits for input no one types (an interactive login, say)
    sys.stdin.read()
    __import__("time").sleep(600)
status = {{"token": f"{{sys.argv[1]}}-{{os.environ['REGION']}}-{{n}}"}}
if mode == "cert":
    status = {{"clientCertificateData": "CERT", "clientKeyData": "KEY"}}
if os.environ.get("EXPIRES"):
    status["expirationTimestamp"] = os.environ["EXPIRES"]
api_version = os.environ.get("PRINT_VERSION", "{version}")
print(json.dumps({{"apiVersion": api_version, "kind": "ExecCredential", "status": status}}))
"""


def plugin(tmp_path: Path, *, clock: Clock | None = None, **env: str) -> ExecPlugin:
    script = tmp_path / "bin" / "auth"
    script.parent.mkdir(exist_ok=True)
    script.write_text(PLUGIN.format(python=sys.executable, here=str(tmp_path), version=V1))
    script.chmod(0o755)
    section: dict[str, Any] = {
        "apiVersion": V1, "command": "./bin/auth", "args": ["tok"],
        "env": [{"name": "REGION", "value": "eu"}, *({"name": k, "value": v} for k, v in env.items())],
        "provideClusterInfo": True,
    }
    spec = exec_spec(section, where="config: user 'me'", base_dir=tmp_path,
                     cluster_info={"server": "https://k:6443"})
    return ExecPlugin(spec, clock=clock or Clock())


def runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs.txt").read_text())


def test_the_plugin_runs_with_its_args_env_and_exec_info(tmp_path: Path) -> None:
    source = plugin(tmp_path)
    assert source.current().authorization == "Bearer tok-eu-1"
    assert json.loads((tmp_path / "exec_info.json").read_text()) == {
        "apiVersion": V1, "kind": "ExecCredential",
        "spec": {"interactive": False, "cluster": {"server": "https://k:6443"}},
    }


def test_the_credential_is_kept_until_it_expires(tmp_path: Path) -> None:
    clock = Clock(now=1_800_000_000.0)  # 2027-01-15T08:00:00Z
    source = plugin(tmp_path, clock=clock, EXPIRES="2027-01-15T09:00:00Z")
    assert source.current().authorization == "Bearer tok-eu-1"
    clock.now += 3599
    assert source.current().authorization == "Bearer tok-eu-1"
    clock.now += 1
    assert source.current().authorization == "Bearer tok-eu-2"
    assert runs(tmp_path) == 2


def test_without_an_expiry_it_is_kept_until_a_401(tmp_path: Path) -> None:
    clock = Clock()
    source = plugin(tmp_path, clock=clock)
    source.current()
    clock.now += 10 * 86400
    assert source.current().authorization == "Bearer tok-eu-1"
    source.invalidate()
    assert source.current().authorization == "Bearer tok-eu-2"


def test_a_plugin_may_print_a_client_certificate(tmp_path: Path) -> None:
    auth = plugin(tmp_path, MODE="cert").current()
    assert auth.authorization == "" and auth.client_cert is not None
    assert Path(auth.client_cert.cert_file).read_text() == "CERT"
    assert Path(auth.client_cert.key_file).read_text() == "KEY"


@pytest.mark.parametrize(("env", "expected"), [
    ({"MODE": "fail"}, "exited with status 3: no credentials for you"),
    ({"PRINT_VERSION": "client.authentication.k8s.io/v1beta1"},
     f"printed apiVersion 'client.authentication.k8s.io/v1beta1', not '{V1}'"),
    ({"EXPIRES": "tomorrow"}, "printed a bad expirationTimestamp 'tomorrow'"),
])
def test_plugin_failures_are_one_line_errors(tmp_path: Path, env: dict[str, str], expected: str) -> None:
    with pytest.raises(SourceError) as info:
        plugin(tmp_path, **env).current()
    assert str(info.value) == f"{PREFIX}config: user 'me': exec plugin '{tmp_path / 'bin' / 'auth'}' {expected}"


def test_a_missing_plugin(tmp_path: Path) -> None:
    spec = ExecSpec(command="no-such-plugin-anywhere", args=(), env={}, api_version=V1,
                    cluster_info=None, where="config: user 'me'")
    with pytest.raises(SourceError, match=r"exec plugin 'no-such-plugin-anywhere' not found$"):
        ExecPlugin(spec).current()


# -- the auth-provider fallback --------------------------------------------------------------


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def test_a_legacy_auth_provider_goes_through_the_kubernetes_package(tmp_path: Path) -> None:
    token = jwt({"exp": 4_000_000_000, "sub": "me"})  # an unexpired id-token: no refresh
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
        "users": [{"name": "u", "user": {"auth-provider": {"name": "oidc", "config": {
            "client-id": "kubevents", "id-token": token, "idp-issuer-url": "https://issuer"}}}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }))
    source = AuthProviderToken(config_file=str(path), context="", static_cert=None)
    assert source.current().authorization == f"Bearer {token}"


def test_only_the_auth_provider_fallback_imports_the_kubernetes_package(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }))
    code = textwrap.dedent(f"""
        import sys
        import kubevents.app, kubevents.running, kubevents.source.leader, kubevents.source.objects
        from kubevents.source.kubeclient import load_client
        load_client(kubeconfig={str(path)!r})
        print(sorted(m for m in sys.modules if m.split(".")[0] == "kubernetes"))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_auth_provider_without_the_kubernetes_package_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "https://k"}}],
        "users": [{"name": "u", "user": {"auth-provider": {"name": "gcp", "config": {}}}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }))
    monkeypatch.setitem(sys.modules, "kubernetes", None)  # as if it were not installed
    with pytest.raises(SourceError) as raised:
        AuthProviderToken(config_file=str(path), context="", static_cert=None)
    message = str(raised.value)
    assert "\n" not in message and str(path) in message
    assert "pip install 'kubevents[auth-provider]'" in message


def test_a_plugin_that_hangs_is_stopped_with_a_message_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubevents.errors import ConfigError
    from kubevents.source import credentials

    monkeypatch.setattr(credentials, "EXEC_TIMEOUT_S", 0.5)
    source = plugin(tmp_path, MODE="hang")
    started = time.monotonic()
    with pytest.raises(ConfigError) as error:  # invalid configuration: exit 2
        source.current()
    assert time.monotonic() - started < 5
    assert str(error.value) == (
        f"{credentials.CONFIG_ERROR}: config: user 'me': exec plugin "
        f"'{tmp_path / 'bin' / 'auth'}' did not answer within 0.5 s (killed)"
    )
