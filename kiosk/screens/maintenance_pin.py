"""The technician's PIN pad, opened by the hidden corner gesture; the check runs in kiosk.services.maintenance."""
from __future__ import annotations

from typing import Any, Callable

from kivy.properties import BooleanProperty, StringProperty

from kiosk import localtime
from kiosk.errors import KioskError
from kiosk.screens.base import KioskScreen
from kiosk.services.maintenance import LockedOut, PIN_MAX


class MaintenancePinScreen(KioskScreen):
    """Digits, OK, back to service; says how many attempts are left, or until when it is locked."""

    pin = StringProperty("")
    message = StringProperty("")
    checking = BooleanProperty(False)
    locked = BooleanProperty(False)

    _say: Callable[[], str] = staticmethod(lambda: "")

    def on_kv_post(self, *_args: Any) -> None:
        """Say the message again in the other language when the language changes."""
        self.app.bind(lang=lambda *_a: self._tell(self._say))

    def _tell(self, say: Callable[[], str]) -> None:
        """Show ``say()`` now, and again after a language switch."""
        self._say = say
        self.message = say()

    def on_pre_enter(self, *_args: Any) -> None:
        """Start empty and say whether the PIN pad is locked."""
        self.pin = ""
        self.checking = False
        self.say_status()

    def on_kv_post(self, *_args: Any) -> None:
        """Reword the pad's status on a language switch."""
        self.app.bind(lang=lambda *_a: self.say_status() if not self.checking else None)

    def say_status(self) -> None:
        """Whether the PIN pad is locked, or no PIN is set, in the current language."""
        status = self.app.maintenance.status()
        self.locked = status.locked
        if status.locked:
            self._tell(lambda: self._locked_text(status.locked_until))
        elif not status.pin_set:
            self._tell(lambda: self.app.tr("No maintenance PIN is set on this terminal."))
        else:
            self._tell(lambda: "")

    def _locked_text(self, until: float) -> str:
        return self.app.tr("Too many wrong PINs. Maintenance is locked until {time}.").format(
            time=localtime.stamp(until, "%Y-%m-%d %H:%M"))

    def press(self, digit: str) -> None:
        """One digit more (the PIN is never shown, only its length)."""
        if len(self.pin) < PIN_MAX:
            self.pin += digit

    def clear(self) -> None:
        """Start the PIN again."""
        self.pin = ""

    def submit(self) -> None:
        """Check the PIN off the UI thread (scrypt takes a moment); open the menu when it matches."""
        if self.checking or not self.pin:
            return
        self.checking = True
        pin, self.pin = self.pin, ""
        self.app.background(self.app.maintenance.unlock, pin, on_result=self._accepted, on_error=self._refused)

    def _accepted(self, _result: Any) -> None:
        self.checking = False
        self.app.go("maintenance")

    def _refused(self, error: BaseException) -> None:
        self.checking = False
        if isinstance(error, LockedOut):
            self.locked = True
            self._tell(lambda: self._locked_text(error.until))
        elif isinstance(error, KioskError):
            self._tell(lambda: error.message(self.app.lang))
        else:
            self._tell(lambda: self.app.tr("The maintenance action failed."))

    def cancel(self) -> None:
        """Back to the resident's screens (nothing was unlocked, so nothing to lift)."""
        self.app.go_home()


SCREEN = MaintenancePinScreen
