"""The payment gateway: QR orders and their life (pending → paid | cancelled | expired; paid → refunded).

A payment can arrive after the kiosk cancelled (or after expiry): the order then becomes
paid late, and reconciliation shows it so the kiosk can produce or refund.

An order belongs to the terminal that created it: another terminal can neither read,
cancel, refund, reconcile nor spend it (it is "not found" for them, so its existence is
not given away either). Order ids are 128 random bits, so one cannot be guessed from
another or from the date.
"""
from __future__ import annotations

import secrets
import sqlite3
from datetime import datetime, timedelta
from typing import Any

from kiosk.backend_sim.db import iso


class OrderError(Exception):
    """An order operation that its state forbids (HTTP 404 or 409 with ``code``)."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def _not_found() -> OrderError:
    return OrderError(404, "order_not_found", "未找到该支付订单。", "No such payment order.")


def as_api(row: sqlite3.Row) -> dict[str, Any]:
    """An orders row in the API's Order shape."""
    return {k: row[k] for k in ("order_id", "status", "amount_fen", "qr_payload", "expires_at", "item_id",
                                "reference", "description", "created_at", "paid_at", "refunded_at")}


def _expire(conn: sqlite3.Connection, now: datetime) -> None:
    conn.execute("UPDATE orders SET status = 'expired' WHERE status = 'pending' AND expires_at < ?", (iso(now),))


def get(conn: sqlite3.Connection, order_id: str, now: datetime, terminal_id: str | None = None) -> dict[str, Any]:
    """The order (pending orders past their expiry become expired); ``terminal_id`` set: only that
    terminal's own order (None: the payer's side, any order). Raises OrderError."""
    _expire(conn, now)
    row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    if row is None or (terminal_id is not None and row["terminal_id"] != terminal_id):
        raise _not_found()
    return as_api(row)


def new_order_id() -> str:
    """``PO`` and 32 hex digits: 128 random bits, nothing to count on."""
    return "PO" + secrets.token_hex(16).upper()


def create(conn: sqlite3.Connection, *, terminal_id: str, item_id: str, amount_fen: int, reference: str,
           description: str, now: datetime, ttl_s: int) -> dict[str, Any]:
    """A new pending order with its QR payload."""
    order_id = new_order_id()
    qr = f"https://pay.ejt.example/qr/{order_id}?amount_fen={amount_fen}"
    conn.execute("INSERT INTO orders (order_id, terminal_id, item_id, amount_fen, reference, description, status,"
                 " qr_payload, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                 (order_id, terminal_id, item_id, amount_fen, reference, description, qr, iso(now),
                  iso(now + timedelta(seconds=ttl_s))))
    return get(conn, order_id, now)


def cancel(conn: sqlite3.Connection, order_id: str, now: datetime,
           terminal_id: str | None = None) -> tuple[dict[str, Any], bool]:
    """Cancel a pending order; (order in its resulting state, whether this call changed it). Raises OrderError."""
    order = get(conn, order_id, now, terminal_id)
    if order["status"] != "pending":
        return order, False
    conn.execute("UPDATE orders SET status = 'cancelled' WHERE order_id = ?", (order_id,))
    return get(conn, order_id, now), True


def pay(conn: sqlite3.Connection, order_id: str, now: datetime) -> dict[str, Any]:
    """The resident's phone pays (late after a cancel or expiry is allowed). Raises OrderError."""
    order = get(conn, order_id, now)
    if order["status"] in ("paid", "refunded"):
        raise OrderError(409, "order_already_paid", "该订单已支付。", "This order is already paid.")
    conn.execute("UPDATE orders SET status = 'paid', paid_at = ? WHERE order_id = ?", (iso(now), order_id))
    return get(conn, order_id, now)


def expire(conn: sqlite3.Connection, order_id: str, now: datetime) -> dict[str, Any]:
    """Force a pending order past its expiry (simulator only). Raises OrderError."""
    order = get(conn, order_id, now)
    if order["status"] == "pending":
        conn.execute("UPDATE orders SET status = 'expired', expires_at = ? WHERE order_id = ?",
                     (iso(now), order_id))
    return get(conn, order_id, now)


def refund(conn: sqlite3.Connection, order_id: str, now: datetime,
           terminal_id: str | None = None) -> tuple[dict[str, Any], bool]:
    """Refund a paid order; (order, whether this call changed it). Raises OrderError."""
    order = get(conn, order_id, now, terminal_id)
    if order["status"] == "refunded":
        return order, False
    if order["status"] != "paid":
        raise OrderError(409, "order_not_refundable", "该订单未支付，无需退款。",
                         "This order is not paid, so there is nothing to refund.")
    row = conn.execute("SELECT consumed_by FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    if row["consumed_by"]:
        raise OrderError(409, "order_consumed", "该订单对应的业务已办结，不能退款。",
                         "The service this order paid for was delivered, so it cannot be refunded.")
    conn.execute("UPDATE orders SET status = 'refunded', refunded_at = ? WHERE order_id = ?", (iso(now), order_id))
    return get(conn, order_id, now), True


def reconcile(conn: sqlite3.Connection, order_ids: list[str], now: datetime,
              terminal_id: str | None = None) -> list[dict[str, Any]]:
    """The current state of the known orders among ``order_ids`` (``terminal_id``'s own only), in the order asked."""
    _expire(conn, now)
    out = []
    for order_id in dict.fromkeys(order_ids):
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is not None and (terminal_id is None or row["terminal_id"] == terminal_id):
            out.append(as_api(row))
    return out


def consume(conn: sqlite3.Connection, order_id: str, now: datetime, terminal_id: str | None = None) -> str | None:
    """Check that an order can pay for an operation at ``terminal_id``: None if so, else the refusing rule."""
    try:
        order = get(conn, order_id, now, terminal_id)
    except OrderError:
        return "payment_unknown"
    if order["status"] != "paid":
        return "payment_not_paid"
    row = conn.execute("SELECT consumed_by FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    if row["consumed_by"]:
        return "payment_already_used"
    return None


def mark_consumed(conn: sqlite3.Connection, order_id: str, reference: str) -> None:
    """Record which operation the order paid for."""
    conn.execute("UPDATE orders SET consumed_by = ? WHERE order_id = ?", (reference, order_id))
