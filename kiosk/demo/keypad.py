"""The scripted resident's keypad: reaches a control with 8/2 and presses it with 5, never touching the glass."""
from __future__ import annotations

from typing import Any

from kiosk.demo.driver import DemoError, UiDriver
from kiosk.screens.keypad import is_number_field, real
from kiosk.services.keypad import DEFAULT_MAP, Action, DIGIT_KEYS

MAX_MOVES = 80  # more steps than any screen has controls: the focus is lost


def key_for(action: Action, mapping: dict[str, str] | None = None, *, in_number_field: bool = False) -> str:
    """The first key of ``mapping`` (the default map) that does ``action`` (in a number field: no digit key)."""
    mapping = mapping or DEFAULT_MAP
    return next(key for key, value in mapping.items()
                if value == action.value and not (in_number_field and key in DIGIT_KEYS))


class KeypadHands:
    """Keys only, as a resident who cannot see the screen: every key through the window's keyboard events."""

    def __init__(self, driver: UiDriver) -> None:
        self.driver = driver
        self.map = dict(driver.app.kiosk_config.keypad.map)

    def key(self, action: Action) -> None:
        """Press the key that does ``action`` where the focus is (Enter, not 5, accepts a number field)."""
        in_field = is_number_field(self.driver.app.keypad_focused)
        self.driver.press_key(key_for(action, self.map, in_number_field=in_field))

    def still_here(self) -> None:
        """Any key answers "are you still there?"."""
        if getattr(self.driver.app, "idle_warning", False):
            self.key(Action.REPEAT)

    def focus(self, widget: Any, what: str) -> None:
        """Move the focus to ``widget`` the short way round (8 or 2); raises DemoError when no key reaches it."""
        drv, app = self.driver, self.driver.app
        widget = real(widget)
        self.still_here()
        drv.settle(widget)
        controls = drv.wait_until(lambda: widget in app.keypad_controls() and app.keypad_controls(),
                                  f"{what} to be reachable by the keypad", 10)
        if app.keypad_focused not in controls:
            self.key(Action.NEXT)  # the first key lands on the main action (or the first control)
            controls = app.keypad_controls()
        for _move in range(MAX_MOVES):
            if app.keypad_focused is widget:
                return
            if app.keypad_focused not in controls or widget not in controls:
                raise DemoError(f"{what!r}: the focus left the screen's controls on {drv.current}")
            here, there = controls.index(app.keypad_focused), controls.index(widget)
            ahead = (there - here) % len(controls)
            if is_number_field(app.keypad_focused):
                self.key(Action.ACTIVATE)  # 8 and 2 type digits here: Enter leaves the field forward
            else:
                self.key(Action.NEXT if ahead <= len(controls) - ahead else Action.PREVIOUS)
            controls = app.keypad_controls()
        raise DemoError(f"{what!r} never took the keypad's focus on {drv.current}")

    def press(self, widget: Any, what: str) -> None:
        """Focus ``widget`` and press it with the activate key; raises DemoError when it did not take the press."""
        widget = real(widget)
        self.focus(widget, what)
        pressed: list[bool] = []
        mark = lambda *_a: pressed.append(True)  # noqa: E731
        widget.bind(on_press=mark)
        try:
            self.key(Action.ACTIVATE)
        finally:
            widget.unbind(on_press=mark)
        if not pressed:
            raise DemoError(f"{what!r} did not take the keypad's press on screen {self.driver.current}")

    def type_digits(self, field: Any, value: str, what: str) -> None:
        """Focus a number field, type ``value`` with the digit keys and accept it with Enter."""
        digits = {digit: key for key, digit in DIGIT_KEYS.items()}
        if getattr(field, "digits_pattern", ""):
            value = "".join(c for c in value if c.isdigit())  # a date's dashes come by themselves
        if not all(c in digits for c in value):
            raise DemoError(f"{what}: {value!r} cannot be typed on the keypad (digits only)")
        self.focus(field, what)
        for c in value:
            self.driver.press_key(digits[c])
        self.key(Action.ACTIVATE)
