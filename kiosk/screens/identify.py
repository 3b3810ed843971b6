"""Identify: the resident places the ID card or travel document; the read starts by itself.

An ID card is polled on its reader. A travel document's data page is polled on the
scanner (its MRZ holds the keys that open the chip); a resident whose page the scanner
cannot read types the details instead (the travel_entry screen).
"""
from __future__ import annotations

from typing import Any

from kivy.animation import AnimationTransition
from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty

from kiosk.errors import DeviceError, KioskError, MrzUnreadable
from kiosk.screens.base import KioskScreen

CARD_POLL_S = 0.3
SCAN_WAIT_S = 1.0  # one ask of the scanner; short, so a finished visit never waits on it
SCANNER_RETRY_S = 5.0  # a broken scanner is asked again this often
# The card outline's glide (identify.kv), over and over: down onto the reader (eased in and out), a rest on it, back up.
CARD_GLIDE_S = (0.9, 0.3, 0.6)
# The outline moves this often, not every frame. A software renderer (llvmpipe) fills the whole window again for every
# frame drawn, about 15 ms of CPU at 1080x1920: moved every frame, the glide drew 60 frames a second for as long as the
# resident looked for the card (a walk-away on this screen: 45-48 frames a second for its 10 s; the soak's and the
# tests' other work waited for the cores). At 15 moves a second it draws about 12 frames a second (none while it rests).
CARD_STEP_S = 1 / 15


def card_drop_at(t: float) -> float:
    """Where the card outline is ``t`` seconds into its glide: 0 above the reader, 1 on it."""
    down, rest, up = CARD_GLIDE_S
    t %= down + rest + up
    if t < down:
        return float(AnimationTransition.in_out_quad(t / down))
    if t < down + rest:
        return 1.0
    return 1.0 - (t - down - rest) / up


class IdentifyScreen(KioskScreen):
    """Waits for a card on the reader, or a data page under the scanner (no touch needed), then
    calls ``Transaction.identify``."""

    spoken_ids = alert_ids = ("problem",)

    # The card outline glides down onto the reader and back, over and over: the prompt
    # shows the movement the resident should make.
    card_drop = NumericProperty(0)
    travel = BooleanProperty(False)
    _poll: Any = None
    _asking = False
    _glide: Any = None
    _glide_from = 0.0

    def on_pre_enter(self, *_args: Any) -> None:
        """This item's prompt, and no message left from the last visit (the screen is spoken once this has run)."""
        self.travel = self.app.item.identity == "travel_document"
        self.show_worded(self.ids.problem, None)

    def on_enter(self, *_args: Any) -> None:
        """Start waiting for the card or the travel document."""
        self._asking = False
        if self._glide is not None:
            self._glide.cancel()
        self._glide_from = Clock.get_boottime()
        self._glide = Clock.schedule_interval(self._glide_step, CARD_STEP_S)
        self._wait()

    def on_leave(self, *_args: Any) -> None:
        """Stop waiting."""
        if self._glide is not None:
            self._glide.cancel()
            self._glide = None
        self.card_drop = 0
        self._stop_polling()

    def _glide_step(self, _dt: float) -> None:
        # Rounded, so a step that lands where the last one did (the rest on the reader) changes nothing and draws
        # nothing.
        self.card_drop = round(card_drop_at(Clock.get_boottime() - self._glide_from), 3)

    def _wait(self) -> None:
        self._stop_polling()
        self._poll = Clock.schedule_interval(self._check_scanner if self.travel else self._check_card,
                                             CARD_POLL_S)

    def _stop_polling(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None

    def _here(self) -> bool:
        return self._poll is not None and self.manager is not None and self.manager.current == self.name

    def _check_card(self, _dt: float) -> None:
        # Asked off the UI thread: a real reader answers over a serial line.
        if not self._asking:
            self._asking = True
            self.app.background(self.app.card_present, on_result=self._card_answer)

    def _card_answer(self, present: bool) -> None:
        self._asking = False
        if present and self._here():
            self.on_leave()
            self.read()

    def _check_scanner(self, _dt: float) -> None:
        txn = self.app.txn
        if not self._asking and txn is not None:
            self._asking = True
            self.app.background(txn.scan_access, SCAN_WAIT_S, on_result=self._scanned, on_error=self._scan_failed)

    def _scanned(self, access: Any) -> None:
        self._asking = False
        if access and self._here():
            self.on_leave()
            self.read(access)

    def _scan_failed(self, error: BaseException) -> None:
        self._asking = False
        if not self._here():
            return
        if isinstance(error, MrzUnreadable):
            self.show_worded(self.ids.problem, error)  # lay it again, or type the details
        elif isinstance(error, DeviceError):
            # The scanner is broken or missing: typing the details still opens the chip. Ask
            # the scanner again only now and then, in case it comes back.
            self.show_worded(self.ids.problem, "The scanner is not working. Please type the document details.")
            self._stop_polling()
            self._poll = Clock.schedule_once(lambda _dt: self._here_again(), SCANNER_RETRY_S)

    def _here_again(self) -> None:
        if self.manager is not None and self.manager.current == self.name:
            self._wait()

    def read(self, access: Any = None) -> None:
        """Read the identity document (with a travel document's access data) and go on."""
        self.show_worded(self.ids.problem, None)
        self.app.run_step(self.app.txn.identify, None, access, on_result=self.owed, on_recoverable=self.read_failed)

    def owed(self, pending: list[Any]) -> bool:
        """Documents owed to this card from an earlier visit: offer them before going on."""
        if not pending or self.app.txn.outcome is not None:
            return False
        self.app.go("reprint")
        return True

    def read_failed(self, error: KioskError) -> None:
        """A read to try again (card moved, no card, chip not opened): say so and wait again."""
        self.show_worded(self.ids.problem, error)
        self._wait()

    def type_details(self) -> None:
        """The scanner cannot read the data page: the resident types the details instead."""
        self.app.go("travel_entry")


SCREEN = IdentifyScreen
