"""Home: the service categories, a search box and the language button."""
from __future__ import annotations

from typing import Any

from kivy.factory import Factory

from kiosk.screens.base import KioskScreen


class HomeScreen(KioskScreen):
    """Entry screen; shown after every session."""

    def on_pre_enter(self, *_args: Any) -> None:
        """Build the category buttons once from the catalog and clear the search box."""
        self.ids.search_input.text = ""
        grid = self.ids.categories
        if grid.children:
            return
        for category in self.app.runtime.catalog.categories():
            button = Factory.BigButton()
            button.category = category
            button.bind(on_release=lambda b: self.open_category(b.category))
            grid.add_widget(button)
        self.relabel()

    def relabel(self, *_args: Any) -> None:
        """Category names in the current language."""
        for button in self.ids.categories.children:
            button.text = self.app.category_name(button.category)

    def open_category(self, category: Any) -> None:
        """Show the items of one category."""
        self.app.open_category(category)

    def search(self) -> None:
        """Show the items matching the search box."""
        self.app.search(self.ids.search_input.text)


SCREEN = HomeScreen
