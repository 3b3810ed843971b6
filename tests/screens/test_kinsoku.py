"""Chinese line breaking on the kiosk's labels: a closing mark never starts a wrapped line."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.ui

SENTENCE = "无法连接公安业务系统，请稍后再试或联系工作人员。"


def _lines(label: Any) -> list[str]:
    from kiosk.screens.kinsoku import line_texts

    return line_texts(label._label._cached_lines)


def _bad(lines: list[str]) -> bool:
    from kiosk.screens.kinsoku import CLOSING, OPENING

    return (any(t[:1] in CLOSING for t in lines[1:])
            or any(t[-1:] in OPENING for t in lines[:-1]))


def _widths_kivy_breaks_badly(text: str, font_size: int) -> list[int]:
    """Widths at which Kivy's own layout starts a wrapped line of ``text`` with a closing mark or ends one with
    an opening bracket."""
    from kivy.core.text import Label as CoreLabel
    from kivy.core.text.text_layout import layout_text  # Kivy's own

    from kiosk.screens import kinsoku

    found = []
    for width in range(200, 1300, 6):
        core = CoreLabel(text=text, font_size=font_size, text_size=(width, None))
        lines: list[Any] = []
        layout_text(text, lines, (0, 0), (width, None), core.options, core.get_cached_extents(), False, True)
        if _bad(kinsoku.line_texts(lines)):
            found.append(width)
    return found


@pytest.mark.parametrize("text, font_size", [
    (SENTENCE, 72),  # care mode's error line: 48 × 1.5
    ("机动车检验标志申领（六年免检）", 90),  # care mode's item title: 60 × 1.5 (it broke after the bracket)
])
def test_a_wrapped_line_never_starts_with_a_closing_mark_or_ends_with_an_opening_one(
        ui: Any, text: str, font_size: int) -> None:
    from kivy.uix.label import Label

    widths = _widths_kivy_breaks_badly(text, font_size)
    assert len(widths) >= 3, widths  # the case is real: Kivy alone breaks there
    for width in widths:
        label = Label(text=text, font_size=font_size, text_size=(width, None))
        label.texture_update()
        lines = _lines(label)
        assert "".join(lines) == text, (width, lines)  # nothing lost, nothing added
        assert not _bad(lines), (width, lines)
        assert max(label._label.get_extents(line)[0] for line in lines) <= width
        assert label.text == text  # the widget's text is untouched; only its drawing changed


def test_the_authors_own_line_breaks_are_kept(ui: Any) -> None:
    from kivy.uix.label import Label

    text = "请取走您的证件\n。请妥善保管"  # a paragraph that starts with a mark is the author's doing
    label = Label(text=text, font_size=48, text_size=(1000, None))
    label.texture_update()
    assert _lines(label) == ["请取走您的证件", "。请妥善保管"]


def test_the_kiosks_labels_use_it(ui: Any) -> None:
    import kivy.core.text as core_text

    from kiosk.screens import kinsoku

    assert core_text.layout_text is kinsoku._layout_text
    kinsoku.install()  # a second install changes nothing
    assert core_text.layout_text is kinsoku._layout_text and kinsoku._original is not kinsoku._layout_text
