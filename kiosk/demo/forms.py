"""How the scripted resident fills in the form and travel-entry screens: options chosen, keys typed."""
from __future__ import annotations

from typing import Any, Callable

from kiosk import localtime
from kiosk.demo import people
from kiosk.demo.driver import DemoError, UiDriver
from kiosk.demo.flows import TRAVEL_ENTRY_FIELDS, FlowScript


ASK_AGAIN = 2  # how often the scripted resident touches "try again" under a lookup that failed


class InputRejected(Exception):
    """The kiosk refused a value the script typed on purpose; the resident gives up."""


def full_date(yymmdd: str, *, past: bool) -> str:
    """A date as printed on a data page (YYYYMMDD) from the MRZ's YYMMDD."""
    yy = int(yymmdd[:2])
    this_year = localtime.today().year
    century = (19 if 2000 + yy > this_year else 20) if past else 20
    return f"{century}{yymmdd}"


class FormFilling:
    """The resident's hands on the form and travel-entry screens: part of :class:`kiosk.demo.resident.Resident`."""

    # Provided by the resident: its driver, its flow, and how it photographs and touches.
    driver: UiDriver
    script: FlowScript
    last_code: str  # the verification code of the last document printed in this run
    shot: Callable[..., None]
    press: Callable[..., None]
    press_id: Callable[..., None]

    def value_for(self, item: Any, spec: Any) -> str | None:
        """What the resident enters in ``spec``: the script's value, else the item's happy-path value."""
        if spec.name in self.script.values:
            return self.script.values[spec.name]
        if spec.name == "verification_code" and self.last_code:
            return self.last_code
        return people.happy_value(item, spec)

    def type_on_panel(self, panel: Any, text: str) -> None:
        """Type ``text`` on the screen's keyboard panel, key by key (pinyin, then the candidate, for Chinese)."""
        while (key := panel.next_key(text)) is not None:
            self.press(key)

    def choose(self, spec: Any, grid: Any, errors: Any, retries: Any = None) -> None:
        """Touch the option with the wanted value (the first one when any will do).

        A lookup that failed is asked again, as a resident would, up to ASK_AGAIN times by its "try again" button
        (``retries``: the form's, by field name).
        """
        drv = self.driver
        for asked in range(ASK_AGAIN + 1):
            drv.wait_until(lambda: grid.children or errors[spec.name].text, f"options of {spec.name}", 15)
            again = (retries or {}).get(spec.name)
            if grid.children or again is None or asked == ASK_AGAIN:
                break
            self.press(again, f"try again for {spec.name}")
            drv.wait_until(lambda: retries.get(spec.name) is not again, f"{spec.name} asked again", 15)
        if not grid.children:
            raise DemoError(f"nothing to choose for {spec.name}: {errors[spec.name].text}")
        wanted = self.value_for(drv.app.txn.item, spec)
        for _attempt in range(5):
            buttons = list(reversed(grid.children))  # children are kept last-added first
            button = next((b for b in buttons if b.value == wanted), None) if wanted is not None else buttons[0]
            if button is None:
                raise DemoError(f"no option {wanted!r} for {spec.name}")
            drv.reveal(button)
            # An earlier choice may have asked for this list again: the option seen a moment
            # ago can have been replaced by a fresh one, so look again.
            if button.parent is grid:
                break
            drv.wait_until(lambda: grid.children, f"options of {spec.name} again", 15)
        self.press(button, f"option {button.value} of {spec.name}")

    def fill_form(self, item: Any) -> bool:
        """Choose and type the flow's values, field by field.

        True when the form submitted itself (a form that is a single choice).
        """
        drv = self.driver
        screen = drv.app.sm.get_screen("form")
        if screen._one_choice:
            spec = item.fields[0]
            self.choose(spec, screen.inputs[spec.name], screen.errors, screen.retries)
            return True
        for spec in item.fields:
            if not (spec.required or spec.name in self.script.values):
                continue
            if spec.type in ("choice", "lookup"):
                self.choose_then_wait_for_lookups(item, spec, screen)
            else:
                self.type_field(item, spec, screen)
        return False

    def choose_then_wait_for_lookups(self, item: Any, spec: Any, screen: Any) -> None:
        """Choose ``spec``'s option, then wait for the fresh options of the lookups after it."""
        later = [f for f in item.fields[item.fields.index(spec) + 1:] if f.type == "lookup"]
        # The old option buttons themselves, not their ids: once the grid drops them they could be freed, and a
        # fresh button made at the same address would look old and the wait would run out (the likely cause of a
        # second G01 in one run waiting 20 s for "fresh options of slot"; not reproduced on 2026-12-06).
        before = {f.name: list(screen.inputs[f.name].children) for f in later}
        self.choose(spec, screen.inputs[spec.name], screen.errors, screen.retries)
        # The form asks again for the options of later lookups (they may depend on
        # this choice): wait for the fresh ones before touching any.
        for f in later:
            grid = screen.inputs[f.name]
            self.driver.wait_until(lambda g=grid, old=before[f.name]: (
                (g.children and not {id(b) for b in g.children} & {id(b) for b in old})
                or screen.errors[f.name].text), f"fresh options of {f.name}", 20)

    def type_field(self, item: Any, spec: Any, screen: Any) -> None:
        """Touch the field and type its value: a name on the keyboard panel, anything else as text input."""
        from kivy.core.window import Window

        from kiosk.screens.ime import is_name_field

        drv = self.driver
        value = self.value_for(item, spec)
        widget = screen.inputs[spec.name]
        drv.pump(3)  # let the list settle to its size before looking for the field
        hands = getattr(self, "hands", None)
        if hands is not None:
            # Keys only: a number field takes the digit keys; words need the screen (DemoError says so).
            if not getattr(widget, "digits_only", False):
                raise DemoError(f"field {spec.name} needs words typed on the screen: not possible with the keypad only")
            hands.type_digits(widget, value or "", f"field {spec.name}")
            return
        drv.reveal(widget)
        self.press(widget, f"field {spec.name}")
        panel = screen.ids.ime
        if spec.type == "text" and is_name_field(spec.name) and value and panel.can_type(value):
            # A name is typed on the form's keyboard panel, touch by touch: pinyin, then the candidate.
            self.type_on_panel(panel, value)
        else:
            Window.dispatch("on_textinput", value or "")
        drv.pump(2)
        self.close_keyboard(screen)

    def close_keyboard(self, screen: Any) -> None:
        """Touch the on-screen keyboard's done key, if the form opened one, so the form is whole again."""
        panel = screen.ids.get("ime")
        if panel is None or not getattr(panel, "open", False):
            return
        key = panel.ids.get("pad_done" if getattr(panel, "pad", False) else "done_key")
        if key is None:
            return
        self.press(key, "keyboard done")
        self.driver.pump(3)

    def type_travel_details(self, document: Any) -> None:
        """The scanner cannot read the data page: type the number and dates, touch by touch.

        Dates are typed as the resident reads them on the page (YYYYMMDD). A scripted
        wrong value that the kiosk refuses ends the flow as ``input_rejected``.
        """
        drv = self.driver
        self.press_id("type_button", "identify")
        drv.wait_screen("travel_entry")
        self.shot("travel_entry")
        screen = drv.app.sm.get_screen("travel_entry")
        typed = {"document_number": document.document_number,
                 "birth_date": full_date(document.birth_date, past=True),
                 "expiry_date": full_date(document.expiry_date, past=False), **self.script.values}
        for name in TRAVEL_ENTRY_FIELDS:
            widget = screen.inputs[name]
            drv.reveal(widget)
            self.press(widget, f"field {name}")
            self.type_on_panel(screen.ids.ime, typed[name])
            drv.pump(2)
        self.close_keyboard(screen)
        self.press_id("read_button", "travel_entry")
        drv.wait_until(lambda: not drv.app.busy, "the chip read")
        drv.pump(2)
        if drv.current == "travel_entry":
            complaints = "; ".join(c for c in [screen.ids.problem.text] + [e.text for e in screen.errors.values()] if c)
            self.shot("travel_entry", again=True)
            if not self.script.values:
                raise DemoError(f"the typed travel document details were not accepted ({complaints})")
            raise InputRejected(complaints)
