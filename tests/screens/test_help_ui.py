"""Calling the duty officer from the touch screen, through real touches and the signed API to the simulator.

The officer answers on the simulator's loopback /sim endpoint; the reply is read off the
kiosk's screen, never from the service. The masked screenshot of a form holding an ID number
is compared with a render of the same screen with masking off.
"""
from __future__ import annotations

import io
from typing import Any

import pytest
import requests
from PIL import Image

from kiosk.demo.driver import DemoError
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.screens.help import render_screen
from tests.screens.test_screens import open_guide, screen_text, start_h01, visible_text

pytestmark = pytest.mark.ui

ID_NUMBER = DEMO_CARDS[0].id_number  # 王小明's


def _sim(ui: Any) -> str:
    return ui.app.runtime.sim.url


def _requests(ui: Any) -> dict[str, dict[str, Any]]:
    r = requests.get(f"{_sim(ui)}/api/v1/sim/help-requests", timeout=5)
    r.raise_for_status()
    return {row["ticket"]: row for row in r.json()}


def _call(ui: Any, *, share: bool = False) -> str:
    """Touch 呼叫民警 on the current screen, confirm, and wait for the ticket; the ticket."""
    app = ui.app
    ui.tap_id("help_button")
    ui.wait_until(lambda: app.help_status == "asking", "the question")
    assert "要呼叫值班民警吗？" in visible_text(app.root.ids.help_confirm)
    if share:
        ui.tap(app.root.ids.share_name_button, "share my masked name")
    ui.tap(app.root.ids.confirm_help_button, "call")
    ui.wait_until(lambda: app.help_status == "open", "the ticket")
    return app.help_ticket


def _answer(ui: Any, ticket: str, reply: str) -> None:
    r = requests.post(f"{_sim(ui)}/api/v1/sim/help-requests/{ticket}/answer", json={"reply": reply}, timeout=5)
    assert r.status_code == 200, r.text


def _place(ui: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """Where the current screen's help button is in the window, and its size."""
    button = ui.find("help_button")
    ui.pump(2)
    return tuple(round(v) for v in button.to_window(*button.pos)), tuple(round(v) for v in button.size)


def test_the_help_button_is_on_every_resident_screen_under_the_title_row(ui: Any) -> None:
    app = ui.app
    for name in ("home", "category", "guide", "identify", "reprint", "face", "form", "confirm", "payment",
                 "printing", "done", "error", "out_of_service", "travel_entry"):
        screen = app.screen(name)
        button = ui.find("help_button", name)
        bar = ui.find("help_bar", name)
        header = bar.parent
        # The header is the top of the screen's layout (a vertical box's first child is its last in .children).
        assert header.parent.children[-1] is header and header.parent.orientation == "vertical", name
        assert header.show_help and bar.shown and not button.disabled, name
        assert button.height >= 120 and button.width >= 96 and button.font_size >= 40, name
        assert screen.name == name
    for name in ("maintenance_pin", "maintenance"):
        bar = ui.find("help_bar", app.screen(name).name)
        assert bar.opacity == 0 and bar.height == 0 and ui.find("help_button", name).disabled
    assert _place(ui)[0][1] > app.root.height - 320  # in the header's band at the top


def test_a_call_from_the_identify_screen_is_answered_and_acknowledged(ui: Any) -> None:
    app = ui.app
    home = _place(ui)
    open_guide(ui, "H01")
    assert _place(ui) == home
    ui.tap_id("start_button")
    ui.wait_screen("identify")
    assert _place(ui) == home  # the same place on every screen
    ticket = _call(ui)
    assert f"呼叫编号 {ticket}：值班民警已收到，请稍候" in screen_text(ui)
    row = _requests(ui)[ticket]
    assert (row["screen"], row["item_id"], row["step"], row["identity_masked"]) == ("identify", "H01", "identify", "")
    assert row["screenshots"] == 1
    # The request stays open across screens; each new screen is sent, masked, with the next poll.
    ui.tap_id("language_button")
    assert f"Call {ticket}: the duty officer has your call. Please wait." in screen_text(ui)
    ui.tap_id("language_button")
    app.runtime.devices.get("id_card").place(ID_NUMBER)
    ui.wait_leave("identify")
    ui.wait_until(lambda: _requests(ui)[ticket]["screenshots"] >= 2,
                  "the next screen's picture", 20)
    assert _requests(ui)[ticket]["screen"] == app.sm.current
    assert _place(ui) == home
    assert f"呼叫编号 {ticket}" in screen_text(ui)
    _answer(ui, ticket, "请把身份证放在读卡区，民警马上过来。")
    ui.wait_until(lambda: app.root.ids.help_reply.shown, "the reply banner", 20)
    banner = visible_text(app.root.ids.help_reply)
    assert "值班民警答复" in banner and "请把身份证放在读卡区，民警马上过来。" in banner
    # The banner must be acknowledged: it takes every touch meanwhile.
    with pytest.raises(DemoError):
        ui.tap_id("home_button")
    assert app.txn is not None and app.root.ids.help_reply.shown
    ui.tap(app.root.ids.help_ack_button, "I have read it")
    assert not app.root.ids.help_reply.shown and app.help_status == ""
    assert "呼叫民警" in visible_text(ui.find("help_bar"))
    ui.tap_id("home_button")
    ui.wait_screen("home")
    assert _requests(ui)[ticket]["status"] == "answered"


def test_the_session_ending_closes_an_open_call_and_a_shared_name_is_masked(ui: Any) -> None:
    app = ui.app
    start_h01(ui)
    app.runtime.devices.get("id_card").place(ID_NUMBER)
    ui.wait_screen("form", "reprint", "confirm")
    ticket = _call(ui, share=True)
    assert _requests(ui)[ticket]["identity_masked"] == "王*明"
    ui.tap_id("home_button")
    ui.wait_screen("home")
    ui.wait_until(lambda: _requests(ui)[ticket]["status"] == "closed", "the call closed at the backend")
    assert app.help_status == "" and "呼叫编号" not in screen_text(ui)


def test_a_call_can_be_taken_back(ui: Any) -> None:
    app = ui.app
    ticket = _call(ui)
    ui.tap_id("help_button")  # now "取消呼叫"
    ui.wait_until(lambda: app.help_status == "", "the call taken back")
    assert _requests(ui)[ticket]["status"] == "closed"


def _id_form(ui: Any) -> Any:
    """H14's form (no card: ID number and name typed) with the ID number typed by touch on the keypad."""
    app = ui.app
    open_guide(ui, "H14")
    ui.tap_id("start_button")
    ui.wait_screen("form")
    form = app.sm.get_screen("form")
    field = form.inputs["id_number"]
    ui.tap(field, "the ID number field")
    while (key := form.ids.ime.next_key(ID_NUMBER)) is not None:
        ui.tap(key)
    assert field.text == ID_NUMBER
    return field


def test_the_screenshot_of_a_form_holding_an_id_number_has_it_masked(ui: Any) -> None:
    app = ui.app
    field = _id_form(ui)
    plain = render_screen(app.root, 540, masked=False)
    masked = render_screen(app.root, 540, masked=True)
    assert any(ID_NUMBER in t for t in plain.texts)  # the render without masking does hold it
    assert not any(ID_NUMBER in t or ID_NUMBER[6:14] in t for t in masked.texts)
    assert field.text == ID_NUMBER and field.opacity == 1  # the resident's screen is untouched
    # The field's place in the picture: drawn with the number unmasked, blank when masked.
    scale = 540 / app.root.width
    x, y = field.to_window(*field.pos)
    box = (int(x * scale), int((app.root.height - y - field.height) * scale),
           int((x + field.width) * scale), int((app.root.height - y) * scale))
    crop = {name: Image.frombytes("RGB", (r.width, r.height), r.rgb).crop(box)
            for name, r in (("plain", plain), ("masked", masked))}
    assert len(crop["masked"].getcolors(1 << 16) or []) <= 3  # flat: nothing drawn in the blanked field
    assert len(crop["plain"].getcolors(1 << 16) or []) > 10  # the digits' strokes and anti-aliasing
    # Rows run top to bottom as on the screen: the header's dark blue at the top left.
    top = Image.frombytes("RGB", (masked.width, masked.height), masked.rgb).getpixel((4, 4))
    assert all(abs(a - b) <= 3 for a, b in zip(top, (8, 23, 51))), top
    # And what went over the wire is the masked render.
    ticket = _call(ui)
    shot = requests.get(f"{_sim(ui)}/fleet/help/{ticket}/screenshot", timeout=5)
    sent = Image.open(io.BytesIO(shot.content))
    assert shot.headers["Content-Type"] == "image/jpeg" and sent.width == app.kiosk_config.help.screenshot_width


def test_an_unread_reply_on_the_home_screen_goes_after_the_idle_time(ui: Any) -> None:
    app = ui.app
    ticket = _call(ui)
    _answer(ui, ticket, "请到服务窗口。")
    ui.wait_until(lambda: app.root.ids.help_reply.shown, "the reply banner", 20)
    assert app.sm.current == "home"  # no session here to time out
    ui.wait_until(lambda: not app.root.ids.help_reply.shown, "the unread reply to go", 40)
    assert app.help_status == "" and app.runtime.help.current is None
