"""Device layer figures: building the devices, and operations per second on each simulator.

Simulated delays (options.delay_s) are left at 0, so these measure the simulators' own
overhead (locking, fault checks, bookkeeping) that every demo and test run pays.
"""
from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from kiosk.config import from_dict
from kiosk.hardware.factory import build_devices


def _rate(label: str, fn: Callable[[], object], n: int) -> None:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    elapsed = time.perf_counter() - started
    print(f"   {label:<44} {n / elapsed:>12,.0f} /s   ({elapsed / n * 1e6:,.1f} us each)")


def _pdf(path: Path, pages: int) -> Path:
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path))
    for i in range(pages):
        c.drawString(72, 720, f"page {i + 1}")
        c.showPage()
    c.save()
    return path


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = from_dict({"paths": {"state_dir": tmp},
                         "devices": {"receipt_printer": {"options": {"paper_length_mm": 1e12}},
                                     "a4_printer": {"options": {"sheets": 10**9}},
                                     "camera": {"options": {"sequence": "photo", "realtime": False}}}})
        _rate("build_devices (six simulators)", lambda: build_devices(cfg), 50)
        devices = build_devices(cfg)
        _rate("id card read_card", lambda: devices.id_card.read_card(0), 20000)
        _rate("id card status()", devices.id_card.status, 50000)
        _rate("chip read_document", lambda: devices.pcsc.read_document("C12345678", "850315", "330630", 0), 20000)
        receipt = b"\x1b@" + "户籍证明 受理回执\n".encode("gb18030") * 30 + b"\x1dV\x00"
        _rate(f"receipt print_bytes ({len(receipt)} B)", lambda: devices.receipt_printer.print_bytes(receipt), 20000)
        pdf = _pdf(Path(tmp) / "doc.pdf", 2)
        _rate("a4 print_pdf (2 pages, copy to tray)", lambda: devices.a4_printer.print_pdf(pdf, "bench"), 300)

        def feed_scan() -> str:
            devices.scanner.feed("QR")
            return devices.scanner.scan(0)

        _rate("scanner feed + scan", feed_scan, 20000)
        _rate("camera capture (JPEG of a 640x480 frame)", devices.camera.capture, 300)
        _rate("Devices.statuses() (all six)", devices.statuses, 20000)

        # Contention: 4 threads printing receipts on one printer (jobs serialise on its lock).
        jobs_per_thread = 5000
        threads = [threading.Thread(target=lambda: [devices.receipt_printer.print_bytes(b"x\n")
                                                    for _ in range(jobs_per_thread)]) for _ in range(4)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        print(f"   {'receipt print_bytes, 4 threads':<44} {4 * jobs_per_thread / elapsed:>12,.0f} /s")


if __name__ == "__main__":
    main()
