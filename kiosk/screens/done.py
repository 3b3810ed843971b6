"""Done: take the ID card and the documents, and rate the service."""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty

from kiosk.screens.base import KioskScreen, detail_rows

CARD_POLL_S = 0.3
# A card left behind must not hold the kiosk: after this long the visit ends anyway.
FINISH_WAIT_S = 20.0


class DoneScreen(KioskScreen):
    """Shows any on-screen result; finishing waits until the ID card has been taken."""

    spoken_ids = ("problem", "display")
    alert_ids = ("problem",)
    personal_ids = {"display": "other"}  # the results: fines, plates, a case's progress

    card_on_reader = BooleanProperty(False)
    rating = StringProperty("")
    finishing = BooleanProperty(False)
    slip_state = StringProperty("")  # "", offered, printing, printed
    _poll: Any = None
    _asking = False

    def on_kv_post(self, *_args: Any) -> None:
        """Relabel on a language switch."""
        self.app.bind(lang=self.fill)

    def on_pre_enter(self, *_args: Any) -> None:
        """Start watching the card reader."""
        self.rating = ""
        self._asking = False
        for name in ("rate_satisfied", "rate_basically_satisfied", "rate_dissatisfied"):
            self.ids[name].state = "normal"  # the screen is reused: no rating shown from the last visit
        Clock.unschedule(self._give_up_waiting)
        self.finishing = False
        result = self.app.result
        self.slip_state = "offered" if getattr(result, "slip_offered", False) else ""
        self.card_on_reader = self.app.card_present()
        self._poll = Clock.schedule_interval(self._check_card, CARD_POLL_S)
        self.fill()

    def on_leave(self, *_args: Any) -> None:
        """Stop watching."""
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
        self.card_on_reader = present
        if self.finishing and not present and self._poll is not None:
            self.on_leave()
            self.app.finish()

    def _give_up_waiting(self, _dt: float) -> None:
        if self.finishing and self.manager is not None and self.manager.current == self.name:
            self.on_leave()
            self.app.finish()

    def fill(self, *_args: Any) -> None:
        """Result lines shown on screen (query items), in the current language."""
        app = self.app
        result = app.result
        rows = []
        for line in (getattr(result, "display", None) or ()):
            label = app.local(line.get("label_zh", ""), line.get("label_en", ""))
            worded = "value_en" in line  # a status or verdict in each language; otherwise data, shown as it is
            value = app.local(line.get("value", ""), line.get("value_en", "")) if worded else line.get("value", "")
            rows.append((label, str(value), not worded))
        detail_rows(self.ids.display, rows)
        txn = app.txn
        problem = txn.error if txn is not None else None
        text = problem.message(app.lang) if problem is not None else ""
        if not text and txn is not None and txn.item.slip_on_request and not getattr(result, "slip_offered", False):
            text = app.tr("The slip printer is not available right now. Your results are on this screen.")
        self.ids.problem.text = text

    def forget(self) -> None:
        """The result lines go (a household number, a code, a verdict)."""
        detail_rows(self.ids.display, [])
        self.ids.problem.text = ""

    def print_slip(self) -> None:
        """The resident wants the results on paper: print the query's slip (once)."""
        txn = self.app.txn
        if txn is None or self.slip_state != "offered":
            return
        self.slip_state = "printing"
        self.ids.problem.text = ""
        self.app.background(txn.print_slip, on_result=self._slip_printed, on_error=self._slip_failed)

    def _slip_printed(self, _data: bytes) -> None:
        self.slip_state = "printed"

    def _slip_failed(self, error: BaseException) -> None:
        # Nothing is owed for a query slip: say so, keep the results on screen, allow another try.
        self.slip_state = "offered"
        self.ids.problem.text = self.app.tr("The slip could not be printed. Your results stay on this screen.")

    def rate(self, rating: str) -> None:
        """Record the resident's satisfaction (satisfied, basically_satisfied, dissatisfied)."""
        if self.rating:
            return  # one rating per visit
        self.rating = rating
        self.app.rate(rating)

    def finish(self) -> None:
        """End the visit, once the ID card is no longer on the reader."""
        if self.app.card_present():
            self.finishing = True  # _check_card finishes as soon as the card is lifted
            Clock.schedule_once(self._give_up_waiting, FINISH_WAIT_S)
            return
        self.on_leave()
        self.app.finish()


SCREEN = DoneScreen
