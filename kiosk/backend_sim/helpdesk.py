"""The duty officer's help desk: residents' help requests from the terminals, their masked screenshots, answers.

A request belongs to the terminal that opened it (another terminal finds no such ticket). It
is ``open`` until the officer answers (``answered``, with the reply) or the kiosk cancels it
(``closed``: the resident no longer needs help or the session ended). Only the latest
screenshot of a request is kept: the officer needs to see where the resident is now, and
an older screen is nobody's business. Nothing personal is stored but the masked name a
resident agreed to share (王*明).
"""
from __future__ import annotations

import base64
import binascii
import sqlite3
from datetime import datetime
from typing import Any

from kiosk.backend_sim.db import iso

HELP_SCHEMA = """
CREATE TABLE IF NOT EXISTS help_requests (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket TEXT NOT NULL UNIQUE,
    terminal_id TEXT NOT NULL,
    status TEXT NOT NULL,
    screen TEXT NOT NULL,
    item_id TEXT NOT NULL DEFAULT '',
    step TEXT NOT NULL DEFAULT '',
    asked_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    identity_masked TEXT NOT NULL DEFAULT '',
    screenshot BLOB,
    screenshot_type TEXT NOT NULL DEFAULT '',
    screenshots INTEGER NOT NULL DEFAULT 0,
    reply TEXT,
    answered_at TEXT,
    closed_at TEXT);
"""
TICKET_DIGITS = 6
FIRST_TICKET = 100001  # six digits from the first ticket on


class HelpError(Exception):
    """A help request that does not exist for the caller, or a state that forbids the change (HTTP ``status``)."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


def _not_found() -> HelpError:
    return HelpError(404, "help_request_not_found", "未找到该求助。", "No such help request.")


def _image(screenshot: dict[str, Any] | None) -> tuple[bytes | None, str]:
    """The decoded image and its media type. Raises HelpError (400) for base64 that is not."""
    if not screenshot:
        return None, ""
    try:
        return base64.b64decode(screenshot["data_b64"], validate=True), str(screenshot["media_type"])
    except (binascii.Error, ValueError):
        raise HelpError(400, "bad_request", "截图数据不正确。", "The screenshot is not valid base64.") from None


def as_api(row: sqlite3.Row) -> dict[str, Any]:
    """A request as the terminal reads it: ``{ticket, status, reply?, answered_at?}``."""
    out: dict[str, Any] = {"ticket": row["ticket"], "status": row["status"]}
    if row["reply"] is not None:
        out["reply"] = row["reply"]
    if row["answered_at"] is not None:
        out["answered_at"] = row["answered_at"]
    return out


def as_record(row: sqlite3.Row) -> dict[str, Any]:
    """A request as the operator's page lists it (everything but the image)."""
    return {k: row[k] for k in ("ticket", "status", "terminal_id", "screen", "item_id", "step", "asked_at",
                                "received_at", "identity_masked", "reply", "answered_at", "closed_at",
                                "screenshots")}


def _row(conn: sqlite3.Connection, ticket: str, terminal_id: str | None) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM help_requests WHERE ticket = ?", (ticket,)).fetchone()
    if row is None or (terminal_id is not None and row["terminal_id"] != terminal_id):
        raise _not_found()
    return row


def open_request(conn: sqlite3.Connection, terminal_id: str, body: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A new open request from ``body`` (the API's request); its ticket and status."""
    image, media_type = _image(body.get("screenshot"))
    cur = conn.execute(
        "INSERT INTO help_requests (ticket, terminal_id, status, screen, item_id, step, asked_at, received_at,"
        " identity_masked, screenshot, screenshot_type, screenshots) VALUES ('', ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (terminal_id, body["screen"], body.get("item_id", ""), body.get("step", ""), body["asked_at"], iso(now),
         body.get("identity_masked", ""), image, media_type, 1 if image else 0))
    seq = int(cur.lastrowid or 0)
    ticket = f"{FIRST_TICKET + seq - 1:0{TICKET_DIGITS}d}"
    conn.execute("UPDATE help_requests SET ticket = ? WHERE seq = ?", (ticket, seq))
    return {"ticket": ticket, "status": "open"}


def get(conn: sqlite3.Connection, ticket: str, terminal_id: str | None) -> dict[str, Any]:
    """The request now; ``terminal_id`` None = the operator's side (any terminal's). Raises HelpError."""
    return as_api(_row(conn, ticket, terminal_id))


def cancel(conn: sqlite3.Connection, ticket: str, terminal_id: str, now: datetime) -> dict[str, Any]:
    """Close an open request (an answered or closed one stays as it is). Raises HelpError."""
    row = _row(conn, ticket, terminal_id)
    if row["status"] == "open":
        conn.execute("UPDATE help_requests SET status = 'closed', closed_at = ? WHERE ticket = ?", (iso(now), ticket))
    return get(conn, ticket, terminal_id)


def add_screenshot(conn: sqlite3.Connection, ticket: str, terminal_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Keep ``body``'s screenshot as the request's latest (only while it is open). Raises HelpError."""
    row = _row(conn, ticket, terminal_id)
    if row["status"] != "open":
        raise HelpError(409, "help_request_not_open", "该求助已结束。", "This help request is no longer open.")
    image, media_type = _image(body["screenshot"])
    conn.execute("UPDATE help_requests SET screenshot = ?, screenshot_type = ?, screenshots = screenshots + 1,"
                 " screen = ? WHERE ticket = ?", (image, media_type, body["screen"], ticket))
    return {"ticket": ticket, "status": "open"}


def answer(conn: sqlite3.Connection, ticket: str, reply: str, now: datetime) -> dict[str, Any]:
    """The officer's reply to an open request. Raises HelpError (404, or 409 when it is not open)."""
    row = _row(conn, ticket, None)
    if row["status"] != "open":
        raise HelpError(409, "help_request_not_open", "该求助已结束。", "This help request is no longer open.")
    conn.execute("UPDATE help_requests SET status = 'answered', reply = ?, answered_at = ? WHERE ticket = ?",
                 (reply.strip(), iso(now), ticket))
    return get(conn, ticket, None)


def records(conn: sqlite3.Connection, *, open_only: bool = False) -> list[dict[str, Any]]:
    """Every request (or only the open ones), newest first."""
    where = " WHERE status = 'open'" if open_only else ""
    return [as_record(r) for r in conn.execute(f"SELECT * FROM help_requests{where} ORDER BY seq DESC")]


def screenshot(conn: sqlite3.Connection, ticket: str) -> tuple[bytes, str] | None:
    """The request's latest screenshot and its media type (None without one)."""
    row = conn.execute("SELECT screenshot, screenshot_type FROM help_requests WHERE ticket = ?", (ticket,)).fetchone()
    if row is None or row["screenshot"] is None:
        return None
    return bytes(row["screenshot"]), row["screenshot_type"]
