"""The side-effect journal: every submit, payment and print, before and after it happens.

SQLite in WAL mode at ``<state_dir>/journal.sqlite3``. Each side effect is one row keyed
by its idempotency key: ``begin`` writes it before the effect (state ``begun``),
``complete`` after (state ``done``, with the backend's references), ``fail`` when the
effect did not happen or a printer refused it. Start-up recovery reads what is still
``begun`` and resumes or compensates it (see ``kiosk.services.workflow.recovery.recover``).

What the journal may hold: item id, step, effect kind, backend references (case
reference, payment order id, amount, document id, verification code) and
``id_hash`` = HMAC-SHA256(per-terminal salt, ID number). Never names, ID numbers,
addresses or document content: ``complete`` and ``begin`` refuse any ref key outside
``ALLOWED_REFS`` so a careless caller cannot leak them here.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

from kiosk.durable import connect_sqlite, write_atomic
from kiosk.errors import KioskError

# The shared durable write, under the name the journal's callers have long imported.
atomic_write = write_atomic

SALT_FILE = "journal.salt"
RETENTION_S = 30 * 24 * 3600  # settled transactions older than this are deleted at start-up
DB_FILE = "journal.sqlite3"

# Effect kinds, in the order a transaction meets them.
OPERATE = "operate"
PAY_CREATE = "pay_create"
PAY_PAID = "pay_paid"
PAY_CANCEL = "pay_cancel"
PAY_REFUND = "pay_refund"
PRINT_A4 = "print_a4"
PRINT_RECEIPT = "print_receipt"
# A resident's call to the duty officer: recorded done once the backend gave a ticket (never
# begun, so recovery has nothing to resume), resolved answered | cancelled | session_ended.
HELP_REQUEST = "help_request"
KINDS = frozenset({OPERATE, PAY_CREATE, PAY_PAID, PAY_CANCEL, PAY_REFUND, PRINT_A4, PRINT_RECEIPT, HELP_REQUEST})

# States of one entry.
BEGUN = "begun"          # written before the effect; the effect may or may not have happened
DONE = "done"            # the effect happened
FAILED = "failed"        # the effect did not happen (or a printer refused the job)
RESOLVED = "resolved"    # recovery or a reprint settled it (printed later, compensated, dropped)
STATES = frozenset({BEGUN, DONE, FAILED, RESOLVED})

# References the journal may keep. All are backend-issued or amounts; none is personal.
ALLOWED_REFS = frozenset({
    "reference", "order_id", "order_status", "amount_fen", "document_id", "doc_type",
    "verification_code", "job_id", "receipt_kind", "operation", "session", "of_key",
    "resolution", "description", "outcome",
})


class JournalError(KioskError):
    """The journal could not be written or read (disk full, corrupt database)."""

    code = "journal_error"
    message_en = "The terminal cannot record this transaction safely. Please ask the staff for help."


@dataclass(frozen=True)
class Entry:
    """One journaled side effect."""

    key: str
    txn_id: str
    item_id: str
    step: str
    kind: str
    state: str
    id_hash: str
    refs: Mapping[str, Any] = field(default_factory=dict)
    code: str = ""
    created_at: float = 0.0
    updated_at: float = 0.0


def _check_refs(refs: Mapping[str, Any]) -> dict[str, Any]:
    bad = sorted(set(refs) - ALLOWED_REFS)
    if bad:
        raise ValueError(f"journal refuses ref keys {bad}: only backend references may be journaled")
    for k, v in refs.items():
        if not (v is None or isinstance(v, (str, int, float, bool))):
            raise ValueError(f"journal ref {k} must be a scalar")
    return dict(refs)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS effects (
    key        TEXT PRIMARY KEY,
    txn_id     TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    step       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    state      TEXT NOT NULL,
    id_hash    TEXT NOT NULL DEFAULT '',
    refs       TEXT NOT NULL DEFAULT '{}',
    code       TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    seq        INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS effects_state ON effects(state);
CREATE INDEX IF NOT EXISTS effects_txn ON effects(txn_id);
CREATE INDEX IF NOT EXISTS effects_id_hash ON effects(id_hash);
CREATE INDEX IF NOT EXISTS effects_seq ON effects(seq);  -- each insert asks MAX(seq): a scan per write without it
"""


class Journal:
    """The terminal's side-effect journal (thread-safe; one connection guarded by a lock)."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / DB_FILE
        self._salt = self._load_salt()
        self._lock = threading.Lock()
        try:
            # WAL + synchronous=FULL: a committed row survives a power cut, which is the journal's whole point.
            self._db = connect_sqlite(self.path, isolation_level=None)
            # Deleted rows are overwritten, so a purged reference leaves no trace in the file.
            self._db.execute("PRAGMA secure_delete=ON")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"cannot open journal {self.path}: {exc}") from exc
        os.chmod(self.path, 0o600)

    # --- salt and hashing --------------------------------------------------------------
    def _load_salt(self) -> bytes:
        path = self.state_dir / SALT_FILE
        try:
            salt = path.read_bytes()
            if len(salt) == 32:
                return salt
        except FileNotFoundError:
            pass
        # A missing or damaged salt is replaced: old hashes then simply stop matching,
        # which only costs a reprint lookup, never a wrong match.
        salt = secrets.token_bytes(32)
        write_atomic(path, salt)
        return salt

    def id_hash(self, id_number: str) -> str:
        """HMAC-SHA256(terminal salt, normalised ID number) as hex; empty for an empty number."""
        if not id_number:
            return ""
        norm = id_number.strip().upper().encode()
        return hmac.new(self._salt, norm, hashlib.sha256).hexdigest()

    # --- writes ------------------------------------------------------------------------
    def _exec(self, sql: str, args: tuple[Any, ...]) -> sqlite3.Cursor:
        try:
            with self._lock:
                return self._db.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"journal write failed: {exc}") from exc

    def _insert(self, key: str, txn_id: str, item_id: str, step: str, kind: str, state: str,
                id_hash: str, refs: Mapping[str, Any] | None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown effect kind {kind!r}")
        now = time.time()
        self._exec(
            "INSERT OR IGNORE INTO effects(key, txn_id, item_id, step, kind, state, id_hash, refs,"
            " created_at, updated_at, seq) VALUES (?,?,?,?,?,?,?,?,?,?,"
            " (SELECT COALESCE(MAX(seq), 0) + 1 FROM effects))",
            (key, txn_id, item_id, step, kind, state, id_hash, json.dumps(_check_refs(refs or {})),
             now, now))

    def begin(self, key: str, txn_id: str, item_id: str, step: str, kind: str, *,
              id_hash: str = "", refs: Mapping[str, Any] | None = None) -> None:
        """Record that side effect ``key`` is about to happen. Re-beginning a known key is a no-op."""
        self._insert(key, txn_id, item_id, step, kind, BEGUN, id_hash, refs)

    def complete(self, key: str, refs: Mapping[str, Any] | None = None) -> None:
        """Record that side effect ``key`` happened, merging its backend references."""
        self._update(key, DONE, refs or {}, "")

    def fail(self, key: str, code: str, refs: Mapping[str, Any] | None = None) -> None:
        """Record that side effect ``key`` did not happen (``code`` says why)."""
        self._update(key, FAILED, refs or {}, code)

    def note(self, key: str, refs: Mapping[str, Any]) -> None:
        """Merge references into entry ``key`` without changing its state (e.g. ``outcome: unknown``)."""
        self._update(key, None, refs, None)

    def resolve(self, key: str, resolution: str, refs: Mapping[str, Any] | None = None) -> None:
        """Mark ``key`` settled by recovery or a reprint (``resolution`` says how)."""
        self._update(key, RESOLVED, {**(refs or {}), "resolution": resolution}, None)

    def record(self, key: str, txn_id: str, item_id: str, step: str, kind: str, *,
               id_hash: str = "", refs: Mapping[str, Any] | None = None) -> None:
        """Record an observed effect in one write (e.g. the resident's payment arriving)."""
        self._insert(key, txn_id, item_id, step, kind, DONE, id_hash, refs)

    def _update(self, key: str, state: str | None, refs: Mapping[str, Any], code: str | None) -> None:
        new = _check_refs(refs)
        with self._lock:
            try:
                row = self._db.execute("SELECT refs, code, state FROM effects WHERE key=?", (key,)).fetchone()
                if row is None:
                    raise JournalError(f"journal has no entry {key}")
                merged = {**json.loads(row[0]), **new}
                self._db.execute(
                    "UPDATE effects SET state=?, refs=?, code=?, updated_at=? WHERE key=?",
                    (row[2] if state is None else state, json.dumps(merged), row[1] if code is None else code,
                     time.time(), key))
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"journal write failed: {exc}") from exc

    # --- reads -------------------------------------------------------------------------
    def _select(self, where: str, args: tuple[Any, ...] = ()) -> list[Entry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key, txn_id, item_id, step, kind, state, id_hash, refs, code, created_at,"
                f" updated_at FROM effects {where} ORDER BY seq", args).fetchall()
        return [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]), r[8], r[9], r[10])
                for r in rows]

    def get(self, key: str) -> Entry | None:
        """The entry for ``key``, or None."""
        found = self._select("WHERE key=?", (key,))
        return found[0] if found else None

    def pending(self) -> list[Entry]:
        """Entries begun but never completed or failed: what a crash left half done."""
        return self._select("WHERE state=?", (BEGUN,))

    def entries(self, txn_id: str | None = None) -> list[Entry]:
        """All entries, or those of one transaction, oldest first."""
        if txn_id is None:
            return self._select("")
        return self._select("WHERE txn_id=?", (txn_id,))

    def undelivered(self, id_hash: str) -> list[Entry]:
        """Print jobs for this ID hash that never completed: documents and receipts owed to the resident."""
        if not id_hash:
            return []
        return self._select("WHERE id_hash=? AND kind IN (?, ?) AND state IN (?, ?)",
                            (id_hash, PRINT_A4, PRINT_RECEIPT, FAILED, BEGUN))

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries())

    def purge(self, older_than_s: float = RETENTION_S) -> int:
        """Delete every entry of transactions settled longer ago than ``older_than_s``; returns how many.

        A transaction with an entry still begun is kept whatever its age: recovery needs it.
        Owed prints go too once that old (the counter can print them): the journal is not an archive
        of who came when.
        """
        cutoff = time.time() - older_than_s
        with self._lock:
            try:
                cur = self._db.execute(
                    "DELETE FROM effects WHERE txn_id IN (SELECT txn_id FROM effects GROUP BY txn_id"
                    " HAVING MAX(updated_at) < ? AND SUM(state = ?) = 0)", (cutoff, BEGUN))
            except sqlite3.DatabaseError as exc:
                raise JournalError(f"journal purge failed: {exc}") from exc
        return cur.rowcount

    def checkpoint(self) -> None:
        """Fold the WAL into the main file and truncate it (used after a purge)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the database; safe to call twice."""
        with self._lock:
            try:
                self._db.close()
            except sqlite3.ProgrammingError:
                pass
