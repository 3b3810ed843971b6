"""How long the simulator keeps the answers it stored for idempotency: the idempotency window.

A stored answer is the whole response to a terminal's POST, so it can hold a resident's name,
ID number and address (an identity lookup, an operation's display lines and document). It is
kept for ``SimSettings.idempotency_window_s`` (24 h by default: far beyond any retry or crash
recovery of a kiosk) and then deleted. An operation's answer is not deleted but cut down to what
holds no personal data (the reference and the refusal rule), marked expired: `POST /outcomes` must
still say "performed" for a key whose answer is gone, or a kiosk settling it after a long outage
would refund a service that was delivered; a request sent again with that key is refused as
expired (409 ``answer_expired``), never performed a second time.
SQLite runs with ``secure_delete`` so the deleted rows are overwritten rather than left in free
pages, and the write-ahead log is checkpointed and truncated after a purge so no older copy of
those pages stays in it.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from kiosk.backend_sim.db import Database, dumps, iso

log = logging.getLogger("kiosk.backend_sim")

DEFAULT_WINDOW_S = 24 * 3600


EXPIRED = "_expired"  # marks a stored operation answer cut down after the window


def expired_answer(status: int, body: dict[str, Any]) -> dict[str, Any]:
    """What is kept of an operation's stored answer after the window: no display, document or data."""
    if status == 200:
        return {EXPIRED: True, "operation": body.get("operation", ""), "item_id": body.get("item_id", ""),
                "reference": body.get("reference", ""), "display": [], "document": None, "data": {}}
    error = body.get("error", {})
    return {EXPIRED: True, "error": {k: error[k] for k in ("code", "rule", "message_zh", "message_en",
                                                            "where_zh", "where_en") if k in error}}


def purge_expired_answers(db: Database, window_s: float, now: datetime) -> int:
    """Forget the stored answers older than ``window_s`` (operations: cut down); returns how many."""
    cutoff = iso(now - timedelta(seconds=window_s))
    operations = "post /api/v1/operations/%"
    with db.transaction() as conn:
        rows = conn.execute("SELECT terminal_id, key, status, body FROM idempotency WHERE created_at <= ? "
                            "AND fingerprint LIKE ?", (cutoff, operations)).fetchall()
        cut = 0
        for row in rows:
            body = json.loads(row["body"])
            if body.get(EXPIRED):
                continue
            conn.execute("UPDATE idempotency SET body = ? WHERE terminal_id = ? AND key = ?",
                         (dumps(expired_answer(row["status"], body)), row["terminal_id"], row["key"]))
            cut += 1
        gone = cut + conn.execute("DELETE FROM idempotency WHERE created_at <= ? AND fingerprint NOT LIKE ?",
                                  (cutoff, operations)).rowcount
    if gone and db.path != ":memory:":
        with db.lock:
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    if gone:
        log.info("purged %d stored idempotent answers older than %d s", gone, window_s)
    return gone


def install(app: Flask, db: Database, window_s: float, clock: Any) -> None:
    """Purge before requests, at most every quarter window (and at least once a minute)."""
    every = min(60.0, window_s / 4)
    last = [0.0]
    guard = threading.Lock()

    @app.before_request
    def purge_stored_answers() -> None:
        started = time.monotonic()
        with guard:
            if started - last[0] < every:
                return
            last[0] = started
        purge_expired_answers(db, window_s, clock())
