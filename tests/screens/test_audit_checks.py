"""The audit's widget checks on a real frame: each rule fires on a widget made to break it, and only there."""
from __future__ import annotations

from typing import Any

import pytest

from kiosk.ui_audit.rules import LIMITS
from kiosk.ui_audit.widgets import check_screen

pytestmark = pytest.mark.ui


def test_each_rule_fires_on_the_widget_that_breaks_it(ui: Any) -> None:
    from kivy.uix.boxlayout import BoxLayout
    from kivy.uix.button import Button
    from kivy.uix.label import Label

    app = ui.app
    home = app.sm.get_screen("home")
    box = BoxLayout(orientation="vertical", size_hint=(None, None), size=(600, 400), pos=(100, 300))
    box.add_widget(Label(text="小字", font_size=20, size_hint_y=None, height=60))  # text_size
    box.add_widget(Label(text="灰字", font_size=48, color=(0.35, 0.4, 0.5, 1),  # contrast on the navy background
                         size_hint_y=None, height=80))
    box.add_widget(Button(text="按", font_size=48, size_hint=(None, None), size=(80, 90)))  # target height/width
    box.add_widget(Label(text="English words", font_size=48, size_hint_y=None, height=80))  # language
    box.add_widget(Label(text="很长很长很长很长很长很长很长很长的一行字", font_size=48, size_hint=(None, None),
                         size=(300, 60)))  # overflow
    exempt = Label(text="ABC English", font_size=48, size_hint_y=None, height=80)
    exempt.lang_exempt = True
    box.add_widget(exempt)
    home.add_widget(box)
    try:
        ui.pump(2)
        found = check_screen(app.root, ui.grab(), LIMITS["normal"], "zh_CN")
    finally:
        home.remove_widget(box)
    by_rule = {}
    for v in found:
        by_rule.setdefault(v.rule, []).append(v)
    assert [v.value for v in by_rule["text_size"]] == [20]
    assert any(v.widget.startswith("Label('灰字") for v in by_rule["contrast"])
    assert all(v.value < 4.5 for v in by_rule["contrast"])
    assert [v.value for v in by_rule["target_height"]] == [90]
    assert [v.value for v in by_rule["target_width"]] == [80]
    assert [v.value for v in by_rule["language"]] == ["English"]
    assert len(by_rule["overflow"]) == 1 and "很长" in by_rule["overflow"][0].widget
    assert any(v.rule == "clipped" for v in found)  # the box holds more than its 400 px
    # The screen itself passes: nothing else was reported.
    assert {v.widget.split("(")[0] for v in found} <= {"Label", "Button", "BoxLayout"}
