"""The screens' side of the tactile keypad: a focus that moves in reading order, drawn as a ring and spoken.

:class:`KeypadFocus` is mixed into the app. Keypad keys arrive through Kivy's keyboard path
(``Window`` ``on_key_down``/``on_key_up``); :class:`kiosk.services.keypad.KeyMap` says what
each does. The controls a key can reach are those of the topmost layer shown (an overlay
such as the call-for-help question, else the screen): every enabled button, option and
text field that is drawn, in reading order (top to bottom, then left to right; a list's
entries in their list order, wherever it is scrolled). Focus starts on the screen's main
action (:data:`MAIN_ACTIONS`); every move says the control's label, role and state
("开始办理，按钮"; "就业，选项，未选中") and puts a thick yellow-on-black frame round it for a
sighted helper. Any keypad key turns full read-out on for the rest of the session; the
session's end turns the keypad's state off with it.

This module imports no Kivy widget at load (the app imports it before the window exists).
"""
from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty, NumericProperty

from kiosk.screens.voice import SILENT_SCREENS, plain
from kiosk.services.keypad import Action, CancelConfirmation, KeyMap, KeyPress, needs_words
from kiosk.services.speech import Personal, personal

# Where the focus starts on each screen: a control's id, or a list's id (its first entry). None: nowhere
# (the screen waits for the card, the phone or the printer; the first key goes to the first control).
MAIN_ACTIONS: dict[str, str | None] = {
    "home": "tiles", "category": "item_list", "guide": "start_button", "identify": None, "travel_entry": None,
    "face": "capture_button", "form": "fields", "confirm": "confirm_button", "payment": None, "printing": None,
    "done": "finish_button", "error": "home_button", "reprint": "reprint_button", "out_of_service": None,
}
# The overlays above the screen, topmost first, and the control each starts on.
OVERLAYS = (("idle_overlay", "continue_button"), ("help_reply", "help_ack_button"),
            ("help_confirm", "confirm_help_button"))
MAIN_WAIT_S = 8.0  # a main action still to come (a form's options) is looked for this long
ROW_PX = 24  # tops this close are one row of reading order


def _drawn(widget: Any, root: Any) -> bool:
    """Whether ``widget`` is drawn with some size: neither it nor a parent up to ``root`` transparent."""
    if widget.width < 2 or widget.height < 2:
        return False
    node = widget
    for _depth in range(64):
        if node is None or node is root:
            return True
        if node.opacity <= 0:
            return False
        node = node.parent
    return True


def _scroll_parent(widget: Any) -> Any:
    """The outermost ScrollView holding ``widget`` (None outside one)."""
    from kivy.uix.scrollview import ScrollView

    found, node = None, widget.parent
    while node is not None and node is not node.parent:
        if isinstance(node, ScrollView):
            found = node
        node = node.parent
    return found


def reading_key(widget: Any) -> tuple[int, int, int]:
    """Reading order: top to bottom by window position; inside a list by the entry's place in the list."""
    x, y = widget.to_window(widget.x, widget.y)
    top = y + widget.height
    sv = _scroll_parent(widget)
    if sv is None:
        return -round(top / ROW_PX), 0, round(x)
    _sx, sy = sv.to_window(sv.x, sv.y)
    content = sv.children[0] if sv.children else None
    ctop = content.to_window(content.x, content.top)[1] if content is not None else top
    return -round((sy + sv.height) / ROW_PX), 1 + round((ctop - top) / ROW_PX), round(x)


def is_number_field(widget: Any) -> bool:
    """A text field the keypad's digits type into (phone, ID number, plate digits)."""
    return widget is not None and bool(getattr(widget, "digits_only", False))


class KeypadFocus:
    """Mixed into the KioskApp: the keypad's focus, its ring, and what each key does."""

    keypad_active = BooleanProperty(False)  # a keypad key was pressed this session (full read-out is on)
    focus_rect = ListProperty([0, 0, 0, 0])  # the focused control in window pixels (x, y, w, h); 0 size: none
    keypad_keys = NumericProperty(0)  # keypad keys pressed since the app started

    keypad_focused: Any = None
    _main_wanted_until: float = 0.0
    _words_notice_due = False  # the guide's "needs words typed" notice, said after the next focus

    def keypad_start(self) -> None:
        """Listen to the keypad's keys (when [keypad] is enabled) and follow the focused control each frame."""
        from kivy.core.window import Keyboard, Window

        cfg = self.kiosk_config.keypad
        self.keymap = KeyMap(cfg.map)
        self._cancel_question = CancelConfirmation()
        self._key_names = {code: name for name, code in Keyboard.keycodes.items()}
        if cfg.enabled:
            Window.bind(on_key_down=self._keypad_down, on_key_up=self._keypad_up)
        Clock.schedule_interval(self._follow_focus, 0)
        self.bind(help_status=lambda *_a: self._layer_changed(), idle_warning=lambda *_a: self._layer_changed())

    # --- what the keys reach -----------------------------------------------------------
    def keypad_layer(self) -> Any:
        """The topmost layer shown: an overlay, else the current screen."""
        root = self.root
        for overlay_id, _main in OVERLAYS:
            overlay = root.ids.get(overlay_id) if root is not None else None
            if overlay is not None and overlay.shown:
                return overlay
        return self.sm.current_screen

    def keypad_controls(self) -> list[Any]:
        """The controls of the topmost layer a key can reach, in reading order."""
        from kivy.uix.behaviors import ButtonBehavior
        from kivy.uix.textinput import TextInput

        layer = self.keypad_layer()
        found = [w for w in layer.walk(restrict=True)
                 if isinstance(w, (ButtonBehavior, TextInput)) and not w.disabled and _drawn(w, layer)]
        return sorted(found, key=reading_key)

    def keypad_main(self) -> Any:
        """The control the focus starts on in the topmost layer (None: nowhere yet)."""
        layer = self.keypad_layer()
        overlay_main = {id(self.root.ids[oid]): m for oid, m in OVERLAYS if oid in self.root.ids}
        main = overlay_main.get(id(layer)) or MAIN_ACTIONS.get(getattr(layer, "name", ""))
        if not main:
            return None
        target = layer.ids.get(main) if hasattr(layer, "ids") else None
        if target is None and layer is not self.sm.current_screen:
            target = self.root.ids.get(main)
        if target is None:
            return None
        controls = self.keypad_controls()
        if target in controls:
            return controls[controls.index(target)]  # the widget itself, not the kv id's weak proxy
        inside = [c for c in controls if target in _ancestors(c)]
        return inside[0] if inside else None

    # --- keys ------------------------------------------------------------------------------
    def _keypad_down(self, _window: Any, key: int, _scancode: Any = None, _codepoint: Any = None,
                     _modifiers: Any = None, **_kwargs: Any) -> bool:
        name = self._key_names.get(key)
        if name is None or self.sm is None or self.sm.current in SILENT_SCREENS:
            return False
        focused = self.keypad_focused if self.keypad_focused in self._reachable() else None
        press = self.keymap.press(name, in_number_field=is_number_field(focused))
        if press is None:
            return False
        self.voice_interrupt()  # any key stops speech at once
        self.keypad_keys += 1
        self._release_touched_field()
        self._keypad_turn_on()
        if self.idle_warning:
            self.extend_time()  # any key says the resident is still there
            self._say(self.tr("I need more time"))
            return True
        self.touched()
        answer = self._cancel_question.answer(press)
        if answer == "ask":
            self._say(self.tr("Cancel this visit? Press the slash key again to cancel. Any other key goes on."))
        elif answer == "cancel":
            self.cancel()  # the session's end silences speech and forgets it: say so after, then the home screen
            self._say(self.tr("The visit is cancelled."))
            self.announce_screen(interrupt=False)
        elif answer == "stay":
            self._say(self.tr("The visit goes on."))
        elif press.digit:
            self._type_digit(focused, press.digit)
        elif press.action is not None:
            self._act(press, focused)
        return True

    def _release_touched_field(self) -> None:
        """A field a touch focused lets go: SDL's text events for the keypad's digits must not type into it too."""
        from kivy.uix.textinput import TextInput

        for widget in self.sm.current_screen.walk(restrict=True):
            if isinstance(widget, TextInput) and widget.focus:
                widget.focus = False

    def _keypad_up(self, _window: Any, key: int, *_args: Any, **_kwargs: Any) -> bool:
        name = self._key_names.get(key)
        return name is not None and self.keymap.press(name) is not None and self.sm.current not in SILENT_SCREENS

    def _act(self, press: KeyPress, focused: Any) -> None:
        action = press.action
        if action is Action.NEXT:
            self.keypad_move(+1)
        elif action is Action.PREVIOUS:
            self.keypad_move(-1)
        elif action is Action.ACTIVATE:
            self._activate(focused)
        elif action is Action.DELETE:
            self._delete_digit(focused)
        elif action is Action.BACK:
            self._back()
        elif action is Action.REPEAT:
            self.voice_repeat()
        elif action is Action.VOLUME_UP:
            self.voice_louder()
        elif action is Action.VOLUME_DOWN:
            self.voice_quieter()
        elif action is Action.HELP:
            if self.help_status in ("", "failed"):
                self.help_pressed()
            else:
                self._say(self.root.ids.help_line.text if "help_line" in self.root.ids else "")

    def _keypad_turn_on(self) -> None:
        """The first keypad key of a session: full read-out on (and it stays on until the session ends)."""
        if self.keypad_active:
            return
        self.keypad_active = True
        if self.speech is not None and not self.voice_full:
            self.speech.set_readout("full")
            self.voice_full = self.speech.readout == "full"
        self._words_notice_due = True

    def _say_words_needed(self) -> None:
        """On a guide whose item needs words typed (a name, an address): say so, and where help is (once a guide)."""
        if not self._words_notice_due:
            return
        self._words_notice_due = False
        if self.sm.current == "guide" and self.item is not None and needs_words(self.item) \
                and self.speech is not None:
            self.speech.say(self.tr("This service needs words typed on the screen, such as a name or an address: "
                                    "the keypad alone cannot finish it. Press the star key to call the duty officer."),
                            self.lang, interrupt=False)

    # --- focus -----------------------------------------------------------------------------
    def _reachable(self) -> list[Any]:
        return self.keypad_controls() if self.sm is not None else []

    def keypad_move(self, step: int) -> Any:
        """Focus the next (+1) or previous (-1) control in reading order, round the end; say it."""
        controls = self._reachable()
        self._main_wanted_until = 0.0
        if not controls:
            self._say(self.tr("Nothing to choose on this screen."))
            return None
        current = self.keypad_focused
        if current in controls:
            target = controls[(controls.index(current) + step) % len(controls)]
        else:
            target = self.keypad_main() or (controls[0] if step > 0 else controls[-1])
        self.keypad_focus(target)
        return target

    def keypad_focus(self, widget: Any, *, interrupt: bool = True) -> None:
        """Put the focus (and its ring) on ``widget``, bring it into view, and say what it is."""
        widget = real(widget)
        self.keypad_focused = widget
        sv = _scroll_parent(widget)
        if sv is not None:
            sv.scroll_to(widget, padding=40, animate=False)
        self._follow_focus(0)
        if self.speech is not None:
            self.speech.say(self.describe(widget), self.lang, interrupt=interrupt)
        self._say_words_needed()  # after the focus, so that a moving key does not cut it off

    def describe(self, widget: Any) -> list[Any]:
        """What a control says when focused: label, role and state, its personal parts as Personal."""
        from kivy.uix.textinput import TextInput
        from kivy.uix.togglebutton import ToggleButton

        from kiosk.screens.base import OptionButton

        sep = "，" if self.lang == "zh_CN" else ", "
        end = "。" if self.lang == "zh_CN" else "."
        if isinstance(widget, TextInput):
            role = self.tr("number field" if is_number_field(widget) else "text field")
            parts: list[Any] = [plain(widget.hint_text) or self.tr("Input"), sep, role, sep]
            if widget.text:
                parts += [personal("other", widget.text, self.lang), end]
            else:
                parts.append(self.tr("empty") + end)
            if not is_number_field(widget):
                parts.append(" " + self.tr("This needs words typed on the screen. Press the star key "
                                           "to call the duty officer."))
            return parts
        label = _label_of(widget)
        if isinstance(widget, OptionButton):
            state = self.tr("selected" if widget.state == "down" else "not selected")
            name: Any = personal("other", label, self.lang) if widget.lang_exempt else label
            return [name, sep + self.tr("option") + sep + state + end]
        role = self.tr("button")
        if isinstance(widget, ToggleButton):
            role += sep + self.tr("on" if widget.state == "down" else "off")
        return [label, sep + role + end]

    def _follow_focus(self, _dt: float) -> None:
        """Each frame: the ring follows the focused control (a list scrolled, a row grown); the main action,
        once it arrives (a form's options come from the backend), takes the focus."""
        widget = self.keypad_focused
        if widget is None and self._main_wanted_until:
            if Clock.get_boottime() > self._main_wanted_until:
                self._main_wanted_until = 0.0
            else:
                main = self.keypad_main()
                if main is not None:
                    self._main_wanted_until = 0.0
                    self.keypad_focus(main, interrupt=False)  # after the screen's own words
                    return
        if widget is None or widget.get_root_window() is None or not widget.width:
            rect = [0, 0, 0, 0]
        else:
            x, y = widget.to_window(widget.x, widget.y)
            rect = [round(x), round(y), round(widget.width), round(widget.height)]
        if list(self.focus_rect) != rect:
            self.focus_rect = rect

    def keypad_screen_changed(self, _name: str) -> None:
        """A screen appeared: no focus yet; with the keypad in use, it goes to the main action once there."""
        self.keypad_focused = None
        self._cancel_question.reset()
        self._main_wanted_until = Clock.get_boottime() + MAIN_WAIT_S if self.keypad_active else 0.0
        self._follow_focus(0)
        self._words_notice_due = self.keypad_active

    def _layer_changed(self) -> None:
        """An overlay came or went: the focus starts again on the top layer's main action."""
        if not self.keypad_active or self.sm is None:
            return
        self.keypad_focused = None
        self._main_wanted_until = Clock.get_boottime() + MAIN_WAIT_S
        Clock.schedule_once(lambda _dt: self._follow_focus(0), 0)

    def keypad_session_ended(self) -> None:
        """The session ended: the keypad's read-out, focus and question go with it."""
        self.keypad_active = False
        self.keypad_focused = None
        self._main_wanted_until = 0.0
        if hasattr(self, "_cancel_question"):
            self._cancel_question.reset()
        self.focus_rect = [0, 0, 0, 0]

    # --- the keys' actions -----------------------------------------------------------------------
    def _activate(self, focused: Any) -> None:
        from kivy.uix.textinput import TextInput
        from kivy.uix.togglebutton import ToggleButton

        if focused is None:
            self.keypad_move(+1)
            return
        focused = real(focused)
        if isinstance(focused, TextInput):
            if is_number_field(focused):
                self.keypad_move(+1)  # Enter accepts the number and goes on
            else:
                self._say(self.tr("This needs words typed on the screen. Press the star key to call the duty officer."))
            return
        if self.busy and focused is not real(self._help_button()):
            self._say(self.tr("Please wait..."))
            return
        focused.trigger_action(duration=0)
        if isinstance(focused, ToggleButton) and focused is self.keypad_focused and focused.get_root_window():
            self.keypad_focus(focused, interrupt=False)  # its new state

    def _help_button(self) -> Any:
        screen = self.sm.current_screen
        return next((w.ids["help_button"] for w in screen.walk() if "help_button" in getattr(w, "ids", {})), None)

    def _type_digit(self, field: Any, digit: str) -> None:
        pattern = field.digits_pattern
        if pattern:
            digits = _digits(field.text)
            if len(digits) >= pattern.count("#"):
                self._say(self.tr("The field is full. Press Enter to go on."))
                return
            field.text = laid_out(digits + digit, pattern)
            field.cursor = (len(field.text), 0)
        else:
            field.insert_text(digit)
        self._say([Personal(digit, self.tr("Digit typed"))])

    def _delete_digit(self, field: Any) -> None:
        if field is None or not _digits(field.text):
            self._say(self.tr("Nothing to delete."))
            return
        if field.digits_pattern:
            field.text = laid_out(_digits(field.text)[:-1], field.digits_pattern)
            field.cursor = (len(field.text), 0)
        else:
            field.do_backspace()
        self._say(self.tr("Deleted. {n} digits left.").format(n=len(_digits(field.text))))

    def _back(self) -> None:
        """The screen's back button; a screen without one says how to leave instead."""
        screen = self.sm.current_screen
        button = screen.ids.get("back_button") if self.keypad_layer() is screen else None
        if button is not None and not button.disabled and _drawn(button, screen):
            button.trigger_action(duration=0)
            return
        self._say(self.tr("There is no way back on this screen. Press the slash key twice to cancel the visit."))

    def announce_payment(self, amount: str) -> None:
        """The QR code is up: say the amount (under private listening), that a phone pays, and where help is."""
        if self.speech is None:
            return
        end = "。" if self.lang == "zh_CN" else ". "
        parts: list[Any] = [personal("amount", plain(amount), self.lang), end,
                            self.tr("Please pay by scanning the QR code on the screen with your phone.")]
        if self.keypad_active:
            parts.append(" " + self.tr("For help, press the star key."))
        self.speech.say(parts, self.lang, interrupt=False)

    def _say(self, text: Any) -> None:
        if self.speech is not None and text:
            self.speech.say(text, self.lang, interrupt=True)


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def laid_out(digits: str, pattern: str) -> str:
    """``digits`` laid into ``pattern`` ('#' a digit, anything else put in as soon as a digit follows it)."""
    out, rest = [], list(digits)
    for slot in pattern:
        if not rest:
            break
        out.append(rest.pop(0) if slot == "#" else slot)
    return "".join(out)


def real(widget: Any) -> Any:
    """The widget itself where ``widget`` is a kv id's weak proxy (so ``is`` compares widgets)."""
    return getattr(widget, "__self__", widget) if widget is not None else None


def _ancestors(widget: Any) -> list[Any]:
    out, node = [], widget.parent
    while node is not None and node is not node.parent:
        out.append(node)
        node = node.parent
    return out


def _label_of(widget: Any) -> str:
    """A control's label: its own text, else the texts of the labels inside it (a tile: its name)."""
    own = plain(getattr(widget, "text", "") or "")
    if own:
        return own
    texts = [plain(w.text) for w in widget.walk(restrict=True)
             if w is not widget and isinstance(getattr(w, "text", None), str)]
    return " ".join(t for t in texts if t)
