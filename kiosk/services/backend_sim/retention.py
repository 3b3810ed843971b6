"""How long the simulator keeps the answers it stored for idempotency: the idempotency window.

A stored answer is the whole response to a terminal's POST, so it can hold a resident's name,
ID number and address (an identity lookup, an operation's display lines and document). It is
kept for ``SimSettings.idempotency_window_s`` (24 h by default: far beyond any retry or crash
recovery of a kiosk) and then deleted; a key used again after that counts as a new request.
SQLite runs with ``secure_delete`` so the deleted rows are overwritten rather than left in free
pages, and the write-ahead log is checkpointed and truncated after a purge so no older copy of
those pages stays in it.
"""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from flask import Flask

from kiosk.services.backend_sim.db import Database, iso

log = logging.getLogger("kiosk.backend_sim")

DEFAULT_WINDOW_S = 24 * 3600


def purge_expired_answers(db: Database, window_s: float, now: datetime) -> int:
    """Delete the stored answers older than ``window_s``; returns how many went."""
    cutoff = iso(now - timedelta(seconds=window_s))
    with db.transaction() as conn:
        gone = conn.execute("DELETE FROM idempotency WHERE created_at <= ?", (cutoff,)).rowcount
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
