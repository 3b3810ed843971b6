"""Nothing of a resident stays in the screens' widgets once the kiosk is back home."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kiosk.demo.resident import Resident
from tests.screens.test_screens import open_guide

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]

PHONE = "13800138000"  # what the scripted resident types into H13's phone field


class QuietResident(Resident):
    """The demo's resident without photographs."""

    def shot(self, screen: str, *, again: bool = False) -> None:
        """No screenshots."""


def texts(manager: Any) -> list[str]:
    """Every text any widget of any screen holds (labels, buttons, text inputs), on show or not."""
    return [str(getattr(w, "text", "")) for screen in manager.screens for w in screen.walk(restrict=True)]


def test_going_home_leaves_nothing_of_the_resident_in_the_screens(ui: Any, tmp_path: Path) -> None:
    manager = ui.app.sm
    record = QuietResident(ui, ui.app.runtime, tmp_path).run("H13")
    assert record.outcome == "completed", (record.reason, record.message)
    assert ui.current == "home" and ui.app.txn is None
    left = texts(manager)
    assert not [t for t in left if PHONE in t or PHONE[-4:] in t]
    assert record.reference and not [t for t in left if record.reference in t]
    form, confirm, done = (manager.get_screen(n) for n in ("form", "confirm", "done"))
    assert form.ids.fields.children == [] and form.values() == {}
    # Nor in Kivy's caches of the lines text inputs drew, whose keys hold the lines' text (kept 60 s otherwise).
    from kivy.cache import Cache

    from kiosk.screens.base import TEXT_INPUT_CACHES

    cached = [str(key) for category in TEXT_INPUT_CACHES for key in Cache._objects.get(category, {})]
    assert not [key for key in cached if PHONE in key or PHONE[-4:] in key]
    assert confirm.ids.summary.children == [] and done.ids.display.children == []
    # The next resident's form is built afresh from the item, as before.
    record = QuietResident(ui, ui.app.runtime, tmp_path).run("H01")
    assert record.outcome == "completed", (record.reason, record.message)
    assert record.touches_by_screen.get("form")


def test_a_form_opens_at_its_top_after_the_last_one_was_forgotten(ui: Any, tmp_path: Path) -> None:
    # The forgotten form's empty list kept a scroll position the next, longer form opened at: its first field sat
    # under the header, out of the list's view, and a touch on it met the header instead.
    record = QuietResident(ui, ui.app.runtime, tmp_path).run("H13")
    assert record.outcome in ("completed", "refused"), (record.reason, record.message)
    open_guide(ui, "H14")
    ui.tap_id("start_button")
    ui.wait_screen("form")
    form = ui.app.sm.get_screen("form")
    scroller, first = form.ids.scroller, form.inputs["id_number"]
    assert scroller.scroll_y == 1
    top = scroller.to_window(scroller.x, scroller.top)[1]
    assert first.to_window(first.x, first.top)[1] <= top + 1  # inside the list's view, not above it
    ui.tap(first, "the ID number field")  # and it takes the touch
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_the_item_list_is_emptied_at_home_and_built_again_when_shown(ui: Any) -> None:
    # A list left behind held its labels' pixels at home (2 to 6 MiB, as long as the last list), and was built again
    # there at every change of availability though nobody saw it.
    app = ui.app
    home, category = app.sm.get_screen("home"), app.sm.get_screen("category")
    ui.tap(next(b for b in home.ids.categories.children if b.category.code == "H"))
    ui.wait_screen("category")
    shown = sorted(entry.item_id for entry in category.ids.item_list.children)
    assert len(shown) == len(app.list_items) > 10
    app.go_home()
    ui.pump(2)
    assert category.ids.item_list.children == []
    app.availability += 1  # what a health poll that finds a change does
    app.lang = "en"
    ui.pump(2)
    assert category.ids.item_list.children == []  # nobody sees it: not built
    ui.tap(next(b for b in home.ids.categories.children if b.category.code == "H"))
    ui.wait_screen("category")
    assert sorted(entry.item_id for entry in category.ids.item_list.children) == shown
    assert category.ids.title.text == app.local(*app.list_title) and app.lang == "en"
    app.lang = "zh_CN"
    ui.pump(2)
    assert category.ids.title.text == app.local(*app.list_title)  # on show: relabelled
