"""Form: one generic screen for every item's fields (text, choice, lookup options)."""
from __future__ import annotations

from typing import Any, Callable

from kivy.clock import Clock
from kivy.factory import Factory

from kiosk.errors import FieldError, KioskError
from kiosk.screens.base import FieldInput, KioskScreen, OptionButton
from kiosk.screens.fingers import RECHECK_S, FingerWatch
from kiosk.screens.ime import ImePanel  # noqa: F401  (registers the panel and loads its kv rules)
from kiosk.services.keypad import DIGIT_FIELD_TYPES

INPUT_FILTERS = {"digits": "int", "phone": "int", "number": "float"}
DIGIT_FIELDS = DIGIT_FIELD_TYPES  # the tactile keypad's digit keys type into these
DIGIT_PATTERNS = {"date": "####-##-##"}  # typed on the keypad as 8 digits, the dashes put in by themselves



class FormScreen(FingerWatch, KioskScreen):
    """Builds its inputs from the item's FieldSpecs; the workflow validates them."""

    def on_kv_post(self, *_args: Any) -> None:
        """Relabel on a language switch (values typed so far are kept); note fingers on the fields."""
        self.app.bind(lang=self.relabel)
        self._held: dict[str, Callable[[], None]] = {}  # a lookup's answer waiting for the finger to lift
        self._held_back = Clock.create_trigger(self._apply_held, RECHECK_S)
        self.watch_fingers(self.ids.scroller)

    def on_pre_enter(self, *_args: Any) -> None:
        """One input per field of the transaction's item."""
        self.inputs: dict[str, Any] = {}
        self.labels: dict[str, Any] = {}
        self.errors: dict[str, Any] = {}
        self.retries: dict[str, Any] = {}  # a lookup that failed: its "try again" button, under its error
        self._said: dict[str, Callable[[str], str]] = {}  # what each field's error line says, by language
        self._asked: dict[str, tuple[Any, ...]] = {}
        self._held.clear()
        self.ids.ime.close()
        box = self.ids.fields
        box.clear_widgets()
        self.ids.scroller.scroll_y = 1  # a new form opens at its top, whatever the last one's list was scrolled to
        fields = self.app.txn.item.fields
        self._one_choice = len(fields) == 1 and fields[0].type in ("choice", "lookup")
        self.ids.next_button.disabled = self._one_choice
        self.ids.next_button.opacity = 0 if self._one_choice else 1
        for spec in self.app.txn.item.fields:
            label = Factory.FieldLabel()
            box.add_widget(label)
            self.labels[spec.name] = (label, spec)
            error = Factory.FieldError(text="")
            self.errors[spec.name] = error
            if spec.type in ("choice", "lookup"):
                grid = Factory.GridLayout(cols=1, spacing=16, size_hint_y=None)
                grid.bind(minimum_height=grid.setter("height"))
                box.add_widget(grid)
                self.inputs[spec.name] = grid
                if spec.type == "choice":
                    self._set_options(spec.name, [{"value": c.value, "label_zh": c.label_zh,
                                                   "label_en": c.label_en} for c in spec.choices])
                else:
                    self._ask_options(spec.name)
            else:
                text = FieldInput(input_filter=INPUT_FILTERS.get(spec.type), digits_only=spec.type in DIGIT_FIELDS,
                                  digits_pattern=DIGIT_PATTERNS.get(spec.type, ""),
                                  # Touching a key of the panel must not take the focus away.
                                  unfocus_on_touch=False)
                text.bind(focus=lambda w, on, s=spec: on and self._typing_into(w, s))
                box.add_widget(text)
                self.inputs[spec.name] = text
            box.add_widget(error)
        self.relabel()

    def _typing_into(self, widget: Any, spec: Any) -> None:
        """A text field took the focus: open the keyboard panel for it and keep it in view."""
        self.ids.ime.attach(widget, field_type=spec.type, field_name=spec.name)
        # Scrolled once the panel has taken its space and the list has shrunk.
        Clock.schedule_once(lambda _dt: self.ids.scroller.scroll_to(widget, padding=60, animate=False), 0.05)

    def on_leave(self, *_args: Any) -> None:
        """The keyboard panel closes with the form; answers still held back are for a form no longer shown."""
        self.ids.ime.close()
        self.forget_fingers()
        self._held.clear()
        self._held_back.cancel()

    def forget(self) -> None:
        """The fields go, with what was typed and the resident's own records offered in them."""
        self.ids.ime.close()
        self.ids.fields.clear_widgets()
        self._held.clear()
        self.inputs, self.labels, self.errors, self.retries, self._said, self._asked = {}, {}, {}, {}, {}, {}

    def _set_options(self, name: str, options: list[dict[str, Any]]) -> None:
        grid = self.inputs[name]
        spec_type = self.labels[name][1].type
        grid.clear_widgets()
        for option in options:
            # Long options (a fine with its amount) wrap, and the button grows to hold them (kv rule).
            button = OptionButton(group=f"form-{name}", allow_no_selection=False,
                                  # A lookup's options are the resident's own records (plates, documents, dogs).
                                  lang_exempt=spec_type == "lookup")
            button.value = str(option["value"])
            button.option = option
            if self._one_choice:
                # A form that is one choice needs no separate "next" touch: choosing submits.
                button.bind(on_release=lambda _b: self.submit())
            else:
                button.bind(on_release=lambda _b, n=name: self._chosen(n))
            grid.add_widget(button)
        self._complain(name, None if options else (lambda lang: self.app.tr("Nothing to choose from for this entry.",
                                                                            lang)))
        self.relabel()

    def _chosen(self, name: str) -> None:
        """A choice changed: lookups further down may depend on it, so ask for their options again."""
        fields = self.app.txn.item.fields
        later = [f for f in fields[[f.name for f in fields].index(name) + 1:] if f.type == "lookup"]
        for spec in later:
            self._ask_options(spec.name, self.values())

    def _ask_options(self, name: str, *values: Any) -> None:
        """Ask the workflow, off the UI thread, for a lookup's options (``values``: the entries it depends on)."""
        self._asked[name] = values
        button = self.retries.pop(name, None)  # asked again: the last failure's button and words go
        if button is not None:
            self.ids.fields.remove_widget(button)
            self._complain(name, None)
        self.app.background(self.app.txn.options, name, *values,
                            on_result=lambda opts: self._unmoved(name, lambda: self._set_options(name, opts)),
                            on_error=lambda exc: self._unmoved(name, lambda: self._show_error(name, exc)))

    def _unmoved(self, name: str, show: Callable[[], None]) -> None:
        """Show a lookup's answer (its options, or its error and "try again") once no finger is on the fields.

        Options arriving late (a backend that answered a 5xx first, then the retry) push the fields below them
        down, and ScrollView hands a touch to what lies under the finger when it decides it is a tap: the
        resident touching the next field would pick an appointment slot instead (fingers.py)."""
        if name not in self.inputs:
            return  # the form was left, or is another item's now
        self._held[name] = show  # the latest answer for each lookup
        self._apply_held()

    def _apply_held(self, *_args: Any) -> None:
        if self.finger_on_list():
            self._held_back()
            return
        held, self._held = self._held, {}
        for show in held.values():
            show()

    def _show_error(self, name: str, exc: BaseException) -> None:
        """A lookup failed: say why under it, and, while the transaction is still open, offer to ask again."""
        if name not in self.errors:
            return  # the form was left or forgotten meanwhile
        error = self.errors[name]
        self._complain(name, exc.message if hasattr(exc, "message") else None)
        txn = self.app.txn
        if txn is None or txn.outcome is not None or name in self.retries:
            return
        button = Factory.QuietButton(text=self.app.tr("Try again"))
        button.bind(on_release=lambda _b: self._ask_again(name))
        self.retries[name] = button
        box = self.ids.fields
        box.add_widget(button, index=box.children.index(error))  # drawn right under the error

    def _ask_again(self, name: str) -> None:
        """The resident asks again for a lookup that failed."""
        self._ask_options(name, *self._asked.get(name, ()))

    def _complain(self, name: str, said: Callable[[str], str] | None) -> None:
        """Put (None: take away) the line under field ``name``, kept by language so a switch says it again."""
        if said is None:
            self._said.pop(name, None)
            self.errors[name].text = ""
        else:
            self._said[name] = said
            self.errors[name].text = said(self.app.lang)

    def relabel(self, *_args: Any) -> None:
        """Labels, hints, options and error lines in the current language."""
        if not hasattr(self, "labels"):
            return
        app = self.app
        for name, said in self._said.items():
            self.errors[name].text = said(app.lang)
        self.ids.title.text = app.local(app.txn.item.name_zh, app.txn.item.name_en) if app.txn else ""
        for name, (label, spec) in self.labels.items():
            hint = app.local(spec.hint_zh, spec.hint_en)
            label.text = app.local(spec.label_zh, spec.label_en) + ("" if spec.required else app.tr(" (optional)"))
            widget = self.inputs[name]
            if hasattr(widget, "hint_text"):
                widget.hint_text = hint
            else:
                for button in widget.children:
                    o = button.option
                    button.text = app.local(o.get("label_zh", o["value"]), o.get("label_en", ""))
        for button in getattr(self, "retries", {}).values():
            button.text = app.tr("Try again")

    def values(self) -> dict[str, str]:
        """What the resident entered, by field name."""
        out = {}
        for name, widget in self.inputs.items():
            if hasattr(widget, "hint_text"):
                out[name] = widget.text
            else:
                chosen = [b.value for b in widget.children if b.state == "down"]
                out[name] = chosen[0] if chosen else ""
        return out

    def submit(self) -> None:
        """Hand the values to the workflow, which validates them."""
        for name in self.errors:
            self._complain(name, None)
        self.ids.ime.close()
        self.app.run_step(self.app.txn.submit_form, self.values(), on_recoverable=self.field_error)

    def field_error(self, error: KioskError) -> None:
        """Show the workflow's complaint under the field it names (or under the last field)."""
        name = error.field if isinstance(error, FieldError) else ""
        if name not in self.errors:
            name = list(self.errors)[-1] if self.errors else ""
        if name:
            self._complain(name, error.message)


SCREEN = FormScreen
