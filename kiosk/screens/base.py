"""Widgets shared by every screen: the root with its overlays, the step indicator and the base screen.

The overlays (busy, idle warning) sit above the screen manager and swallow every touch
while shown, so a button they cover cannot be pressed.
"""
from __future__ import annotations

from typing import Any

from kivy.app import App
from kivy.factory import Factory
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.textinput import TextInput
from kivy.uix.togglebutton import ToggleButton

# The indicator's name of each workflow step (msgids; see step_name for the two that vary).
STEP_NAMES = {"identify": "Read ID card", "face": "Face check", "form": "Fill in", "confirm": "Confirm",
              "pay": "Pay", "produce": "Print"}
CURRENT_STEP_COLOUR = "ffd54f"


class KioskRoot(FloatLayout):
    """The window's one child: screen manager plus overlays; any touch resets the idle timer."""

    def on_touch_down(self, touch: Any) -> bool:
        """Dispatch as usual and note the resident's presence.

        While the idle warning is up only its "Continue" button counts: a stray touch
        on the dimmed screen is swallowed and does not keep a forgotten session alive.
        """
        app = App.get_running_app()
        warned = app.idle_warning
        # The hidden maintenance gesture sees every touch-down first; the touch still goes on.
        app.corner_touch(touch.x, touch.y, self.width, self.height)
        taken = super().on_touch_down(touch)
        if not warned:
            app.touched()
        return taken


class Overlay(FloatLayout):
    """A full-screen layer that, while ``shown``, takes every touch from what lies beneath."""

    shown = BooleanProperty(False)

    def on_touch_down(self, touch: Any) -> bool:
        """Swallow the touch when shown (children such as 'Continue' still get it)."""
        if not self.shown:
            return False
        super().on_touch_down(touch)
        return True

    def on_touch_move(self, touch: Any) -> bool:
        """Swallow moves while shown."""
        return self.shown and (super().on_touch_move(touch) or True)

    def on_touch_up(self, touch: Any) -> bool:
        """Swallow releases while shown."""
        return self.shown and (super().on_touch_up(touch) or True)


class FieldInput(TextInput):
    """A text field: what the resident types is data, shown as typed in either language."""

    lang_exempt = BooleanProperty(True)


class OptionButton(ToggleButton):
    """One option of a choice or lookup field; a lookup's options are the resident's records (data)."""

    lang_exempt = BooleanProperty(False)


# The kv rules (common.kv) style both and use them by name.
Factory.register("FieldInput", cls=FieldInput)
Factory.register("OptionButton", cls=OptionButton)


class KioskScreen(Screen):
    """Base of every screen: gives the .kv rules ``root.app``."""

    @property
    def app(self) -> Any:
        """The running KioskApp."""
        return App.get_running_app()


def step_name(step: str, item: Any, tr: Any) -> str:
    """The indicator's name of ``step`` for ``item``: a travel document is read, a query's result is seen."""
    if step == "identify" and item.identity == "travel_document":
        return tr("Read document")
    if step == "produce" and (item.slip_on_request or not item.outputs):
        return tr("See results")
    return tr(STEP_NAMES[step])


class StepBar(Label):
    """Where the resident is in this visit: "Step 2 of 5" and every step's name, from the item's path.

    ``step`` is the workflow step the screen serves; the count comes from
    ``Transaction.steps()`` (the steps done and those planned), read again whenever the
    screen is about to show and when the language changes.
    """

    step = StringProperty("")
    # One line (the count and this step's name) while the keyboard panel takes the lower screen.
    compact = BooleanProperty(False)

    def on_parent(self, *_args: Any) -> None:
        """Follow the enclosing screen's entries and the language."""
        screen = self.parent
        while screen is not None and not isinstance(screen, Screen):
            screen = screen.parent
        if screen is not None:
            screen.bind(on_pre_enter=self.refresh)
            App.get_running_app().bind(lang=self.refresh)
            self.bind(compact=self.refresh)

    def refresh(self, *_args: Any) -> None:
        """The count and the step names in the current language (empty outside a transaction)."""
        app = App.get_running_app()
        txn = app.txn
        steps = [getattr(s, "value", s) for s in txn.steps()] if txn is not None else []
        if self.step not in steps:
            self.text = ""
            return
        names = [step_name(s, txn.item, app.tr) for s in steps]
        at = steps.index(self.step)
        count = app.tr("Step {n} of {total}: {name}").format(n=at + 1, total=len(steps), name=names[at])
        names[at] = f"[b][color={CURRENT_STEP_COLOUR}]{names[at]}[/color][/b]"
        self.text = f"[b]{count}[/b]" + ("" if self.compact else "\n" + "  ·  ".join(names))


def detail_rows(box: Any, rows: Any, *, stack: bool = False) -> None:
    """Fill ``box`` with (label, value, data) rows: the label in the screen's language, the value
    beside it (under it in care mode when ``stack``: a long code), marked as data (``lang_exempt``)
    when it is the resident's own or their record's."""
    box.clear_widgets()
    for label, value, data in rows:
        row = Factory.DetailRow()
        row.stack = stack  # a property the kv rule declares (not a constructor argument)
        # Body's own type size (40 px, 60 in care mode): a size given here would not follow the mode.
        name = Factory.DetailName(text=label)
        shown = (Factory.Datum if data else Factory.Body)(text=value)
        for part in (name, shown):
            row.add_widget(part)
        box.add_widget(row)
