"""Printing: progress while the workflow produces the documents and the receipt."""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import NumericProperty

from kiosk.screens.base import KioskScreen

# A screen that flashes past in a frame is not read (or heard): a quick printer still leaves
# "正在打印" on show this long, so every resident sees that the documents were printed.
MIN_SHOWN_S = 1.0


class PrintingScreen(KioskScreen):
    """Calls ``Transaction.produce`` on entry; shows a moving progress bar meanwhile."""

    phase = NumericProperty(0)
    _anim: Any = None

    _entered = 0.0

    def on_enter(self, *_args: Any) -> None:
        """Start production."""
        self._entered = Clock.get_boottime()
        self._anim = Clock.schedule_interval(self._spin, 0.1)
        self.app.run_step(self.app.txn.produce, on_result=self._produced, overlay=False)

    def _produced(self, result: Any) -> bool:
        """Keep the result; go on at once, or once the screen has been up ``MIN_SHOWN_S`` (True: not yet)."""
        self.app.produced(result)
        left = MIN_SHOWN_S - (Clock.get_boottime() - self._entered)
        if left <= 0:
            return False
        txn = self.app.txn
        Clock.schedule_once(lambda _dt: self._go_on(txn), left)
        return True

    def _go_on(self, txn: Any) -> None:
        if self.app.txn is txn and self.manager is not None and self.manager.current == self.name:
            self.app.follow()

    def on_leave(self, *_args: Any) -> None:
        """Stop the animation."""
        if self._anim is not None:
            self._anim.cancel()
            self._anim = None

    def _spin(self, _dt: float) -> None:
        self.phase = (self.phase + 0.04) % 1.0


SCREEN = PrintingScreen
