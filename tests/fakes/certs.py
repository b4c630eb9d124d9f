"""A throwaway PKI for the TLS fakes: one CA, a server certificate and client pairs it signs.

The venv has no ``cryptography`` package, so the ``openssl`` command line does
the work. Every file is written from our own minimal config (no dependence on
the system ``openssl.cnf``), with the extensions a strict verifier wants: a CA
with keyUsage keyCertSign, a leaf with subjectAltName for the addresses the
fakes listen on, and subject/authority key identifiers on both.
"""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_CA_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = {name} CA
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
"""

_SERVER_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {common_name}
[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {alt_names}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""

_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


@dataclass(frozen=True)
class Pki:
    """The files of one test PKI: a CA and a server certificate signed by it."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def make_pki(
    directory: Path,
    *,
    hosts: Sequence[str] = ("127.0.0.1", "localhost"),
    name: str = "kubevents-test",
    days: int = 2,
) -> Pki:
    """Create a CA and a server certificate for ``hosts`` (IPs or DNS names) in ``directory``.

    Raises:
        subprocess.CalledProcessError: openssl failed (its stderr is in the exception).
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    ca_config = directory / "ca.cnf"
    ca_config.write_text(_CA_CONFIG.format(name=name))
    server_config = directory / "server.cnf"
    server_config.write_text(
        _SERVER_CONFIG.format(common_name=hosts[0], alt_names=_alt_names(hosts))
    )
    _openssl(
        "req",
        "-x509",
        "-new",
        "-config",
        ca_config,
        *_EC_KEY,
        "-keyout",
        ca_key,
        "-out",
        ca_cert,
        "-days",
        str(days),
    )
    _openssl("req", "-new", "-config", server_config, *_EC_KEY, "-keyout", key, "-out", csr)
    _openssl(
        "x509",
        "-req",
        "-in",
        csr,
        "-CA",
        ca_cert,
        "-CAkey",
        ca_key,
        "-set_serial",
        f"0x{secrets.token_hex(8)}",
        "-days",
        str(days),
        "-extfile",
        server_config,
        "-extensions",
        "v3_server",
        "-out",
        cert,
    )
    return Pki(ca_file=ca_cert, cert_file=cert, key_file=key)


_CLIENT_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {common_name}
[v3_client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""


def make_client_pair(
    pki: Pki, *, name: str = "kubevents-client", days: int = 2
) -> tuple[Path, Path]:
    """A client certificate (extendedKeyUsage clientAuth) signed by ``pki``'s CA: (cert, key)."""
    directory = pki.ca_file.parent
    config, csr = directory / f"{name}.cnf", directory / f"{name}.csr"
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    config.write_text(_CLIENT_CONFIG.format(common_name=name))
    _openssl("req", "-new", "-config", config, *_EC_KEY, "-keyout", key, "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", pki.ca_file, "-CAkey", directory / "ca.key",
        "-set_serial", f"0x{secrets.token_hex(8)}", "-days", str(days),
        "-extfile", config, "-extensions", "v3_client", "-out", cert,
    )  # fmt: skip
    return cert, key


def _alt_names(hosts: Sequence[str]) -> str:
    return ", ".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)


def _is_ip(host: str) -> bool:
    return host.replace(".", "").isdigit() or ":" in host


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)

