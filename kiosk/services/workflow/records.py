"""The workflow's records: what it hands to screens and listeners, and how the journal names a transaction."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kiosk.services.journal import Journal

# What an operator must learn of, every time (metrics and alert rules count them).
PAID_UNDELIVERED = "paid_undelivered"  # paid, and the service could not be delivered (yet)
REFUND_FAILED = "refund_failed"  # a refund the backend owed the resident did not go through
ALARM_KINDS = (PAID_UNDELIVERED, REFUND_FAILED)
UNKNOWN = "unknown"  # journal ref ``outcome`` of an operation the backend never confirmed


def kiosk_reference(terminal_id: str, txn_id: str) -> str:
    """The number a resident is given when an outcome is unknown: terminal and transaction, nothing personal."""
    return f"{terminal_id}-{txn_id[:8].upper()}"


@dataclass(frozen=True)
class TxnRef:
    """The transaction an effect belongs to, as the journal files it: no personal data."""

    txn_id: str
    item_id: str
    id_hash: str = ""  # the journal's salted hash of the card's number ('' without a card)

    def key(self, kind: str, n: int | str = 0) -> str:
        """The idempotency key of this transaction's ``n``-th effect of ``kind``."""
        return f"{self.txn_id}-{kind}-{n}"

    def begin(self, journal: Journal, key: str, step: str, kind: str, refs: Mapping[str, Any]) -> None:
        """Journal that effect ``key`` of this transaction is about to happen."""
        journal.begin(key, self.txn_id, self.item_id, step, kind, id_hash=self.id_hash, refs=refs)


# --- records crossing to the screens --------------------------------------------------
@dataclass(frozen=True)
class Produced:
    """What a transaction produced: PDFs (in the session folder), receipt bytes, lines to show.

    ``undelivered`` lists the print jobs that failed (their error codes); the documents
    stay issued and journaled for reprint when the same ID card is read again.
    """

    documents: tuple[Path, ...] = ()
    receipts: tuple[bytes, ...] = ()
    display: tuple[Mapping[str, str], ...] = ()
    reference: str = ""
    verification_codes: tuple[str, ...] = ()
    undelivered: tuple[str, ...] = ()
    slip_offered: bool = False  # a query's slip: printed by Transaction.print_slip when the resident asks


@dataclass(frozen=True)
class PendingReprint:
    """A document or receipt issued to this card's holder but never printed."""

    key: str
    item_id: str
    kind: str  # print_a4 or print_receipt
    document_id: str = ""
    reference: str = ""
    verification_code: str = ""


@dataclass(frozen=True)
class TransactionEnded:
    """Handed to ``WorkflowEngine.on_end`` listeners once per transaction, when its outcome is set.

    No personal data: the item, the outcome, how long it took and, for the satisfaction
    rating item (catalog ``rating``), the chosen rating and the item id it rates.
    """

    item_id: str
    outcome: str
    reason: str
    duration_s: float
    rating: str = ""
    rated_item: str = ""


@dataclass(frozen=True)
class MoneyAlarm:
    """Handed to ``WorkflowEngine.on_alarm`` listeners: a paid service not delivered, or a refund that failed."""

    kind: str  # one of ALARM_KINDS
    item_id: str
    txn_id: str
    reference: str  # kiosk_reference: what the resident holds; no personal data


@dataclass(frozen=True)
class FaceResult:
    """One face-check attempt: matched or not, how many tries are left, and why it missed."""

    matched: bool
    score: float
    tries_left: int
    reason: str = ""  # "" when matched; "face_mismatch" or "liveness_failed"

