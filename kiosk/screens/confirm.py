"""Confirm: what will be done, for whom (masked), and what it costs; one touch to go on."""
from __future__ import annotations

from typing import Any

from kiosk.privacy import mask_id_number, mask_name
from kiosk.screens.base import KioskScreen

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
        """Summary lines in the current language; the resident's name and number masked."""
        app, txn = self.app, self.app.txn
        if txn is None:
            return
        tr, item = app.tr, txn.item
        self.ids.title.text = app.local(item.name_zh, item.name_en)
        lines = []
        identity = getattr(txn.session, "identity", None)
        if identity is not None:
            lines.append(tr("Resident: {name}").format(name=mask_name(identity.name)))
            lines.append(tr("ID number: {number}").format(number=mask_id_number(identity.id_number)))
        for label_zh, label_en, value in txn.summary():
            lines.append(tr("{label}: {value}").format(label=app.local(label_zh, label_en), value=value))
        self.ids.summary.text = "\n".join(lines)
        self.ids.confirm_button.text = tr(ACTION_BY_KIND.get(item.kind, "Continue"))

    def private_text(self, widget_id: str) -> str:
        """What private listening hears for the summary: the name and ID number in full (read from the session now)."""
        app, txn = self.app, self.app.txn
        identity = getattr(getattr(txn, "session", None), "identity", None)
        if widget_id != "summary" or txn is None or identity is None:
            return ""
        tr = app.tr
        lines = [tr("Resident: {name}").format(name=identity.name),
                 tr("ID number: {number}").format(number=identity.id_number)]
        lines += [tr("{label}: {value}").format(label=app.local(zh, en), value=value) for zh, en, value in txn.summary()]
        return "\n".join(lines)

    def confirm(self) -> None:
        """Go ahead."""
        self.app.run_step(self.app.txn.confirm)


SCREEN = ConfirmScreen
