"""The keyboard panel on the form screen, driven by touches on its keys (H15 needs no card)."""
from __future__ import annotations

from typing import Any

import pytest


def open_h15_form(ui: Any) -> Any:
    """The H15 form (ID number, name, date, place, phone): no card needed."""
    ui.app.open_item("H15")
    ui.wait_screen("guide")
    ui.tap_id("start_button")
    ui.wait_screen("form")
    return ui.app.sm.current_screen


def focus(ui: Any, form: Any, field: str) -> Any:
    """Touch a text field; the panel opens for it."""
    widget = form.inputs[field]
    ui.reveal(widget)
    ui.tap(widget, field)
    ui.pump(4)
    return widget


def window_rect(widget: Any) -> tuple[float, float, float, float]:
    x, y = widget.to_window(widget.x, widget.y)
    return x, y, x + widget.width, y + widget.height


def on_screen(widget: Any) -> bool:
    from kivy.core.window import Window

    x0, y0, x1, y1 = window_rect(widget)
    return 0 <= x0 and x1 <= Window.width and 0 <= y0 and y1 <= Window.height


def test_touching_w_a_n_g_then_the_candidate_puts_wang_in_the_name_field(ui: Any) -> None:
    form = open_h15_form(ui)
    panel = form.ids.ime
    field = focus(ui, form, "name")
    assert panel.open and not panel.pad and panel.chinese and panel.target is field
    for letter in "wang":
        ui.tap(panel.key(letter), letter)
    assert panel.composition == "wang" and field.text == ""
    assert panel.candidates[0].text == "王"  # a name field: the commonest surname first
    ui.tap(panel.candidate_key("王"), "candidate 王")
    assert field.text == "王" and panel.composition == ""
    # The rest of the name the way the demo types it: pinyin, then the candidate.
    touched = 0
    while (widget := panel.next_key("王小明")) is not None:
        ui.tap(widget)
        touched += 1
        assert touched < 20, f"typing the name does not converge: {field.text!r}"
    assert form.values()["name"] == "王小明"
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_chinese_digits_and_latin_mixed_in_one_field(ui: Any) -> None:
    form = open_h15_form(ui)
    panel = form.ids.ime
    field = focus(ui, form, "lost_place")
    touched = 0
    while (widget := panel.next_key("1号B")) is not None:
        ui.tap(widget)
        touched += 1
        assert touched < 20, f"typing does not converge: {field.text!r}"
    assert field.text == "1号B" and not panel.chinese
    assert all(k.width >= 100 and k.height >= 100 for k in
               (panel.key(c) for c in "qwertyuiopasdfghjklzxcvbnm1234567890"))
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_next_button_stays_visible_and_touchable_while_the_panel_is_open(ui: Any) -> None:
    form = open_h15_form(ui)
    panel = form.ids.ime
    for name in ("id_number", "name", "lost_place", "phone"):  # the last field is the lowest
        field = focus(ui, form, name)
        assert panel.open and panel.height > 400
        next_button = form.ids.next_button
        assert on_screen(next_button)
        # The panel lies below the button and the field, never over them.
        assert window_rect(panel)[3] <= window_rect(next_button)[1]
        scroller = form.ids.scroller
        sx0, sy0, sx1, sy1 = window_rect(scroller)
        fx0, fy0, fx1, fy1 = window_rect(field)
        assert sy0 - 1 <= fy0 and fy1 <= sy1 + 1, f"{name} is scrolled out of view"
    # The button takes a real touch with the panel open: the empty form is refused field by field.
    ui.tap(form.ids.next_button, "next")
    ui.wait_screen("form")
    assert not panel.open
    assert any(error.text for error in form.errors.values())
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_digit_fields_get_the_number_pad(ui: Any) -> None:
    form = open_h15_form(ui)
    panel = form.ids.ime
    phone = focus(ui, form, "phone")
    assert panel.pad and panel.open and panel.pad_extra == ""
    with pytest.raises(KeyError):
        panel.key("a")  # no letters on the pad
    for key in panel.keys_for("139"):
        assert key.height >= 100 and key.width >= 100
        ui.tap(key)
    ui.tap(panel.key("backspace"))
    assert phone.text == "13"
    id_number = focus(ui, form, "id_number")
    assert panel.pad and panel.pad_extra == "X" and panel.target is id_number
    for key in panel.keys_for("0X"):
        ui.tap(key)
    assert id_number.text == "0X" and phone.text == "13"
    ui.tap(panel.key("done"))
    assert not panel.open and not panel.children  # no hidden key left to swallow touches
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_no_docked_system_keyboard_appears() -> None:
    from kivy.config import Config
    from kivy.core.window import Window
    from kivy.uix.vkeyboard import VKeyboard

    assert Config.get("kivy", "keyboard_mode") == "system"
    assert not [w for w in Window.children if isinstance(w, VKeyboard)]
