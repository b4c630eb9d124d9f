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

_LEAF_CONFIG = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = {common_name}
[v3_leaf]
basicConstraints = critical, CA:FALSE
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
{extensions}
"""

_SERVER_EXTENSIONS = """\
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {alt_names}"""

_CLIENT_EXTENSIONS = """\
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth"""

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
    ca_config = directory / "ca.cnf"
    ca_config.write_text(_CA_CONFIG.format(name=name))
    _openssl(
        "req", "-x509", "-new", "-config", ca_config, *_EC_KEY,
        "-keyout", ca_key, "-out", ca_cert, "-days", str(days),
    )  # fmt: skip
    pki = Pki(
        ca_file=ca_cert, cert_file=directory / "server.crt", key_file=directory / "server.key"
    )
    extensions = _SERVER_EXTENSIONS.format(alt_names=_alt_names(hosts))
    _signed_leaf(pki, "server", hosts[0], extensions, days)
    return pki


def make_client_pair(
    pki: Pki, *, name: str = "kubevents-client", days: int = 2
) -> tuple[Path, Path]:
    """A client certificate (extendedKeyUsage clientAuth) signed by ``pki``'s CA: (cert, key)."""
    return _signed_leaf(pki, name, name, _CLIENT_EXTENSIONS, days)


def _signed_leaf(
    pki: Pki, stem: str, common_name: str, extensions: str, days: int
) -> tuple[Path, Path]:
    """A key and a certificate ``<stem>.key``/``<stem>.crt`` beside the CA, signed by it."""
    directory = pki.ca_file.parent
    config, csr = directory / f"{stem}.cnf", directory / f"{stem}.csr"
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    config.write_text(_LEAF_CONFIG.format(common_name=common_name, extensions=extensions))
    _openssl("req", "-new", "-config", config, *_EC_KEY, "-keyout", key, "-out", csr)
    _openssl(
        "x509", "-req", "-in", csr, "-CA", pki.ca_file, "-CAkey", directory / "ca.key",
        "-set_serial", f"0x{secrets.token_hex(8)}", "-days", str(days),
        "-extfile", config, "-extensions", "v3_leaf", "-out", cert,
    )  # fmt: skip
    return cert, key


def _alt_names(hosts: Sequence[str]) -> str:
    return ", ".join(f"IP:{h}" if _is_ip(h) else f"DNS:{h}" for h in hosts)


def _is_ip(host: str) -> bool:
    return host.replace(".", "").isdigit() or ":" in host


def _openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)
