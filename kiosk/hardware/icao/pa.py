"""Passive authentication (ICAO 9303-11 §5.1): data-group hashes and the signature chain.

EF.SOD is a CMS SignedData whose content is the LDS security object (the hash of every
data group). ``verify`` checks the hashes of the groups read against it and, when a trust
store of country signing CA (CSCA) certificates is given, the document signer's signature
over the SOD and the CSCA's signature over the document signer certificate.
"""
from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from asn1crypto import algos, cms, core
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kiosk.errors import ConfigError, DeviceProtocolError
from kiosk.hardware.icao.lds import parse_sod_wrapper

log = logging.getLogger(__name__)

LDS_SECURITY_OBJECT_OID = "2.23.136.1.1.1"


class DataGroupHash(core.Sequence):
    """One data group's number and hash."""

    _fields = [("dataGroupNumber", core.Integer), ("dataGroupHashValue", core.OctetString)]


class DataGroupHashValues(core.SequenceOf):
    """The list of data group hashes."""

    _child_spec = DataGroupHash


class LdsVersionInfo(core.Sequence):
    """LDS and Unicode versions (LDS 1.8 security objects only)."""

    _fields = [("ldsVersion", core.PrintableString), ("unicodeVersion", core.PrintableString)]


class LdsSecurityObject(core.Sequence):
    """The LDS security object (9303-10 §4.6.2)."""

    _fields = [
        ("version", core.Integer),
        ("hashAlgorithm", algos.DigestAlgorithm),
        ("dataGroupHashValues", DataGroupHashValues),
        ("ldsVersionInfo", LdsVersionInfo, {"optional": True}),
    ]


_HASHES = {"sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256,
           "sha384": hashes.SHA384, "sha512": hashes.SHA512}


@dataclass(frozen=True)
class Sod:
    """The parts of EF.SOD that passive authentication needs."""

    hash_algorithm: str
    hashes: Mapping[int, bytes]
    content: bytes  # DER of the LDS security object (the signed content)
    signed_attrs: bytes  # DER of the signed attributes as a SET (what was signed)
    message_digest: bytes
    signature: bytes
    signature_algorithm: str
    digest_algorithm: str
    signer_cert: bytes  # DER of the document signer certificate


def parse_sod(ef_sod: bytes) -> Sod:
    """Parse EF.SOD. Raises DeviceProtocolError for anything that is not a valid SOD."""
    try:
        info = cms.ContentInfo.load(parse_sod_wrapper(ef_sod))
        if info["content_type"].native != "signed_data":
            raise DeviceProtocolError("EF.SOD is not CMS SignedData")
        signed = info["content"]
        encap = signed["encap_content_info"]
        if encap["content_type"].dotted != LDS_SECURITY_OBJECT_OID:
            raise DeviceProtocolError("EF.SOD does not hold an LDS security object")
        content = encap["content"].native
        if isinstance(content, core.Asn1Value):
            content = content.dump()
        lso = LdsSecurityObject.load(content)
        algorithm = lso["hashAlgorithm"]["algorithm"].native
        group_hashes = {int(h["dataGroupNumber"].native): bytes(h["dataGroupHashValue"].native)
                        for h in lso["dataGroupHashValues"]}
        signer = signed["signer_infos"][0]
        attrs = signer["signed_attrs"]
        digest = b""
        for attr in attrs:
            if attr["type"].native == "message_digest":
                digest = bytes(attr["values"][0].native)
        certs = [c.chosen for c in signed["certificates"]] if signed["certificates"].native else []
        if not certs:
            raise DeviceProtocolError("EF.SOD carries no document signer certificate")
        sod = Sod(algorithm, group_hashes, content, b"\x31" + attrs.dump()[1:], digest,
                  bytes(signer["signature"].native), signer["signature_algorithm"].signature_algo,
                  signer["digest_algorithm"]["algorithm"].native, certs[0].dump())
        if sod.hash_algorithm not in _HASHES or sod.digest_algorithm not in _HASHES:
            raise DeviceProtocolError(f"EF.SOD hash algorithm {sod.hash_algorithm} not supported")
        return sod
    except DeviceProtocolError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise DeviceProtocolError(f"EF.SOD does not parse: {type(exc).__name__}") from None


def _digest(algorithm: str, data: bytes) -> bytes:
    return hashlib.new(algorithm, data).digest()


@dataclass(frozen=True)
class PassiveAuthResult:
    """Outcome of passive authentication; ``chain_valid`` is None without a trust store."""

    sod_present: bool
    hashes_valid: bool | None
    chain_valid: bool | None
    failed_groups: tuple[int, ...] = ()
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The three fields `kiosk hw passport read --json` prints."""
        return {"sod_present": self.sod_present, "hashes_valid": self.hashes_valid,
                "chain_valid": self.chain_valid}


def load_trust_store(path: str | Path) -> list[x509.Certificate]:
    """CSCA certificates from a PEM/DER file or a folder of them. Raises ConfigError if none load."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"trust store {path} does not exist", key="devices.pcsc.options.trust_store",
                          value=str(path))
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    certs: list[x509.Certificate] = []
    for file in files:
        data = file.read_bytes()
        try:
            if b"-----BEGIN CERTIFICATE-----" in data:
                certs.extend(x509.load_pem_x509_certificates(data))
            else:
                certs.append(x509.load_der_x509_certificate(data))
        except ValueError:
            log.warning("trust store: %s is not a certificate", file.name)
    if not certs:
        raise ConfigError(f"no CSCA certificate in {path}", key="devices.pcsc.options.trust_store",
                          value=str(path))
    return certs


def _verify_signature(public_key: Any, signature: bytes, data: bytes, algo: str, digest: str) -> None:
    hash_cls = _HASHES[digest]()
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        public_key.verify(signature, data, ec.ECDSA(hash_cls))
    elif isinstance(public_key, rsa.RSAPublicKey):
        pad = padding.PSS(padding.MGF1(hash_cls), padding.PSS.AUTO) if algo == "rsassa_pss" else padding.PKCS1v15()
        public_key.verify(signature, data, pad, hash_cls)
    else:
        raise InvalidSignature("unsupported key type")


def _chain_ok(sod: Sod, trust: Iterable[x509.Certificate], at: datetime.datetime) -> tuple[bool, str]:
    try:
        ds = x509.load_der_x509_certificate(sod.signer_cert)
    except ValueError:
        return False, "document signer certificate does not parse"
    # The document signer's certificate covers the life of every document it signed
    # (key usage period plus document validity, ICAO 9303-12): outside it, a chip
    # signed with that key is not to be trusted.
    if not ds.not_valid_before_utc <= at <= ds.not_valid_after_utc:
        return False, "document signer certificate is outside its validity period"
    try:
        _verify_signature(ds.public_key(), sod.signature, sod.signed_attrs,
                          sod.signature_algorithm, sod.digest_algorithm)
    except (InvalidSignature, ValueError, TypeError):
        return False, "SOD signature does not verify with the document signer key"
    outside = False
    for csca in trust:
        if csca.subject != ds.issuer:
            continue
        try:
            ds.verify_directly_issued_by(csca)
        except (InvalidSignature, ValueError, TypeError):
            continue
        # The CSCA must have been valid when it issued the document signer certificate.
        if csca.not_valid_before_utc <= ds.not_valid_before_utc <= csca.not_valid_after_utc:
            return True, ""
        outside = True
    if outside:
        return False, "the CSCA was not valid when it issued the document signer certificate"
    return False, "document signer not issued by a trusted CSCA"


def verify(ef_sod: bytes | None, groups: Mapping[int, bytes],
           trust_store: Iterable[x509.Certificate] | None = None,
           at: datetime.datetime | None = None) -> PassiveAuthResult:
    """Check the groups read against EF.SOD, and the signature chain when a trust store is given.

    The chain includes validity: the document signer certificate at ``at`` (now by default),
    the CSCA at the time it issued that certificate. Never raises for a bad SOD: the result
    says what failed.
    """
    at = at or datetime.datetime.now(datetime.timezone.utc)
    if not ef_sod:
        return PassiveAuthResult(False, None, None, detail="no EF.SOD")
    try:
        sod = parse_sod(ef_sod)
    except DeviceProtocolError as err:
        return PassiveAuthResult(True, False, False if trust_store is not None else None, detail=err.detail)
    failed = tuple(sorted(n for n, data in groups.items()
                          if n not in sod.hashes
                          or not hmac.compare_digest(_digest(sod.hash_algorithm, data), sod.hashes[n])))
    content_ok = hmac.compare_digest(_digest(sod.digest_algorithm, sod.content), sod.message_digest)
    hashes_ok = not failed and content_ok and bool(groups)
    detail = "" if hashes_ok else ("signed digest of the security object does not match"
                                   if not content_ok else f"hash mismatch in DG{failed}")
    chain: bool | None = None
    if trust_store is not None:
        chain, why = _chain_ok(sod, list(trust_store), at)
        chain = chain and content_ok
        detail = detail or why
    return PassiveAuthResult(True, hashes_ok, chain, failed, detail)
