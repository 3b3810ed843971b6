"""Travel entry: the resident types a travel document's number and dates (the chip's keys).

For when the scanner cannot read the data page (worn, glare, a permit held the wrong
way). The three values open the chip by Basic Access Control exactly as a scanned MRZ
would; everything else about the document comes from the chip. The values are personal
data: they live only in these inputs and are cleared whenever the screen is left.
"""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory

from kiosk.errors import FieldError, KioskError
from kiosk.screens.base import FieldInput, KioskScreen
from kiosk.screens.ime import ImePanel  # noqa: F401  (registers the panel and loads its kv rules)

# name, label, hint, keyboard (the IME panel's field type)
FIELDS = (
    ("document_number", "Document number", "As printed on the photo page, e.g. C12345678", "text"),
    ("birth_date", "Date of birth", "8 digits: year, month, day, e.g. 19900521", "digits"),
    ("expiry_date", "Date of expiry", "8 digits: year, month, day, e.g. 20300521", "digits"),
)


class TravelEntryScreen(KioskScreen):
    """Three inputs and the kiosk keyboard; "Read the chip" hands them to ``Transaction.identify``."""

    inputs: dict[str, Any]
    errors: dict[str, Any]

    def on_kv_post(self, *_args: Any) -> None:
        """Build the inputs once; relabel on a language switch."""
        self.inputs, self.errors, self.labels = {}, {}, {}
        box = self.ids.fields
        for name, _label, _hint, kind in FIELDS:
            label = Factory.FieldLabel()
            text = FieldInput(unfocus_on_touch=False, input_filter="int" if kind == "digits" else None)
            text.bind(focus=lambda w, on, n=name, k=kind: on and self._typing_into(w, n, k))
            error = Factory.FieldError(text="")
            for widget in (label, text, error):
                box.add_widget(widget)
            self.labels[name], self.inputs[name], self.errors[name] = label, text, error
        self.app.bind(lang=self.relabel)
        self.relabel()

    def relabel(self, *_args: Any) -> None:
        """Labels and hints in the current language."""
        tr = self.app.tr
        for name, label, hint, _kind in FIELDS:
            self.labels[name].text = tr(label)
            self.inputs[name].hint_text = tr(hint)

    def on_pre_enter(self, *_args: Any) -> None:
        """Start empty."""
        self.clear()

    def on_leave(self, *_args: Any) -> None:
        """Nothing typed stays behind."""
        self.clear()

    def clear(self) -> None:
        """Empty every input and message; close the keyboard."""
        self.ids.ime.close()
        self.show_worded(self.ids.problem, None)
        for name in self.inputs:
            self.inputs[name].text = ""
            self.show_worded(self.errors[name], None)

    def _typing_into(self, widget: Any, name: str, kind: str) -> None:
        self.ids.ime.attach(widget, field_type=kind, field_name=name)
        Clock.schedule_once(lambda _dt: self.ids.scroller.scroll_to(widget, padding=60, animate=False), 0.05)

    def values(self) -> tuple[str, str, str]:
        """(document number, birth date, expiry date) as typed."""
        return tuple(self.inputs[name].text for name, *_rest in FIELDS)  # type: ignore[return-value]

    def submit(self) -> None:
        """Open the chip with what was typed; the workflow checks the values first."""
        self.show_worded(self.ids.problem, None)
        for error in self.errors.values():
            self.show_worded(error, None)
        self.ids.ime.close()
        identify = self.app.screen("identify")
        self.app.run_step(self.app.txn.identify, None, self.values(), on_result=identify.owed,
                          on_recoverable=self.read_failed)

    def read_failed(self, error: KioskError) -> None:
        """A value that is not well formed goes under its input; a chip that did not open, above."""
        if isinstance(error, FieldError) and error.field in self.errors:
            self.show_worded(self.errors[error.field], error)
        else:
            self.show_worded(self.ids.problem, error)


SCREEN = TravelEntryScreen
