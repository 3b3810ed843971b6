"""The backend's payment ledger reconciled with the kiosk's journal: every charge delivered or refunded, none twice.

A charge is an order of this terminal the resident paid (``paid_at`` set). The backend says it
was delivered when an operation consumed it (``consumed_by``) and refunded when its status is
``refunded``; the journal says so with a done ``operate`` entry naming the order
and a done ``pay_refund`` entry. The order's ``reference`` is the kiosk's transaction id, which
is how the two books meet. A mismatch is one of:

- ``undelivered``: charged, neither delivered nor refunded;
- ``delivered_and_refunded``: both (the resident got the service and the money back);
- ``charged_twice``: a transaction with more than one charge that was not refunded;
- ``consumed_twice``: two orders paying for one operation;
- ``unknown_to_journal``: a charge whose order the journal never recorded;
- ``delivery_not_journaled`` / ``refund_not_journaled``: the backend did it, the journal does not say so;
- ``journal_paid_not_charged``: the journal recorded a payment the backend does not have.
"""
from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kiosk.services import journal as J

@dataclass(frozen=True)
class LedgerMismatch:
    """One disagreement between the payment ledger and the journal."""

    problem: str
    order_id: str
    txn_id: str

    def to_dict(self) -> dict[str, str]:
        """The mismatch as JSON-ready fields."""
        return asdict(self)


def charged_orders(db_path: str | Path, terminal_id: str) -> list[dict[str, Any]]:
    """Every order of ``terminal_id`` in the simulator database at ``db_path`` that was paid."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        rows = conn.execute("SELECT order_id, reference, status, amount_fen, paid_at, consumed_by FROM orders"
                            " WHERE terminal_id = ? AND paid_at IS NOT NULL ORDER BY created_at", (terminal_id,))
        return [dict(row) for row in rows]
    finally:
        conn.close()


def reconcile(db_path: str | Path, journal: J.Journal, terminal_id: str) -> list[LedgerMismatch]:
    """Every mismatch between the simulator's payments table and ``journal`` (empty when the books agree)."""
    orders = charged_orders(db_path, terminal_id)
    entries = journal.entries()
    known: set[str] = set()
    paid_in_journal: dict[str, str] = {}
    delivered: set[str] = set()
    refunded: set[str] = set()
    for e in entries:
        order_id = str(e.refs.get("order_id") or "")
        if not order_id:
            continue
        if e.kind in (J.PAY_CREATE, J.PAY_PAID, J.PAY_CANCEL):
            known.add(order_id)
        if e.kind == J.PAY_PAID:
            paid_in_journal[order_id] = e.txn_id
        elif e.kind == J.OPERATE and e.state == J.DONE:  # done after an unknown outcome too (refs keep "unknown")
            delivered.add(order_id)
        elif e.kind == J.PAY_REFUND and e.state == J.DONE:
            refunded.add(order_id)
    mismatches: list[LedgerMismatch] = []
    open_charges: dict[str, list[str]] = {}
    consumers: dict[str, list[str]] = {}
    for order in orders:
        oid, txn = order["order_id"], order["reference"]
        is_delivered = bool(order["consumed_by"])
        is_refunded = order["status"] == "refunded"
        problems = []
        if not is_delivered and not is_refunded:
            problems.append("undelivered")
        if is_delivered and is_refunded:
            problems.append("delivered_and_refunded")
        if oid not in known and oid not in paid_in_journal:
            problems.append("unknown_to_journal")
        if is_delivered and oid not in delivered:
            problems.append("delivery_not_journaled")
        if is_refunded and oid not in refunded:
            problems.append("refund_not_journaled")
        mismatches += [LedgerMismatch(p, oid, txn) for p in problems]
        if not is_refunded:
            open_charges.setdefault(txn, []).append(oid)
        if is_delivered:
            consumers.setdefault(order["consumed_by"], []).append(oid)
    for txn, oids in open_charges.items():
        if len(oids) > 1:
            mismatches += [LedgerMismatch("charged_twice", oid, txn) for oid in oids[1:]]
    for oids in consumers.values():
        if len(oids) > 1:
            mismatches += [LedgerMismatch("consumed_twice", oid, "") for oid in oids[1:]]
    charged = {o["order_id"] for o in orders}
    mismatches += [LedgerMismatch("journal_paid_not_charged", oid, txn)
                   for oid, txn in paid_in_journal.items() if oid not in charged]
    return mismatches
