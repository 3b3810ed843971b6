"""One language per screen: whole visits walked by the scripted resident, every screen read in zh_CN and en.

Each screen the resident meets is read off its widget tree (``one_language.other_language``):
no Latin letters on a Chinese screen, no Chinese on an English one, outside the widgets
marked ``lang_exempt`` (the language button, the keyboard's letter and mode keys, data).
Every screen of a transaction also shows its step indicator.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from kiosk.demo.resident import Resident

sys.path.insert(0, str(Path(__file__).parent))
from one_language import other_language  # noqa: E402

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(900)]

TRANSACTION_SCREENS = {"identify", "travel_entry", "reprint", "face", "form", "confirm", "payment", "printing",
                       "done"}
# A flagship certificate (choice), a lookup of the resident's records, a payment found through its
# category, a refusal; a face check, a query's results on screen, travel details typed on the keyboard.
FLOWS = {"zh_CN": ["H01", "T02", "H13", "H01:CHEN"], "en": ["S01", "T01", "E01:mrz=typed"]}


class ReadingResident(Resident):
    """A resident who reads every screen they meet (instead of photographing it)."""

    def shot(self, screen: str, *, again: bool = False) -> None:
        """Note the texts in the other language, and a transaction screen without its steps."""
        self.driver.pump(2)
        self.read(self.driver.app.sm.current_screen)

    def read(self, current: Any) -> None:
        """Read one screen as it is now (also called as a screen enters: printing can pass within a frame)."""
        app = self.driver.app
        for text in other_language(current, app.lang):
            self.found.append(f"{app.lang} {self.script.item} {current.name}: {text}")
        if current.name in TRANSACTION_SCREENS and not current.ids.step_bar.text:
            self.found.append(f"{app.lang} {self.script.item} {current.name}: no step indicator")
        self.seen.add(current.name)


def test_the_rule_sees_the_other_language(ui: Any) -> None:
    home = ui.app.sm.get_screen("home")
    assert other_language(home, "zh_CN") == []
    assert any("欢迎使用" in t for t in other_language(home, "en"))  # read as if it had to be English
    ui.tap_id("language_button", "home")
    assert other_language(home, "en") == [] and any("Welcome" in t for t in other_language(home, "zh_CN"))
    ui.tap_id("language_button", "home")


@pytest.mark.parametrize("lang", sorted(FLOWS))
def test_every_screen_of_a_visit_is_in_one_language(ui: Any, tmp_path: Path, lang: str) -> None:
    app = ui.app
    resident = ReadingResident(ui, app.runtime, tmp_path)
    resident.found, resident.seen = [], set()
    # A screen the resident's loop may not stop on (printing, when the printer is quick) is read as it enters.
    for name in ("printing", "done", "face", "travel_entry", "payment", "error"):
        app.screen(name)  # made on first use; made now so that they can be bound
    readers = [(screen, screen.fbind("on_enter", lambda screen: resident.read(screen))) for screen in app.sm.screens]
    try:
        for flow in FLOWS[lang]:
            app.lang = lang
            record = resident.run(flow)
            assert record.outcome in ("completed", "refused"), (flow, record.outcome, record.reason)
    finally:
        app.lang = "zh_CN"
        for screen, uid in readers:
            screen.unbind_uid("on_enter", uid)
    assert resident.found == []
    expected = {"home", "guide", "identify", "form", "confirm", "printing", "done"} | (
        {"category", "payment", "error"} if lang == "zh_CN" else {"face", "travel_entry"})
    assert expected <= resident.seen
