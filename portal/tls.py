"""The HTTPS certificate of the operator panel, made on first run.

A node has no domain name and no Internet, so no public CA can vouch for
it: ``portal_init`` makes a self-signed certificate (EC P-256, ten years,
names: localhost, 127.0.0.1, ::1 and the node name) with ``openssl`` through
the host layer, and prints its SHA-256 fingerprint so the operator can
compare it with what the browser shows.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from portal.host.commands import Command
from portal.host.runner import Runner

CERT_NAME = "portal.crt"
KEY_NAME = "portal.key"
VALID_DAYS = 3650
_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL
)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")


@dataclass(frozen=True)
class TlsFiles:
    """Where nginx finds the certificate and its key."""

    folder: Path

    @property
    def cert(self) -> Path:
        return self.folder / CERT_NAME

    @property
    def key(self) -> Path:
        return self.folder / KEY_NAME

    def exist(self) -> bool:
        return self.cert.is_file() and self.key.is_file()


def certificate_command(*, cert: Path, key: Path, node_name: str) -> Command:
    """``openssl req`` making a self-signed EC certificate and key."""
    names = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    common_name = "localhost"
    if node_name and _LABEL.match(node_name):
        names.insert(0, f"DNS:{node_name}")
        common_name = node_name
    return Command(
        argv=(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-sha256",
            "-days",
            str(VALID_DAYS),
            "-subj",
            f"/CN={common_name}/O=Byzantium node",
            "-addext",
            f"subjectAltName={','.join(names)}",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ),
        timeout=60,
    )


def fingerprint(cert_pem: str) -> str:
    """SHA-256 of the certificate's DER form, as browsers show it (AB:CD:...)."""
    match = _PEM_CERT.search(cert_pem)
    if match is None:
        raise ValueError("no PEM certificate found")
    der = base64.b64decode("".join(match.group(1).split()))
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def ensure_certificate(files: TlsFiles, *, node_name: str, runner: Runner) -> bool:
    """Make the certificate and key unless both exist; True when made now.

    Written to temporary names and renamed, key first, so a killed run
    never leaves a certificate without its key; the key is mode 0600.
    """
    files.folder.mkdir(parents=True, exist_ok=True)
    os.chmod(files.folder, 0o700)
    if files.exist():
        os.chmod(files.key, 0o600)
        return False
    temp_cert = files.folder / f".{CERT_NAME}.new"
    temp_key = files.folder / f".{KEY_NAME}.new"
    for temp in (temp_cert, temp_key):
        temp.unlink(missing_ok=True)
    old_umask = os.umask(0o077)
    try:
        runner.run(
            certificate_command(cert=temp_cert, key=temp_key, node_name=node_name)
        )
    finally:
        os.umask(old_umask)
    os.chmod(temp_key, 0o600)
    os.chmod(temp_cert, 0o600)
    os.replace(temp_key, files.key)
    os.replace(temp_cert, files.cert)
    return True
