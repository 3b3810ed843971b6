"""The simulator's small certificate authority: client certificates for enrolled terminals, and TLS.

One EC P-256 CA is made at the first start and kept in the simulator's database (table
``meta``), so a file-backed simulator keeps its CA across restarts and the terminals it
enrolled keep working. The same CA signs the server certificate of the HTTPS listeners:
a terminal pins that one CA for both directions of mutual TLS.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import sqlite3
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_CERT_DAYS = 365
_PEM = serialization.Encoding.PEM


class CsrRejected(ValueError):
    """A certificate signing request the CA will not sign (malformed, bad signature, wrong key type)."""


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kiosk backend simulator"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(_PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


@dataclass(frozen=True)
class IssuedCertificate:
    """A client certificate the CA signed."""

    pem: bytes
    serial_hex: str  # upper-case hex, as ssl.SSLSocket.getpeercert() reports ``serialNumber``
    not_after: dt.datetime


class SimCA:
    """The CA key and certificate; signs terminal CSRs and the server's own certificate."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.key = key
        self.cert = cert

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate (what terminals pin)."""
        return self.cert.public_bytes(_PEM)

    @classmethod
    def create(cls) -> "SimCA":
        """A fresh self-signed CA valid for ten years."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        name = _name("kiosk backend simulator CA")
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=3650))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cls(key, cert)

    @classmethod
    def load_or_create(cls, conn: sqlite3.Connection) -> "SimCA":
        """The CA kept in ``meta`` (made and stored on first use)."""
        rows = dict(conn.execute("SELECT key, value FROM meta WHERE key IN ('ca_key_pem', 'ca_cert_pem')").fetchall())
        if len(rows) == 2:
            key = serialization.load_pem_private_key(rows["ca_key_pem"].encode(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            return cls(key, x509.load_pem_x509_certificate(rows["ca_cert_pem"].encode()))
        ca = cls.create()
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('ca_key_pem', ?)", (_key_pem(ca.key).decode(),))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('ca_cert_pem', ?)", (ca.cert_pem.decode(),))
        return ca

    def sign_csr(self, csr_pem: str | bytes, terminal_id: str, days: int = CLIENT_CERT_DAYS) -> IssuedCertificate:
        """A client certificate for ``terminal_id`` (CN) over the CSR's key. Raises CsrRejected."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
        except ValueError:
            raise CsrRejected("not a PEM certificate signing request") from None
        if not csr.is_signature_valid:
            raise CsrRejected("the CSR's self-signature does not verify")
        public_key = csr.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise CsrRejected("terminal keys must be EC P-256")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not cns or cns[0].value != terminal_id:
            raise CsrRejected("the CSR's common name must be the terminal id")
        now = dt.datetime.now(dt.timezone.utc)
        not_after = now + dt.timedelta(days=days)
        serial = x509.random_serial_number()
        cert = (x509.CertificateBuilder().subject_name(_name(terminal_id)).issuer_name(self.cert.subject)
                .public_key(public_key).serial_number(serial)
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return IssuedCertificate(cert.public_bytes(_PEM), f"{serial:X}", not_after.replace(microsecond=0))

    def server_certificate(self, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> tuple[bytes, bytes]:
        """(certificate PEM, key PEM) for the simulator's HTTPS listeners."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(hosts[0])).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=30))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(_PEM), _key_pem(key)

    def server_context(self, *, require_client_cert: bool, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
                       ) -> ssl.SSLContext:
        """A server SSLContext; with ``require_client_cert`` the handshake fails without a cert from this CA."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        cert_pem, key_pem = self.server_certificate(hosts)
        # load_cert_chain reads files only: a private folder that lives for this call.
        with tempfile.TemporaryDirectory(prefix="kiosk-sim-tls-") as tmp:
            cert_path, key_path = Path(tmp, "server.crt"), Path(tmp, "server.key")
            cert_path.write_bytes(cert_pem)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(key_pem)
            ctx.load_cert_chain(cert_path, key_path)
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.cert_pem.decode())
        return ctx

