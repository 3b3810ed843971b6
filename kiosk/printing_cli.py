"""`kiosk hw receipt` and `kiosk hw a4`: talk to one printer directly (technicians).

The test pages are rendered here by print_templates and handed to the driver as bytes or a
PDF: the drivers in kiosk/hardware never render.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

from kiosk.hardware.base import DeviceState, DeviceStatus, SupplyState

_UNANSWERED = (DeviceState.OFFLINE, DeviceState.NO_DEVICE)


def _terminal_id(args: argparse.Namespace) -> str:
    from kiosk.config import load

    return load(getattr(args, "config", None)).terminal.id


def _now() -> str:
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S")


def receipt_status_dict(st: DeviceStatus) -> dict[str, Any]:
    """{"online", "paper", "cover_open"} as `kiosk hw receipt status --json` prints it (plus state, detail)."""
    answered = st.state not in _UNANSWERED
    return {
        "online": st.state in (DeviceState.ONLINE, DeviceState.BUSY),
        "paper": st.supplies.get("paper", SupplyState.UNKNOWN).value,
        "cover_open": ("cover_open" in st.conditions) if answered else None,
        "state": st.state.value,
        "detail": st.detail,
    }


def cli_receipt(args: argparse.Namespace) -> int:
    """print-test: a test receipt with the terminal id, a QR and a cut; status: DLE EOT status."""
    from kiosk.hardware.escpos_printer import EscposReceiptPrinter
    from print_templates.receipts import render_receipt

    printer = EscposReceiptPrinter("receipt_printer", {"printer": args.printer, "profile": args.profile})
    if args.action == "status":
        out = receipt_status_dict(printer.status())
        if args.json:
            print(json.dumps(out, ensure_ascii=False))
        else:
            cover = {True: "open", False: "closed", None: "unknown"}[out["cover_open"]]
            print(f"{args.printer}: {out['state']}, paper {out['paper']}, cover {cover}"
                  + (f" ({out['detail']})" if out["detail"] else ""))
        return 0 if out["online"] and out["paper"] != "out" else 1
    data = {"terminal_id": _terminal_id(args), "time": _now()}
    receipt = render_receipt("test", data, profile=printer.profile)
    with printer:
        printer.print_bytes(receipt)
    if args.json:
        print(json.dumps({"printed": True, "bytes": len(receipt), "printer": args.printer}))
    else:
        print(f"test receipt printed on {args.printer} ({len(receipt)} bytes, profile {printer.profile})")
    return 0


def a4_test_document(terminal_id: str, queue: str) -> dict[str, Any]:
    """The Document drawn as the A4 test page."""
    when = _now()
    payload = json.dumps({"test": "a4", "terminal": terminal_id, "queue": queue, "at": when},
                         separators=(",", ":"), ensure_ascii=False)
    return {"document_id": f"TEST-{terminal_id}", "doc_type": "a4_test_page", "verification_code": "TESTPAGE",
            "title_zh": "", "title_en": "", "issued_at": dt.datetime.now().astimezone().isoformat(),
            "content": {"terminal_id": terminal_id, "queue": queue, "printed_at": when},
            "qr_payload": payload, "signature": ""}


def cli_a4(args: argparse.Namespace) -> int:
    """print-test: print a test page and wait for CUPS to complete it; status: the queue's status."""
    from kiosk.hardware.cups_printer import CupsA4Printer
    from print_templates.documents import render_pdf

    printer = CupsA4Printer("a4_printer", {"queue": args.queue})
    if args.action == "status":
        st = printer.status()
        out = {**st.to_dict(), "detail": st.detail}
        print(json.dumps(out, ensure_ascii=False) if args.json else
              f"{args.queue}: {out['state']}, " + ", ".join(f"{k} {v}" for k, v in out["supplies"].items())
              + (f"; {', '.join(out['conditions'])}" if out["conditions"] else "")
              + (f" ({st.detail})" if st.detail else ""))
        return 0 if st.usable else 1
    terminal_id = _terminal_id(args)
    with tempfile.TemporaryDirectory(prefix="kiosk-a4-test-") as tmp:
        pdf = render_pdf(a4_test_document(terminal_id, args.queue), Path(tmp) / "a4-test.pdf",
                         terminal_id=terminal_id)
        job = printer.print_pdf(pdf, "kiosk A4 test page", timeout=args.timeout)
    if args.json:
        print(json.dumps({"printed": True, "job_id": job, "queue": args.queue}))
    else:
        print(f"A4 test page completed on {args.queue} (CUPS job {job})")
    return 0
