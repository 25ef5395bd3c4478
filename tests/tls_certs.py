"""Throwaway TLS material for local HTTPS fakes: a CA, a server certificate for 127.0.0.1 and
localhost, and a client certificate, all generated in memory with ``cryptography``."""

from __future__ import annotations

import base64
import ssl
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from ipaddress import ip_address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes

    @property
    def cert_b64(self) -> str:
        return base64.b64encode(self.cert).decode()

    @property
    def key_b64(self) -> str:
        return base64.b64encode(self.key).decode()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
           issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool, server: bool = False) -> x509.Certificate:
    now = datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (x509.CertificateBuilder().subject_name(name)
               .issuer_name(issuer.subject if issuer else name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False,
            decipher_only=False), critical=True)
        builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                        critical=False)
    else:
        builder = builder.add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        assert issuer is not None
        builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            issuer.public_key()), critical=False)  # type: ignore[arg-type]
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class LocalPKI:
    ca: Pem
    server: Pem
    client: Pem

    def server_context(self, *, require_client_cert: bool = False) -> ssl.SSLContext:
        """An SSL context for an aiohttp/http.server fake (client certs checked against the CA)."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp, "s.crt"), Path(tmp, "s.key")
            cert.write_bytes(self.server.cert)
            key.write_bytes(self.server.key)
            ctx.load_cert_chain(cert, key)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.ca.cert.decode())
        return ctx


@cache
def local_pki() -> LocalPKI:
    ca_key = _key()
    ca = _issue("incidentfox test CA", ca_key, None, ca_key, ca=True)
    server_key, client_key = _key(), _key()
    server = _issue("127.0.0.1", server_key, ca, ca_key, ca=False, server=True)
    client = _issue("tenant-user", client_key, ca, ca_key, ca=False)
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    return LocalPKI(ca=Pem(pem(ca), _pem_key(ca_key)), server=Pem(pem(server), _pem_key(server_key)),
                   client=Pem(pem(client), _pem_key(client_key)))
