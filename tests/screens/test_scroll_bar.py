"""Kivy 2.3's ScrollView bound ``bar_color`` once more on every layout update: the kiosk's lists keep one binding."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.ui


def _bar_bindings(view: Any) -> int:
    return sum(1 for callback in view.get_property_observers("bar_color")
               if getattr(callback, "__name__", "") == "_change_bar_color")


def test_a_list_updated_many_times_keeps_one_binding(ui: Any) -> None:
    from kivy.uix.scrollview import ScrollView
    from kivy.uix.widget import Widget

    view = ScrollView(size=(300, 300))
    view.add_widget(Widget(size_hint_y=None, height=1200))
    for _ in range(40):  # as a list scrolled, or filled again, 40 times within half a second
        view.update_from_scroll()
    assert _bar_bindings(view) == 1
    ui.wait_seconds(0.8)  # the bar fades: Kivy's own half-second unbinding still runs
    assert _bar_bindings(view) == 0
    assert view.get_property_observers("bar_inactive_color")


def test_the_category_list_filled_again_for_each_resident_gathers_nothing(ui: Any) -> None:
    app = ui.app
    ui.tap(app.sm.get_screen("home").category_tile("T"))
    ui.wait_screen("category")
    screen = app.sm.current_screen
    view = screen.ids.item_list.parent
    for _ in range(12):
        screen.fill()
        ui.pump(1)
    assert _bar_bindings(view) <= 1
    ui.tap_id("back_button")
    ui.wait_screen("home")


def test_the_mend_is_installed_once(ui: Any) -> None:
    from kivy.uix.scrollview import ScrollView

    from kiosk.screens import scroll_bar

    patched = ScrollView.update_from_scroll
    assert scroll_bar._original is not None and patched is not scroll_bar._original
    scroll_bar.install()
    assert ScrollView.update_from_scroll is patched
