"""Calling the duty officer: one help request at a time, polled for the answer, journaled and counted.

The screens call :class:`HelpDesk` (``runtime.help``) off the UI thread: :meth:`HelpDesk.open`
sends ``POST /help-requests`` with the terminal's screen, item, step and time — and the
masked name (王*明) only when the resident agreed on screen to share it — then a worker
thread asks ``GET /help-requests/{ticket}`` every ``[help] poll_s`` seconds and sends the
newest masked screenshot the screens handed to :meth:`HelpDesk.show_screen`. When the
officer answers, ``listeners`` get the new :class:`HelpState` (on the worker thread). The
request ends answered (the resident acknowledges the reply), cancelled by the resident, or
closed with the session (:meth:`HelpDesk.end_session`). No Kivy here; the masked image is
drawn by the screens (kiosk.screens.help).
"""
from __future__ import annotations

import base64
import logging
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable

from kiosk.errors import KioskError
from kiosk.services import journal as J

log = logging.getLogger(__name__)

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"  # the backend's statuses
STATUSES = (OPEN, ANSWERED, CLOSED)


class HelpBusy(KioskError):
    """A help request is already open: the resident's first call still stands."""

    code = "help_already_open"
    message_en = "Your call for help is already with the duty officer. Please wait."
    exit_status = 75


class HelpNotShared(ValueError):
    """A name that is not masked was offered as the shared identity (a bug, never sent)."""


@dataclass(frozen=True)
class HelpContext:
    """Where the resident is when they call: no personal data."""

    screen: str
    item_id: str = ""
    step: str = ""


@dataclass(frozen=True)
class HelpState:
    """The resident's current help request as the screens show it."""

    ticket: str
    status: str  # open, answered, closed
    reply: str = ""
    answered_at: str = ""
    identity_shared: bool = False

    @property
    def waiting(self) -> bool:
        """Open: the officer has not answered yet."""
        return self.status == OPEN

    @property
    def answered(self) -> bool:
        """The officer's reply is there to read."""
        return self.status == ANSWERED


def screenshot_body(image: bytes, media_type: str = "image/jpeg") -> dict[str, str]:
    """The API's ``HelpScreenshot`` object for an encoded image."""
    return {"media_type": media_type, "data_b64": base64.b64encode(image).decode("ascii")}


class HelpDesk:
    """The terminal's side of the help desk. Thread-safe; blocking calls belong off the UI thread."""

    def __init__(self, backend: Any, journal: Any = None, stats: Any = None, *, poll_s: float = 3.0,
                 metrics: Any = None) -> None:
        self.backend = backend
        self.journal = journal
        self.stats = stats
        self.poll_s = poll_s
        self.metrics = metrics
        self.listeners: list[Callable[[HelpState], None]] = []
        self._lock = threading.Lock()
        self._state: HelpState | None = None
        self._item_id = ""
        self._pending_shot: tuple[str, dict[str, str]] | None = None
        self._stop = threading.Event()
        self._worker: threading.Thread | None = None

    # --- what the screens read ---------------------------------------------------------
    @property
    def current(self) -> HelpState | None:
        """The request on show (open, or answered and not yet acknowledged); None otherwise."""
        with self._lock:
            return self._state

    @property
    def open_count(self) -> int:
        """1 while a request waits for the officer, else 0 (the ``kiosk_help_open`` gauge)."""
        state = self.current
        return 1 if state is not None and state.waiting else 0

    @staticmethod
    def masked_identity(txn: Any) -> str:
        """The masked name (王*明) of the resident a transaction has read, to offer for sharing; "" when none."""
        from kiosk.privacy import mask_name

        identity = getattr(getattr(txn, "session", None), "identity", None)
        name = str(getattr(identity, "name", "") or "")
        return mask_name(name) if name else ""

    # --- what the screens call (off the UI thread) ------------------------------------------
    def open(self, context: HelpContext, screenshot: dict[str, str] | None = None,
             identity_masked: str = "", *, asked_at: datetime | None = None) -> HelpState:
        """Call the duty officer. ``identity_masked`` only when the resident agreed (it must be masked).

        Raises HelpBusy while a request is open, HelpNotShared for an unmasked name, BackendError.
        """
        if identity_masked and "*" not in identity_masked:
            raise HelpNotShared("only a masked name (王*明) may be shared with the officer")
        with self._lock:
            if self._state is not None and self._state.waiting:
                raise HelpBusy(ticket=self._state.ticket)
        at = (asked_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
        body: dict[str, Any] = {"screen": context.screen, "asked_at": at.isoformat().replace("+00:00", "Z")}
        if context.item_id:
            body["item_id"] = context.item_id
        if context.step:
            body["step"] = context.step
        if identity_masked:
            body["identity_masked"] = identity_masked
        if screenshot:
            body["screenshot"] = screenshot
        answer = self.backend.open_help_request(body, idempotency_key=f"help-{uuid.uuid4().hex}")
        state = HelpState(str(answer["ticket"]), str(answer["status"]), identity_shared=bool(identity_masked))
        with self._lock:
            self._state, self._item_id, self._pending_shot = state, context.item_id, None
        self._journal_open(state, context)
        if self.stats is not None:
            self.stats.record_help("asked")
        if self.metrics is not None:
            self.metrics.help_requested()
        self._gauge()
        log.info("help request %s opened on screen %s (identity %s)", state.ticket, context.screen,
                 "shared masked" if identity_masked else "not shared")
        self._start_polling()
        return state

    def show_screen(self, screen: str, screenshot: dict[str, str]) -> None:
        """The screen changed while the request is open: send this masked screenshot with the next poll."""
        with self._lock:
            if self._state is not None and self._state.waiting:
                self._pending_shot = (screen, screenshot)

    def poll(self) -> HelpState | None:
        """Send a waiting screenshot, then ask the backend for the answer once. Raises BackendError."""
        with self._lock:
            state, shot, self._pending_shot = self._state, self._pending_shot, None
        if state is None or not state.waiting:
            return state
        if shot is not None:
            try:
                self.backend.upload_help_screenshot(state.ticket, shot[0], shot[1],
                                                    idempotency_key=f"help-shot-{uuid.uuid4().hex}")
            except KioskError as err:
                log.warning("help %s: screenshot not sent: %s", state.ticket, err.code)
        answer = self.backend.get_help_request(state.ticket)
        status = str(answer.get("status", OPEN))
        if status == state.status:
            return state
        new = replace(state, status=status, reply=str(answer.get("reply") or ""),
                      answered_at=str(answer.get("answered_at") or ""))
        with self._lock:
            if self._state is None or self._state.ticket != state.ticket:
                return None  # the session ended meanwhile
            self._state = new
        self._settled(new, "answered" if new.answered else "closed_by_backend")
        return new

    def cancel(self) -> HelpState | None:
        """The resident no longer needs help: close the request. Raises BackendError (the request stays open)."""
        return self._close("cancelled")

    def acknowledge(self) -> None:
        """The resident read the officer's reply (the banner's button): it goes away."""
        with self._lock:
            if self._state is not None and not self._state.waiting:
                self._state = None
        self._gauge()

    def end_session(self) -> None:
        """The session ended: an open request is closed at the backend (a failure is logged), the reply dropped."""
        try:
            self._close("session_ended")
        except KioskError as err:
            log.warning("help request not closed at the backend: %s", err.code)
        with self._lock:
            self._state, self._pending_shot = None, None
        self._stop_polling()
        self._gauge()

    def close(self) -> None:
        """Stop the worker (the runtime stops)."""
        self._stop_polling()

    # --- inside ------------------------------------------------------------------------------
    def _close(self, resolution: str) -> HelpState | None:
        with self._lock:
            state = self._state
        if state is None or not state.waiting:
            return state
        answer = self.backend.cancel_help_request(state.ticket, idempotency_key=f"help-cancel-{state.ticket}")
        new = replace(state, status=str(answer.get("status", CLOSED)), reply=str(answer.get("reply") or ""),
                      answered_at=str(answer.get("answered_at") or ""))
        with self._lock:
            # Answered just before the cancel arrived: the reply stays for the resident to read.
            self._state = new if new.answered else None
        self._settled(new, "answered" if new.answered else resolution)
        return new

    def _settled(self, state: HelpState, resolution: str) -> None:
        if self.journal is not None:
            try:
                self.journal.resolve(f"help-{state.ticket}", resolution)
            except KioskError as err:
                log.error("help %s: journal not updated: %s", state.ticket, err.code)
        if state.answered and self.stats is not None:
            self.stats.record_help("answered")
        self._gauge()
        log.info("help request %s %s", state.ticket, resolution)
        for listener in list(self.listeners):
            try:
                listener(state)
            except Exception:  # a screen's listener must not stop the poller
                log.exception("help listener failed")

    def _journal_open(self, state: HelpState, context: HelpContext) -> None:
        if self.journal is None:
            return
        try:
            self.journal.record(f"help-{state.ticket}", f"help-{state.ticket}", context.item_id, context.screen,
                                J.HELP_REQUEST, refs={"reference": state.ticket})
        except KioskError as err:
            log.error("help %s: not journaled: %s", state.ticket, err.code)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.set_help_open(self.open_count)

    def _start_polling(self) -> None:
        self._stop_polling()
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, args=(self._stop,), name="kiosk-help", daemon=True)
        self._worker.start()

    def _stop_polling(self) -> None:
        self._stop.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=5)
        self._worker = None

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self.poll_s):
            try:
                state = self.poll()
            except KioskError as err:
                log.warning("help poll failed: %s", err.code)  # asked again next time
                continue
            if state is None or not state.waiting:
                return
