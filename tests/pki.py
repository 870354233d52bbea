"""A throwaway certificate authority for TLS tests: a CA, server and client certificates.

Everything is made fresh with `cryptography` (EC P-256 keys, one day of validity); nothing
is read from or written to the repository.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both PEM."""

    certificate: bytes
    key: bytes


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


class CertificateAuthority:
    """A self-signed CA that issues server and client certificates."""

    def __init__(self, common_name: str = "vehicle-gateway test CA") -> None:
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        self._certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(_name(common_name))
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self._key, hashes.SHA256())
        )

    @property
    def certificate(self) -> bytes:
        """The CA certificate, PEM: what clients and servers trust."""
        return self._certificate.public_bytes(serialization.Encoding.PEM)

    def server(self, host: str = "localhost") -> Issued:
        """Issue a server certificate for `host` (and 127.0.0.1)."""
        import ipaddress

        names: list[x509.GeneralName] = [
            x509.DNSName(host),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        ]
        return self._issue(host, names, ExtendedKeyUsageOID.SERVER_AUTH)

    def client(
        self,
        common_name: str,
        *,
        dns: Sequence[str] | None = None,
        uris: Sequence[str] = (),
        emails: Sequence[str] = (),
    ) -> Issued:
        """Issue a client certificate with subject CN `common_name` and these SANs: DNS
        names `dns` (default: the common name), URIs and email addresses."""
        names: list[x509.GeneralName] = [
            *(x509.DNSName(n) for n in ([common_name] if dns is None else dns)),
            *(x509.UniformResourceIdentifier(u) for u in uris),
            *(x509.RFC822Name(e) for e in emails),
        ]
        return self._issue(common_name, names, ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(
        self, common_name: str, names: list[x509.GeneralName], usage: x509.ObjectIdentifier
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name))
            .issuer_name(self._certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if names:
            certificate = certificate.add_extension(
                x509.SubjectAlternativeName(names), critical=False
            )
        certificate = certificate.sign(self._key, hashes.SHA256())
        return Issued(
            certificate=certificate.public_bytes(serialization.Encoding.PEM), key=_pem_key(key)
        )
