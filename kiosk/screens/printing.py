"""Printing: progress while the workflow produces the documents and the receipt."""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import NumericProperty

from kiosk.screens.base import KioskScreen


class PrintingScreen(KioskScreen):
    """Calls ``Transaction.produce`` on entry; shows a moving progress bar meanwhile."""

    phase = NumericProperty(0)
    _anim: Any = None

    def on_enter(self, *_args: Any) -> None:
        """Start production."""
        self._anim = Clock.schedule_interval(self._spin, 0.1)
        self.app.run_step(self.app.txn.produce, on_result=self.app.produced, overlay=False)

    def on_leave(self, *_args: Any) -> None:
        """Stop the animation."""
        if self._anim is not None:
            self._anim.cancel()
            self._anim = None

    def _spin(self, _dt: float) -> None:
        self.phase = (self.phase + 0.04) % 1.0


SCREEN = PrintingScreen
