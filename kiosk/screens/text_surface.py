"""A mend for Kivy 2.3's SDL2 text provider, which keeps a copy of every label's pixels it no longer needs.

To draw a label's text, Kivy's ``LabelSDL2`` renders it into an SDL surface (``_render_begin``,
``_render_text``), copies the surface's pixels out (``_render_end``) and uploads the copy to the label's texture.
It keeps the surface afterwards, in the label's ``_surface``, until the next render replaces it: every label on
every screen built so far holds a second full copy of its pixels in the C heap. In the kiosk that is about as
much as the textures themselves: 21 MiB after 10 residents' visits to 39 MiB after 50 (measured with the demo's
resident walking the catalogue's items in order; it grows as screens and item guides are first built), and
blocks of every size, which is what scatters a heap.

:func:`install` makes ``_render_end`` drop the surface once its pixels are copied out. Nothing reads it after:
the text's extents and later renders use the font, which Kivy caches apart, and a new render makes a new surface.
"""
from __future__ import annotations

from typing import Any, Callable

_original: Callable[..., Any] | None = None


def install() -> None:
    """Let go of each label's SDL surface once its pixels are copied out (once per process; SDL2 provider only)."""
    global _original
    from kivy.core.text import Label as CoreLabel

    if _original is not None or CoreLabel.__name__ != "LabelSDL2":  # another provider keeps no surface
        return
    _original = CoreLabel._render_end

    def _render_end(self: Any) -> Any:
        try:
            return _original(self)
        finally:
            self._surface = None

    CoreLabel._render_end = _render_end
