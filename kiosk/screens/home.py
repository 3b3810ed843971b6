"""Home: the flagship services as large tiles, the categories with their icons and sizes, a search box."""
from __future__ import annotations

import logging
from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout

from kiosk.screens import text_surface
from kiosk.screens.base import KioskScreen, release_graphics, renew_label_textures, unavailable_line
from kiosk.screens.fingers import RECHECK_S, FingerWatch
from kiosk.screens.icons import glyph
from kiosk.services import heap

log = logging.getLogger(__name__)

TIDY_AFTER_S = 3.0  # on home, with no one starting a visit, this long after arriving: the heap is tidied


class HomeTile(ButtonBehavior, BoxLayout):
    """A large tile for one item (``item_id``): its icon and name; the touch opens its guide."""

    item_id = StringProperty("")
    glyph = StringProperty("")
    label = StringProperty("")


class CategoryTile(ButtonBehavior, BoxLayout):
    """One category (``code``): its icon, its name and how many services it holds."""

    code = StringProperty("")
    glyph = StringProperty("")
    label = StringProperty("")
    count_text = StringProperty("")


class HomeScreen(FingerWatch, KioskScreen):
    """Entry screen; shown after every session."""

    spoken_ids = ("backend_notice",)

    notice = BooleanProperty(False)
    """The backend notice is shown: follows ``app.backend_down``, held back while a finger is on the tiles."""

    def on_kv_post(self, *_args: Any) -> None:
        """Arm the tidy that follows each arrival here; follow the language and the type size at once and the
        backend's state once no finger is on the tiles and categories."""
        self._tidy = Clock.create_trigger(self._tidy_heap, TIDY_AFTER_S)
        self._held_back = Clock.create_trigger(self.follow_backend, RECHECK_S)
        self.app.bind(lang=self.relabel, ts=self.relabel, availability=self.follow_backend,
                      backend_down=self.follow_backend)
        self.watch_fingers(self.ids.scroller)

    def on_enter(self, *_args: Any) -> None:
        """A resident has gone (or the kiosk has just started): tidy the heap once home has been still a while."""
        self._tidy.timeout = TIDY_AFTER_S
        self._tidy()

    def on_leave(self, *_args: Any) -> None:
        """Someone is using the kiosk: no tidy under their fingers; a finger still down no longer holds home back."""
        self._tidy.cancel()
        self.forget_fingers()

    def follow_backend(self, *_args: Any) -> None:
        """Show the backend's notice and the tiles' availability, once no finger is on the tiles.

        The notice comes in above the tiles and a flagship that cannot run takes a second line: both move the tiles
        and categories below. A tile moved from under a finger before it lifts is not pressed (the lift lands
        outside it): the UI soak's session 341, a health probe that found the backend down while a resident touched
        a category, who then stood at home. Home, when not on show, takes the change at once."""
        shown = self.manager is not None and self.manager.current == self.name
        if shown and self.finger_on_list():
            self._held_back()
            return
        self._held_back.cancel()
        self.notice = self.app.backend_down
        self.relabel()

    def _tidy_heap(self, _dt: float) -> None:
        app = self.app
        if self.manager is None or self.manager.current != self.name or app.txn is not None:
            return
        still_s = app.attract_idle_s()
        if still_s < TIDY_AFTER_S:  # someone is touching home (the search box, the categories): once it is still
            self._tidy.timeout = TIDY_AFTER_S - still_s + 0.05
            self._tidy()
            return
        self.rest_tidy()

    def rest_tidy(self) -> None:
        """The tidy at rest, on the UI thread with no one at the kiosk. The fonts' glyph caches are emptied
        (text_surface.flush_glyph_caches), the labels of every screen built and of the overlays get new textures
        (renew_label_textures, which draws again the glyphs they show), the first time only the interpreter's
        table of interned strings is brought to its lasting size (heap.settle_interned_strings), then the heap is
        tidied and the survivors set aside from the automatic collections, which would otherwise walk them all
        during the next resident's visit (heap.set_aside). The UI soak calls it before each reading, as a kiosk
        left still would."""
        from kivy.core.window import Window

        fonts = text_surface.flush_glyph_caches()
        renewed = renew_label_textures([*self.manager.screens, *Window.children])
        log.debug("tidy at rest: %d fonts' glyph caches emptied, %d label textures renewed", fonts, renewed)
        heap.settle_interned_strings()  # the first time only
        heap.tidy(after_collect=release_graphics, freeze=True)

    def on_pre_enter(self, *_args: Any) -> None:
        """Build the tiles and category buttons once from the catalog, clear the search box, show the top."""
        self.ids.search_input.text = ""
        self.ids.scroller.scroll_y = 1  # a home that scrolls (see home.kv) opens at its top for the next resident
        if self.ids.categories.children:
            self.follow_backend()
            return
        runtime = self.app.runtime
        for item in runtime.home_items:
            tile = HomeTile(item_id=item.id, glyph=glyph(runtime.catalog.icon(item)))
            tile.bind(on_release=lambda t: self.app.open_tile(t.item_id))
            self.ids.tiles.add_widget(tile)
        for category in runtime.catalog.categories():
            tile = CategoryTile(code=category.code, glyph=glyph(category.icon))
            tile.category = category
            tile.bind(on_release=lambda t: self.open_category(t.category))
            self.ids.categories.add_widget(tile)
        self.follow_backend()

    def relabel(self, *_args: Any) -> None:
        """Names and counts in the current language; an item that cannot run now says so on its tile."""
        app = self.app
        catalog = app.runtime.catalog
        for tile in self.ids.tiles.children:
            item = catalog.get(tile.item_id)
            label = app.local(item.name_zh, item.name_en)
            if not app.is_available(item):
                label += unavailable_line(app)
            tile.label = label
        for tile in self.ids.categories.children:
            tile.label = app.category_name(tile.category)
            tile.count_text = app.tr("{count} services").format(count=len(catalog.in_category(tile.code)))

    def tile_for(self, item_id: str) -> Any:
        """The home tile of ``item_id`` (the demo and tests touch it). Raises LookupError."""
        for tile in self.ids.tiles.children:
            if tile.item_id == item_id:
                return tile
        raise LookupError(item_id)

    def category_tile(self, code: str) -> Any:
        """The category button of ``code``. Raises LookupError."""
        for tile in self.ids.categories.children:
            if tile.code == code:
                return tile
        raise LookupError(code)

    def open_category(self, category: Any) -> None:
        """Show the items of one category."""
        self.app.open_category(category)

    def search(self) -> None:
        """Show the items matching the search box."""
        self.app.search(self.ids.search_input.text)


SCREEN = HomeScreen
