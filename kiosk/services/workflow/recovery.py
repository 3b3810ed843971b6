"""Start-up recovery and the running kiosk's reconciler: resolve what a crash or a lost answer left half done."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import BackendRefused, KioskError
from kiosk.services import journal as J
from kiosk.services.session import EndReason, load_resume, wipe_leftovers
from kiosk.services.workflow.records import UNKNOWN, kiosk_reference
from kiosk.services.workflow.engine import _receipt_kind
from kiosk.services.workflow.steps import S
from kiosk.services.workflow.transaction import Transaction

if TYPE_CHECKING:
    from kiosk.services.workflow.engine import WorkflowEngine

log = logging.getLogger(__name__)

LATE_PAYMENT_WINDOW_S = 2 * 24 * 3600  # how long recovery keeps reconciling an order nothing was produced for



# --- recovery ------------------------------------------------------------------------
@dataclass
class RecoveryAction:
    """What recovery did for one transaction (no personal data).

    ``printed`` lists what it printed (``receipt``), ``refunded`` the order it refunded,
    ``reference`` the number the resident was given (kiosk_reference).
    """

    txn_id: str
    item_id: str
    actions: list[str] = field(default_factory=list)
    reference: str = ""
    printed: list[str] = field(default_factory=list)
    refunded: str = ""


def _unsettled(entries: list[J.Entry], outputs: set[str]) -> bool:
    kinds = {(e.kind, e.state) for e in entries}
    if any(e.state == J.BEGUN for e in entries):
        return True
    if _missing_prints(entries, outputs):
        return True
    created = (J.PAY_CREATE, J.DONE) in kinds
    operated = (J.OPERATE, J.DONE) in kinds
    refunded = (J.PAY_REFUND, J.DONE) in kinds
    if not created or operated or refunded:
        return False
    # An order nothing was produced for: even a cancelled one can still be paid late (the
    # resident's phone was slower than the kiosk), so it is reconciled for a while.
    newest = max(e.updated_at for e in entries)
    return time.time() - newest < LATE_PAYMENT_WINDOW_S


def _outputs(engine: WorkflowEngine, item_id: str) -> set[str]:
    """What the item prints by itself (a query's slip is printed only on request, never owed)."""
    try:
        item = engine.catalog.get(item_id)
    except KioskError:
        return set()
    return set(item.outputs) - ({"slip"} if item.slip_on_request else set())


def _missing_prints(entries: list[J.Entry], outputs: set[str]) -> list[str]:
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


def recover(engine: WorkflowEngine, *, wipe: bool = True) -> list[RecoveryAction]:
    """Resolve what a crash left half done, then wipe leftover sessions and spool files.

    ``wipe=False`` (a running kiosk settling late payments) leaves the session folders alone.
    For each unsettled transaction: a half-created order is re-created under the same
    key and reconciled; an open order is cancelled, or when it was paid the operation is
    resumed under its idempotency key (from the crashed session's resume record) or, when
    the data to resume it is gone, settled by what the backend says became of that key
    (refunded only when it says the operation did not happen); an interrupted print is
    kept as owed, to reprint when the card is read again. An operation whose outcome the
    resident was told is unknown is settled the same way, and its slip printed at once;
    that waits while a resident is at the kiosk (the slip is not theirs to take).
    """
    journal = engine.journal
    live = {txn.id for txn in engine.active()}  # a running kiosk reconciles around its open sessions
    by_txn: dict[str, list[J.Entry]] = {}
    for e in journal.entries():
        if e.txn_id not in live:
            by_txn.setdefault(e.txn_id, []).append(e)
    report = []
    unsettled = {t: es for t, es in by_txn.items() if _unsettled(es, _outputs(engine, es[0].item_id))
                 and not (live and _outcome_unknown(es))}
    # One reconcile call for every known order instead of one per transaction.
    known = sorted({str(e.refs["order_id"]) for es in unsettled.values() for e in es
                    if e.kind == J.PAY_CREATE and e.refs.get("order_id")})
    statuses: dict[str, str] = {}
    if known:
        try:
            statuses = {o["order_id"]: o["status"] for o in engine.backend.reconcile(known)["orders"]}
        except KioskError as err:
            log.error("recovery reconcile failed: %s", err.code)
    for txn_id, entries in unsettled.items():
        action = RecoveryAction(txn_id, entries[0].item_id)
        if _outcome_unknown(entries):
            action.reference = kiosk_reference(engine.terminal_id, txn_id)
        try:
            _recover_txn(engine, txn_id, entries, action, statuses)
        except KioskError as err:
            action.actions.append(f"postponed:{err.code}")
            log.error("recovery of txn=%s postponed: %s", txn_id, err.code)
        report.append(action)
        log.info("recovered txn=%s item=%s actions=%s", txn_id, action.item_id, ",".join(action.actions))
    if wipe:
        wipe_leftovers(engine.sessions.state_dir)
    return report


def _outcome_unknown(entries: list[J.Entry]) -> bool:
    """An operation still open whose resident was told its outcome is unknown."""
    return any(e.kind == J.OPERATE and e.state == J.BEGUN and e.refs.get("outcome") == UNKNOWN for e in entries)


def _recover_txn(engine: WorkflowEngine, txn_id: str, entries: list[J.Entry], action: RecoveryAction,
                 statuses: Mapping[str, str]) -> None:
    journal, backend = engine.journal, engine.backend
    item_id = entries[0].item_id
    id_hash = next((e.id_hash for e in entries if e.id_hash), "")
    session_id = next((str(e.refs["session"]) for e in entries if e.refs.get("session")), "")
    resume = load_resume(engine.sessions.state_dir, session_id) if session_id else None
    latest = {e.kind: e for e in entries}  # the last entry of each kind wins
    order_id = ""

    create = latest.get(J.PAY_CREATE)
    if create is not None:
        order_id = str(create.refs.get("order_id", ""))
        if create.state == J.BEGUN:
            # Same key: the backend hands back the order it may already have made.
            order = backend.create_order(item_id=item_id, amount_fen=int(create.refs.get("amount_fen", 0)),
                                         reference=str(create.refs.get("reference", txn_id)),
                                         description=str(create.refs.get("description", "")),
                                         idempotency_key=create.key)
            order_id = order["order_id"]
            journal.complete(create.key, {"order_id": order_id, "order_status": order["status"]})
            action.actions.append("order_recreated")

    operate = latest.get(J.OPERATE)
    operated = operate is not None and operate.state == J.DONE
    refunded = any(e.kind == J.PAY_REFUND and e.state == J.DONE for e in entries)
    paid = any(e.kind == J.PAY_PAID for e in entries)

    if order_id and not operated and not refunded:
        status = statuses.get(order_id) or backend.reconcile([order_id])["orders"][0]["status"]
        if status == "pending":
            cancel_key = f"{txn_id}-{J.PAY_CANCEL}-r"
            journal.begin(cancel_key, txn_id, item_id, S.PAY.value, J.PAY_CANCEL, id_hash=id_hash,
                          refs={"order_id": order_id})
            order = backend.cancel_order(order_id, idempotency_key=cancel_key)
            status = order["status"]
            if status == "paid":
                journal.fail(cancel_key, "already_paid")
            else:
                journal.complete(cancel_key, {"order_status": status})
                action.actions.append("order_cancelled")
        if status == "paid":
            if not paid:
                journal.record(f"{txn_id}-{J.PAY_PAID}", txn_id, item_id, S.PAY.value, J.PAY_PAID,
                               id_hash=id_hash, refs={"order_id": order_id})
                action.actions.append("late_payment_seen")
            paid = True
        for e in entries:  # a cancel that failed earlier is settled by what reconcile said
            if e.kind == J.PAY_CANCEL and e.state in (J.BEGUN, J.FAILED) and status != "paid":
                journal.resolve(e.key, f"order_{status}")

    if operate is not None and operate.state == J.BEGUN:
        _resume_operate(engine, txn_id, item_id, operate.key, id_hash, order_id if paid else "", resume, action)
    elif paid and operate is None and not refunded:
        # Paid (perhaps late) and never operated: produce if the session survived, else refund.
        _resume_operate(engine, txn_id, item_id, f"{txn_id}-{J.OPERATE}-0", id_hash, order_id, resume, action)
    elif paid and operate is not None and operate.state == J.FAILED and not refunded:
        if engine.refund(None, order_id, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
            action.actions.append("refunded")
            action.refunded = order_id

    _owe_prints(engine, txn_id, item_id, id_hash, action)
    for e in entries:
        if e.kind in (J.PRINT_A4, J.PRINT_RECEIPT) and e.state == J.BEGUN:
            journal.fail(e.key, "interrupted")  # owed: reprinted when the card is read again
            action.actions.append(f"{e.kind}_owed")
        elif e.kind == J.PAY_CANCEL and e.state == J.BEGUN:
            journal.resolve(e.key, "settled_by_reconcile")
        elif e.kind == J.PAY_REFUND and e.state == J.BEGUN and journal.get(e.key).state == J.BEGUN:
            if engine.refund(None, str(e.refs.get("order_id")), txn_id=txn_id, item_id=item_id, id_hash=id_hash):
                action.actions.append("refunded")
                action.refunded = str(e.refs.get("order_id"))


def _resume_operate(engine: WorkflowEngine, txn_id: str, item_id: str, key: str, id_hash: str,
                    order_id: str, resume: Mapping[str, Any] | None, action: RecoveryAction) -> None:
    journal = engine.journal
    item = engine.catalog.get(item_id)
    sent = journal.get(key) is not None  # begun before it was sent: without an entry it never left the kiosk
    if not sent:
        journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.OPERATE, id_hash=id_hash,
                      refs={"operation": item.operation, **({"order_id": order_id} if order_id else {})})
    if resume is None:
        if sent:
            # The data to send it again is gone with the session: ask what became of the key.
            _settle_by_outcome(engine, txn_id, item_id, key, id_hash, order_id, action)
            return
        # Never sent and cannot be finished without the crashed session's data: give the money back.
        journal.fail(key, "abandoned")
        action.actions.append("operate_abandoned")
        if order_id and engine.refund(None, order_id, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
            action.actions.append("refunded")
            action.refunded = order_id
        return
    try:
        result = engine.backend.operate(item.operation, item_id, resume.get("id_number") or None,
                                        dict(resume.get("fields") or {}),
                                        payment_order_id=order_id or None, idempotency_key=key)
    except BackendRefused as err:
        journal.fail(key, err.rule)
        action.actions.append(f"operate_refused:{err.rule}")
        if order_id and engine.refund(None, order_id, err, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
            action.actions.append("refunded")
            action.refunded = order_id
        return
    journal.complete(key, _operate_refs(result))
    action.actions.append("operate_resumed")


def _operate_refs(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the journal keeps of an operation's answer: references, never content."""
    doc = result.get("document") or {}
    return {"reference": str(result.get("reference") or ""),
            **({"document_id": doc["document_id"], "doc_type": doc.get("doc_type", ""),
                "verification_code": doc.get("verification_code", "")} if doc else {})}


def _settle_by_outcome(engine: WorkflowEngine, txn_id: str, item_id: str, key: str, id_hash: str,
                       order_id: str, action: RecoveryAction) -> None:
    """Ask the backend what became of operation ``key``; complete it (printing the slip the resident
    was promised) or fail it, refunding only when the backend says it did not happen."""
    journal = engine.journal
    promised = (journal.get(key) or J.Entry("", "", "", "", "", "", "")).refs.get("outcome") == UNKNOWN
    answer = engine.backend.outcome(key)  # a BackendError postpones it: the entry stays open
    outcome = answer.get("outcome")
    if outcome == "performed":
        result = answer.get("result") or {}
        journal.complete(key, _operate_refs(result))
        action.actions.append("operate_confirmed")
        if promised:
            _print_promised_slip(engine, txn_id, item_id, id_hash, order_id, result, action)
        return
    rule = str((answer.get("refusal") or {}).get("rule") or "")
    journal.fail(key, rule or "not_performed")
    action.actions.append(f"operate_refused:{rule}" if outcome == "refused" else "operate_not_performed")
    if order_id and engine.refund(None, order_id, txn_id=txn_id, item_id=item_id, id_hash=id_hash):
        action.actions.append("refunded")
        action.refunded = order_id


def _print_promised_slip(engine: WorkflowEngine, txn_id: str, item_id: str, id_hash: str, order_id: str,
                         result: Mapping[str, Any], action: RecoveryAction) -> None:
    """Print the receipt (or slip) of an operation the resident was told to collect at the counter.

    Journaled like any print; one that fails is owed as usual. A4 documents are not printed
    here: they hold the resident's personal data and are reprinted when their card is read.
    """
    item = engine.catalog.get(item_id)
    if not ({"receipt", "slip"} & set(item.outputs)) or item.slip_on_request or engine.devices.receipt_printer is None:
        return  # nothing to print here (an owed receipt is then journaled by _owe_prints)
    session = engine.sessions.new()
    try:
        txn = Transaction(engine, item, session)
        txn.id, txn._id_hash = txn_id, id_hash
        if order_id:
            created = next((e for e in engine.journal.entries(txn_id) if e.kind == J.PAY_CREATE), None)
            txn.amount_fen = int((created.refs.get("amount_fen") if created else 0) or 0)
            txn._paid, txn.order = bool(txn.amount_fen), {"order_id": order_id}
        doc = result.get("document")
        _, err = engine.print_receipt(txn, str(result.get("reference") or ""), result.get("display") or (),
                                      [doc] if doc else [], kiosk_ref=kiosk_reference(engine.terminal_id, txn_id))
        if err is None:
            action.actions.append("receipt_printed")
            action.printed.append("receipt")
        else:
            action.actions.append(f"print_receipt_owed:{err.code}")
    finally:
        session.end(EndReason.DONE)


def _owe_prints(engine: WorkflowEngine, txn_id: str, item_id: str, id_hash: str, action: RecoveryAction,
                code: str = "interrupted") -> None:
    """Journal as owed the prints an operation that went through never got to (reprinted on the next card read).

    The resident is gone by now: a document is never printed to an empty kiosk.
    """
    journal = engine.journal
    entries = journal.entries(txn_id)
    missing = _missing_prints(entries, _outputs(engine, item_id))
    if not missing:
        return
    operate = [e for e in entries if e.kind == J.OPERATE and e.state == J.DONE][-1]
    refs = operate.refs
    doc = {k: refs[k] for k in ("document_id", "doc_type", "verification_code") if refs.get(k)}
    if J.PRINT_A4 in missing:
        key = f"{txn_id}-{J.PRINT_A4}-0"
        journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.PRINT_A4, id_hash=id_hash, refs=doc)
        journal.fail(key, code)
        action.actions.append("print_a4_owed")
    if J.PRINT_RECEIPT in missing:
        key = f"{txn_id}-{J.PRINT_RECEIPT}-0"
        rrefs: dict[str, Any] = {"reference": str(refs.get("reference", "")),
                                 "receipt_kind": _receipt_kind(engine.catalog.get(item_id))}
        if refs.get("order_id"):
            created = next((e for e in entries if e.kind == J.PAY_CREATE), None)
            rrefs.update(order_id=refs["order_id"],
                         amount_fen=int(created.refs.get("amount_fen", 0)) if created else 0)
        if doc:
            rrefs.update(document_id=doc["document_id"], verification_code=doc.get("verification_code", ""))
        journal.begin(key, txn_id, item_id, S.PRODUCE.value, J.PRINT_RECEIPT, id_hash=id_hash, refs=rrefs)
        journal.fail(key, code)
        action.actions.append("print_receipt_owed")

