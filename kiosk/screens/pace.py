"""Frames a second: the full rate while someone uses the kiosk, a lower one when nobody has for a while.

Kivy's clock sleeps between frames to hold ``maxfps``, and a touch or key waits in that sleep until the
next frame reads it: at 30 frames a second a touch waited up to 33 ms before anything happened. In use the
kiosk runs at ``[ui] maxfps`` (60: at most 17 ms). Nobody at the screen for ``IDLE_AFTER_S`` (home, nothing
open, nothing busy), the loop drops to ``[ui] idle_maxfps``: an unwatched kiosk wakes less often, and the
first touch back brings the full rate at once.
"""
from __future__ import annotations

from typing import Any

IDLE_AFTER_S = 10.0  # seconds without a touch, key or new screen before the lower rate


class FramePace:
    """Sets the Kivy clock's frame cap: ``active`` frames a second in use, ``idle`` when nobody is there."""

    def __init__(self, clock: Any, active: int, idle: int, idle_after_s: float = IDLE_AFTER_S) -> None:
        self.clock = clock
        self.active = float(active)
        self.idle = float(idle)
        self.idle_after_s = idle_after_s

    @property
    def fps(self) -> float:
        """The cap in force now (0: none)."""
        return float(self.clock._max_fps)

    def touched(self) -> None:
        """Someone touched, keyed or a screen changed: the full rate, from the next frame."""
        self.clock._max_fps = self.active

    def tick(self, quiet_s: float, at_rest: bool) -> None:
        """Every idle tick: the lower rate once nobody has touched for ``idle_after_s`` and the kiosk is at rest
        (home, no transaction, nothing busy); otherwise the full rate (a screen changed by itself)."""
        self.clock._max_fps = self.idle if at_rest and quiet_s >= self.idle_after_s else self.active
