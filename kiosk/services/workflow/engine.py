"""The workflow engine: starts transactions and owns what they share (catalog, backend, devices, journal, printing)."""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from kiosk.hardware.idcard import IdentityCard
from kiosk.services.catalog import Catalog, CatalogItem
from kiosk.services.journal import Journal
from kiosk.services.session import Session
from kiosk.services.update_status import SessionMarker
from kiosk.services.workflow import reprint as reprints
from kiosk.services.workflow.production import Printing
from kiosk.services.workflow.records import (MoneyAlarm, PendingReprint, Produced, TransactionEnded, TxnRef,
                                             kiosk_reference)
from kiosk.services.workflow.transaction import Transaction

if TYPE_CHECKING:
    from kiosk.config import KioskConfig
    from kiosk.hardware.factory import Devices
    from kiosk.services.backend import BackendClient

log = logging.getLogger(__name__)


class SessionStore:
    """Makes the sessions of one terminal (all under ``<state_dir>/sessions``)."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)

    def new(self) -> Session:
        """A fresh session with its own folder."""
        return Session(self.state_dir)


class WorkflowEngine:
    """Starts transactions and owns what they share: catalog, backend, devices, journal, sessions, printing."""

    def __init__(self, catalog: Catalog, backend: BackendClient, devices: Devices, journal: Journal,
                 sessions: SessionStore, config: KioskConfig) -> None:
        from print_templates.pdf_signing import PdfSigner

        self.catalog = catalog
        self.backend = backend
        self.devices = devices
        self.journal = journal
        self.sessions = sessions
        self.config = config
        self.printing = Printing(devices, journal, config.terminal.id, PdfSigner.from_config(config))
        self._active: dict[str, Transaction] = {}
        self._lock = threading.Lock()
        # Present while a transaction is open: the updater never restarts the kiosk under a resident.
        self.session_marker = SessionMarker(sessions.state_dir)
        self.clock: Callable[[], float] = time.monotonic  # tests move time forward instead of sleeping
        # Called once per transaction when its outcome is set (statistics, metrics); see TransactionEnded.
        self.on_end: list[Callable[[TransactionEnded], None]] = []
        # Checked before a transaction starts (the runtime refuses disk-using items on a full disk).
        self.admit: Callable[[CatalogItem], None] | None = None
        # Told of every paid service not delivered and every failed refund (metrics, alert rules).
        self.on_alarm: list[Callable[[MoneyAlarm], None]] = []

    @property
    def terminal_id(self) -> str:
        """The terminal's id, as the backend knows it."""
        return self.config.terminal.id

    @property
    def production(self) -> bool:
        """Whether the terminal runs the production profile (stricter checks, e.g. of a chip's CSCA chain)."""
        return self.config.profile == "production"

    @property
    def payment_timeout_s(self) -> float:
        """How long a payment order waits for the resident before it is cancelled."""
        return float(self.config.payment.timeout_s)

    @property
    def unknown_outcome_s(self) -> float:
        """How long an operation whose answer was lost is asked again before its outcome counts as unknown."""
        return float(self.config.backend.unknown_outcome_s)

    def start(self, item_id: str) -> Transaction:
        """Begin a transaction for ``item_id``. Raises UnknownItemError."""
        item = self.catalog.get(item_id)
        if self.admit is not None:
            self.admit(item)
        txn = Transaction(self, item, self.sessions.new())
        with self._lock:
            if not self._active:
                self.session_marker.open()
            self._active[txn.id] = txn
        log.info("txn=%s item=%s start step=%s", txn.id, item.id, txn.step.value)
        return txn

    def active(self) -> list[Transaction]:
        """Transactions started and not finished."""
        with self._lock:
            return list(self._active.values())

    def forget(self, txn: Transaction) -> None:
        """``txn`` is finished: it no longer counts as active."""
        with self._lock:
            self._active.pop(txn.id, None)
            if not self._active:
                self.session_marker.close()

    def ended(self, ended: TransactionEnded) -> None:
        """Tell the on_end listeners that a transaction has its outcome (a failing listener is logged only)."""
        for listener in list(self.on_end):
            try:
                listener(ended)
            except Exception:  # counting must never break a resident's transaction
                log.exception("on_end listener failed for item=%s", ended.item_id)

    def alarm(self, kind: str, ref: TxnRef) -> None:
        """Tell the on_alarm listeners of a paid service not delivered or a failed refund (failures logged only)."""
        alarm = MoneyAlarm(kind, ref.item_id, ref.txn_id, kiosk_reference(self.terminal_id, ref.txn_id))
        log.error("alarm %s: txn=%s item=%s reference %s", kind, ref.txn_id, ref.item_id, alarm.reference)
        for listener in list(self.on_alarm):
            try:
                listener(alarm)
            except Exception:  # an alarm must never break the transaction it reports
                log.exception("on_alarm listener failed for %s", kind)

    # --- outside a transaction -------------------------------------------------------------
    def pending_reprints(self, card: IdentityCard) -> list[PendingReprint]:
        """Documents and receipts issued to this card's holder but never printed."""
        return reprints.pending_reprints(self, card)

    def reprint(self, card: IdentityCard, session: Session | None = None) -> Produced:
        """Fetch this holder's unprinted documents again from the backend and print them (and owed receipts)."""
        return reprints.reprint(self, card, session)
