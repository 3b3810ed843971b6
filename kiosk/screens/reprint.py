"""Reprint: documents issued to this ID card earlier but never printed (the printer failed)."""
from __future__ import annotations

from typing import Any

from kiosk.screens.base import KioskScreen


class ReprintScreen(KioskScreen):
    """Shown after the card read when the journal owes the holder documents; then the item goes on."""

    def on_kv_post(self, *_args: Any) -> None:
        """Relabel on a language switch."""
        self.app.bind(lang=self.fill)

    def on_pre_enter(self, *_args: Any) -> None:
        """Say how many documents are owed."""
        self.fill()

    def fill(self, *_args: Any) -> None:
        """The count of owed documents in the current language."""
        txn = self.app.txn
        count = len(txn.pending_reprints) if txn is not None else 0
        self.ids.owed.text = self.app.tr(
            "{count} document(s) issued to you earlier were not printed.").format(count=count)

    def reprint(self) -> None:
        """Print them now, then go on with the chosen service."""
        self.app.run_step(self.app.txn.reprint, overlay=False)

    def skip(self) -> None:
        """Go on with the chosen service without reprinting."""
        self.app.follow()


SCREEN = ReprintScreen
