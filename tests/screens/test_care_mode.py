"""Care mode (关怀模式) through touches: the switch on home, larger type and targets, paged lists, its keyboard."""
from __future__ import annotations

from typing import Any

import pytest
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label

pytestmark = pytest.mark.ui


def shown(widget: Any) -> list[Any]:
    """Widgets drawn under ``widget``: opacity above zero all the way up and a size."""
    out = []

    def visit(w: Any) -> None:
        if w.opacity <= 0 or w.width < 1 or w.height < 1:
            return
        out.append(w)
        for child in w.children:
            visit(child)
    visit(widget)
    return out


def texts(screen: Any) -> list[Any]:
    return [w for w in shown(screen) if isinstance(w, Label) and str(w.text).strip()]


def care_on(ui: Any) -> None:
    ui.tap_id("care_button", "home")
    ui.pump(3)
    assert ui.app.care


@pytest.fixture
def care_ui(ui: Any) -> Any:
    """The shared app at home, care mode left off again afterwards."""
    yield ui
    ui.app.care = False


def test_the_care_switch_sits_next_to_the_language_button_and_is_as_large(care_ui: Any) -> None:
    ui = care_ui
    home = ui.app.sm.get_screen("home")
    switch, language = ui.find("care_button", "home"), ui.find("language_button", "home")
    assert switch.parent is language.parent  # the same header row, side by side
    assert switch.height == language.height and switch.width >= language.width
    assert "关怀模式" in switch.text
    assert all(w.font_size >= 40 for w in texts(home))
    care_on(ui)
    assert switch.state == "down"
    assert all(w.font_size >= 60 for w in texts(home)), [(w.text, w.font_size) for w in texts(home)
                                                         if w.font_size < 60]
    targets = [w for w in shown(home) if isinstance(w, ButtonBehavior)]
    assert targets and all(w.height >= 160 for w in targets), [(type(w).__name__, w.height) for w in targets]
    assert ui.app.idle.timeout_s == 2 * ui.app.kiosk_config.ui.idle_timeout_s
    ui.tap_id("care_button", "home")
    ui.pump(3)
    assert not ui.app.care and switch.state == "normal"
    assert ui.app.idle.timeout_s == ui.app.kiosk_config.ui.idle_timeout_s


def test_care_mode_pages_a_category_five_at_a_time_and_the_pages_turn_by_touch(care_ui: Any) -> None:
    ui = care_ui
    app = ui.app
    care_on(ui)
    biggest = max(app.runtime.catalog.categories(), key=lambda c: len(app.runtime.catalog.in_category(c.code)))
    items = [i.id for i in app.runtime.catalog.in_category(biggest.code)]
    assert len(items) > 10
    ui.tap(app.sm.get_screen("home").category_tile(biggest.code), "category")
    ui.wait_screen("category")
    screen = app.sm.get_screen("category")
    on_page = [b.item_id for b in reversed(screen.ids.item_list.children)]
    assert on_page == items[:5]
    assert screen.ids.page_label.text == f"第1页/共{(len(items) + 4) // 5}页"
    assert screen.ids.prev_page.disabled
    ui.tap_id("next_page")
    assert [b.item_id for b in reversed(screen.ids.item_list.children)] == items[5:10]
    # Every entry of the page is on the screen at once: nothing to scroll.
    for button in screen.ids.item_list.children:
        x, y = button.to_window(*button.pos)
        sx, sy = screen.ids.scroller.to_window(*screen.ids.scroller.pos)
        assert sy - 1 <= y and y + button.height <= sy + screen.ids.scroller.height + 1
    ui.tap(screen.button_for(items[6]), items[6])
    ui.wait_screen("guide")
    assert app.item.id == items[6]


def test_care_mode_stays_for_a_resident_who_cancels_and_ends_with_the_session(care_ui: Any) -> None:
    ui = care_ui
    app = ui.app
    care_on(ui)
    ui.tap(app.sm.get_screen("home").tile_for("H01"), "tile H01")
    ui.wait_screen("guide")
    ui.tap_id("start_button")
    ui.wait_screen("identify")
    ui.tap_id("home_button")  # the same resident, back home to choose again
    ui.wait_screen("home")
    assert app.care
    ui.tap(app.sm.get_screen("home").tile_for("H01"), "tile H01")
    ui.wait_screen("guide")
    ui.tap_id("start_button")
    ui.wait_screen("identify")
    app.end_session("timeout")  # what the idle timer does when the resident has gone
    ui.wait_screen("home")
    assert not app.care  # the next resident starts in the station's mode


def test_a_station_configured_for_care_mode_starts_every_session_in_it(care_ui: Any) -> None:
    ui = care_ui
    app = ui.app
    plain = app.kiosk_config
    app.kiosk_config = plain.model_copy(update={"ui": plain.ui.model_copy(update={"care_mode_default": True})})
    try:
        app.end_session("done")
        ui.wait_screen("home")
        assert app.care
        ui.tap_id("care_button", "home")  # a resident may still turn it off for their visit
        assert not app.care
        app.end_session("done")
        ui.wait_screen("home")
        assert app.care
    finally:
        app.kiosk_config = plain


def test_care_mode_keyboard_has_fewer_larger_keys_and_three_candidates(care_ui: Any) -> None:
    ui = care_ui
    app = ui.app
    care_on(ui)
    app.open_item("H15")  # the ID number, name, date, place and phone of someone else: no card needed
    ui.wait_screen("guide")
    ui.tap_id("start_button")
    ui.wait_screen("form")
    form = app.sm.current_screen
    panel = form.ids.ime
    field = form.inputs["name"]
    ui.reveal(field)
    ui.tap(field, "name")
    ui.pump(4)
    assert panel.open and panel.chinese
    rows = [row for row in panel.ids.letters.children if row.opacity > 0 and row.height > 0]
    keys_a_row = [len(row.children) for row in rows]
    assert max(keys_a_row) <= 8 and len(rows) >= 5, keys_a_row  # QWERTY has 10 a row
    keys = [k for k in shown(panel) if isinstance(k, ButtonBehavior)]
    assert all(k.height >= 160 and k.width >= 96 for k in keys), [(k.text, k.size) for k in keys
                                                                   if k.height < 160 or k.width < 96]
    for letter in "wang":
        ui.tap(panel.key(letter), letter)
    assert len(panel.ids.candidate_keys.children) == 3 and panel.candidates[0].text == "王"
    assert all(k.font_size >= 60 for k in panel.ids.candidate_keys.children)
    ui.tap(panel.candidate_key("王"), "candidate 王")
    assert field.text == "王"
    # The field being typed into and the main button stay in view above the panel.
    for widget in (field, form.ids.next_button):
        x, y = widget.to_window(*widget.pos)
        px, py = panel.to_window(*panel.pos)
        assert y >= py + panel.height - 1, widget
    ui.tap(panel.key("done"), "done")
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
