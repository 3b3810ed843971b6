"""Printing again what a card's holder is owed: documents fetched again, receipts with their result lines and QR."""
from __future__ import annotations

import secrets
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import DeviceError
from kiosk.hardware.idcard import IdentityCard
from kiosk.services import journal as J
from kiosk.services.session import EndReason, Session
from kiosk.services.workflow.production import PrintContext
from kiosk.services.workflow.records import UNKNOWN, PendingReprint, Produced, TxnRef, kiosk_reference

if TYPE_CHECKING:
    from kiosk.services.workflow.engine import WorkflowEngine


def pending_reprints(engine: WorkflowEngine, card: IdentityCard) -> list[PendingReprint]:
    """Documents and receipts issued to this card's holder but never printed."""
    journal = engine.journal
    return [PendingReprint(e.key, e.item_id, e.kind, str(e.refs.get("document_id", "")),
                           str(e.refs.get("reference", "")), str(e.refs.get("verification_code", "")))
            for e in journal.undelivered(journal.id_hash(card.id_number))]


def reprint(engine: WorkflowEngine, card: IdentityCard, session: Session | None = None) -> Produced:
    """Print everything owed to this card's holder: documents fetched again from the backend, and receipts.

    ``session`` is the resident's own, when a transaction is running; otherwise one is made
    for the documents and ended (wiped) afterwards.
    """
    own = session is None
    session = session or engine.sessions.new()
    if own:
        session.set_identity(card)
    done: list[Produced] = []
    try:
        for n, pending in enumerate(pending_reprints(engine, card)):
            entry = engine.journal.get(pending.key)
            assert entry is not None
            done.append(reprint_entry(engine, entry, card=card, session=session, n=n)[0])
    finally:
        if own:
            session.end(EndReason.DONE)
    return Produced(tuple(p for d in done for p in d.documents), tuple(r for d in done for r in d.receipts),
                    verification_codes=tuple(c for d in done for c in d.verification_codes),
                    undelivered=tuple(u for d in done for u in d.undelivered))


def reprint_entry(engine: WorkflowEngine, entry: J.Entry, *, card: IdentityCard | None = None,
                  session: Session | None = None, n: int = 0,
                  result_lines: bool = True) -> tuple[Produced, DeviceError | None]:
    """Print one owed entry again, journaled under a key of its own; returns what was printed and the printer's error.

    The owed entry is settled when the print succeeds; a failed attempt is settled instead,
    so the entry stays owed once. An A4 document needs its holder's ``card`` and a
    ``session`` to render into. ``result_lines=False`` leaves out a receipt's result lines
    (they can name people) for a print nobody on site vouches for. Raises BackendError,
    DocumentNotFound.
    """
    item = engine.catalog.get(entry.item_id)
    ref = TxnRef(secrets.token_hex(12), entry.item_id, entry.id_hash)  # a reprint is a transaction of its own
    key = f"{entry.key}-reprint-{secrets.token_hex(3)}"
    if entry.kind == J.PRINT_A4:
        assert card is not None and session is not None, "an A4 document is fetched only for its holder"
        doc = engine.backend.fetch_document(str(entry.refs.get("document_id", "")), card.id_number)
        session.documents.append(doc)
        path, err = engine.printing.print_document(PrintContext(ref, item, session), doc, 100 + n, key=key,
                                                   of_key=entry.key)
        produced = Produced(documents=(path,), verification_codes=(str(doc.get("verification_code", "")),))
    else:
        reference, display, docs, kiosk_ref = receipt_content(engine, entry, card)
        display = display if result_lines else ()
        paid = int(entry.refs.get("amount_fen") or 0)
        ctx = PrintContext(ref, item, session, paid, str(entry.refs.get("order_id", "")) if paid else "")
        data, err = engine.printing.print_receipt(ctx, reference, display, docs, key=key, of_key=entry.key,
                                                  kiosk_ref=kiosk_ref)
        produced = Produced(receipts=(data,))
    if err is None:
        engine.journal.resolve(entry.key, "reprinted")
        return produced, None
    engine.journal.resolve(key, "reprint_failed")
    return replace(produced, undelivered=(err.code,)), err


def receipt_content(engine: WorkflowEngine, entry: J.Entry, card: IdentityCard | None
                    ) -> tuple[str, tuple[Mapping[str, str], ...], list[Mapping[str, Any]], str]:
    """What an owed receipt showed: reference, result lines, the document behind its QR, and the kiosk reference.

    The journal keeps references only (the lines can name a person), so the operation's
    result is asked again of the backend under the operation's key; past the backend's
    idempotency window it keeps no lines, and the holder's card fetches the document still.
    """
    reference = str(entry.refs.get("reference", ""))
    operate = next((e for e in reversed(engine.journal.entries(entry.txn_id))
                    if e.kind == J.OPERATE and e.state == J.DONE), None)
    if operate is None:
        return reference, (), [], ""
    answer = engine.backend.outcome(operate.key)
    result = (answer.get("result") if answer.get("outcome") == "performed" else None) or {}
    doc = result.get("document")
    if not doc and entry.refs.get("document_id") and card is not None:
        doc = engine.backend.fetch_document(str(entry.refs["document_id"]), card.id_number)
    kiosk_ref = kiosk_reference(engine.terminal_id, entry.txn_id) if operate.refs.get("outcome") == UNKNOWN else ""
    return (reference or str(result.get("reference") or ""), tuple(result.get("display") or ()),
            [doc] if doc else [], kiosk_ref)
