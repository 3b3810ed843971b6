"""Face check: the camera compares the resident's face with the ID card photo."""
from __future__ import annotations

from typing import Any

from kiosk.screens.base import KioskScreen


class FaceScreen(KioskScreen):
    """One touch takes a photo; ``Transaction.face_check`` decides (three tries)."""

    def on_pre_enter(self, *_args: Any) -> None:
        """Clear the last attempt's message."""
        self.ids.result.text = ""

    def capture(self) -> None:
        """Take a photo and check it."""
        self.app.run_step(self.app.txn.face_check, on_result=self.show_result)

    def show_result(self, result: Any) -> None:
        """A miss with tries left: say so (a match moves on by itself)."""
        if not result.matched:
            self.ids.result.text = self.app.tr(
                "Your face was not recognised. Please look straight at the camera. Tries left: {n}").format(
                n=result.tries_left)


SCREEN = FaceScreen
