"""A lookup that fails on the form: the resident is told why and can ask again, without starting over."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.screens.test_forget import QuietResident

pytestmark = [pytest.mark.ui, pytest.mark.timeout(600)]


class AskingResident(QuietResident):
    """The demo's resident, noting what it touched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.touched: list[str] = []
        self.in_english: list[str] = []

    def press(self, widget: Any, what: str = "") -> None:
        """Touch as the demo's resident does, and note it; before asking again, read the form in English."""
        self.touched.append(what)
        if what.startswith("try again for "):
            app, form = self.driver.app, self.driver.app.sm.get_screen("form")
            app.lang = "en"
            self.driver.pump(2)
            self.in_english = [form.errors[what.removeprefix("try again for ")].text, widget.text]
            app.lang = "zh_CN"
            self.driver.pump(2)
        super().press(widget, what)


def test_a_failed_lookup_offers_try_again_and_the_flow_goes_on(ui: Any, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.screens.form import FormScreen

    app = ui.app
    faults = app.runtime.sim.app.faults
    opened = FormScreen.on_pre_enter
    forms: list[Any] = []
    seen: list[tuple[str, str]] = []

    def note_retry(*_args: Any) -> None:
        form = forms[0]
        for name, button in form.retries.items():
            seen.append((form.errors[name].text, button.text))

    def garbage_then_open(form: Any, *args: Any) -> None:
        # Armed as the form opens, before it asks for its options: the lookup is the request that fails.
        if not forms:
            forms.append(form)
            faults.update({"fail_next": 1, "mode": "garbage"})
            form.ids.fields.bind(children=note_retry)
        opened(form, *args)

    monkeypatch.setattr(FormScreen, "on_pre_enter", garbage_then_open)
    before = faults.applied().get("garbage", 0)
    resident = AskingResident(ui, app.runtime, tmp_path)
    try:
        record = resident.run("T03")
    finally:
        if forms:
            forms[0].ids.fields.unbind(children=note_retry)
    assert faults.applied().get("garbage", 0) == before + 1
    # The error was shown with the button under it, in the kiosk's language.
    assert ("公安业务系统返回异常，请稍后再试。", "再试一次") in seen, (resident.touched, record)
    assert any(t.startswith("try again for ") for t in resident.touched)
    # Switched to English, the screen says both in English (one language per screen).
    assert resident.in_english == ["The police service system gave an unexpected answer. Please try again later.",
                                   "Try again"]
    # Asked again, the resident's fine came back and was paid: the failure did not end the transaction.
    assert record.outcome == "completed", (record.reason, record.message)


def test_an_option_press_skips_a_dead_button_still_listed_in_its_group(ui: Any) -> None:
    # Kivy 2.3 drops a dead weak reference from a toggle group and then sets its state anyway; a reference is
    # dead before its callback has taken it out when a freed form's options go while another thread runs
    # (a soak session crashed pressing an option). Listed here by hand, dead, as it was then.
    import weakref

    from kivy.uix.behaviors import ToggleButtonBehavior

    from kiosk.screens.base import OptionButton

    class Freed:
        pass

    first, second = (OptionButton(group="form-test-dead", allow_no_selection=False) for _ in range(2))
    groups = ToggleButtonBehavior._ToggleButtonBehavior__groups  # Kivy's own registry of groups
    gone = Freed()
    groups["form-test-dead"].insert(0, weakref.ref(gone))
    del gone
    second.state = "down"
    first._do_press()
    assert (first.state, second.state) == ("down", "normal")
    del groups["form-test-dead"]
