"""The workflow engine: starts transactions and owns what they share (catalog, backend, devices, journal)."""
from __future__ import annotations

import datetime as dt
import logging
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from kiosk import localtime
from kiosk.errors import DeviceError, KioskError
from kiosk.hardware.idcard import IdentityCard
from kiosk.services import journal as J
from kiosk.services.session import EndReason, Session, shred
from kiosk.services.workflow.records import (REFUND_FAILED, MoneyAlarm, PendingReprint, Produced, TransactionEnded,
                                             kiosk_reference)
from kiosk.services.workflow.rules import refusal
from kiosk.services.workflow.steps import Outcome, S
from kiosk.services.workflow.transaction import Transaction

log = logging.getLogger(__name__)


def _today() -> dt.date:
    return localtime.today()  # the station's day, as the backend counts it


def _receipt_kind(item: Any) -> str:
    return {"payment": "payment", "appointment": "appointment"}.get(item.kind, "transaction")



# --- the engine ----------------------------------------------------------------------
class WorkflowEngine:
    """Starts transactions and owns what they share: catalog, backend, devices, journal, sessions."""

    def __init__(self, catalog: Any, backend: Any, devices: Any, journal: J.Journal,
                 sessions: "SessionStore", config: Any) -> None:
        self.catalog = catalog
        self.backend = backend
        self.devices = devices
        self.journal = journal
        self.sessions = sessions
        self.config = config
        self._active: dict[str, Transaction] = {}
        self._lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic  # tests move time forward instead of sleeping
        # Called once per transaction when its outcome is set (statistics, metrics); see TransactionEnded.
        self.on_end: list[Callable[[TransactionEnded], None]] = []
        # Checked before a transaction starts (the runtime refuses disk-using items on a full disk).
        self.admit: Callable[[Any], None] | None = None
        # Told of every paid service not delivered and every failed refund (metrics, alert rules).
        self.on_alarm: list[Callable[[MoneyAlarm], None]] = []
        from print_templates.pdf_signing import PdfSigner

        self.pdf_signer = PdfSigner.from_config(config)  # None unless [printing] names a key; loaded once

    @property
    def terminal_id(self) -> str:
        return self.config.terminal.id

    @property
    def payment_timeout_s(self) -> float:
        return float(self.config.payment.timeout_s)

    @property
    def unknown_outcome_s(self) -> float:
        """How long an operation whose answer was lost is asked again before its outcome counts as unknown."""
        return float(self.config.backend.unknown_outcome_s)

    def _alarm(self, kind: str, txn_id: str, item_id: str) -> None:
        """Tell the on_alarm listeners (a failing listener is logged only)."""
        alarm = MoneyAlarm(kind, item_id, txn_id, kiosk_reference(self.terminal_id, txn_id))
        log.error("alarm %s: txn=%s item=%s reference %s", kind, txn_id, item_id, alarm.reference)
        for listener in list(self.on_alarm):
            try:
                listener(alarm)
            except Exception:  # an alarm must never break the transaction it reports
                log.exception("on_alarm listener failed for %s", kind)

    def start(self, item_id: str) -> Transaction:
        """Begin a transaction for ``item_id``. Raises UnknownItemError."""
        item = self.catalog.get(item_id)
        if self.admit is not None:
            self.admit(item)
        txn = Transaction(self, item, self.sessions.new())
        with self._lock:
            self._active[txn.id] = txn
        log.info("txn=%s item=%s start step=%s", txn.id, item.id, txn.step.value)
        return txn

    def _ended(self, txn: Transaction) -> None:
        """Tell the on_end listeners, once, that ``txn`` has its outcome; a failing listener is logged only."""
        if txn._ended_reported or txn.outcome is None:
            return
        txn._ended_reported = True
        rating = rated = ""
        rule = txn.item.rating
        if rule is not None and txn.outcome is Outcome.COMPLETED:
            values = txn.session.fields
            rating = str(values.get(rule.choice_field) or "")
            rated = str(values.get(rule.rated_item_field) or "") if rule.rated_item_field else ""
        ended = TransactionEnded(txn.item.id, txn.outcome.value, txn.reason, max(0.0, self.clock() - txn._started_at),
                                 rating, rated)
        for listener in list(self.on_end):
            try:
                listener(ended)
            except Exception:  # counting must never break a resident's transaction
                log.exception("on_end listener failed for item=%s", txn.item.id)

    def _forget(self, txn: Transaction) -> None:
        with self._lock:
            self._active.pop(txn.id, None)

    def active(self) -> list[Transaction]:
        """Transactions started and not finished."""
        with self._lock:
            return list(self._active.values())

    # --- identity --------------------------------------------------------------------
    def read_card(self, item: Any | None = None, access: tuple[str, str, str] | None = None) -> IdentityCard:
        """Read the resident's document: the ID card reader, or for travel documents the chip
        over PC/SC with BAC keys from ``access`` (typed by the resident) or else from the MRZ
        the scanner reads off the data page."""
        if item is not None and item.identity == "travel_document":
            from kiosk.hardware.icao.mrz import parse_mrz

            if access is None:
                access = parse_mrz(self.devices.scanner.scan()).access_data()
            card = self.devices.pcsc.read_document(*access)
            self.check_chip(card, access)
            return card
        return self.devices.id_card.read_card()

    def check_chip(self, card: IdentityCard, access: tuple[str, str, str]) -> None:
        """A travel document's chip must prove itself. Raises Refused (chip_not_authentic).

        Passive authentication must have found EF.SOD and every data group's hash in it, the
        chip's DG1 must hold the document number and dates that opened it (a chip programmed
        to open with another document's keys holds someone else's data), and a CSCA chain
        that was checked must hold: in the production profile it must have been checked.
        """
        def normalise(number: str) -> str:
            return number.strip().upper().replace(" ", "").rstrip("<")

        extra = card.extra
        why = ""
        if extra.get("sod_present") != "true":
            why = "no EF.SOD"
        elif extra.get("hashes_valid") != "true":
            why = "a data group does not match its hash in EF.SOD"
        elif extra.get("chain_valid") == "false" or (self.config.profile == "production"
                                                    and extra.get("chain_valid") != "true"):
            why = "EF.SOD is not signed under a trusted CSCA"
        else:
            number, birth, expiry = access
            dg1 = (extra.get("dg1_document_number", ""), extra.get("dg1_birth_date", ""),
                   extra.get("dg1_expiry_date", ""))
            if not dg1[0] or normalise(dg1[0]) != normalise(number) or (dg1[1], dg1[2]) != (birth.strip(),
                                                                                              expiry.strip()):
                why = "DG1 is not the document whose MRZ opened the chip"
        if why:
            log.warning("travel document chip refused: %s", why)
            raise refusal("chip_not_authentic")

    def check_card(self, item: Any, card: IdentityCard) -> None:
        """Apply the kiosk's identity rules for ``item``. Raises Refused."""
        if card.card_type not in item.accepted_cards:
            raise refusal("card_type_not_accepted")
        if card.valid_to and card.valid_to != "long-term":
            try:
                expiry = dt.date.fromisoformat(card.valid_to)
            except ValueError:
                expiry = None
            if (expiry is None or expiry < _today()) and not item.accepts_expired_card:
                raise refusal("id_card_expired" if card.card_type == "resident" else "document_expired")

    # --- printing --------------------------------------------------------------------
    def print_document(self, txn: Transaction, document: Mapping[str, Any], n: int,
                       *, key: str | None = None, of_key: str = "") -> tuple[Path, DeviceError | None]:
        """Render and print one A4 document (journaled); returns the PDF and the printer error if any."""
        from print_templates.documents import render_pdf

        session = txn.session
        pdf = render_pdf(document, session.file(f"document-{n}.pdf"), terminal_id=self.terminal_id,
                         signer=self.pdf_signer)
        key = key or txn._key(J.PRINT_A4, n)
        refs = {"document_id": document["document_id"], "doc_type": document.get("doc_type", ""),
                "verification_code": document.get("verification_code", ""), "session": session.id,
                **({"of_key": of_key} if of_key else {})}
        self.journal.begin(key, txn.id, txn.item.id, S.PRODUCE.value, J.PRINT_A4, id_hash=txn._id_hash,
                           refs=refs)
        spooled = session.spool_file(f"a4-{n}.pdf")
        shutil.copyfile(pdf, spooled)
        try:
            job = self.devices.a4_printer.print_pdf(spooled, title=str(document.get("title_en", "")))
        except DeviceError as err:
            self.journal.fail(key, err.code)
            log.warning("txn=%s a4 print failed: %s", txn.id, err.code)
            return pdf, err
        finally:
            shred(spooled)
        self.journal.complete(key, {"job_id": str(job)})
        return pdf, None

    def _receipt_data(self, item: Any, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], amount_fen: int = 0, kiosk_ref: str = "") -> dict[str, Any]:
        lines: list[list[str]] = [[str(d.get("label_zh", "")), str(d.get("value", ""))] for d in display]
        if amount_fen:
            lines.append(["金额 Amount", f"¥{amount_fen / 100:.2f}"])
        if kiosk_ref:  # the number the resident was given when the outcome was unknown
            lines.append(["受理编号 Kiosk ref.", kiosk_ref])
        data: dict[str, Any] = {
            "item_name_zh": item.name_zh, "item_name_en": item.name_en, "terminal_id": self.terminal_id,
            "time": localtime.stamp(), "reference": reference, "lines": lines}
        if docs:
            data["verification_code"] = docs[0].get("verification_code", "")
            data["qr_payload"] = docs[0].get("qr_payload", "")
            data["signature"] = docs[0].get("signature", "")
        return data

    def receipt_printer_ready(self) -> bool:
        """Whether the receipt printer is there and can print now (asked of the device itself)."""
        printer = self.devices.receipt_printer
        if printer is None:
            return False
        try:
            return bool(printer.status().usable)
        except Exception:  # a status that cannot be read is not a printer to promise a slip from
            return False

    def receipt_bytes(self, txn: Transaction, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], kiosk_ref: str = "") -> bytes:
        """The ESC/POS bytes of the transaction's receipt or slip, for the configured printer."""
        from print_templates.receipts import render_receipt

        amount = txn.amount_fen if txn._paid else 0
        data = self._receipt_data(txn.item, reference, display, docs, amount, kiosk_ref)
        return render_receipt(_receipt_kind(txn.item), data,
                              profile=getattr(self.devices.receipt_printer, "profile", "80mm"))

    def print_receipt(self, txn: Transaction, reference: str, display: Iterable[Mapping[str, str]],
                      docs: list[Mapping[str, Any]], *, key: str | None = None,
                      of_key: str = "", kiosk_ref: str = "") -> tuple[bytes, DeviceError | None]:
        """Render and print the transaction's receipt or slip (journaled)."""
        kind = _receipt_kind(txn.item)
        amount = txn.amount_fen if txn._paid else 0
        printer = self.devices.receipt_printer
        data = self.receipt_bytes(txn, reference, display, docs, kiosk_ref)
        key = key or txn._key(J.PRINT_RECEIPT)
        refs: dict[str, Any] = {"reference": reference, "receipt_kind": kind, "session": txn.session.id,
                                **({"of_key": of_key} if of_key else {})}
        if amount:
            refs["amount_fen"] = amount
            refs["order_id"] = (txn.order or {}).get("order_id", "")
        if docs:
            refs["verification_code"] = docs[0].get("verification_code", "")
            refs["document_id"] = docs[0].get("document_id", "")
        self.journal.begin(key, txn.id, txn.item.id, S.PRODUCE.value, J.PRINT_RECEIPT, id_hash=txn._id_hash,
                           refs=refs)
        try:
            printer.print_bytes(data)  # bytes go straight to the printer: nothing to spool
        except DeviceError as err:
            self.journal.fail(key, err.code)
            log.warning("txn=%s receipt print failed: %s", txn.id, err.code)
            return data, err
        self.journal.complete(key)
        return data, None

    # --- payments ------------------------------------------------------------------------
    def refund(self, txn: Transaction | None, order_id: str, cause: KioskError | None = None, *,
               txn_id: str = "", item_id: str = "", id_hash: str = "") -> bool:
        """Refund a paid order whose service could not be delivered (journaled); True when refunded."""
        txn_id = txn.id if txn else txn_id
        item_id = txn.item.id if txn else item_id
        id_hash = txn._id_hash if txn else id_hash
        key = f"{txn_id}-{J.PAY_REFUND}-0"
        existing = self.journal.get(key)
        if existing is not None and existing.state == J.DONE:
            return True
        self.journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.PAY_REFUND, id_hash=id_hash,
                           refs={"order_id": order_id})
        from kiosk.services.backend import OrderNotRefundable

        try:
            order = self.backend.refund_order(order_id, idempotency_key=key)
        except OrderNotRefundable as err:
            # Nothing to give back: an operation used the order (OrderConsumed), or it was never paid.
            self.journal.resolve(key, err.code)
            return False
        except KioskError as err:
            # Left begun on purpose: the next recovery retries the refund under the same key.
            log.error("txn=%s refund of %s failed: %s (cause %s)", txn_id, order_id, err.code,
                      cause.code if cause else "-")
            self._alarm(REFUND_FAILED, txn_id, item_id)
            return False
        self.journal.complete(key, {"order_status": order.get("status", "")})
        return True

    # --- reprint ---------------------------------------------------------------------
    def pending_reprints(self, card: IdentityCard) -> list[PendingReprint]:
        """Documents and receipts issued to this card's holder but never printed."""
        out = []
        for e in self.journal.undelivered(self.journal.id_hash(card.id_number)):
            out.append(PendingReprint(e.key, e.item_id, e.kind, str(e.refs.get("document_id", "")),
                                      str(e.refs.get("reference", "")),
                                      str(e.refs.get("verification_code", ""))))
        return out

    def reprint(self, card: IdentityCard, session: Session | None = None) -> Produced:
        """Fetch this holder's unprinted documents again from the backend and print them (and owed receipts)."""
        own = session is None
        session = session or self.sessions.new()
        if own:
            session.set_identity(card)
        pdfs: list[Path] = []
        receipts: list[bytes] = []
        undelivered: list[str] = []
        codes: list[str] = []
        try:
            for n, pending in enumerate(self.pending_reprints(card)):
                item = self.catalog.get(pending.item_id)
                txn = Transaction(self, item, session)
                txn._id_hash = self.journal.id_hash(card.id_number)
                key = f"{pending.key}-reprint-{secrets.token_hex(3)}"
                if pending.kind == J.PRINT_A4:
                    doc = self.backend.fetch_document(pending.document_id, card.id_number)
                    session.documents.append(doc)
                    path, err = self.print_document(txn, doc, 100 + n, key=key, of_key=pending.key)
                    pdfs.append(path)
                    codes.append(doc.get("verification_code", ""))
                else:
                    entry = self.journal.get(pending.key)
                    refs = entry.refs if entry else {}
                    txn.amount_fen = int(refs.get("amount_fen") or 0)
                    txn._paid = bool(txn.amount_fen)
                    txn.order = {"order_id": refs.get("order_id", "")}
                    data, err = self.print_receipt(txn, pending.reference, (), [], key=key, of_key=pending.key)
                    receipts.append(data)
                if err is None:
                    self.journal.resolve(pending.key, "reprinted")
                else:  # the original entry stays owed; this attempt must not be owed twice
                    self.journal.resolve(key, "reprint_failed")
                    undelivered.append(err.code)
        finally:
            if own:
                session.end(EndReason.DONE)
        return Produced(tuple(pdfs), tuple(receipts), (), "", tuple(codes), tuple(undelivered))


class SessionStore:
    """Makes the sessions of one terminal (all under ``<state_dir>/sessions``)."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def new(self) -> Session:
        """A fresh session with its own folder."""
        return Session(self.state_dir)

