"""The tactile keypad on the real UI: whole visits with keys and speech alone, and each key's job.

Keys go through Kivy's keyboard path (``Window.dispatch('on_key_down'/'on_key_up')``), as a USB
keypad's HID reports arrive; the speaker is the simulator, so what is said is logged as said.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from kiosk.demo import people
from kiosk.demo.resident import Resident
from kiosk.i18n import translate
from kiosk.screens.voice import plain
from tests.screens.test_demo import kiosk
from tests.screens.test_demo_voice import TITLES

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]


def zh(msgid: str) -> str:
    return translate(msgid, "zh_CN")


class ListeningResident(Resident):
    """A resident who cannot see the screen: notes each screen met (no photographs)."""

    def shot(self, screen: str, *, again: bool = False) -> None:
        """Note the screen (the record's screenshots stay empty)."""
        self.met.append(self.driver.app.sm.current)


def run_flow(ui: Any, tmp_path: Path, flow: str) -> tuple[Any, list[str]]:
    resident = ListeningResident(ui, ui.app.runtime, tmp_path)
    resident.met = []
    record = resident.run(flow)
    return record, resident.met


# (flow, outcome, what must be said besides each screen's title)
FLOWS = [
    ("H01:input=keypad", "completed", ["户籍证明打印，按钮", "开始办理，按钮", "就业，选项，未选中"]),
    ("S01:input=keypad", "completed", ["请正视摄像头", "拍照核验，按钮"]),
    ("T02:input=keypad", "completed", []),
    # The payment screen says the amount (with headphones in), that a phone pays, and where help is.
    ("T03:input=keypad:private=yes", "completed", ["请用手机扫描屏幕上的二维码付款", "需要帮助请按星号键"]),
    ("T03:input=keypad", "completed", ["金额已显示在屏幕上。请用手机扫描"]),  # without them: masked
    ("H01:CHEN:input=keypad", "refused", []),
    ("H13:input=keypad", "completed", ["数字输入框"]),  # a phone number typed with the digit keys
    ("T09:input=keypad", "completed", ["数字输入框"]),  # digits and a date (its dashes come by themselves)
]


@pytest.mark.parametrize("flow,outcome,phrases", FLOWS, ids=[f[0] for f in FLOWS])
def test_a_visit_with_keys_and_speech_alone(ui: Any, tmp_path: Path, flow: str, outcome: str,
                                            phrases: list[str]) -> None:
    record, met = run_flow(ui, tmp_path, flow)
    assert record.outcome == outcome, (record.outcome, record.reason, record.message)
    assert record.input == "keypad" and record.touches == 0 and record.keys >= 4
    assert 0 < record.touch_ms["p50"] <= record.touch_ms["p95"] <= record.touch_ms["max"]  # keys are timed too
    said = "\n".join(record.spoken)
    for screen in set(met):
        assert zh(TITLES[screen]) in said, (screen, said)
    for phrase in phrases:
        assert phrase in said, phrase
    if "T03" in flow and "private=yes" in flow:
        assert re.search(r"金额：\d+\.\d\d元。请用手机扫描", said), said
    if ":private=yes" not in flow:
        # Full read-out (on with the first key) masks the rows of a personal box as the main prompts mask the
        # box: the phone typed, the results' values (a household number, a code) are not said aloud.
        assert "13800138000" not in said
        for _label, value in record.display:
            if sum(c.isdigit() for c in value) >= 6:
                assert value not in said, value
    if outcome == "refused":
        assert "error" in met and record.message
    item = ui.app.runtime.catalog.get(record.item)
    card = people.card_for(item, record.person)
    # The name is said only with headphones in (private=yes); without them, its masked form.
    assert (card.name in said) == (":private=yes" in flow and "confirm" in met)


def test_keypad_h01_says_the_name_only_with_headphones(ui: Any, tmp_path: Path) -> None:
    record, _met = run_flow(ui, tmp_path, "H01:input=keypad:private=yes")
    assert record.outcome == "completed" and record.touches == 0
    card = people.card_for(ui.app.runtime.catalog.get("H01"), record.person)
    assert any(card.name in text for text in record.spoken)


# --- each key -----------------------------------------------------------------------------------
def spoken_since(ui: Any, n: int) -> list[str]:
    return [s.text for s in ui.app.runtime.speech.spoken()[n:]]


def said_since(ui: Any, n: int, phrase: str) -> str:
    return ui.wait_until(lambda: next((t for t in spoken_since(ui, n) if phrase in t), None), f"{phrase!r} said", 10)


def mark(ui: Any) -> int:
    return len(ui.app.runtime.speech.spoken())


def test_focus_moves_in_reading_order_is_spoken_and_ringed(ui: Any) -> None:
    app = ui.app
    ui.wait_screen("home")
    assert not app.keypad_active and list(app.focus_rect)[2] == 0
    n = mark(ui)
    ui.press_key("numpad2")
    assert app.keypad_active and app.voice_full  # any keypad key: full read-out for the session
    first_tile = app.sm.get_screen("home").ids.tiles.children[-1]
    assert app.keypad_focused is first_tile  # focus starts on the main action
    said_since(ui, n, f"{plain(first_tile.label)}，{zh('button')}")  # label and role
    controls = app.keypad_controls()
    tops = [w.to_window(w.x, w.top)[1] for w in controls]
    assert tops == sorted(tops, reverse=True) or all(  # top to bottom (a row left to right)
        a >= b - 24 for a, b in zip(tops, tops[1:]))
    ui.press_key("numpad2")
    second = controls[(controls.index(first_tile) + 1) % len(controls)]
    assert app.keypad_focused is second
    ui.press_key("numpad8")
    assert app.keypad_focused is first_tile
    # The ring: yellow round the focused control, drawn on top, in the frame itself.
    ui.pump(2)
    x, y, w, h = app.focus_rect
    fx, fy = first_tile.to_window(first_tile.x, first_tile.y)
    assert (x, y, w, h) == (round(fx), round(fy), round(first_tile.width), round(first_tile.height))
    frame = ui.grab()
    height = frame.size[1]
    r, g, b = frame.getpixel((x + w // 2, height - 1 - (y - 8)))  # the ring's lower edge
    assert r > 200 and g > 180 and b < 80, (r, g, b)
    app.end_session("cancel")
    ui.wait_screen("home")
    assert not app.keypad_active and list(app.focus_rect)[2] == 0


def test_back_cancel_with_confirmation_help_volume_and_repeat(ui: Any) -> None:
    app, speech = ui.app, ui.app.runtime.speech
    ui.wait_screen("home")
    ui.press_key("numpad2")
    ui.press_key("numpad5")  # the first tile: H01's guide
    ui.wait_screen("guide")
    ui.wait_until(lambda: app.keypad_focused is not None, "the focus on the main action")
    assert app.keypad_focused is app.sm.get_screen("guide").ids.start_button.__self__
    # 4: the screen's back button.
    ui.press_key("numpad4")
    ui.wait_screen("home")
    ui.press_key("numpad5")  # the focus is back on the first tile
    ui.wait_screen("guide")
    ui.press_key("numpad5")  # 开始办理
    ui.wait_screen("identify")
    # /: a spoken question; any other key stays; / twice cancels.
    n = mark(ui)
    ui.press_key("numpaddivide")
    said_since(ui, n, "再按一次斜杠键取消")
    ui.press_key("numpad2")
    said_since(ui, n, zh("The visit goes on."))
    assert app.sm.current == "identify" and app.txn is not None
    # + and -: volume; 6: the last utterance again.
    level = speech.volume_level
    ui.press_key("numpadadd")
    assert speech.volume_level == level + 1
    ui.press_key("numpadsubstract")
    assert speech.volume_level == level
    n = mark(ui)
    ui.press_key("numpad6")
    repeated = ui.wait_until(lambda: spoken_since(ui, n), "the repeat")
    assert repeated[0] == spoken_since(ui, n - 1)[0]
    # *: the call for help asks first, its question takes the focus.
    ui.press_key("numpadmul")
    ui.wait_until(lambda: app.help_status == "asking", "the help question")
    ui.wait_until(lambda: app.keypad_focused is app.root.ids.confirm_help_button.__self__, "focus on the question")
    ui.press_key("numpad2")
    assert app.keypad_focused is app.root.ids.dismiss_help_button.__self__
    ui.press_key("numpad5")
    ui.wait_until(lambda: app.help_status == "", "the question dismissed")
    ui.press_key("numpaddivide")
    ui.press_key("numpaddivide")
    ui.wait_screen("home")
    said_since(ui, 0, zh("The visit is cancelled."))  # the session's end began a fresh log
    assert app.txn is None


def test_a_number_field_takes_digits_deletes_with_the_point_and_enter_goes_on(ui: Any) -> None:
    app = ui.app
    ui.wait_screen("home")
    app.open_item("H13")
    ui.wait_screen("guide")
    ui.press_key("numpad5")  # the first key only turns the keypad on and focuses 开始办理
    ui.press_key("numpad5")
    ui.wait_screen("identify")
    card = people.card_for(app.runtime.catalog.get("H13"), None)
    app.runtime.devices.get("id_card").place(card.id_number)
    ui.wait_screen("form")
    form = app.sm.get_screen("form")
    phone = form.inputs["phone"]
    assert phone.digits_only
    hands_controls = app.keypad_controls()
    for _ in range(len(hands_controls)):
        if app.keypad_focused is phone:
            break
        ui.press_key("numpad2")
    assert app.keypad_focused is phone
    n = mark(ui)
    for key in ("numpad1", "numpad3", "numpad8", "numpad9"):
        ui.press_key(key)
    assert phone.text == "1389"
    ui.press_key("numpaddecimal")
    assert phone.text == "138"
    said_since(ui, n, "还有3位")
    ui.press_key("numpadenter")
    assert app.keypad_focused is not phone and phone.text == "138"
    app.runtime.devices.get("id_card").remove()
    app.end_session("cancel")
    ui.wait_screen("home")


def test_kiosk_demo_flow_h01_input_keypad_writes_input_and_keys(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = kiosk("demo", "--out", str(out), "--screenshots", "ends", "--flow", "H01:input=keypad", "H01",
                   cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    keyed, touched = json.loads((out / "summary.json").read_text(encoding="utf-8"))["flows"]
    assert keyed["outcome"] == touched["outcome"] == "completed"
    assert (keyed["input"], keyed["touches"]) == ("keypad", 0) and keyed["keys"] >= 4
    assert (touched["input"], touched["keys"]) == ("touch", 0) and touched["touches"] > 0
    assert keyed["documents"] and keyed["spoken"]


def test_a_date_is_typed_as_eight_digits_and_laid_out() -> None:
    from kiosk.screens.keypad import laid_out

    assert laid_out("2026", "####-##-##") == "2026"
    assert laid_out("20261", "####-##-##") == "2026-1"
    assert laid_out("20261205", "####-##-##") == "2026-12-05"
    assert laid_out("", "####-##-##") == ""


def test_a_guide_whose_form_needs_words_says_so_and_where_help_is(ui: Any) -> None:
    app = ui.app
    notice = zh("This service needs words typed on the screen, such as a name or an address: the keypad alone "
                "cannot finish it. Press the star key to call the duty officer.")
    ui.wait_screen("home")
    app.open_item("H02")  # 亲属关系证明: the relative's name is typed
    ui.wait_screen("guide")
    ui.press_key("numpad2")
    said_since(ui, 0, notice)
    app.end_session("cancel")
    ui.wait_screen("home")
    app.open_item("H01")  # a purpose chosen from options: nothing to type
    ui.wait_screen("guide")
    ui.press_key("numpad2")
    said_since(ui, 0, f"{zh('Start')}，{zh('button')}")
    assert not any(notice in text for text in spoken_since(ui, 0))
    app.end_session("cancel")
    ui.wait_screen("home")
