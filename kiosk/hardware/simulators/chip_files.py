"""The files of a simulated ICAO 9303 chip, and the PKI that signs them.

One place builds a chip's EF.COM, DG1 (the MRZ), DG2 (a face) and EF.SOD (their hashes,
signed by a document signer under a CSCA), for both simulators: the virtual chip that
pcscd's vpcd driver talks to (``vicc.VirtualChip``) and the demo profile's chip reader
(``pcsc.SimChipReader``). The same passive-authentication code then checks them as it
checks a real passport.

``TestPki()`` makes a throw-away CSCA and document signer for a test. The demo profile's
PKI is fixed and shipped in ``demo_pki/`` (made once with ``python -m
kiosk.hardware.simulators.chip_files --write-demo-pki DIR``): ``csca.pem`` is the demo
profile's trust store; ``ds.pem`` and ``ds.key`` (the signer's certificate and key,
public on purpose, like the demo HMAC secret) sign the demo chips. No production profile
trusts it.
"""
from __future__ import annotations

import argparse
import datetime
import functools
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kiosk.hardware.icao import lds
from kiosk.hardware.icao.mrz import check_digit
from kiosk.hardware.icao.pa import LDS_SECURITY_OBJECT_OID, LdsSecurityObject
from kiosk.hardware.simulators.cards import TravelDocument

DEMO_PKI_DIR = Path(__file__).with_name("demo_pki")
DEMO_TRUST_STORE = DEMO_PKI_DIR / "csca.pem"


@dataclass(frozen=True)
class DemoDocument:
    """An invented travel document (TD3). Dates YYMMDD, sex M/F/<."""

    document_code: str
    issuing_state: str
    surname: str
    given_names: str
    number: str
    nationality: str
    birth_date: str
    sex: str
    expiry_date: str
    optional_data: str = ""

    def mrz(self) -> str:
        """The two 44-character MRZ lines, concatenated, with their check digits."""
        name = (self.surname.replace(" ", "<") + "<<" + self.given_names.replace(" ", "<"))
        l1 = (self.document_code.ljust(2, "<") + self.issuing_state.ljust(3, "<") + name)[:44].ljust(44, "<")
        number = self.number.ljust(9, "<")
        optional = self.optional_data.ljust(14, "<")
        opt_check = check_digit(optional) if self.optional_data else "<"
        head = number + check_digit(number)
        mid = (self.birth_date + check_digit(self.birth_date) + self.sex
               + self.expiry_date + check_digit(self.expiry_date))
        tail = optional + opt_check
        composite = check_digit(head + mid[:7] + mid[8:] + tail)
        l2 = head + self.nationality.ljust(3, "<") + mid + tail + composite
        return l1 + l2


class TestPki:
    """A CSCA and a document signer (ECDSA P-256): throw-away ones, or the demo profile's shipped ones."""

    __test__ = False  # pytest: not a test class despite the name

    def __init__(self, country: str = "UT", *, not_before: datetime.datetime | None = None,
                 csca_days: int = 3650, ds_days: int = 365, label: str = "Test") -> None:
        start = not_before or datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
        self.csca_key = ec.generate_private_key(ec.SECP256R1())
        self.ds_key = ec.generate_private_key(ec.SECP256R1())
        csca_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                               x509.NameAttribute(NameOID.COMMON_NAME, f"Kiosk {label} CSCA")])
        ds_name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, country),
                             x509.NameAttribute(NameOID.COMMON_NAME, f"Kiosk {label} Document Signer")])
        self.csca_cert = (x509.CertificateBuilder().subject_name(csca_name).issuer_name(csca_name)
                          .public_key(self.csca_key.public_key()).serial_number(x509.random_serial_number())
                          .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=csca_days))
                          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                          .sign(self.csca_key, hashes.SHA256()))
        self.ds_cert = (x509.CertificateBuilder().subject_name(ds_name).issuer_name(csca_name)
                        .public_key(self.ds_key.public_key()).serial_number(x509.random_serial_number())
                        .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=ds_days))
                        .sign(self.csca_key, hashes.SHA256()))

    @classmethod
    def load(cls, folder: Path) -> "TestPki":
        """The PKI written by :meth:`write` (the CSCA's key is not needed to sign chips, nor kept)."""
        pki = cls.__new__(cls)
        pki.csca_key = None
        pki.csca_cert = x509.load_pem_x509_certificate((folder / "csca.pem").read_bytes())
        pki.ds_cert = x509.load_pem_x509_certificate((folder / "ds.pem").read_bytes())
        key = serialization.load_pem_private_key((folder / "ds.key").read_bytes(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        pki.ds_key = key
        return pki

    def write(self, folder: Path) -> None:
        """Write csca.pem (the trust store), ds.pem and ds.key into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "csca.pem").write_bytes(self.csca_pem())
        (folder / "ds.pem").write_bytes(self.ds_cert.public_bytes(serialization.Encoding.PEM))
        (folder / "ds.key").write_bytes(self.ds_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

    def csca_pem(self) -> bytes:
        """The CSCA certificate as PEM, for a trust store."""
        return self.csca_cert.public_bytes(serialization.Encoding.PEM)

    def build_sod(self, groups: Mapping[int, bytes]) -> bytes:
        """EF.SOD (tag 77) over the SHA-256 hashes of ``groups``, signed by the document signer."""
        lso = LdsSecurityObject({
            "version": 0,
            "hashAlgorithm": {"algorithm": "sha256"},
            "dataGroupHashValues": [{"dataGroupNumber": n, "dataGroupHashValue": hashlib.sha256(d).digest()}
                                    for n, d in sorted(groups.items())],
        }).dump()
        attrs = cms.CMSAttributes([
            {"type": "content_type", "values": [LDS_SECURITY_OBJECT_OID]},
            {"type": "message_digest", "values": [hashlib.sha256(lso).digest()]},
        ])
        signature = self.ds_key.sign(attrs.dump(), ec.ECDSA(hashes.SHA256()))
        ds = asn1_x509.Certificate.load(self.ds_cert.public_bytes(serialization.Encoding.DER))
        signed = cms.SignedData({
            "version": "v3",
            "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
            "encap_content_info": {"content_type": LDS_SECURITY_OBJECT_OID, "content": lso},
            "certificates": [ds],
            "signer_infos": [{
                "version": "v1",
                "sid": cms.SignerIdentifier({"issuer_and_serial_number": {
                    "issuer": ds.issuer, "serial_number": ds.serial_number}}),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }],
        })
        return lds.tlv(0x77, cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump())


@functools.lru_cache(maxsize=1)
def demo_pki() -> TestPki:
    """The demo profile's shipped PKI (its CSCA is the demo trust store)."""
    return TestPki.load(DEMO_PKI_DIR)


def face_jpeg(seed: str, width: int = 240, height: int = 320) -> bytes:
    """A synthetic portrait-sized JPEG (a gradient with an oval), stable per seed."""
    from PIL import Image, ImageDraw

    tone = hashlib.sha256(seed.encode()).digest()
    img = Image.new("RGB", (width, height), (tone[0], tone[1], tone[2]))
    draw = ImageDraw.Draw(img)
    for y in range(0, height, 4):
        draw.line([(0, y), (width, y)], fill=(tone[3] ^ y % 256, tone[4], (y * 3) % 256))
    draw.ellipse([width // 5, height // 6, width * 4 // 5, height * 3 // 4], fill=(224, 190, 160))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=80)
    return out.getvalue()


def chip_files(mrz: str, pki: TestPki, face_seed: str) -> dict[int, bytes]:
    """EF.COM, DG1, DG2 and EF.SOD (by file id) of a chip holding ``mrz``, signed by ``pki``'s document signer."""
    files = {lds.DG1: lds.build_dg1(mrz), lds.DG2: lds.build_dg2(face_jpeg(face_seed), 240, 320),
             lds.EF_COM: lds.build_ef_com((1, 2))}
    files[lds.EF_SOD] = pki.build_sod({1: files[lds.DG1], 2: files[lds.DG2]})
    return files


def travel_document_mrz(document: TravelDocument) -> str:
    """The TD3 MRZ a demo travel document's chip holds in DG1 (the data page prints the same)."""
    holder = document.holder
    surname, _, given = holder.extra.get("name_en", "DEMO, RESIDENT").partition(",")
    code = "P" if holder.card_type == "passport" else "C"
    sex = {"male": "M", "female": "F"}.get(holder.sex, "<")
    nationality = holder.extra.get("nationality", "CHN")
    return DemoDocument(code, "CHN" if code == "C" else nationality, surname.strip(), given.strip(),
                        document.document_number, nationality, document.birth_date, sex,
                        document.expiry_date).mrz()


def demo_chip_files(document: TravelDocument) -> dict[int, bytes]:
    """The files of a demo travel document's chip, signed under the demo PKI (made once per document)."""
    mrz = travel_document_mrz(document)
    if mrz not in _DEMO_FILES:
        _DEMO_FILES[mrz] = chip_files(mrz, demo_pki(), document.document_number)
    return dict(_DEMO_FILES[mrz])


_DEMO_FILES: dict[str, dict[int, bytes]] = {}


def tamper_dg1(dg1: bytes) -> bytes:
    """DG1 with the holder's surname changed after signing (still a well-formed MRZ; its hash no longer matches)."""
    mrz = lds.parse_one(dg1, 0x61).find(0x5F1F).value
    at = 5  # the first letter of the surname on a TD3 data page's first line
    changed = mrz[:at] + (b"X" if mrz[at:at + 1] != b"X" else b"Y") + mrz[at + 1:]
    return lds.build_dg1(changed.decode("ascii"))


def main(argv: list[str] | None = None) -> int:
    """`python -m kiosk.hardware.simulators.chip_files --write-demo-pki DIR`: make a demo PKI (done once)."""
    p = argparse.ArgumentParser(description="write a demo CSCA and document signer")
    p.add_argument("--write-demo-pki", required=True, metavar="DIR")
    args = p.parse_args(argv)
    # Long-lived on purpose: the demo must keep verifying for as long as the project is used.
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    TestPki("CN", not_before=start, csca_days=30 * 366, ds_days=25 * 366, label="Demo").write(
        Path(args.write_demo_pki))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
