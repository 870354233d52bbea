"""Make the laptop stack's generated secrets once: a self-signed TLS certificate for the
gateways' gRPC port and a token encryption key (deploy/compose.yaml's `dev-secrets`).

    python dev_secrets.py DIRECTORY

Writes DIRECTORY/tls.crt, tls.key (EC P-256, names localhost, gateway-1, gateway-2 and
127.0.0.1; 90 days) and token-keys (a `VG_TOKEN_KEYS` entry, as `vehicle-gateway keys
generate` prints it), each owner-only, and leaves any that exist alone, so the stack's
tokens stay readable across restarts. Nothing here is for production: a cluster gets its
certificate from its own CA and its keys from its secret store (docs/deployment.md).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from storage.crypto import generate_key_entry

NAMES = ("localhost", "gateway-1", "gateway-2")
VALIDITY = datetime.timedelta(days=90)


def certificate(now: datetime.datetime) -> tuple[bytes, bytes]:
    """Return a self-signed server certificate for NAMES and 127.0.0.1, and its key (PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vehicle-gateway (local dev)")])
    alternative = [x509.DNSName(n) for n in NAMES] + [
        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alternative), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), pem_key


def _write(path: Path, content: bytes) -> None:
    """Write `content` to a new owner-only file at `path`."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)


def make(directory: Path, now: datetime.datetime) -> list[str]:
    """Write whichever of the files is missing in `directory`; return their names."""
    made = []
    if not (directory / "tls.crt").exists() or not (directory / "tls.key").exists():
        chain, key = certificate(now)
        for name in ("tls.crt", "tls.key"):
            (directory / name).unlink(missing_ok=True)
        _write(directory / "tls.key", key)
        _write(directory / "tls.crt", chain)
        made += ["tls.crt", "tls.key"]
    if not (directory / "token-keys").exists():
        _write(directory / "token-keys", (generate_key_entry(f"k{now:%Y%m%d}") + "\n").encode())
        made.append("token-keys")
    return made


def main(argv: list[str]) -> int:
    """Make the files in the directory named by the only argument."""
    if len(argv) != 1:
        sys.stderr.write("usage: python dev_secrets.py DIRECTORY\n")
        return 2
    directory = Path(argv[0])
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = make(directory, datetime.datetime.now(datetime.UTC))
    sys.stderr.write(f"dev secrets in {directory}: made {', '.join(made) or 'nothing'}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
