"""The audit's pure checks: WCAG contrast, which script a text is in, the JSON of a violation."""
from __future__ import annotations

import pytest

from kiosk.ui_audit.rules import LIMITS, Violation, blend, contrast_ratio, wrong_script


def test_contrast_ratio_matches_wcag_reference_values() -> None:
    assert contrast_ratio((0, 0, 0), (1, 1, 1)) == pytest.approx(21.0)
    assert contrast_ratio((1, 1, 1), (1, 1, 1)) == pytest.approx(1.0)
    grey = 0x76 / 255  # #767676, the lightest grey that passes 4.5:1 on white
    assert contrast_ratio((grey,) * 3, (1, 1, 1)) == pytest.approx(4.54, abs=0.01)
    assert contrast_ratio((1, 1, 1), (grey,) * 3) == contrast_ratio((grey,) * 3, (1, 1, 1))


def test_a_translucent_label_is_judged_as_drawn() -> None:
    shown = blend((1, 1, 1), 0.5, (0, 0, 0))
    assert shown == pytest.approx((0.5, 0.5, 0.5))
    assert contrast_ratio(shown, (0, 0, 0)) < contrast_ratio((1, 1, 1), (0, 0, 0))


@pytest.mark.parametrize("text, lang, stray", [
    ("户籍证明打印", "zh_CN", ""),
    ("户籍证明打印 / Household registration", "zh_CN", "Household"),
    ("H01  户籍证明打印", "zh_CN", ""),  # an item code is no English word
    ("剩余 10 s", "zh_CN", ""),
    ("Household registration certificate", "en", ""),
    ("Purpose: 就业", "en", "就"),
    ("Done，thanks", "en", "，"),  # a full-width comma is Chinese typography
])
def test_wrong_script_finds_the_other_language(text: str, lang: str, stray: str) -> None:
    assert wrong_script(text, lang) == stray


def test_care_mode_asks_more_than_normal_mode() -> None:
    normal, care = LIMITS["normal"], LIMITS["care"]
    assert (normal.target_height, normal.text_px, normal.contrast) == (120, 40, 4.5)
    assert (care.target_height, care.text_px, care.contrast) == (160, 60, 7.0)
    assert normal.target_width == care.target_width == 96
    assert Violation("contrast", "next_button", 3.1, 4.5).to_dict() == {
        "rule": "contrast", "widget": "next_button", "value": 3.1, "limit": 4.5}
