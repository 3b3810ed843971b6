"""A printed certificate verifies from a poor copy: its QR decodes from the PDF rendered at 150 dpi
(pdftoppm, then zbarimg), and what it carries verifies through POST /verify and S02. The receipt
repeats the same QR."""
from __future__ import annotations

import subprocess
from pathlib import Path

from kiosk.services.document_payload import decode_payload, is_compact
from kiosk.services.workflow.steps import Outcome
from print_templates.escpos_decode import decode
from print_templates.qr import parse_qr_text, qr_text

COPY_DPI = 150  # a photocopy or a fine fax


def scan(pdf: Path, dpi: int, out: Path) -> list[str]:
    """What zbarimg reads off page one of ``pdf`` rendered at ``dpi`` (one text per symbol found)."""
    subprocess.run(["pdftoppm", "-r", str(dpi), "-f", "1", "-l", "1", "-gray", "-png", str(pdf), str(out)],
                   check=True, timeout=60)
    page = sorted(out.parent.glob(f"{out.name}*.png"))[0]
    found = subprocess.run(["zbarimg", "-q", "--raw", "-Sdisable", "-Sqrcode.enable", str(page)],
                           capture_output=True, text=True, timeout=60)
    return [line for line in found.stdout.splitlines() if line]


def test_the_certificate_qr_decodes_at_150_dpi_and_verifies(runtime, sim, flows, tmp_path: Path) -> None:
    txn = runtime.engine.start("H01")
    flows.drive(txn, sim.url)
    assert txn.outcome is Outcome.COMPLETED
    doc = txn.session.documents[0]
    pdfs = sorted(runtime.devices.a4_printer.output_dir.glob("*.pdf"))
    receipt = decode(runtime.devices.receipt_printer.jobs[-1])
    txn.finish()

    texts = scan(pdfs[-1], COPY_DPI, tmp_path / "copy")
    assert texts == [qr_text(doc["qr_payload"], doc["signature"])]
    assert len(texts[0]) <= 160 and is_compact(texts[0])  # short and alphanumeric: a version-6 symbol
    assert receipt.qr_codes == (texts[0],)  # the receipt repeats the certificate's QR

    signed = parse_qr_text(texts[0])
    verdict = runtime.backend.verify(signed.payload, signed.signature)
    assert verdict["valid"] and verdict["reason"] == "ok"
    assert verdict["document"]["verification_code"] == doc["verification_code"]

    check = runtime.engine.start("S02")  # the kiosk's own check, with the code the QR carries
    check.submit_form({"verification_code": decode_payload(signed.payload).verification_code})
    assert check.produce().display[0]["value_en"] == "genuine"
    check.finish()


def test_an_altered_qr_does_not_verify(runtime, sim, flows) -> None:
    txn = runtime.engine.start("H01")
    flows.drive(txn, sim.url)
    doc = txn.session.documents[0]
    txn.finish()
    signed = parse_qr_text(qr_text(doc["qr_payload"], doc["signature"]))
    # another code, same signature: a forger copying a genuine QR onto a forged paper
    forged = doc["qr_payload"][:4] + ("1" if doc["qr_payload"][4] != "1" else "2") + doc["qr_payload"][5:]
    assert runtime.backend.verify(forged, signed.signature)["reason"] in ("bad_signature", "malformed")
    assert runtime.backend.verify(signed.payload, signed.signature)["valid"]
