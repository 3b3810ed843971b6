"""Fingers on a scrolling list (or home's tiles): a screen holds back what would move the list's contents under one.

A list that is laid out again under a finger moves its entries, and ScrollView hands the touch to the entry
under the finger when it decides the touch is a tap, up to 0.2 s after it came down (or on the lift): the
resident gets the entry that slid there. The UI soak met it twice: a category list filled again when an item
became unavailable (session 975, the item above opened), and a form whose appointment slots arrived late, after
the backend's 5xx and a retry, while the resident was touching the field below them (the slots pushed the field
5,700 pixels down and a slot lay under the finger). Home's tiles are not in a list, but a button moved from under a
finger before it lifts is not pressed at all (session 341: the backend's notice came in above a touched category).
"""
from __future__ import annotations

import time
from typing import Any

# How long after a finger lifts off the list it still counts as on it: ScrollView hands a quick tap's release to
# the entry 0.2 s after the lift, and that entry must still be under the finger then.
SETTLE_S = 0.5
RECHECK_S = 0.1  # how often work held back by a finger looks again
MAX_HOLD_S = 10.0  # a finger down for longer (a stuck contact, a lift never reported) holds nothing back


class FingerWatch:
    """Mixin for a screen: :meth:`watch_fingers` on its scrolling list, then :meth:`finger_on_list` says whether
    work that re-lays the list out must wait."""

    def watch_fingers(self, scroller: Any) -> None:
        """Note the fingers that come down on ``scroller`` and when they lift (call once, from on_kv_post)."""
        from kivy.core.window import Window

        self._fingers: dict[Any, float | None] = {}  # touch uid -> when it lifted (None: still down)
        self._down_since = 0.0
        self._watched = scroller
        scroller.fbind("on_touch_down", self._finger_down)
        Window.fbind("on_touch_up", self._finger_up)  # every lift reaches the window, wherever it lands

    def _finger_down(self, scroller: Any, touch: Any) -> None:
        if scroller.collide_point(*touch.pos):
            self._fingers[touch.uid] = None
            self._down_since = time.monotonic()
        # None: the touch goes on to the list as before

    def _finger_up(self, _window: Any, touch: Any) -> None:
        if touch.uid in self._fingers:
            self._fingers[touch.uid] = time.monotonic()

    def forget_fingers(self) -> None:
        """A finger still down when the screen changed holds nothing back any more."""
        self._fingers.clear()

    def finger_on_list(self) -> bool:
        """Whether a finger is on the list, or lifted less than SETTLE_S ago (one down for longer than
        MAX_HOLD_S, a stuck contact or a lift never reported, no longer counts)."""
        now = time.monotonic()
        if self._fingers and now - self._down_since > MAX_HOLD_S:
            self._fingers.clear()
        self._fingers = {uid: up for uid, up in self._fingers.items() if up is None or now - up < SETTLE_S}
        return bool(self._fingers)
