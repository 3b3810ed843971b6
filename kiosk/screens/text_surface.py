"""Two mends for Kivy 2.3's SDL2 text provider: it keeps a copy of every label's pixels it no longer needs, and it
opens one font twice when one size comes as 46 and as 46.0.

To draw a label's text, Kivy's ``LabelSDL2`` renders it into an SDL surface (``_render_begin``,
``_render_text``), copies the surface's pixels out (``_render_end``) and uploads the copy to the label's texture.
It keeps the surface afterwards, in the label's ``_surface``, until the next render replaces it: every label on
every screen built so far holds a second full copy of its pixels in the C heap. In the kiosk that is about as
much as the textures themselves: 21 MiB after 10 residents' visits to 39 MiB after 50 (measured with the demo's
resident walking the catalogue's items in order; it grows as screens and item guides are first built), and
blocks of every size, which is what scatters a heap.

:func:`install` makes ``_render_end`` drop the surface once its pixels are copied out. Nothing reads it after:
the text's extents and later renders use the font, which Kivy caches apart, and a new render makes a new surface.

Kivy caches each opened font under an id made of the size as written (``str(46.0)`` is not ``str(46)``), the font
file and the styles, but opens it at ``int(size)`` points. The kiosk's sizes come as ``46 * app.ts`` (46.0) and as
plain 46, and care mode's 1.5 makes 46 * 1.5 = 69.0: one face opened two or three times, each with its own open file
and glyph cache. And the cache holds 64 fonts, then closes the oldest, so with enough ids a font is closed and
opened again and again. :func:`install` makes the id use ``int(size)``, the size the font is opened at: the same
font, rendered the same, opened once.
"""
from __future__ import annotations

from typing import Any, Callable

_original: Callable[..., Any] | None = None
FONT_ID_OPTIONS = ("font_name_r", "bold", "italic", "underline", "strikethrough")  # beside the size, as Kivy's id


def font_id(options: dict[str, Any]) -> str:
    """The font cache's id for a label's options: the whole points the font is opened at, then what Kivy's own
    id names."""
    return "|".join([str(int(options["font_size"]))] + [str(options[key]) for key in FONT_ID_OPTIONS])


def install() -> None:
    """Let go of each label's SDL surface once its pixels are copied out, and open each font at each size once
    (once per process; SDL2 provider only)."""
    global _original
    from kivy.core.text import Label as CoreLabel

    if _original is not None or CoreLabel.__name__ != "LabelSDL2":  # another provider keeps no surface
        return
    _original = CoreLabel._render_end
    CoreLabel._get_font_id = lambda self: font_id(self.options)

    def _render_end(self: Any) -> Any:
        try:
            return _original(self)
        finally:
            self._surface = None

    CoreLabel._render_end = _render_end
