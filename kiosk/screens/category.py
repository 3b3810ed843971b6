"""Category list: the items of one category (or of a search), unavailable ones marked."""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, NumericProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout

from kiosk.screens.base import KioskScreen, unavailable_line
from kiosk.screens.fingers import RECHECK_S, FingerWatch

CARE_PAGE_SIZE = 5  # care mode: at most this many entries at a time


class ItemEntry(ButtonBehavior, BoxLayout):
    """One item of the list (``item_id``): its code and name; an unavailable item still opens its guide."""

    item_id = StringProperty("")
    label = StringProperty("")
    available = BooleanProperty(True)


class CategoryScreen(FingerWatch, KioskScreen):
    """One large entry per item; an item that cannot run now still opens its guide. Paged in care mode."""

    spoken_ids = ("empty",)

    page = NumericProperty(0)
    pages = NumericProperty(1)

    def on_kv_post(self, *_args: Any) -> None:
        """Redraw when the language, the mode or the availability of items changes; note fingers on the list."""
        self._held_back = Clock.create_trigger(self.refresh, RECHECK_S)
        self.app.bind(lang=self.refresh, availability=self.refresh, care=self._care_changed)
        self.watch_fingers(self.ids.scroller)

    def on_leave(self, *_args: Any) -> None:
        """A finger still down when the screen changed no longer holds the list back."""
        super().on_leave(*_args)
        self.forget_fingers()

    def refresh(self, *_args: Any) -> None:
        """Fill the list again, once no finger is on it.

        A list filled again under a finger moves its entries (an item that became unavailable takes a second
        line), and ScrollView hands the touch to the entry under the finger when it decides the touch is a tap,
        up to 0.2 s later: the resident would open the item that slid under their finger (the UI soak's
        session 975, a backend gone down while a resident touched the list).

        A list not on show is left alone: it is filled when it is shown next (``on_pre_enter``)."""
        if self.manager is None or self.manager.current != self.name:
            self._held_back.cancel()
            return
        if self.finger_on_list():
            self._held_back()
            return
        self._held_back.cancel()
        self.fill()

    def forget(self) -> None:
        """The entries go: the list (a category's, or a search's for what the last resident typed) is built
        again when it is shown. Kept, its labels' pixels (2 to 6 MiB) stayed behind at the home screen, more or
        less of them as the last list was longer or shorter."""
        self.ids.item_list.clear_widgets()

    def on_pre_enter(self, *_args: Any) -> None:
        """Fill the list from the shell's current item list, from its first page."""
        self._first_page()

    def _care_changed(self, *_args: Any) -> None:
        if self.manager is not None and self.manager.current == self.name:
            self._first_page()

    def _first_page(self, *_args: Any) -> None:
        self.page = 0
        self.fill()
        self.ids.scroller.scroll_y = 1

    def turn(self, step: int) -> None:
        """Show the next (1) or previous (-1) page."""
        self.page = max(0, min(self.pages - 1, self.page + step))
        self.fill()

    def fill(self, *_args: Any) -> None:
        """One entry per item (of this page in care mode), labelled in the current language."""
        app, grid = self.app, self.ids.item_list
        grid.clear_widgets()
        self.ids.title.text = app.local(*app.list_title)
        self.ids.empty.opacity = 0 if app.list_items else 1
        items = app.list_items
        if app.care:
            self.pages = max(1, (len(items) + CARE_PAGE_SIZE - 1) // CARE_PAGE_SIZE)
            self.page = min(self.page, self.pages - 1)
            items = items[self.page * CARE_PAGE_SIZE:(self.page + 1) * CARE_PAGE_SIZE]
        else:
            self.pages = 1
        for item in items:
            available = app.is_available(item)
            label = app.local(item.name_zh, item.name_en)
            if not available:
                label += unavailable_line(app)
            entry = ItemEntry(item_id=item.id, label=label, available=available)
            entry.bind(on_release=lambda e: app.open_item(e.item_id))
            grid.add_widget(entry)

    def button_for(self, item_id: str) -> Any:
        """The list button of ``item_id`` on the page on show (the demo and tests touch it)."""
        for button in self.ids.item_list.children:
            if button.item_id == item_id:
                return button
        raise LookupError(item_id)

    def page_of(self, item_id: str) -> int:
        """The page (from 0) ``item_id`` is on in care mode; 0 outside it. Raises LookupError."""
        ids = [item.id for item in self.app.list_items]
        if item_id not in ids:
            raise LookupError(item_id)
        return ids.index(item_id) // CARE_PAGE_SIZE if self.app.care else 0


SCREEN = CategoryScreen
