"""Render and print what a transaction was issued (A4 documents, the receipt or slip), each job journaled."""
from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from kiosk import localtime
from kiosk.errors import DeviceError, NoDevice
from kiosk.services import journal as J
from kiosk.services.catalog import CatalogItem
from kiosk.services.session import Session, shred
from kiosk.services.workflow.records import Produced, TxnRef
from kiosk.services.workflow.steps import Step

if TYPE_CHECKING:
    from kiosk.hardware.factory import Devices
    from kiosk.hardware.receipt import ReceiptPrinter
    from print_templates.pdf_signing import PdfSigner

log = logging.getLogger(__name__)

PRODUCE = Step.PRODUCE.value  # the step every print is journaled under


@dataclass(frozen=True)
class PrintContext:
    """The transaction a print belongs to: what the journal files it under and what its receipt states.

    ``session`` holds the rendered files (none for a receipt printed outside a resident's
    session); ``paid_fen`` and ``order_id`` are the payment a receipt confirms (0, '' for none).
    """

    ref: TxnRef
    item: CatalogItem
    session: Session | None = None
    paid_fen: int = 0
    order_id: str = ""


def receipt_kind(item: CatalogItem) -> str:
    """Which receipt layout ``item`` prints: payment, appointment or transaction."""
    return {"payment": "payment", "appointment": "appointment"}.get(item.kind, "transaction")


def printed_outputs(item: CatalogItem) -> set[str]:
    """What the item prints by itself (a query's slip is printed only on request, never owed)."""
    return set(item.outputs) - ({"slip"} if item.slip_on_request else set())


class Printing:
    """Renders documents and receipts and hands them to the terminal's printers, journaling every job."""

    def __init__(self, devices: Devices, journal: J.Journal, terminal_id: str, pdf_signer: PdfSigner | None) -> None:
        self.devices = devices
        self.journal = journal
        self.terminal_id = terminal_id
        self.pdf_signer = pdf_signer  # None unless [printing] names a key; loaded once

    def print_document(self, ctx: PrintContext, document: Mapping[str, Any], n: int, *, key: str | None = None,
                       of_key: str = "") -> tuple[Path, DeviceError | None]:
        """Render and print one A4 document (journaled); returns the PDF and the printer's error, if any."""
        from print_templates.documents import render_pdf

        session = ctx.session
        assert session is not None, "an A4 document is rendered into a resident's session"
        pdf = render_pdf(document, session.file(f"document-{n}.pdf"), terminal_id=self.terminal_id,
                         signer=self.pdf_signer)
        key = key or ctx.ref.key(J.PRINT_A4, n)
        ctx.ref.begin(self.journal, key, PRODUCE, J.PRINT_A4, {
            "document_id": document["document_id"], "doc_type": document.get("doc_type", ""),
            "verification_code": document.get("verification_code", ""), "session": session.id,
            **({"of_key": of_key} if of_key else {})})
        spooled = session.spool_file(f"a4-{n}.pdf")
        shutil.copyfile(pdf, spooled)
        try:
            if self.devices.a4_printer is None:
                raise NoDevice("no A4 printer is configured", device="a4_printer")
            job = self.devices.a4_printer.print_pdf(spooled, title=str(document.get("title_en", "")))
        except DeviceError as err:
            self.journal.fail(key, err.code)
            log.warning("txn=%s a4 print failed: %s", ctx.ref.txn_id, err.code)
            return pdf, err
        finally:
            shred(spooled)
        self.journal.complete(key, {"job_id": str(job)})
        return pdf, None

    def warm_up(self) -> None:
        """Render the release self-test's specimen certificate (no resident's data) into a folder removed at once,
        signed where documents are: reportlab, the CJK font, the layouts and the QR encoder are loaded now, not on
        the printing screen of the first resident after a restart (about 0.4 s of the first H01's machine time).
        Called at rest (kiosk.screens.startup.ScreenWarmer)."""
        import tempfile

        from kiosk.release_selftest import SPECIMEN
        from print_templates.documents import render_pdf

        with tempfile.TemporaryDirectory(prefix="kiosk-print-warm-") as folder:
            render_pdf(SPECIMEN, Path(folder) / "specimen.pdf", terminal_id=self.terminal_id, signer=self.pdf_signer)

    def receipt_printer_ready(self) -> bool:
        """Whether the receipt printer is there and can print now (asked of the device itself)."""
        printer = self.devices.receipt_printer
        if printer is None:
            return False
        try:
            return bool(printer.status().usable)
        except Exception:  # a status that cannot be read is not a printer to promise a slip from
            return False

    def receipt_bytes(self, ctx: PrintContext, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], kiosk_ref: str = "") -> bytes:
        """The ESC/POS bytes of the transaction's receipt or slip, for the configured printer."""
        from print_templates.receipts import render_receipt

        lines: list[list[str]] = [[str(d.get("label_zh", "")), str(d.get("value", ""))] for d in display]
        if ctx.paid_fen:
            lines.append(["金额 Amount", f"¥{ctx.paid_fen / 100:.2f}"])
        data: dict[str, Any] = {
            "item_name_zh": ctx.item.name_zh, "item_name_en": ctx.item.name_en, "terminal_id": self.terminal_id,
            "time": localtime.stamp(), "reference": reference, "lines": lines,
            # the number the resident was given when the outcome was unknown: issued by the kiosk,
            # so printed whole (as one of the backend's lines it went through the masker)
            "kiosk_ref": kiosk_ref}
        if docs:
            data["verification_code"] = docs[0].get("verification_code", "")
            data["qr_payload"] = docs[0].get("qr_payload", "")
            data["signature"] = docs[0].get("signature", "")
        return render_receipt(receipt_kind(ctx.item), data,
                              profile=getattr(self.devices.receipt_printer, "profile", "80mm"))

    def print_receipt(self, ctx: PrintContext, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], *, key: str | None = None, of_key: str = "",
                      kiosk_ref: str = "") -> tuple[bytes, DeviceError | None]:
        """Render and print the transaction's receipt or slip (journaled); returns its bytes and the printer's error."""
        data = self.receipt_bytes(ctx, reference, display, docs, kiosk_ref)
        key = key or ctx.ref.key(J.PRINT_RECEIPT)
        refs: dict[str, Any] = {"reference": reference, "receipt_kind": receipt_kind(ctx.item),
                                **({"session": ctx.session.id} if ctx.session else {}),
                                **({"of_key": of_key} if of_key else {})}
        if ctx.paid_fen:
            refs.update(amount_fen=ctx.paid_fen, order_id=ctx.order_id)
        if docs:
            refs.update(verification_code=docs[0].get("verification_code", ""),
                        document_id=docs[0].get("document_id", ""))
        ctx.ref.begin(self.journal, key, PRODUCE, J.PRINT_RECEIPT, refs)
        try:
            self._receipt_printer().print_bytes(data)  # bytes go straight to the printer: nothing to spool
        except DeviceError as err:
            self.journal.fail(key, err.code)
            log.warning("txn=%s receipt print failed: %s", ctx.ref.txn_id, err.code)
            return data, err
        self.journal.complete(key)
        return data, None

    def print_slip(self, ctx: PrintContext, reference: str, display: Iterable[Mapping[str, str]]) -> bytes:
        """Print a query's slip, not journaled (nothing was issued or paid); returns its bytes. Raises DeviceError."""
        data = self.receipt_bytes(ctx, reference, display, [])
        self._receipt_printer().print_bytes(data)
        return data

    def deliver(self, ctx: PrintContext, result: Mapping[str, Any]) -> tuple[Produced, DeviceError | None]:
        """Print what an operation issued as its item asks (documents, then the receipt or slip).

        Returns what was produced and the first printer error; a failed job stays journaled,
        owed to the card's holder.
        """
        item = ctx.item
        display = tuple(result.get("display") or ())
        reference = str(result.get("reference") or "")
        doc = result.get("document")
        docs = [doc] if doc else []
        pdfs: list[Path] = []
        receipts: list[bytes] = []
        errors: list[DeviceError] = []
        if "a4_document" in item.outputs:
            for n, document in enumerate(docs):
                path, err = self.print_document(ctx, document, n)
                pdfs.append(path)
                errors += [err] if err else []
        if {"receipt", "slip"} & set(item.outputs) and not item.slip_on_request:
            data, err = self.print_receipt(ctx, reference, display, docs)
            receipts += [data] if data else []
            errors += [err] if err else []
        codes = tuple(d["verification_code"] for d in docs if d.get("verification_code"))
        produced = Produced(tuple(pdfs), tuple(receipts), display, reference, codes, tuple(e.code for e in errors),
                            slip_offered=item.slip_on_request and self.receipt_printer_ready())
        return produced, errors[0] if errors else None

    def _receipt_printer(self) -> ReceiptPrinter:
        if self.devices.receipt_printer is None:
            raise NoDevice("no receipt printer is configured", device="receipt_printer")
        return self.devices.receipt_printer


# --- what is still owed ----------------------------------------------------------------------
def missing_prints(entries: list[J.Entry], outputs: set[str]) -> list[str]:
    """Print kinds an operation that went through still owes (the crash came before their journal entry)."""
    done = [e for e in entries if e.kind == J.OPERATE and e.state == J.DONE]
    if not done:
        return []
    have = {e.kind for e in entries}
    missing = []
    if done[-1].refs.get("document_id") and "a4_document" in outputs and J.PRINT_A4 not in have:
        missing.append(J.PRINT_A4)
    if outputs & {"receipt", "slip"} and J.PRINT_RECEIPT not in have:
        missing.append(J.PRINT_RECEIPT)
    return missing


def owe_prints(journal: J.Journal, ref: TxnRef, item: CatalogItem | None, code: str = "interrupted") -> list[str]:
    """Journal as owed the prints an operation that went through never got to; returns what was done.

    They are reprinted on the holder's next card read: the resident is gone by now, and a
    document is never printed to an empty kiosk.
    """
    entries = journal.entries(ref.txn_id)
    missing = missing_prints(entries, printed_outputs(item) if item else set())
    if not missing or item is None:
        return []
    refs = [e for e in entries if e.kind == J.OPERATE and e.state == J.DONE][-1].refs
    doc = {k: refs[k] for k in ("document_id", "doc_type", "verification_code") if refs.get(k)}
    done = []
    if J.PRINT_A4 in missing:
        key = ref.key(J.PRINT_A4)
        ref.begin(journal, key, PRODUCE, J.PRINT_A4, doc)
        journal.fail(key, code)
        done.append("print_a4_owed")
    if J.PRINT_RECEIPT in missing:
        key = ref.key(J.PRINT_RECEIPT)
        receipt: dict[str, Any] = {"reference": str(refs.get("reference", "")), "receipt_kind": receipt_kind(item)}
        if refs.get("order_id"):
            created = next((e for e in entries if e.kind == J.PAY_CREATE), None)
            receipt.update(order_id=refs["order_id"],
                           amount_fen=int(created.refs.get("amount_fen", 0)) if created else 0)
        if doc:
            receipt.update(document_id=doc["document_id"], verification_code=doc.get("verification_code", ""))
        ref.begin(journal, key, PRODUCE, J.PRINT_RECEIPT, receipt)
        journal.fail(key, code)
        done.append("print_receipt_owed")
    return done
