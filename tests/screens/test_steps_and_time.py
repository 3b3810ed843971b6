"""Steps and time through real touches: the step indicator on every screen of a visit, the idle warning's extension."""
from __future__ import annotations

from typing import Any

import pytest

from kiosk.hardware.simulators.cards import DEMO_CARDS

pytestmark = pytest.mark.ui

WANG = DEMO_CARDS[0]


def step_text(ui: Any) -> str:
    """What the current screen's step indicator says (markup removed)."""
    import re

    bar = ui.find("step_bar")
    return re.sub(r"\[/?[a-z]+(=[^\]]*)?\]", "", bar.text) if bar.opacity > 0 else ""


def start(ui: Any, item_id: str) -> None:
    """Home → the item's guide (its tile, or its category) → start, by touch."""
    app = ui.app
    home = app.sm.get_screen("home")
    item = app.runtime.catalog.get(item_id)
    if item in app.runtime.home_items:
        ui.tap(home.tile_for(item_id))
    else:
        ui.tap(home.category_tile(item.category))
        ui.wait_screen("category")
        category = app.sm.get_screen("category")
        ui.tap_entry(lambda: category.button_for(item_id), item_id)
    ui.wait_screen("guide")
    ui.tap_id("start_button")
    ui.wait_screen("identify")


def test_h01_shows_each_of_its_four_steps_by_name(ui: Any) -> None:
    app = ui.app
    reader = app.runtime.devices.get("id_card")
    start(ui, "H01")
    assert step_text(ui) == "第1步/共4步：读取身份证\n读取身份证  ·  填写信息  ·  确认  ·  打印"
    reader.place(WANG.id_number)
    ui.wait_screen("form")
    assert step_text(ui).startswith("第2步/共4步：填写信息\n")
    ui.tap_id("language_button")
    assert step_text(ui) == "Step 2 of 4: Fill in\nRead ID card  ·  Fill in  ·  Confirm  ·  Print"
    ui.tap_id("language_button")
    ui.tap(app.sm.current_screen.inputs["purpose"].children[-1])
    ui.wait_screen("confirm")
    assert step_text(ui).startswith("第3步/共4步：确认\n")
    ui.tap_id("confirm_button")
    ui.wait_screen("done")
    assert step_text(ui).startswith("第4步/共4步：打印\n")
    reader.remove()
    ui.tap_id("finish_button")
    ui.wait_screen("home")


def test_a_face_check_and_a_query_count_their_own_steps(ui: Any) -> None:
    app = ui.app
    reader = app.runtime.devices.get("id_card")
    start(ui, "S01")
    assert step_text(ui).startswith("第1步/共5步：读取身份证\n")
    reader.place(WANG.id_number)
    ui.wait_screen("face")
    assert step_text(ui) == "第2步/共5步：人脸核验\n读取身份证  ·  人脸核验  ·  填写信息  ·  确认  ·  打印"
    reader.remove()
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
    start(ui, "H17")  # a query: read the card, see the results
    assert step_text(ui) == "第1步/共2步：读取身份证\n读取身份证  ·  查看结果"
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_the_idle_warning_extends_with_one_touch_ten_times_and_then_wipes(ui: Any) -> None:
    app = ui.app
    root = app.root
    reader = app.runtime.devices.get("id_card")
    timer = app.idle
    real_clock = timer.clock
    skipped = [0.0]
    # The resident's pauses are skipped on the timer's own clock (the touches are real):
    # ten waits for the warning would take minutes of wall time.
    timer.clock = lambda: real_clock() + skipped[0]
    try:
        start(ui, "H01")
        reader.place(WANG.id_number)
        ui.wait_screen("form")
        txn = app.txn
        folder = txn.session.folder
        quiet = timer.timeout_s - timer.warning_s
        for n in range(1, 12):
            skipped[0] += quiet + 0.5
            # What the warning says as it comes up (the tick that raises it sets the count too).
            shown = ui.wait_until(lambda: app.idle_warning and app.idle_left, "the idle warning")
            ui.pump(2)
            assert root.ids.idle_overlay.opacity == 1
            # The whole 20 s to answer (WCAG 2.2.1), however late the reading that raised it (a busy machine,
            # or this test's skip made some time after the last touch)
            assert timer.warning_s == 20 and shown == 20 and app.idle_left <= 20
            assert root.ids.idle_wipe.text == "届时将清除：您的身份证信息。"  # says what would be wiped
            ui.tap(root.ids.continue_button)  # one touch: the full time again
            assert not app.idle_warning and app.txn is txn and timer.extensions == n
        assert ui.current == "form" and txn.outcome is None and folder.exists()
        ui.tap_id("language_button")
        skipped[0] += quiet + 0.5
        ui.wait_until(lambda: app.idle_warning, "the idle warning")
        ui.pump(2)
        assert root.ids.idle_wipe.text == "This will be wiped: your ID card details."
        skipped[0] += timer.warning_s  # nobody answers
        ui.wait_screen("home")
        assert txn.outcome.value == "cancelled" and txn.reason == "timeout"
        assert txn.session.identity is None and not folder.exists() and timer.extensions == 0
    finally:
        timer.clock = real_clock
        reader.remove()
        app.lang = "zh_CN"
