"""The ledger reconciliation on a real simulator database and a real journal: the books agree, or it says where not."""
from __future__ import annotations

from datetime import datetime

import pytest

from kiosk.backend_sim import payments
from kiosk.backend_sim.db import CST
from kiosk.backend_sim.server import serve
from kiosk.services import journal as J
from kiosk.soak.ledger import LedgerMismatch, reconcile

TERMINAL = "JN-SOAK-0001"


@pytest.fixture
def books(tmp_path):
    """A running simulator with its database on disk, and a journal; stopped after the test."""
    sim = serve("127.0.0.1", 0, db_path=str(tmp_path / "sim.sqlite3"))
    journal = J.Journal(tmp_path / "state")
    try:
        yield sim, journal
    finally:
        journal.close()
        sim.stop()


def _charge(sim, journal, txn: str, *, delivered: bool = False, refunded: bool = False, journaled: bool = True) -> str:
    """One order paid by the resident, as the kiosk and the backend record it; its order id."""
    now = datetime.now(CST).replace(microsecond=0)
    db = sim.app.db
    with db.lock:
        order = payments.create(db.conn, terminal_id=TERMINAL, item_id="H01", amount_fen=2000, reference=txn,
                                description="soak", now=now, ttl_s=600)
        oid = order["order_id"]
        payments.pay(db.conn, oid, now)
        if delivered:
            payments.mark_consumed(db.conn, oid, f"REF-{oid[-6:]}")
        if refunded:
            payments.refund(db.conn, oid, now)
    if not journaled:
        return oid
    journal.record(f"{oid}-paid", txn, "H01", "pay", J.PAY_PAID, refs={"order_id": oid, "amount_fen": 2000})
    if delivered:
        journal.begin(f"{oid}-op", txn, "H01", "produce", J.OPERATE, refs={"order_id": oid})
        journal.complete(f"{oid}-op", {"reference": f"REF-{oid[-6:]}"})
    if refunded:
        journal.begin(f"{oid}-refund", txn, "H01", "produce", J.PAY_REFUND, refs={"order_id": oid})
        journal.complete(f"{oid}-refund", {"order_status": "refunded"})
    return oid


def test_books_that_agree_have_no_mismatch(books):
    sim, journal = books
    _charge(sim, journal, "txn-delivered", delivered=True)
    _charge(sim, journal, "txn-refunded", refunded=True)
    assert reconcile(sim.app.db.path, journal, TERMINAL) == []


def test_a_planted_double_charge_and_an_undelivered_charge_are_found(books):
    sim, journal = books
    _charge(sim, journal, "txn-fine", delivered=True)
    first = _charge(sim, journal, "txn-twice", delivered=True)
    second = _charge(sim, journal, "txn-twice")  # the same visit charged again, never delivered nor refunded
    lost = _charge(sim, journal, "txn-lost")  # paid, then nothing
    found = reconcile(sim.app.db.path, journal, TERMINAL)
    assert sorted(found, key=lambda m: (m.problem, m.order_id)) == sorted([
        LedgerMismatch("undelivered", second, "txn-twice"),
        LedgerMismatch("charged_twice", second, "txn-twice"),
        LedgerMismatch("undelivered", lost, "txn-lost"),
    ], key=lambda m: (m.problem, m.order_id))
    assert first not in {m.order_id for m in found}


def test_a_charge_the_journal_never_saw_and_a_delivery_it_does_not_record_are_found(books):
    sim, journal = books
    unseen = _charge(sim, journal, "txn-unseen", refunded=True, journaled=False)
    now = datetime.now(CST).replace(microsecond=0)
    with sim.app.db.lock:  # delivered at the backend, the journal's operation never completed
        order = payments.create(sim.app.db.conn, terminal_id=TERMINAL, item_id="H01", amount_fen=500,
                                reference="txn-open", description="soak", now=now, ttl_s=600)
        payments.pay(sim.app.db.conn, order["order_id"], now)
        payments.mark_consumed(sim.app.db.conn, order["order_id"], "REF-OPEN")
    journal.record("open-paid", "txn-open", "H01", "pay", J.PAY_PAID, refs={"order_id": order["order_id"]})
    journal.begin("open-op", "txn-open", "H01", "produce", J.OPERATE, refs={"order_id": order["order_id"]})
    problems = {(m.problem, m.order_id) for m in reconcile(sim.app.db.path, journal, TERMINAL)}
    assert problems == {("unknown_to_journal", unseen), ("refund_not_journaled", unseen),
                        ("delivery_not_journaled", order["order_id"])}


def test_a_payment_the_journal_holds_and_the_backend_never_charged_this_terminal_is_found(books):
    sim, journal = books
    oid = _charge(sim, journal, "txn-elsewhere", delivered=True)
    # Read as another terminal's books: that charge is not theirs, the journal's payment is unmatched.
    assert reconcile(sim.app.db.path, journal, "JN-OTHER-0002") == [
        LedgerMismatch("journal_paid_not_charged", oid, "txn-elsewhere")]
