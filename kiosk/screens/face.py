"""Face check: the camera compares the resident's face with the ID card photo."""
from __future__ import annotations

from typing import Any

from kiosk.screens.base import KioskScreen


class FaceScreen(KioskScreen):
    """One touch takes a photo; ``Transaction.face_check`` decides (three tries)."""

    _missed: Any = None  # the last attempt that missed, worded again on a language switch

    def on_kv_post(self, *_args: Any) -> None:
        """Reword the last attempt's message on a language switch."""
        self.app.bind(lang=lambda *_a: self.show_result(self._missed) if self._missed is not None else None)

    def on_pre_enter(self, *_args: Any) -> None:
        """Clear the last attempt's message."""
        self._missed = None
        self.ids.result.text = ""

    def capture(self) -> None:
        """Take a photo and check it."""
        self.app.run_step(self.app.txn.face_check, on_result=self.show_result)

    def show_result(self, result: Any) -> None:
        """A miss with tries left: say so (a match moves on by itself)."""
        if not result.matched:
            self._missed = result
            self.ids.result.text = self.app.tr(
                "Your face was not recognised. Please look straight at the camera. Tries left: {n}").format(
                n=result.tries_left)


SCREEN = FaceScreen
