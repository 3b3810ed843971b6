"""The tactile keypad's key map ([keypad] map) and the cancel question, without Kivy."""
from __future__ import annotations

import pytest

from kiosk.config import from_dict
from kiosk.errors import ConfigError
from kiosk.services.keypad import DEFAULT_MAP, Action, CancelConfirmation, KeyMap, KeyPress


def test_the_default_map_is_the_17_key_keypad_by_keycode() -> None:
    keys = KeyMap()
    expected = {"numpad8": Action.PREVIOUS, "numpad2": Action.NEXT, "numpad5": Action.ACTIVATE,
                "numpadenter": Action.ACTIVATE, "numpad4": Action.BACK, "numpad6": Action.REPEAT,
                "numpadadd": Action.VOLUME_UP, "numpadsubstract": Action.VOLUME_DOWN, "numpadmul": Action.HELP,
                "numpaddivide": Action.CANCEL}
    for key, action in expected.items():
        assert keys.press(key) == KeyPress(key, action), key
    # Outside a number field the decimal point and the other digits are the resident's keys with nothing to do.
    assert keys.press("numpaddecimal") == KeyPress("numpaddecimal")
    assert keys.press("numpad7") == KeyPress("numpad7")
    # A key that is not the keypad's is left to the app.
    assert keys.press("a") is None and keys.press("escape") is None


def test_in_a_number_field_digits_type_the_point_deletes_and_enter_accepts() -> None:
    keys = KeyMap()
    for d in range(10):
        assert keys.press(f"numpad{d}", in_number_field=True) == KeyPress(f"numpad{d}", digit=str(d))
    assert keys.press("numpaddecimal", in_number_field=True).action is Action.DELETE
    assert keys.press("numpadenter", in_number_field=True).action is Action.ACTIVATE
    # The other keys keep their meaning there: help, cancel, volume.
    assert keys.press("numpadmul", in_number_field=True).action is Action.HELP
    assert keys.press("numpaddivide", in_number_field=True).action is Action.CANCEL


def test_cancel_needs_the_slash_twice_and_any_other_key_stays() -> None:
    keys, question = KeyMap(), CancelConfirmation()
    slash, five = keys.press("numpaddivide"), keys.press("numpad5")
    assert question.answer(five) == ""
    assert question.answer(slash) == "ask" and question.asking
    assert question.answer(five) == "stay" and not question.asking
    assert question.answer(slash) == "ask"
    assert question.answer(slash) == "cancel" and not question.asking
    question.answer(slash)
    question.reset()
    assert question.answer(five) == ""


def test_the_config_map_replaces_the_default_and_is_checked() -> None:
    assert from_dict({}).keypad.map == DEFAULT_MAP
    swapped = {**DEFAULT_MAP, "numpad8": "next", "numpad2": "previous"}
    cfg = from_dict({"keypad": {"map": swapped}})
    assert KeyMap(cfg.keypad.map).press("numpad8").action is Action.NEXT
    with pytest.raises(ConfigError, match="numpad8"):
        from_dict({"keypad": {"map": {**DEFAULT_MAP, "numpad8": "jump"}}})
    with pytest.raises(ConfigError, match="not a keypad key"):
        from_dict({"keypad": {"map": {**DEFAULT_MAP, "f5": "repeat"}}})
    without_next = {k: v for k, v in DEFAULT_MAP.items() if v != "next"}
    with pytest.raises(ConfigError, match="next"):
        from_dict({"keypad": {"map": without_next}})


def test_items_needing_words_are_named_by_their_fields() -> None:
    from kiosk.services.catalog import Catalog
    from kiosk.services.keypad import needs_words

    catalog = Catalog.load()
    assert needs_words(catalog.get("H01")) == []  # a purpose chosen from options
    assert needs_words(catalog.get("T09")) == []  # digits and a date
    assert needs_words(catalog.get("H02")) == ["relative_name"]
    assert "own_plate" in needs_words(catalog.get("T17"))  # a plate starts with a Chinese character
