"""Confirm: what will be done, for whom (masked), and what it costs, in one language; one touch to go on."""
from __future__ import annotations

from typing import Any

from kiosk.privacy import mask_id_number, mask_name
from kiosk.screens.base import KioskScreen, detail_rows

# The label of the go-ahead button says what the touch will do.
ACTION_BY_KIND = {"certificate": "Print", "payment": "Pay", "query": "Show result", "verify": "Check",
                  "appointment": "Book", "application": "Submit", "report": "Submit", "guide": "Continue"}


class ConfirmScreen(KioskScreen):
    """Shows the transaction's data; ``Transaction.confirm`` decides what comes next."""

    spoken_ids = ("summary",)
    personal_ids = {"summary": "other"}  # who, and what they entered

    def on_kv_post(self, *_args: Any) -> None:
        """Relabel on a language switch."""
        self.app.bind(lang=self.fill)

    def on_pre_enter(self, *_args: Any) -> None:
        """Show the current transaction."""
        self.fill()

    def fill(self, *_args: Any) -> None:
        """Summary rows in the current language; the resident's name and number masked, shown as data."""
        app, txn = self.app, self.app.txn
        if txn is None:
            return
        tr, item, lang = app.tr, txn.item, app.lang
        self.ids.title.text = app.local(item.name_zh, item.name_en)
        rows = []
        identity = getattr(txn.session, "identity", None)
        if identity is not None:
            rows.append((tr("Resident"), mask_name(identity.name), True))
            rows.append((tr("ID number"), mask_id_number(identity.id_number), True))
        rows += [(row.label(lang), row.value(lang), row.data) for row in txn.summary()]
        detail_rows(self.ids.summary, rows)
        self.ids.confirm_button.text = tr(ACTION_BY_KIND.get(item.kind, "Continue"))

    def forget(self) -> None:
        """The summary rows go (a masked name and number, the values given)."""
        detail_rows(self.ids.summary, [])

    def private_text(self, widget_id: str) -> str:
        """What private listening hears for the summary: the name and ID number in full (read from the session now)."""
        app, txn = self.app, self.app.txn
        identity = getattr(getattr(txn, "session", None), "identity", None)
        if widget_id != "summary" or txn is None or identity is None:
            return ""
        tr, lang = app.tr, app.lang
        rows = [(tr("Resident"), identity.name), (tr("ID number"), identity.id_number)]
        rows += [(row.label(lang), row.value(lang)) for row in txn.summary()]
        colon = "：" if lang == "zh_CN" else ": "
        return "\n".join(f"{label}{colon}{value}" for label, value in rows)

    def confirm(self) -> None:
        """Go ahead."""
        self.app.run_step(self.app.txn.confirm)


SCREEN = ConfirmScreen
