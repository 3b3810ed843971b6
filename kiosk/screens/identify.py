"""Identify: the resident places the ID card; the read starts by itself once the card is there."""
from __future__ import annotations

from typing import Any

from kivy.animation import Animation
from kivy.clock import Clock
from kivy.properties import NumericProperty

from kiosk.errors import KioskError
from kiosk.screens.base import KioskScreen

CARD_POLL_S = 0.3


class IdentifyScreen(KioskScreen):
    """Waits for a card on the reader (no touch needed), then calls ``Transaction.identify``."""

    # The card outline glides down onto the reader and back, over and over: the prompt
    # shows the movement the resident should make.
    card_drop = NumericProperty(0)
    _poll: Any = None
    _asking = False
    _animation: Any = None

    def on_enter(self, *_args: Any) -> None:
        """Start waiting for the card (or read the travel document reader straight away)."""
        item = self.app.item
        self._asking = False
        self.ids.problem.text = ""
        tr = self.app.tr
        self.ids.prompt.text = (tr("Place your passport or travel permit on the reader")
                                if item.identity == "travel_document" else tr("Place your ID card on the reader"))
        self._animation = (Animation(card_drop=1, duration=0.9, t="in_out_quad")
                           + Animation(card_drop=1, duration=0.3) + Animation(card_drop=0, duration=0.6))
        self._animation.repeat = True
        self._animation.start(self)
        if item.identity == "travel_document":
            self.read()
        else:
            self._poll = Clock.schedule_interval(self._check_card, CARD_POLL_S)

    def on_leave(self, *_args: Any) -> None:
        """Stop waiting."""
        if self._animation is not None:
            self._animation.cancel(self)
            self._animation = None
            self.card_drop = 0
        if self._poll is not None:
            self._poll.cancel()
            self._poll = None

    def _check_card(self, _dt: float) -> None:
        # Asked off the UI thread: a real reader answers over a serial line.
        if not self._asking:
            self._asking = True
            self.app.background(self.app.card_present, on_result=self._card_answer)

    def _card_answer(self, present: bool) -> None:
        self._asking = False
        if present and self._poll is not None and self.manager.current == self.name:
            self.on_leave()
            self.read()

    def read(self) -> None:
        """Read the identity document and continue with the transaction."""
        self.ids.problem.text = ""
        self.app.run_step(self.app.txn.identify, on_result=self.owed, on_recoverable=self.read_failed)

    def owed(self, pending: list[Any]) -> bool:
        """Documents owed to this card from an earlier visit: offer them before going on."""
        if not pending or self.app.txn.outcome is not None:
            return False
        self.app.go("reprint")
        return True

    def read_failed(self, error: KioskError) -> None:
        """A read to try again (card moved, no card): say so and wait for the card again."""
        self.ids.problem.text = error.message(self.app.lang)
        if self.app.item.identity == "travel_document":
            self._poll = Clock.schedule_once(lambda _dt: self.read(), CARD_POLL_S * 5)
        else:
            self._poll = Clock.schedule_interval(self._check_card, CARD_POLL_S)


SCREEN = IdentifyScreen
