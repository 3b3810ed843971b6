"""Error: what went wrong in words a resident understands, and where to go instead."""
from __future__ import annotations

from typing import Any

from kiosk.screens.base import KioskScreen, detail_rows


class ErrorScreen(KioskScreen):
    """Shows ``app.error`` (a KioskError); the one button ends the visit."""

    def on_kv_post(self, *_args: Any) -> None:
        """Relabel on a language switch."""
        self.app.bind(lang=self.fill)

    def on_pre_enter(self, *_args: Any) -> None:
        """Show the current error."""
        self.fill()

    def fill(self, *_args: Any) -> None:
        """The error's message (and where to go, for a refusal) in the current language."""
        app, error = self.app, self.app.error
        if error is None:
            return
        self.ids.message.text = error.message(app.lang)
        where = app.local(getattr(error, "where_zh", ""), getattr(error, "where_en", ""))
        self.ids.where.text = app.tr("Where to go: {where}").format(where=where) if where else ""
        # A refusal's rule says more to the staff than the generic "refused".
        code = getattr(error, "rule", "") or error.code
        detail_rows(self.ids.code, [(app.tr("Reference code"), code, True)], stack=True)  # a code for the staff


SCREEN = ErrorScreen
