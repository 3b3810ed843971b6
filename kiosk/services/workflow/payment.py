"""The pay step's side effects: a QR payment order created, polled and cancelled, and refunds, each journaled."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import BackendError, BackendRefused, BackendRejected, KioskError
from kiosk.services import journal as J
from kiosk.services.backend import OrderNotRefundable
from kiosk.services.workflow.records import REFUND_FAILED, TxnRef
from kiosk.services.workflow.steps import Step

if TYPE_CHECKING:
    from kiosk.services.workflow.engine import WorkflowEngine

log = logging.getLogger(__name__)

PAY = Step.PAY.value
PRODUCE = Step.PRODUCE.value


class PaymentOrder:
    """One transaction's payment order and whether it was paid; what an answer means for the step is the caller's."""

    def __init__(self, engine: WorkflowEngine, ref: TxnRef, session_id: str) -> None:
        self.engine = engine
        self.ref = ref
        self.session_id = session_id
        self.order: dict[str, Any] | None = None
        self.paid = False

    @property
    def order_id(self) -> str:
        """The order's id ('' before one was created)."""
        return str((self.order or {}).get("order_id", ""))

    def create(self, amount_fen: int, description: str) -> dict[str, Any]:
        """Create a QR payment order (journaled); returns it with its qr_payload. Raises KioskError.

        A refusal or a rejection means no order exists (its entry fails); after a lost answer
        the entry stays begun and recovery settles it under the same key.
        """
        journal = self.engine.journal
        key = self.ref.key(J.PAY_CREATE, len([e for e in journal.entries(self.ref.txn_id) if e.kind == J.PAY_CREATE]))
        self.ref.begin(journal, key, PAY, J.PAY_CREATE, {"amount_fen": amount_fen, "reference": self.ref.txn_id,
                                                         "description": description, "session": self.session_id})
        try:
            order = self.engine.backend.create_order(item_id=self.ref.item_id, amount_fen=amount_fen,
                                                     reference=self.ref.txn_id, description=description,
                                                     idempotency_key=key)
        except (BackendRefused, BackendRejected) as err:
            journal.fail(key, err.code)
            raise
        journal.complete(key, {"order_id": order["order_id"], "order_status": order["status"]})
        self.order = order
        return order

    def poll(self) -> dict[str, Any]:
        """The order as the backend has it now; as last seen when the backend does not answer (still open)."""
        assert self.order is not None
        try:
            self.order = self.engine.backend.get_order(self.order["order_id"])
        except BackendError as err:  # a slow poll is not a failed payment
            log.warning("txn=%s poll failed: %s", self.ref.txn_id, err.code)
            self.order = dict(self.order)
        return self.order

    def record_paid(self, order: Mapping[str, Any]) -> None:
        """Journal that the resident's payment arrived (once)."""
        if self.paid:
            return
        self.paid = True
        self.engine.journal.record(self.ref.key(J.PAY_PAID), self.ref.txn_id, self.ref.item_id, PAY, J.PAY_PAID,
                                   id_hash=self.ref.id_hash,
                                   refs={"order_id": order["order_id"], "amount_fen": order.get("amount_fen", 0),
                                         "session": self.session_id})

    def cancel(self) -> dict[str, Any]:
        """Cancel the order (journaled); an order paid meanwhile is recorded paid and returned. Raises KioskError.

        A cancel that fails is journaled failed: the order may still be paid later, and
        recovery's reconcile settles it.
        """
        assert self.order is not None
        journal, order_id = self.engine.journal, self.order["order_id"]
        key = self.ref.key(J.PAY_CANCEL)
        self.ref.begin(journal, key, PAY, J.PAY_CANCEL, {"order_id": order_id, "session": self.session_id})
        try:
            order = self.engine.backend.cancel_order(order_id, idempotency_key=key)
        except KioskError as err:
            journal.fail(key, err.code)
            raise
        self.order = order
        if order["status"] == "paid":  # paid between the last poll and the cancel
            journal.fail(key, "already_paid", {"order_status": "paid"})
            self.record_paid(order)
        else:
            journal.complete(key, {"order_status": order["status"]})
        return order


def refund(engine: WorkflowEngine, ref: TxnRef, order_id: str, cause: KioskError | None = None) -> bool:
    """Refund a paid order whose service could not be delivered (journaled); True when refunded.

    An order with nothing to give back (used by an operation, or never paid) settles the
    entry; any other failure leaves it begun, for the next recovery to ask again under the
    same key, and raises the refund_failed alarm.
    """
    journal = engine.journal
    key = ref.key(J.PAY_REFUND)
    existing = journal.get(key)
    if existing is not None and existing.state == J.DONE:
        return True
    ref.begin(journal, key, PRODUCE, J.PAY_REFUND, {"order_id": order_id})
    try:
        order = engine.backend.refund_order(order_id, idempotency_key=key)
    except OrderNotRefundable as err:
        journal.resolve(key, err.code)
        return False
    except KioskError as err:
        log.error("txn=%s refund of %s failed: %s (cause %s)", ref.txn_id, order_id, err.code,
                  cause.code if cause else "-")
        engine.alarm(REFUND_FAILED, ref)
        return False
    journal.complete(key, {"order_status": order.get("status", "")})
    return True
