"""PDF digital signatures (PAdES via pyhanko) on A4 documents, when the config asks for them.

The QR and verification code make a printed page checkable; the signature makes the PDF
file itself checkable (a document kept or sent on electronically). It is added as an
incremental update, so the rendered page is untouched and any later change to the file
breaks the signature.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk.errors import ConfigError, KioskError

FIELD_NAME = "KioskSignature"


def _refresh_asn1_names() -> None:
    """Let asn1crypto see the OID names pyhanko registers on import.

    asn1crypto builds each ObjectIdentifier class's name→OID map once, on first use. If
    something parsed CMS before pyhanko was imported (the passport reader does, for EF.SOD),
    the cached map lacks pyhanko's names and signing fails with "invalid literal for int()".
    Rebuilding the cached maps from the now complete ``_map`` fixes that.
    """
    from asn1crypto import core

    pending = [core.ObjectIdentifier]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "_reverse_map" in vars(cls) and cls._map:
            cls._reverse_map = {name: oid for oid, name in cls._map.items()}


class PdfSigningFailed(KioskError):
    """The PDF could not be signed (bad key, unreadable PDF)."""

    code = "pdf_signing_failed"
    message_en = "The document could not be prepared for printing. Please ask the staff for help."


@dataclass(frozen=True)
class SignatureCheck:
    """What validating a signed PDF found: intact (bytes unchanged), valid (crypto), trusted (chain)."""

    signed: bool
    intact: bool = False
    valid: bool = False
    trusted: bool = False
    signer: str = ""
    covers_whole_file: bool = False

    @property
    def ok(self) -> bool:
        """Signed, unchanged, cryptographically valid, chaining to a trusted root, covering the whole file."""
        return self.signed and self.intact and self.valid and self.trusted and self.covers_whole_file


@dataclass(frozen=True)
class PdfSigner:
    """Signs PDFs with one key and certificate (PEM files); load once, sign many."""

    key_file: Path
    cert_file: Path
    chain_files: tuple[Path, ...] = ()
    passphrase: bytes | None = None
    reason: str = "自助终端出具"
    location: str = ""

    @classmethod
    def from_config(cls, cfg: Any) -> "PdfSigner | None":
        """The signer the config's [printing] section asks for, or None. Raises ConfigError."""
        p = cfg.printing
        if not p.pdf_sign_key_file:
            return None
        for key in ("pdf_sign_key_file", "pdf_sign_cert_file"):
            if not Path(getattr(p, key)).is_file():
                raise ConfigError(f"printing.{key}: no such file", key=f"printing.{key}", value=getattr(p, key))
        passphrase = None
        if p.pdf_sign_passphrase_file:
            try:
                passphrase = Path(p.pdf_sign_passphrase_file).read_bytes().strip()
            except OSError as exc:
                raise ConfigError(f"printing.pdf_sign_passphrase_file: {exc.strerror}",
                                  key="printing.pdf_sign_passphrase_file", value=p.pdf_sign_passphrase_file) from None
        return cls(Path(p.pdf_sign_key_file), Path(p.pdf_sign_cert_file), tuple(Path(c) for c in p.pdf_sign_chain_files),
                   passphrase, p.pdf_sign_reason, cfg.terminal.name)

    def _signer(self) -> Any:
        from pyhanko.sign import signers

        signer = signers.SimpleSigner.load(str(self.key_file), str(self.cert_file),
                                           ca_chain_files=tuple(str(c) for c in self.chain_files) or None,
                                           key_passphrase=self.passphrase)
        if signer is None:  # pyhanko logs the reason and returns None on a bad key or certificate
            raise PdfSigningFailed(f"cannot load the signing key {self.key_file.name} / {self.cert_file.name}")
        return signer

    def sign(self, pdf: Path) -> Path:
        """Sign ``pdf`` in place (atomically); returns it. Raises PdfSigningFailed."""
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import signers

        _refresh_asn1_names()

        pdf = Path(pdf)
        meta = signers.PdfSignatureMetadata(field_name=FIELD_NAME, reason=self.reason,
                                            location=self.location or None, md_algorithm="sha256")
        fd, tmp = tempfile.mkstemp(prefix=".sign-", suffix=".pdf", dir=pdf.parent)
        try:
            with pdf.open("rb") as src, os.fdopen(fd, "wb") as dst:
                writer = IncrementalPdfFileWriter(src, strict=False)
                signers.sign_pdf(writer, meta, signer=self._signer(), output=dst)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, pdf)
        except PdfSigningFailed:
            Path(tmp).unlink(missing_ok=True)
            raise
        except Exception as exc:  # pyhanko raises many types (PdfReadError, SigningError, ValueError...)
            Path(tmp).unlink(missing_ok=True)
            raise PdfSigningFailed(f"signing failed: {type(exc).__name__}: {exc}") from None
        return pdf


def check_pdf_signature(pdf: Path, trust_roots: list[Path]) -> SignatureCheck:
    """Validate the kiosk signature of ``pdf`` against PEM ``trust_roots``."""
    from asn1crypto import pem, x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    _refresh_asn1_names()

    roots = []
    for path in trust_roots:
        raw = Path(path).read_bytes()
        roots.append(x509.Certificate.load(pem.unarmor(raw)[2] if pem.detect(raw) else raw))
    with Path(pdf).open("rb") as fh:
        reader = PdfFileReader(fh, strict=False)
        sigs = [s for s in reader.embedded_signatures if s.field_name == FIELD_NAME]
        if not sigs:
            return SignatureCheck(signed=False)
        status = validate_pdf_signature(sigs[0], ValidationContext(trust_roots=roots))
        return SignatureCheck(True, bool(status.intact), bool(status.valid), bool(status.trusted),
                              status.signing_cert.subject.human_friendly if status.signing_cert else "",
                              status.coverage == SignatureCoverageLevel.ENTIRE_FILE)
