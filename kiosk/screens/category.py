"""Category list: the items of one category (or of a search), unavailable ones marked."""
from __future__ import annotations

from typing import Any

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout

from kiosk.screens.base import KioskScreen


class ItemEntry(ButtonBehavior, BoxLayout):
    """One item of the list (``item_id``): its code and name; an unavailable item still opens its guide."""

    item_id = StringProperty("")
    label = StringProperty("")
    available = BooleanProperty(True)


class CategoryScreen(KioskScreen):
    """One large entry per item; an item that cannot run now still opens its guide."""

    def on_kv_post(self, *_args: Any) -> None:
        """Redraw when the language or the availability of items changes."""
        self.app.bind(lang=self.fill, availability=self.fill)

    def on_pre_enter(self, *_args: Any) -> None:
        """Fill the list from the shell's current item list."""
        self.fill()
        self.ids.scroller.scroll_y = 1

    def fill(self, *_args: Any) -> None:
        """One entry per item, labelled in the current language."""
        app, grid = self.app, self.ids.item_list
        grid.clear_widgets()
        self.ids.title.text = app.local(*app.list_title)
        self.ids.empty.opacity = 0 if app.list_items else 1
        for item in app.list_items:
            available = app.is_available(item)
            label = app.local(item.name_zh, item.name_en)
            if not available:
                label += "\n[size=40]" + app.tr("(unavailable right now)") + "[/size]"
            entry = ItemEntry(item_id=item.id, label=label, available=available)
            entry.bind(on_release=lambda e: app.open_item(e.item_id))
            grid.add_widget(entry)

    def button_for(self, item_id: str) -> Any:
        """The list button of ``item_id`` (the demo and tests touch it)."""
        for button in self.ids.item_list.children:
            if button.item_id == item_id:
                return button
        raise LookupError(item_id)


SCREEN = CategoryScreen
