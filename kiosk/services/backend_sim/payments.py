"""The payment gateway: QR orders and their life (pending → paid | cancelled | expired; paid → refunded).

A payment can arrive after the kiosk cancelled (or after expiry): the order then becomes
paid late, and reconciliation shows it so the kiosk can produce or refund.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

from kiosk.services.backend_sim.db import iso


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


def get(conn: sqlite3.Connection, order_id: str, now: datetime) -> dict[str, Any]:
    """The order (pending orders past their expiry become expired). Raises OrderError."""
    _expire(conn, now)
    row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
    if row is None:
        raise _not_found()
    return as_api(row)


def create(conn: sqlite3.Connection, *, terminal_id: str, item_id: str, amount_fen: int, reference: str,
           description: str, now: datetime, ttl_s: int) -> dict[str, Any]:
    """A new pending order with its QR payload."""
    seq = conn.execute("INSERT INTO sequences(prefix, value) VALUES ('PO', 1) ON CONFLICT(prefix)"
                       " DO UPDATE SET value = value + 1 RETURNING value").fetchone()[0]
    order_id = f"PO{now:%Y%m%d}{seq:08d}"
    qr = f"https://pay.ejt.example/qr/{order_id}?amount_fen={amount_fen}"
    conn.execute("INSERT INTO orders (order_id, terminal_id, item_id, amount_fen, reference, description, status,"
                 " qr_payload, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                 (order_id, terminal_id, item_id, amount_fen, reference, description, qr, iso(now),
                  iso(now + timedelta(seconds=ttl_s))))
    return get(conn, order_id, now)


def cancel(conn: sqlite3.Connection, order_id: str, now: datetime) -> tuple[dict[str, Any], bool]:
    """Cancel a pending order; (order in its resulting state, whether this call changed it). Raises OrderError."""
    order = get(conn, order_id, now)
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


def refund(conn: sqlite3.Connection, order_id: str, now: datetime) -> tuple[dict[str, Any], bool]:
    """Refund a paid order; (order, whether this call changed it). Raises OrderError."""
    order = get(conn, order_id, now)
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


def reconcile(conn: sqlite3.Connection, order_ids: list[str], now: datetime) -> list[dict[str, Any]]:
    """The current state of the known orders among ``order_ids``, in the order asked."""
    _expire(conn, now)
    out = []
    for order_id in dict.fromkeys(order_ids):
        row = conn.execute("SELECT * FROM orders WHERE order_id = ?", (order_id,)).fetchone()
        if row is not None:
            out.append(as_api(row))
    return out


def consume(conn: sqlite3.Connection, order_id: str, now: datetime) -> str | None:
    """Check that an order can pay for an operation: None if so, else the refusing rule."""
    try:
        order = get(conn, order_id, now)
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
