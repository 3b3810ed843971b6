"""The simulator's SQLite database: infrastructure tables, seeding, and one lock around it.

One connection serves every request thread (``check_same_thread=False``); the lock makes
each API call one serialised transaction, which is what makes idempotency replays and
"exactly one effect" hold under concurrent retries.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

from kiosk.backend_sim import registry, seed
from kiosk.durable import SQLITE_CACHE_KIB

log = logging.getLogger(__name__)

CST = timezone(timedelta(hours=8), "CST")

INFRA_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sequences (prefix TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    terminal_id TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,          -- method, path and body hash of the first request
    status INTEGER NOT NULL,
    body BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (terminal_id, key)
);
CREATE TABLE IF NOT EXISTS nonces (     -- request nonces seen, kept until their timestamp leaves the skew window
    terminal_id TEXT NOT NULL,
    nonce TEXT NOT NULL,
    expires_at INTEGER NOT NULL,        -- unix seconds: the request's timestamp plus the allowed skew
    PRIMARY KEY (terminal_id, nonce)
);
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces (expires_at);
CREATE TABLE IF NOT EXISTS effects (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    terminal_id TEXT,
    idempotency_key TEXT,
    kind TEXT NOT NULL,                 -- operation, document, payment_order, payment_cancel, payment_paid, payment_refund
    operation TEXT,
    reference TEXT,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS documents (
    document_id TEXT PRIMARY KEY,
    doc_type TEXT NOT NULL,
    verification_code TEXT NOT NULL UNIQUE,
    title_zh TEXT NOT NULL,
    title_en TEXT NOT NULL,
    issued_at TEXT NOT NULL,
    content TEXT NOT NULL,              -- JSON
    qr_payload TEXT NOT NULL,
    signature TEXT NOT NULL,
    holder_id TEXT NOT NULL,            -- the holder's ID or travel document number ('' if none): a reprint
                                        -- proves it by an HMAC keyed from the calling terminal's secret
    holder_masked TEXT NOT NULL,
    item_id TEXT NOT NULL,
    reference TEXT
);
CREATE TABLE IF NOT EXISTS orders (
    order_id TEXT PRIMARY KEY,
    terminal_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    reference TEXT NOT NULL,
    description TEXT NOT NULL,
    status TEXT NOT NULL,               -- pending, paid, cancelled, expired, refunded
    qr_payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    paid_at TEXT,
    refunded_at TEXT,
    consumed_by TEXT                    -- the operation reference this payment paid for
);
"""


def now() -> datetime:
    """The simulator's clock: Beijing time, whole seconds."""
    return datetime.now(CST).replace(microsecond=0)


def iso(t: datetime) -> str:
    """RFC 3339 with offset."""
    return t.isoformat()


class Database:
    """The connection, its lock, and transaction helpers."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.conn.row_factory = sqlite3.Row
        self.conn.execute("PRAGMA foreign_keys = ON")
        self.conn.execute("PRAGMA secure_delete = ON")  # deleted answers are overwritten, not left in free pages
        if path != ":memory:":  # (in memory, the cache is the database)
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")  # the kiosk's stores' bound (kiosk.durable)
        self.lock = threading.RLock()

    @classmethod
    def open(cls, path: str | None) -> "Database":
        """Open (and on first use create and seed) the database; None means a fresh in-memory one."""
        db = cls(path or ":memory:")
        modules = registry.discover()
        with db.lock:
            db.conn.executescript(INFRA_SCHEMA)
            _migrate_documents(db.conn)
            seeded = db.conn.execute("SELECT value FROM meta WHERE key = 'seeded'").fetchone()
            if seeded is None:
                db.conn.execute("BEGIN")
                try:
                    _seed_records(db.conn, modules)
                    db.conn.execute("INSERT INTO meta VALUES ('seeded', ?)", (iso(now()),))
                    db.conn.execute("COMMIT")
                except BaseException:
                    _rollback(db.conn)
                    raise
        log.info("backend simulator database ready (%s, %d operation modules)", db.path, len(modules))
        return db

    def reseed_records(self) -> None:
        """Put the people and every operation's records back as first seeded.

        What residents did to their records (a fine paid, a certificate applied for) is undone;
        the simulator's own state (payments, documents, idempotency, fleet, CA) keeps its rows.
        For a demo station reset between visitors' tries, and for tests that need a known
        resident again after another test has used them up.
        """
        modules = registry.discover()
        scratch = sqlite3.connect(":memory:")
        try:
            seed.run_script(scratch, seed.CORE_SCHEMA)
            for module in modules:
                seed.run_script(scratch, getattr(module, "SCHEMA", ""))
            tables = [row[0] for row in scratch.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        finally:
            scratch.close()
        with self.lock:
            self.conn.execute("PRAGMA foreign_keys = OFF")  # the tables reference each other; all go together
            try:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    for table in tables:
                        self.conn.execute(f'DROP TABLE IF EXISTS "{table}"')
                    _seed_records(self.conn, modules)
                    self.conn.execute("COMMIT")
                except BaseException:
                    _rollback(self.conn)
                    raise
            finally:
                self.conn.execute("PRAGMA foreign_keys = ON")
        log.info("backend simulator records reseeded (%d tables)", len(tables))

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and run a transaction that commits on normal exit, rolls back otherwise."""
        with self.lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                _rollback(self.conn)
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        """Close the connection."""
        with self.lock:
            self.conn.close()


def _rollback(conn: sqlite3.Connection) -> None:
    """Undo the transaction under way, if one still is. A signal handler's exception (the soak's SIGTERM, Ctrl-C) can
    come just after a COMMIT went through: a ROLLBACK then fails ("no transaction is active") and its error would
    replace the exception that was on its way out (the soak stopped by SIGTERM exited 1 instead of 143)."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _seed_records(conn: sqlite3.Connection, modules: list[Any]) -> None:
    """The people tables and every operation module's tables, created and seeded (inside the caller's transaction)."""
    seed.seed_core(conn)
    for module in modules:
        seed.run_script(conn, getattr(module, "SCHEMA", ""))
    for module in modules:
        if hasattr(module, "seed"):
            module.seed(conn)


def _migrate_documents(conn: sqlite3.Connection) -> None:
    """A database from before keyed reprint lookups: its unsalted ``id_hash`` becomes ``holder_id``.

    The holder of each older document is found again among the residents by that hash; a
    document whose holder is not a resident (a travel document) can no longer be reprinted.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(documents)")}
    if "id_hash" not in columns:
        return
    by_hash = {hashlib.sha256(row[0].encode("utf-8")).hexdigest(): row[0]
               for row in conn.execute("SELECT id_number FROM residents")} if _has_table(conn, "residents") else {}
    conn.execute("BEGIN")
    try:
        conn.execute("ALTER TABLE documents ADD COLUMN holder_id TEXT NOT NULL DEFAULT ''")
        for document_id, old_hash in conn.execute("SELECT document_id, id_hash FROM documents").fetchall():
            conn.execute("UPDATE documents SET holder_id = ? WHERE document_id = ?",
                         (by_hash.get(old_hash, ""), document_id))
        conn.execute("ALTER TABLE documents DROP COLUMN id_hash")
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    log.info("documents table migrated to keyed reprint lookups")


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def record_effect(conn: sqlite3.Connection, *, terminal_id: str | None, idempotency_key: str | None,
                  kind: str, operation: str | None, reference: str | None) -> None:
    """Append one side effect to the log the tests read at GET /sim/effects."""
    conn.execute("INSERT INTO effects (terminal_id, idempotency_key, kind, operation, reference, at)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (terminal_id, idempotency_key, kind, operation, reference, iso(now())))


def effects(conn: sqlite3.Connection, kind: str | None = None) -> list[dict[str, Any]]:
    """The side-effect log, oldest first."""
    sql = "SELECT terminal_id, idempotency_key, kind, operation, reference, at FROM effects"
    rows = conn.execute(sql + (" WHERE kind = ?" if kind else "") + " ORDER BY seq", (kind,) if kind else ())
    return [dict(r) for r in rows]


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, the one encoding every answer uses."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
