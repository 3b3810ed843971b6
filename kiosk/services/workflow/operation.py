"""An item's operation at the backend: sent once under its journaled key, refunded when refused, kept open when lost."""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import BackendError, BackendRefused, BackendRejected, OutcomeUnknown
from kiosk.services import journal as J
from kiosk.services.backend import IdempotencyConflict
from kiosk.services.catalog import CatalogItem
from kiosk.services.workflow.payment import refund
from kiosk.services.workflow.records import PAID_UNDELIVERED, UNKNOWN, TxnRef, kiosk_reference
from kiosk.services.workflow.steps import Step

if TYPE_CHECKING:
    from kiosk.services.workflow.engine import WorkflowEngine

log = logging.getLogger(__name__)


def operation_refs(result: Mapping[str, Any]) -> dict[str, Any]:
    """What the journal keeps of an operation's answer: references, never content."""
    doc = result.get("document") or {}
    return {"reference": str(result.get("reference") or ""),
            **({"document_id": doc["document_id"], "doc_type": doc.get("doc_type", ""),
                "verification_code": doc.get("verification_code", "")} if doc else {})}


def run_operation(engine: WorkflowEngine, ref: TxnRef, item: CatalogItem, *, id_number: str | None,
                  fields: Mapping[str, Any], order_id: str, session_id: str) -> dict[str, Any]:
    """Run ``item``'s operation under its journaled key; returns the backend's result.

    A refusal (or a rejection before anything was done) fails the entry and refunds a paid
    order. A lost answer is asked again under the same key until ``backend.unknown_outcome_s``
    (the adapter's single call); then the entry stays open, marked unknown, and
    OutcomeUnknown carries the reference the resident is given. Raises BackendRefused,
    BackendRejected, OutcomeUnknown.
    """
    journal = engine.journal
    key = ref.key(J.OPERATE)
    ref.begin(journal, key, Step.PRODUCE.value, J.OPERATE, {
        "operation": item.operation, "session": session_id, **({"order_id": order_id} if order_id else {})})
    # One call: the adapter asks again under the same key until it gets an answer it can
    # trust or the deadline passes (the backend replays its stored answer to a repeated key).
    until = time.monotonic() + engine.unknown_outcome_s
    try:
        result = engine.backend.operate(item.operation, item.id, id_number, fields,
                                        payment_order_id=order_id or None, idempotency_key=key, until=until)
    except BackendRefused as err:  # a business rule said no: nothing was done
        journal.fail(key, err.rule)
        if order_id:
            refund(engine, ref, order_id, err)
        raise
    except IdempotencyConflict as err:
        # The key already stands for a request the backend took: what it did is learnt later.
        raise _unknown(engine, ref, item, key, order_id, err) from err
    except BackendRejected as err:
        journal.fail(key, err.code)  # refused before anything was done (auth, schema, revoked)
        if order_id:
            refund(engine, ref, order_id, err)
        raise
    except BackendError as err:  # no trustworthy answer by the deadline: it may well have happened
        raise _unknown(engine, ref, item, key, order_id, err) from err
    journal.complete(key, operation_refs(result))
    return result


def _unknown(engine: WorkflowEngine, ref: TxnRef, item: CatalogItem, key: str, order_id: str,
             cause: BackendError) -> OutcomeUnknown:
    """Keep the operation open in the journal and tell the resident their reference number."""
    engine.journal.note(key, {"outcome": UNKNOWN})
    reference = kiosk_reference(engine.terminal_id, ref.txn_id)
    log.error("txn=%s item=%s operation outcome unknown after %s (reference %s)", ref.txn_id, item.id,
              cause.code, reference)
    if order_id:
        engine.alarm(PAID_UNDELIVERED, ref)
    return OutcomeUnknown(f"{item.operation}: no confirmed answer ({cause.code})", reference=reference)
