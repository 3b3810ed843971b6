"""A lookup's answer arriving while a finger is on the form waits until it lifts: the fields do not move under it.

The UI soak's session 460 (H10, the backend's 5xx then a retry): the appointment slots arrived while the resident
touched the birth certificate field below them; they pushed the field 5,700 pixels down and a slot lay under the
finger, which ScrollView would have chosen on the lift."""
from __future__ import annotations

from typing import Any

import pytest

from tests.screens.test_ime import open_h15_form

pytestmark = pytest.mark.ui


def _late_answer(form: Any, shown: list[str]) -> Any:
    """What a late lookup answer does to the form: a tall block of options above the fields."""
    from kivy.uix.widget import Widget

    block = Widget(size_hint_y=None, height=3000)

    def show() -> None:
        shown.append("options")
        form.ids.fields.add_widget(block, index=len(form.ids.fields.children))  # above every field
    return show, block


def test_an_answer_waits_for_the_finger_and_the_touched_field_takes_the_touch(ui: Any) -> None:
    form = open_h15_form(ui)
    target = form.inputs["name"]
    ui.reveal(target)
    ui.pump(2)
    x, y = target.to_window(target.center_x, target.center_y)
    finger = ui.finger_down(x, y)
    ui.pump(2)
    shown: list[str] = []
    show, block = _late_answer(form, shown)
    form._unmoved("id_number", show)
    # Past ScrollView's 200 ms the list hands the touch to the field it came down on, still there.
    ui.wait_until(lambda: target.focus, "the touched field focused", 10)
    assert shown == [] and form.finger_on_list()
    ui.finger_up(finger)
    ui.pump(2)
    assert target.focus  # the lift did not take it elsewhere
    ui.wait_until(lambda: shown == ["options"], "the held answer shown once the finger settled")
    assert block in form.ids.fields.children
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_an_answer_with_no_finger_down_shows_at_once_and_a_left_form_takes_none(ui: Any) -> None:
    form = open_h15_form(ui)
    shown: list[str] = []
    show, _block = _late_answer(form, shown)
    form._unmoved("id_number", show)
    assert shown == ["options"]
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
    late: list[str] = []
    form._unmoved("id_number", _late_answer(form, late)[0])  # the answer to a form no longer shown
    assert late == []
