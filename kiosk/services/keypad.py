"""The tactile keypad: what each key of the resident's numeric keypad does, and the cancel confirmation.

A USB numeric keypad is a HID keyboard; its keys reach the app as keyboard events, named
here by their keypad keycode name (``numpad8``, ``numpadenter``, ...), so NumLock does not
matter: SDL reports the keypad's own keycodes whatever the lock's state. ``[keypad] map``
in the config maps a key name to an :class:`Action`; the default suits the common 17-key
keypad. In a number field (phone, ID number, plate digits) the digit keys type their
digit, the decimal point deletes the last one and Enter accepts the field; every other
mapped key keeps its action there. ``/`` cancels the visit only when pressed twice: the
first press asks (spoken), the next key answers. No Kivy here.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Mapping


class Action(str, enum.Enum):
    """What a keypad key does (the values are the config's spelling)."""

    PREVIOUS = "previous"  # focus the previous control in reading order
    NEXT = "next"  # focus the next control in reading order
    ACTIVATE = "activate"  # press the focused control (in a number field: accept it and go on)
    BACK = "back"  # the screen's back button
    REPEAT = "repeat"  # say the last utterance again
    VOLUME_UP = "volume_up"
    VOLUME_DOWN = "volume_down"
    HELP = "help"  # call the duty officer
    CANCEL = "cancel"  # cancel the visit, after a spoken confirmation
    DELETE = "delete"  # in a number field: delete the last digit


# The common 17-key USB numeric keypad, by keypad keycode name (Kivy's names for SDL's keypad keys).
DEFAULT_MAP: dict[str, str] = {
    "numpad8": Action.PREVIOUS.value,
    "numpad2": Action.NEXT.value,
    "numpad5": Action.ACTIVATE.value,
    "numpadenter": Action.ACTIVATE.value,
    "numpad4": Action.BACK.value,
    "numpad6": Action.REPEAT.value,
    "numpadadd": Action.VOLUME_UP.value,
    "numpadsubstract": Action.VOLUME_DOWN.value,  # Kivy's spelling of the keypad's minus key
    "numpadmul": Action.HELP.value,
    "numpaddivide": Action.CANCEL.value,
    "numpaddecimal": Action.DELETE.value,
}
# The keypad's digit keys: in a number field they type their digit, whatever the map says.
DIGIT_KEYS: dict[str, str] = {f"numpad{d}": str(d) for d in range(10)}
KEY_NAMES = frozenset({*DIGIT_KEYS, "numpaddecimal", "numpaddivide", "numpadmul", "numpadsubstract",
                       "numpadadd", "numpadenter"})


# Field types the keypad can fill: options are chosen with 8/2 and 5, these others typed with the digit keys.
DIGIT_FIELD_TYPES = ("digits", "phone", "number", "id_number", "date")
KEYPAD_FIELD_TYPES = ("choice", "lookup", *DIGIT_FIELD_TYPES)


def needs_words(item: Any) -> list[str]:
    """The required fields of ``item`` the keypad cannot fill (a name, an address, a code with letters)."""
    return [f.name for f in item.fields if f.required and f.type not in KEYPAD_FIELD_TYPES]


@dataclass(frozen=True)
class KeyPress:
    """What one key does where the focus is: an action, or a digit typed into a number field."""

    key: str
    action: Action | None = None
    digit: str = ""


class KeyMap:
    """``[keypad] map``: key name -> action, checked when built."""

    def __init__(self, mapping: Mapping[str, str] | None = None) -> None:
        mapping = DEFAULT_MAP if mapping is None else mapping
        self.actions: dict[str, Action] = {}
        for key, action in mapping.items():
            self.actions[key] = Action(action)  # ValueError names the value

    def press(self, key: str, *, in_number_field: bool = False) -> KeyPress | None:
        """What ``key`` does (None: not a keypad key of the map, left to the app's other handlers)."""
        action = self.actions.get(key)
        if in_number_field:
            if key in DIGIT_KEYS:
                return KeyPress(key, digit=DIGIT_KEYS[key])
            if action in (Action.DELETE, Action.ACTIVATE):
                return KeyPress(key, action)
        if action is Action.DELETE and not in_number_field:
            action = None  # deleting means nothing outside a number field
        if action is None:
            # A keypad key with nothing to do here is still the resident's (read-out on); any other key is not ours.
            return KeyPress(key) if key in KEY_NAMES or key in self.actions else None
        return KeyPress(key, action)


def check_map(mapping: Mapping[str, str]) -> dict[str, str]:
    """``mapping`` if every key is a keypad key name and every action known; ValueError naming the first that is not."""
    for key, action in mapping.items():
        if key not in KEY_NAMES:
            raise ValueError(f"{key!r} is not a keypad key; keys are {', '.join(sorted(KEY_NAMES))}")
        if action not in {a.value for a in Action}:
            raise ValueError(f"{key} = {action!r}: actions are {', '.join(a.value for a in Action)}")
    for needed in (Action.NEXT, Action.ACTIVATE):
        if needed.value not in mapping.values():
            raise ValueError(f"no key does {needed.value!r}: the keypad could not finish a visit")
    return dict(mapping)


class CancelConfirmation:
    """``/`` asks "cancel this visit?"; only a second ``/`` cancels, any other key keeps the visit."""

    def __init__(self) -> None:
        self.asking = False

    def answer(self, press: KeyPress) -> str:
        """What this key means: "ask" (first cancel), "cancel" (confirmed), "stay" (declined) or "" (no question)."""
        if press.action is Action.CANCEL:
            if self.asking:
                self.asking = False
                return "cancel"
            self.asking = True
            return "ask"
        if self.asking:
            self.asking = False
            return "stay"
        return ""

    def reset(self) -> None:
        """Forget a question left open (the screen or the session changed)."""
        self.asking = False
