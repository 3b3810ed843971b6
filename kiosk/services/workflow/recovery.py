"""Start-up recovery and the running kiosk's reconciler: resolve what a crash or a lost answer left half done."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import BackendRefused, KioskError
from kiosk.services import journal as J
from kiosk.services.catalog import CatalogItem
from kiosk.services.session import load_resume, wipe_leftovers
from kiosk.services.workflow.operation import operation_refs
from kiosk.services.workflow.payment import refund
from kiosk.services.workflow.production import PrintContext, missing_prints, owe_prints, printed_outputs
from kiosk.services.workflow.records import UNKNOWN, TxnRef, kiosk_reference
from kiosk.services.workflow.steps import Step

if TYPE_CHECKING:
    from kiosk.services.workflow.engine import WorkflowEngine

log = logging.getLogger(__name__)

LATE_PAYMENT_WINDOW_S = 2 * 24 * 3600  # how long recovery keeps reconciling an order nothing was produced for
PAY, PRODUCE = Step.PAY.value, Step.PRODUCE.value


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
    if missing_prints(entries, outputs):
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


def _item(engine: WorkflowEngine, item_id: str) -> CatalogItem | None:
    """The journaled item as the catalog has it now (None when an update removed it)."""
    try:
        return engine.catalog.get(item_id)
    except KioskError:
        return None


def _outputs(engine: WorkflowEngine, item_id: str) -> set[str]:
    item = _item(engine, item_id)
    return printed_outputs(item) if item else set()


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


def _refund(engine: WorkflowEngine, ref: TxnRef, order_id: str, action: RecoveryAction,
            cause: KioskError | None = None) -> None:
    if order_id and refund(engine, ref, order_id, cause):
        action.actions.append("refunded")
        action.refunded = order_id


def _recover_txn(engine: WorkflowEngine, txn_id: str, entries: list[J.Entry], action: RecoveryAction,
                 statuses: Mapping[str, str]) -> None:
    journal, backend = engine.journal, engine.backend
    ref = TxnRef(txn_id, entries[0].item_id, next((e.id_hash for e in entries if e.id_hash), ""))
    session_id = next((str(e.refs["session"]) for e in entries if e.refs.get("session")), "")
    resume = load_resume(engine.sessions.state_dir, session_id) if session_id else None
    latest = {e.kind: e for e in entries}  # the last entry of each kind wins
    order_id = ""

    create = latest.get(J.PAY_CREATE)
    if create is not None:
        order_id = str(create.refs.get("order_id", ""))
        if create.state == J.BEGUN:
            # Same key: the backend hands back the order it may already have made.
            order = backend.create_order(item_id=ref.item_id, amount_fen=int(create.refs.get("amount_fen", 0)),
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
            cancel_key = ref.key(J.PAY_CANCEL, "r")
            ref.begin(journal, cancel_key, PAY, J.PAY_CANCEL, {"order_id": order_id})
            order = backend.cancel_order(order_id, idempotency_key=cancel_key)
            status = order["status"]
            if status == "paid":
                journal.fail(cancel_key, "already_paid")
            else:
                journal.complete(cancel_key, {"order_status": status})
                action.actions.append("order_cancelled")
        if status == "paid":
            if not paid:
                journal.record(f"{txn_id}-{J.PAY_PAID}", txn_id, ref.item_id, PAY, J.PAY_PAID,
                               id_hash=ref.id_hash, refs={"order_id": order_id})
                action.actions.append("late_payment_seen")
            paid = True
        for e in entries:  # a cancel that failed earlier is settled by what reconcile said
            if e.kind == J.PAY_CANCEL and e.state in (J.BEGUN, J.FAILED) and status != "paid":
                journal.resolve(e.key, f"order_{status}")

    if operate is not None and operate.state == J.BEGUN:
        _resume_operate(engine, ref, operate.key, order_id if paid else "", resume, action)
    elif paid and operate is None and not refunded:
        # Paid (perhaps late) and never operated: produce if the session survived, else refund.
        _resume_operate(engine, ref, ref.key(J.OPERATE), order_id, resume, action)
    elif paid and operate is not None and operate.state == J.FAILED and not refunded:
        _refund(engine, ref, order_id, action)

    action.actions += owe_prints(journal, ref, _item(engine, ref.item_id))
    for e in entries:
        if e.kind in (J.PRINT_A4, J.PRINT_RECEIPT) and e.state == J.BEGUN:
            journal.fail(e.key, "interrupted")  # owed: reprinted when the card is read again
            action.actions.append(f"{e.kind}_owed")
        elif e.kind == J.PAY_CANCEL and e.state == J.BEGUN:
            journal.resolve(e.key, "settled_by_reconcile")
        elif e.kind == J.PAY_REFUND and e.state == J.BEGUN and journal.get(e.key).state == J.BEGUN:
            _refund(engine, ref, str(e.refs.get("order_id")), action)


def _resume_operate(engine: WorkflowEngine, ref: TxnRef, key: str, order_id: str,
                    resume: Mapping[str, Any] | None, action: RecoveryAction) -> None:
    journal = engine.journal
    item = engine.catalog.get(ref.item_id)
    sent = journal.get(key) is not None  # begun before it was sent: without an entry it never left the kiosk
    if not sent:
        ref.begin(journal, key, PRODUCE, J.OPERATE,
                  {"operation": item.operation, **({"order_id": order_id} if order_id else {})})
    if resume is None:
        if sent:
            # The data to send it again is gone with the session: ask what became of the key.
            _settle_by_outcome(engine, ref, key, order_id, action)
            return
        # Never sent and cannot be finished without the crashed session's data: give the money back.
        journal.fail(key, "abandoned")
        action.actions.append("operate_abandoned")
        _refund(engine, ref, order_id, action)
        return
    try:
        result = engine.backend.operate(item.operation, ref.item_id, resume.get("id_number") or None,
                                        dict(resume.get("fields") or {}),
                                        payment_order_id=order_id or None, idempotency_key=key)
    except BackendRefused as err:
        journal.fail(key, err.rule)
        action.actions.append(f"operate_refused:{err.rule}")
        _refund(engine, ref, order_id, action, err)
        return
    journal.complete(key, operation_refs(result))
    action.actions.append("operate_resumed")


def _settle_by_outcome(engine: WorkflowEngine, ref: TxnRef, key: str, order_id: str, action: RecoveryAction) -> None:
    """Ask the backend what became of operation ``key``; complete it (printing the slip the resident
    was promised) or fail it, refunding only when the backend says it did not happen."""
    journal = engine.journal
    entry = journal.get(key)
    promised = entry is not None and entry.refs.get("outcome") == UNKNOWN
    answer = engine.backend.outcome(key)  # a BackendError postpones it: the entry stays open
    outcome = answer.get("outcome")
    if outcome == "performed":
        result = answer.get("result") or {}
        journal.complete(key, operation_refs(result))
        action.actions.append("operate_confirmed")
        if promised:
            _print_promised_slip(engine, ref, order_id, result, action)
        return
    rule = str((answer.get("refusal") or {}).get("rule") or "")
    journal.fail(key, rule or "not_performed")
    action.actions.append(f"operate_refused:{rule}" if outcome == "refused" else "operate_not_performed")
    _refund(engine, ref, order_id, action)


def _print_promised_slip(engine: WorkflowEngine, ref: TxnRef, order_id: str, result: Mapping[str, Any],
                         action: RecoveryAction) -> None:
    """Print the receipt (or slip) of an operation the resident was told to collect at the counter.

    Journaled like any print; one that fails is owed as usual. A4 documents are not printed
    here: they hold the resident's personal data and are reprinted when their card is read.
    """
    item = engine.catalog.get(ref.item_id)
    if not ({"receipt", "slip"} & set(item.outputs)) or item.slip_on_request or engine.devices.receipt_printer is None:
        return  # nothing to print here (an owed receipt is then journaled by owe_prints)
    paid = 0
    if order_id:
        created = next((e for e in engine.journal.entries(ref.txn_id) if e.kind == J.PAY_CREATE), None)
        paid = int((created.refs.get("amount_fen") if created else 0) or 0)
    doc = result.get("document")
    ctx = PrintContext(ref, item, None, paid, order_id if paid else "")
    _, err = engine.printing.print_receipt(ctx, str(result.get("reference") or ""), result.get("display") or (),
                                           [doc] if doc else [],
                                           kiosk_ref=kiosk_reference(engine.terminal_id, ref.txn_id))
    if err is None:
        action.actions.append("receipt_printed")
        action.printed.append("receipt")
    else:
        action.actions.append(f"print_receipt_owed:{err.code}")
