"""A mend for Kivy 2.3's ScrollView, which gathers one more binding on every layout update of a long-lived list.

Kivy shows a list's scroll bar in ``bar_color`` while it scrolls and fades it to ``bar_inactive_color`` half a
second later. ``ScrollView.update_from_scroll`` (run on every scroll step and every change of the list's or its
content's size) binds ``bar_color`` to ``_change_bar_color`` each time it runs, and the fade, half a second after
the last update, unbinds it once. Every update beyond the first in that half second leaves one binding behind.
The kiosk's lists live as long as their screens and are filled again for every resident, so the bindings pile up:
the traced soak found this line's allocations growing steadily (about 2,700 blocks per 100 sessions), and each
stale binding is called on every ``bar_color`` change.

:func:`install` wraps ``update_from_scroll`` so that it first drops the binding a previous update left; Kivy's
own code then binds it again. The bar behaves as before (active while scrolling, fading after); there is at most
one binding. ``funbind`` of a callback that is not bound does nothing.
"""
from __future__ import annotations

from typing import Any, Callable

_original: Callable[..., Any] | None = None


def install() -> None:
    """Keep at most one ``bar_color`` binding per ScrollView (once per process)."""
    global _original
    from kivy.uix.scrollview import ScrollView

    if _original is not None:
        return
    _original = ScrollView.update_from_scroll

    def update_from_scroll(self: Any, *largs: Any) -> Any:
        self.funbind("bar_color", self._change_bar_color)
        return _original(self, *largs)

    ScrollView.update_from_scroll = update_from_scroll
