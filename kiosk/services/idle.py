"""The idle timer: how long a resident has left without a touch, when to warn, and the extensions given."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class IdleState:
    """One reading of the timer: seconds left, whether the warning is due, whether time ran out."""

    left_s: float
    warning: bool
    expired: bool


class IdleTimer:
    """Counts down ``timeout_s`` from the last touch; the last ``warning_s`` of it are the warning.

    The warning's one touch (:meth:`extend`) starts the count over, as often as the resident
    asks (WCAG 2.2.1 asks for at least ten times; there is no cap). ``clock`` is a monotonic
    clock in seconds, the UI's own in the app.
    """

    def __init__(self, timeout_s: float, warning_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout_s = float(timeout_s)
        self.warning_s = float(warning_s)
        self.clock = clock
        self.extensions = 0  # warnings answered since the last restart
        self._last = clock()

    def touched(self) -> None:
        """The resident is there (a touch, a new screen): start the count over."""
        self._last = self.clock()

    def extend(self) -> None:
        """The warning's "Continue": start the count over and count the extension."""
        self.extensions += 1
        self._last = self.clock()

    def restart(self) -> None:
        """A new visit (or a screen without a timer): full time, no extensions counted."""
        self.extensions = 0
        self._last = self.clock()

    def state(self) -> IdleState:
        """Seconds left, and whether the warning is due or the time is up."""
        left = self.timeout_s - (self.clock() - self._last)
        return IdleState(left_s=max(0.0, left), warning=0 < left <= self.warning_s, expired=left <= 0)
