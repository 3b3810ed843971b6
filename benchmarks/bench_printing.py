"""Printing figures: certificate render (cold and warm), receipt encoding, delivery times.

Cold = a fresh interpreter's first render, which loads and parses the WenQuanYi font (the
kiosk does this once at start); warm = every render after that. Delivery: a receipt to the
virtual ESC/POS printer over TCP (status before and after included), and an A4 PDF through
a private cupsd with the cups-pdf backend from submit to job-state 9 (needs root and the
cups, printer-driver-cups-pdf packages; skipped with a reason otherwise).

For bench.json: ``certificate_render_ms`` {cold, warm}, the medians of the two in ms.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.timing import timed

REPO = Path(__file__).resolve().parents[1]

DOCUMENT = {
    "document_id": "DOC-BENCH-0001", "doc_type": "household_certificate", "verification_code": "7K3F9Q2M",
    "title_zh": "户籍证明", "title_en": "Household Registration Certificate", "issued_at": "2026-11-29T12:00:00+08:00",
    "content": {"name": "王小明", "gender": "男", "ethnicity": "汉", "birth_date": "1985-03-15",
                "id_number": "37010219850315123X", "address": "山东省济南市历下区泉城路188号3单元502室",
                "household_head": "王小明", "relation_to_head": "户主",
                "registration_authority": "济南市公安局历下分局泉城路派出所", "purpose": "子女入学", "valid_days": 30,
                "members": [{"name": "孙丽", "relation_to_head": "配偶", "gender": "女", "birth_date": "1988-12-12"}]},
    "qr_payload": json.dumps({"d": "DOC-BENCH-0001", "t": "household_certificate", "v": "7K3F9Q2M"},
                             separators=(",", ":")),
    "signature": "A" * 86 + "==",
}
RECEIPT = {"item_name_zh": "户籍证明开具", "item_name_en": "Household certificate", "terminal_id": "JN-BENCH-0001",
           "time": "2026-11-29 12:00:00", "reference": "H01-20261129-0001",
           "lines": [["姓名", "王*明"], ["份数", "1"], ["费用", "免费"]], "verification_code": "7K3F9Q2M",
           "qr_payload": DOCUMENT["qr_payload"], "signature": DOCUMENT["signature"]}

_COLD = """
import json, sys, time
from pathlib import Path
doc = json.loads(sys.argv[1])
from print_templates.documents import render_pdf
t = time.perf_counter()
render_pdf(doc, Path(sys.argv[2]), terminal_id="JN-BENCH-0001")
print(time.perf_counter() - t)
"""



def _report(label: str, samples: list[float]) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    print(f"   {label:<52} median {statistics.median(samples) * 1000:8.2f} ms   "
          f"p95 {p95 * 1000:8.2f} ms   (n={len(samples)})", flush=True)


def bench_documents(tmp: Path) -> dict[str, Any]:
    """Certificate render, cold (fresh process) and warm; bench.json's ``certificate_render_ms`` {cold, warm}."""
    cold = []
    for i in range(3):
        done = subprocess.run([sys.executable, "-c", _COLD, json.dumps(DOCUMENT), str(tmp / f"cold{i}.pdf")],
                              cwd=REPO, capture_output=True, text=True, check=True)
        cold.append(float(done.stdout.strip().splitlines()[-1]))
    _report("certificate render, cold (font load included)", cold)
    from print_templates.documents import render_pdf

    render_pdf(DOCUMENT, tmp / "warmup.pdf", terminal_id="JN-BENCH-0001")
    warm = timed(lambda: render_pdf(DOCUMENT, tmp / "warm.pdf", terminal_id="JN-BENCH-0001"), 20)
    _report("certificate render, warm", warm)
    print(f"   certificate PDF size: {(tmp / 'warm.pdf').stat().st_size / 1024:.1f} KiB")
    signer = _test_signer(tmp)
    _report("certificate render + PAdES signature (ECDSA P-256)", timed(
        lambda: render_pdf(DOCUMENT, tmp / "signed.pdf", terminal_id="JN-BENCH-0001", signer=signer), 10))
    return {"certificate_render_ms": {"cold": round(statistics.median(cold) * 1000, 1),
                                      "warm": round(statistics.median(warm) * 1000, 1)}}


def _test_signer(tmp: Path):  # -> PdfSigner
    """A throwaway self-signed ECDSA key and certificate."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from print_templates.pdf_signing import PdfSigner

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench signer")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return PdfSigner(tmp / "k.pem", tmp / "c.pem")


def bench_receipts() -> None:
    """Receipt encoding per profile, and decoding."""
    from print_templates.escpos_decode import decode
    from print_templates.receipts import render_receipt

    for profile, n in (("80mm", 200), ("58mm", 200), ("80mm:raster", 10), ("58mm:raster:raster", 10)):
        render_receipt("transaction", RECEIPT, profile=profile)
        size = len(render_receipt("transaction", RECEIPT, profile=profile))
        _report(f"receipt encoding {profile} ({size:,} bytes)",
                timed(lambda: render_receipt("transaction", RECEIPT, profile=profile), n))
    data = render_receipt("transaction", RECEIPT, profile="58mm:raster:raster")
    _report(f"decode a raster receipt ({len(data):,} bytes)", timed(lambda: decode(data), 10))


def bench_network_receipt() -> None:
    """A receipt to the virtual printer over TCP, status queries before and after included."""
    from kiosk.hardware.escpos_printer import EscposReceiptPrinter
    from kiosk.hardware.simulators.escpos_network import VirtualEscposPrinter
    from print_templates.receipts import render_receipt

    data = render_receipt("transaction", RECEIPT)
    with VirtualEscposPrinter() as virtual:
        printer = EscposReceiptPrinter("receipt_printer", {"printer": virtual.spec})
        _report("receipt print_bytes to the virtual network printer", timed(lambda: printer.print_bytes(data), 20))


def bench_cups(tmp: Path) -> None:
    """Submit-to-completed through a private cupsd and cups-pdf."""
    sys.path.insert(0, str(REPO / "tests" / "hardware"))
    try:
        from cups_fixtures import start_cupsd
    except ImportError as exc:
        print(f"   CUPS submit-to-completed: skipped ({exc})")
        return
    from print_templates.documents import render_pdf

    from kiosk.hardware.cups_printer import CupsA4Printer

    try:
        server = start_cupsd()
    except (OSError, RuntimeError) as exc:
        print(f"   CUPS submit-to-completed: skipped (cupsd did not start: {exc})")
        return
    try:
        queue, _ = server.pdf_queue()
        printer = CupsA4Printer("a4_printer", {"queue": queue, "server": server.server, "poll_s": 0.05})
        pdf = render_pdf(DOCUMENT, tmp / "cups.pdf", terminal_id="JN-BENCH-0001")
        printer.print_pdf(pdf, "warm-up")
        _report("A4 certificate submit -> job-state 9 (cups-pdf)", timed(lambda: printer.print_pdf(pdf, "bench"), 5))
    finally:
        server.stop()


def bench_qr_copy_quality(tmp: Path) -> None:
    """The lowest render resolution at which zbarimg still reads the certificate's QR (a poor copy)."""
    import shutil

    from kiosk.services import signing
    from kiosk.services.document_payload import DocumentPayload, content_digest, encode_payload
    from print_templates.documents import render_pdf
    from print_templates.qr import qr_text

    if not (shutil.which("zbarimg") and shutil.which("pdftoppm")):
        print("   QR copy quality: skipped (needs zbar-tools and poppler-utils)")
        return
    payload = encode_payload(DocumentPayload("7K3F-9Q2M-XW4R-8TBN", 1795924800, "H01",
                                             content_digest(DOCUMENT["content"])))
    doc = {**DOCUMENT, "qr_payload": payload,
           "signature": signing.sign_document(signing.demo_backend_private_key(), payload)}
    text = qr_text(doc["qr_payload"], doc["signature"])
    pdf = render_pdf(doc, tmp / "qr.pdf", terminal_id="JN-BENCH-0001")
    lowest = None
    for dpi in (300, 250, 200, 150, 120, 100, 90, 80, 72, 60):
        out = tmp / f"qr{dpi}"
        subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", "-singlefile", str(pdf), str(out)], check=True)
        read = subprocess.run(["zbarimg", "-q", "--raw", f"{out}.png"], capture_output=True, text=True)
        if read.stdout.strip() != text:
            break
        lowest = dpi
    print(f"   {'certificate QR: text length / lowest dpi zbarimg reads':<52} {len(text)} chars / "
          f"{lowest if lowest else 'none'} dpi", flush=True)


def main() -> dict[str, Any]:
    """Print the figures; return bench.json's (certificate_render_ms)."""
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-print-") as tmp:
        figures = bench_documents(Path(tmp))
        bench_qr_copy_quality(Path(tmp))
        bench_receipts()
        bench_network_receipt()
        bench_cups(Path(tmp))
    return figures


if __name__ == "__main__":
    main()
