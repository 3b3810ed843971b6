"""Item guide: what the item does, the materials to bring, the fee and the expected time."""
from __future__ import annotations

from typing import Any

from kiosk.screens.base import KioskScreen
from kiosk.services.health import notice


class GuideScreen(KioskScreen):
    """Readable for every item, even when the item cannot be started right now."""

    spoken_ids = ("fee", "minutes", "unavailable")

    def on_kv_post(self, *_args: Any) -> None:
        """Redraw when the language or availability changes."""
        self.app.bind(lang=self.fill, availability=self.fill)

    def on_pre_enter(self, *_args: Any) -> None:
        """Show the selected item."""
        self.fill()
        self.ids.scroller.scroll_y = 1

    def fill(self, *_args: Any) -> None:
        """Texts of the selected item in the current language."""
        app, item = self.app, self.app.item
        if item is None:
            return
        tr = app.tr
        self.ids.title.text = app.local(item.name_zh, item.name_en)
        self.ids.guide.text = app.local(item.guide_zh, item.guide_en)
        materials = app.local(item.materials_zh, item.materials_en) or (tr("Nothing to bring"),)
        self.ids.materials.text = "\n".join(f"•  {m}" for m in materials)
        if item.fee_cny is None:
            fee = tr("Shown before you pay")
        elif item.fee_cny == 0:
            fee = tr("Free")
        else:
            fee = tr("{amount} yuan").format(amount=f"{item.fee_cny:.2f}")
        self.ids.fee.text = tr("Fee: {fee}").format(fee=fee)
        self.ids.minutes.text = tr("Expected time: about {minutes} minutes").format(minutes=item.expected_minutes)
        identity = {"none": "No identity document needed",
                    "id_card": "Bring your resident ID card",
                    "id_card_and_face": "Bring your resident ID card; your face is checked at the camera",
                    "travel_document": "Bring your passport or travel permit"}.get(item.identity, "")
        self.ids.identity.text = tr(identity) if identity else ""
        available = app.is_available(item)
        self.ids.start_button.disabled = not available or item.kind == "guide"
        self.ids.start_button.opacity = 0 if item.kind == "guide" else 1
        # The health monitor words the reason (backend, a device, the disk) for residents.
        self.ids.unavailable.text = notice(app.unavailable_reason(item), app.lang)


SCREEN = GuideScreen
