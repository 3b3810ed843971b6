"""The simulator's fleet side: enrolled terminals, enrollment codes, secret rotation, revocation,
heartbeats and the remote commands queued for each terminal.

A terminal's HMAC secret lives here once it is enrolled (the demo terminal keeps the fixed
demo secret from the settings). During a rotation the terminal holds two secrets: the
current one and the pending one it was just given; both verify until the terminal confirms
with a request signed by the new one, which retires the old. A revoked terminal's requests
are answered with a typed ``terminal_revoked`` error (signed, so the terminal can trust it).

Enrollment codes are one-time and never stored in clear: the database keeps
``sha256(code)``, which is also the HMAC key the enrolling terminal signs its request with
(so the code itself never crosses the wire) and the key the answer is signed with.
"""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kiosk.services import signing
from kiosk.backend_sim.db import iso, now

FLEET_SCHEMA = """
CREATE TABLE IF NOT EXISTS terminals (
    terminal_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,               -- the HMAC secret as given to the terminal (hex text)
    pending_secret TEXT,                -- issued by a rotation, not yet confirmed
    status TEXT NOT NULL,               -- active, revoked
    cert_serial TEXT,                   -- upper-case hex serial of the current client certificate
    enrolled_at TEXT NOT NULL,
    rotated_at TEXT,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS enrollment_codes (
    code_key TEXT PRIMARY KEY,          -- hex sha256 of the code: the HMAC key of the enrollment call
    terminal_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at TEXT
);
CREATE TABLE IF NOT EXISTS heartbeats (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL                  -- JSON as sent (device states, supplies, disk, memory, no personal data)
);
CREATE TABLE IF NOT EXISTS commands (
    command_id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,              -- the signed compact JSON
    signature TEXT NOT NULL,            -- base64 Ed25519 over payload
    issued_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    delivered_at TEXT,
    acked_at TEXT,
    ack_status TEXT,
    ack_reason TEXT
);
"""

COMMAND_KINDS = ("restart", "enter_maintenance", "leave_maintenance", "out_of_service_notice", "reprint",
                 "update_now")


def code_key(code: str) -> bytes:
    """The HMAC key an enrollment code stands for (both sides derive it; the backend stores its hex)."""
    return hashlib.sha256(code.strip().encode("utf-8")).digest()


@dataclass(frozen=True)
class Credentials:
    """What authenticates one terminal: its secrets (current first), status and certificate serial."""

    secrets: tuple[bytes, ...]
    revoked: bool = False
    cert_serial: str | None = None
    enrolled: bool = False


class TerminalDirectory:
    """Who may call: the fixed terminals of the settings plus those enrolled in the database."""

    def __init__(self, conn: sqlite3.Connection, lock: threading.RLock, static: dict[str, bytes]) -> None:
        self._conn = conn
        self._lock = lock
        self.static = static

    def credentials(self, terminal_id: str) -> Credentials | None:
        """The credentials of ``terminal_id``, or None when it is unknown."""
        with self._lock:
            row = self._conn.execute("SELECT secret, pending_secret, status, cert_serial FROM terminals"
                                     " WHERE terminal_id = ?", (terminal_id,)).fetchone()
        if row is not None:
            keys = tuple(s.encode() for s in (row["secret"], row["pending_secret"]) if s)
            return Credentials(keys, row["status"] == "revoked", row["cert_serial"], True)
        secret = self.static.get(terminal_id)
        return Credentials((secret,)) if secret is not None else None

    def enrollment_keys(self, terminal_id: str) -> list[bytes]:
        """The HMAC keys of every enrollment code issued for ``terminal_id`` (used or not)."""
        with self._lock:
            rows = self._conn.execute("SELECT code_key FROM enrollment_codes WHERE terminal_id = ?",
                                      (terminal_id,)).fetchall()
        return [bytes.fromhex(r["code_key"]) for r in rows]


class FleetError(Exception):
    """A fleet request the backend refuses: HTTP ``status`` with a typed code and both messages."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(code)
        self.status, self.code, self.message_zh, self.message_en = status, code, message_zh, message_en


# --- operator side ----------------------------------------------------------------------------
def new_enrollment_code(conn: sqlite3.Connection, terminal_id: str, ttl_s: int = 86400) -> dict[str, Any]:
    """Issue a one-time code for ``terminal_id``; the code is returned once and stored only hashed."""
    code = "-".join(secrets.token_hex(3).upper() for _ in range(4))
    t = now()
    expires = t + timedelta(seconds=ttl_s)
    conn.execute("INSERT INTO enrollment_codes VALUES (?, ?, ?, ?, NULL)",
                 (code_key(code).hex(), terminal_id, iso(t), iso(expires)))
    return {"code": code, "terminal_id": terminal_id, "expires_at": iso(expires)}


def revoke(conn: sqlite3.Connection, terminal_id: str) -> dict[str, Any]:
    """Mark an enrolled terminal revoked (a stolen terminal): its requests are refused from now on."""
    row = conn.execute("SELECT status FROM terminals WHERE terminal_id = ?", (terminal_id,)).fetchone()
    if row is None:
        raise FleetError(404, "unknown_terminal", "终端未登记。", "This terminal is not enrolled.")
    conn.execute("UPDATE terminals SET status = 'revoked', revoked_at = ?, pending_secret = NULL"
                 " WHERE terminal_id = ?", (iso(now()), terminal_id))
    return {"terminal_id": terminal_id, "status": "revoked"}


def queue_command(conn: sqlite3.Connection, private_key: Any, terminal_id: str, kind: str,
                  args: dict[str, Any], ttl_s: int = 600) -> dict[str, Any]:
    """Sign and queue one remote command for ``terminal_id``; it rides on the next heartbeat answers."""
    if kind not in COMMAND_KINDS:
        raise FleetError(400, "bad_request", "未知的远程指令。", f"Unknown command kind {kind!r}.")
    t = now()
    command_id = "C" + secrets.token_hex(12)
    payload = json.dumps({"command_id": command_id, "terminal_id": terminal_id, "kind": kind, "args": args,
                          "issued_at": iso(t), "expires_at": iso(t + timedelta(seconds=ttl_s))},
                         ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    signature = signing.sign_document(private_key, payload)
    conn.execute("INSERT INTO commands (command_id, terminal_id, kind, payload, signature, issued_at, expires_at)"
                 " VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (command_id, terminal_id, kind, payload, signature, iso(t), iso(t + timedelta(seconds=ttl_s))))
    return {"command_id": command_id, "payload": payload, "signature": signature}


# --- terminal side (the API) -------------------------------------------------------------------
def enroll(conn: sqlite3.Connection, terminal_id: str, key_hex: str, issue: Any) -> dict[str, Any]:
    """Use the enrollment code whose key is ``key_hex``: register the terminal and return its credentials.

    ``issue(terminal_id)`` signs the CSR and returns an IssuedCertificate. Raises FleetError.
    """
    row = conn.execute("SELECT * FROM enrollment_codes WHERE code_key = ?", (key_hex,)).fetchone()
    if row is None or row["terminal_id"] != terminal_id:
        raise FleetError(401, "enrollment_code_invalid", "登记码无效。", "The enrollment code is not valid.")
    if row["used_at"]:
        raise FleetError(409, "enrollment_code_used", "该登记码已使用过，请向管理员申请新的登记码。",
                         "This enrollment code was already used. Ask the operator for a new code.")
    t = now()
    if datetime.fromisoformat(row["expires_at"]) <= t:
        raise FleetError(401, "enrollment_code_expired", "登记码已过期，请向管理员申请新的登记码。",
                         "This enrollment code has expired. Ask the operator for a new code.")
    issued = issue(terminal_id)
    secret = secrets.token_hex(32)
    conn.execute("INSERT INTO terminals (terminal_id, secret, pending_secret, status, cert_serial, enrolled_at)"
                 " VALUES (?, ?, NULL, 'active', ?, ?) ON CONFLICT (terminal_id) DO UPDATE SET"
                 " secret = excluded.secret, pending_secret = NULL, status = 'active',"
                 " cert_serial = excluded.cert_serial, enrolled_at = excluded.enrolled_at, revoked_at = NULL",
                 (terminal_id, secret, issued.serial_hex, iso(t)))
    conn.execute("UPDATE enrollment_codes SET used_at = ? WHERE code_key = ?", (iso(t), key_hex))
    return {"hmac_secret": secret, "certificate_pem": issued.pem.decode("ascii"),
            "certificate_not_after": iso(issued.not_after.astimezone(t.tzinfo))}


def start_rotation(conn: sqlite3.Connection, terminal_id: str) -> dict[str, Any]:
    """Give the terminal a new secret; the old one keeps working until the terminal confirms. Raises FleetError."""
    row = conn.execute("SELECT status FROM terminals WHERE terminal_id = ?", (terminal_id,)).fetchone()
    if row is None:
        raise FleetError(409, "not_enrolled", "该终端使用固定密钥，不能轮换。",
                         "This terminal uses a fixed secret and was never enrolled; it cannot rotate it.")
    secret = secrets.token_hex(32)
    conn.execute("UPDATE terminals SET pending_secret = ? WHERE terminal_id = ?", (secret, terminal_id))
    return {"hmac_secret": secret}


def confirm_rotation(conn: sqlite3.Connection, terminal_id: str, signed_with: bytes) -> dict[str, Any]:
    """Make the pending secret the only one; the request must be signed with it. Raises FleetError."""
    row = conn.execute("SELECT pending_secret FROM terminals WHERE terminal_id = ?", (terminal_id,)).fetchone()
    if row is None or not row["pending_secret"]:
        raise FleetError(409, "no_rotation_pending", "没有待确认的密钥轮换。", "No secret rotation is pending.")
    if row["pending_secret"].encode() != signed_with:
        raise FleetError(409, "rotation_needs_new_secret", "请使用新密钥签名确认。",
                         "Confirm the rotation with a request signed by the new secret.")
    t = now()
    conn.execute("UPDATE terminals SET secret = pending_secret, pending_secret = NULL, rotated_at = ?"
                 " WHERE terminal_id = ?", (iso(t), terminal_id))
    return {"status": "rotated", "rotated_at": iso(t)}


def store_heartbeat(conn: sqlite3.Connection, terminal_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Keep a heartbeat, record the command acks it carries, and hand back the commands still due."""
    t = now()
    conn.execute("INSERT INTO heartbeats (terminal_id, sent_at, received_at, body) VALUES (?, ?, ?, ?)",
                 (terminal_id, body["sent_at"], iso(t), json.dumps(body, ensure_ascii=False, sort_keys=True)))
    for ack in body.get("acked_commands", []):
        conn.execute("UPDATE commands SET acked_at = ?, ack_status = ?, ack_reason = ? WHERE command_id = ?"
                     " AND terminal_id = ? AND acked_at IS NULL",
                     (iso(t), ack["status"], ack.get("reason", ""), ack["command_id"], terminal_id))
    due = conn.execute("SELECT command_id, payload, signature, expires_at FROM commands WHERE terminal_id = ?"
                       " AND acked_at IS NULL ORDER BY issued_at, rowid", (terminal_id,)).fetchall()
    commands = [{"payload": r["payload"], "signature": r["signature"]} for r in due
                if datetime.fromisoformat(r["expires_at"]) > t]
    conn.executemany("UPDATE commands SET delivered_at = COALESCE(delivered_at, ?) WHERE command_id = ?",
                     [(iso(t), r["command_id"]) for r in due])
    return {"received_at": iso(t), "commands": commands}


# --- what the operator sees --------------------------------------------------------------------
def heartbeats(conn: sqlite3.Connection, terminal_id: str | None = None) -> list[dict[str, Any]]:
    """Stored heartbeats, oldest first."""
    sql = "SELECT terminal_id, sent_at, received_at, body FROM heartbeats"
    rows = conn.execute(sql + (" WHERE terminal_id = ?" if terminal_id else "") + " ORDER BY seq",
                        (terminal_id,) if terminal_id else ())
    return [{"terminal_id": r["terminal_id"], "sent_at": r["sent_at"], "received_at": r["received_at"],
             "heartbeat": json.loads(r["body"])} for r in rows]


def unused_enrollment_codes(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Enrollment codes issued and not used yet (expired ones included, marked by ``expires_at``), newest first."""
    rows = conn.execute("SELECT terminal_id, created_at, expires_at FROM enrollment_codes WHERE used_at IS NULL"
                        " ORDER BY created_at DESC, rowid DESC").fetchall()
    return [{"terminal_id": r["terminal_id"], "created_at": r["created_at"], "expires_at": r["expires_at"]}
            for r in rows]


def terminal_rows(conn: sqlite3.Connection, static: dict[str, bytes]) -> list[dict[str, Any]]:
    """Every terminal the backend knows (enrolled, fixed, or heard from), with its latest heartbeat."""
    ids = set(static)
    ids.update(r[0] for r in conn.execute("SELECT terminal_id FROM terminals"))
    ids.update(r[0] for r in conn.execute("SELECT DISTINCT terminal_id FROM heartbeats"))
    out = []
    for tid in sorted(ids):
        reg = conn.execute("SELECT status, enrolled_at, rotated_at, revoked_at, pending_secret IS NOT NULL AS rotating"
                           " FROM terminals WHERE terminal_id = ?", (tid,)).fetchone()
        # The state is the newest heartbeat the terminal made (queued ones arrive late, out of order);
        # the age is from the last time anything arrived.
        last = conn.execute("SELECT body FROM heartbeats WHERE terminal_id = ?"
                            " ORDER BY json_extract(body, '$.seq') DESC, seq DESC LIMIT 1", (tid,)).fetchone()
        heard = conn.execute("SELECT MAX(received_at) FROM heartbeats WHERE terminal_id = ?", (tid,)).fetchone()[0]
        out.append({
            "terminal_id": tid,
            "status": reg["status"] if reg else "active",
            "enrolled": reg is not None,
            "enrolled_at": reg["enrolled_at"] if reg else None,
            "rotation_pending": bool(reg["rotating"]) if reg else False,
            "revoked_at": reg["revoked_at"] if reg else None,
            "last_heartbeat_at": heard,
            "last_heartbeat": json.loads(last["body"]) if last else None,
        })
    return out
