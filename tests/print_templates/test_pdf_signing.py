"""PDF signatures: a signed certificate validates, a changed byte or another root does not."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pypdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.config import from_dict
from kiosk.errors import ConfigError
from print_templates.documents import render_pdf
from print_templates.pdf_signing import PdfSigner, PdfSigningFailed, check_pdf_signature

from sample_documents import HOUSEHOLD, document


def _self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    key_file, cert_file = folder / f"{name}.key", folder / f"{name}.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_file, cert_file


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    return {"kiosk": _self_signed(folder, "Kiosk Signer"), "other": _self_signed(folder, "Someone Else")}


@pytest.fixture(scope="module")
def signed(keys, tmp_path_factory: pytest.TempPathFactory) -> Path:
    key, cert = keys["kiosk"]
    cfg = from_dict({"printing": {"pdf_sign_key_file": str(key), "pdf_sign_cert_file": str(cert)}})
    signer = PdfSigner.from_config(cfg)
    assert signer is not None
    path = tmp_path_factory.mktemp("signed") / "h.pdf"
    return render_pdf(document("household_certificate", HOUSEHOLD), path, terminal_id="JN-TEST-0007", signer=signer)


def test_signed_certificate_validates_against_its_root(signed: Path, keys) -> None:
    check = check_pdf_signature(signed, [keys["kiosk"][1]])
    assert check.ok
    assert "Kiosk Signer" in check.signer
    assert "户籍证明" in pypdf.PdfReader(str(signed)).pages[0].extract_text()


def test_another_root_does_not_trust_it(signed: Path, keys) -> None:
    check = check_pdf_signature(signed, [keys["other"][1]])
    assert check.intact and not check.trusted and not check.ok


def test_one_changed_byte_breaks_it(signed: Path, keys, tmp_path: Path) -> None:
    data = bytearray(signed.read_bytes())
    at = data.index(b"stream") + 20  # inside the first content stream
    data[at] ^= 0x01
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(bytes(data))
    check = check_pdf_signature(changed, [keys["kiosk"][1]])
    assert check.signed and not check.intact and not check.ok


def test_unsigned_documents_stay_unsigned_by_default(tmp_path: Path, keys) -> None:
    assert PdfSigner.from_config(from_dict({})) is None
    pdf = render_pdf(document("household_certificate", HOUSEHOLD), tmp_path / "u.pdf", terminal_id="T")
    assert not check_pdf_signature(pdf, [keys["kiosk"][1]]).signed


def test_config_names_a_missing_key_file(keys) -> None:
    cfg = from_dict({"printing": {"pdf_sign_key_file": "/nonexistent.key", "pdf_sign_cert_file": str(keys["kiosk"][1])}})
    with pytest.raises(ConfigError) as err:
        PdfSigner.from_config(cfg)
    assert err.value.key == "printing.pdf_sign_key_file"
    with pytest.raises(ConfigError):
        from_dict({"printing": {"pdf_sign_key_file": "/x.key"}})


def test_a_key_that_does_not_load_fails_cleanly_and_leaves_nothing(keys, tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    target = tmp_path / "h.pdf"
    with pytest.raises(PdfSigningFailed):
        render_pdf(document("household_certificate", HOUSEHOLD), target, terminal_id="T",
                   signer=PdfSigner(bad, keys["kiosk"][1]))
    assert list(tmp_path.iterdir()) == [bad]
