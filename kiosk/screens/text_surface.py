"""Three mends for Kivy 2.3's SDL2 text provider: it keeps a copy of every label's pixels it no longer needs, it
opens one font twice when one size comes as 46 and as 46.0, and its open fonts' glyph caches only ever fill.

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

Each font SDL_ttf opens caches the glyphs it drew: 256 slots, a glyph going to the slot its index falls in, with its
pixels (``Load_Glyph``). Chinese text keeps bringing glyphs not seen before, and Kivy keeps up to 64 fonts open, so
these caches fill slowly for as long as the kiosk runs: in a heap profile of the UI soak (heaptrack, 250 sessions
against 100), ``Load_Glyph`` held 705 KiB more after the 150 sessions between, about half of the C heap's growth.
SDL_ttf empties a font's cache whenever its outline is set, and Kivy's ``_get_extents`` sets it (and sets it back to
none) for a label with an outline. :func:`flush_glyph_caches` does that for every font Kivy holds open, which the
mend's id keeps a mirror of (:data:`_open_fonts`); the home screen's tidy at rest calls it before the labels are drawn
again, so the caches keep only the glyphs of the screens built.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable

_original: Callable[..., Any] | None = None
FONT_ID_OPTIONS = ("font_name_r", "bold", "italic", "underline", "strikethrough")  # beside the size, as Kivy's id
KIVY_OPEN_FONTS = 64  # Kivy's _text_sdl2 closes the font it opened first once more are open
# The fonts Kivy's cache holds, by id, in the order it opened them, with the options each was opened with: the cache
# itself is out of Python's reach. Kept in step by the mend's _get_font_id, which Kivy calls before every use.
_open_fonts: OrderedDict[str, dict[str, Any]] = OrderedDict()
_FONT_OPTIONS = ("font_size", *FONT_ID_OPTIONS, "base_direction", "text_language")


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
    CoreLabel._get_font_id = _mirrored_font_id

    def _render_end(self: Any) -> Any:
        try:
            return _original(self)
        finally:
            self._surface = None

    CoreLabel._render_end = _render_end


def _mirrored_font_id(label: Any) -> str:
    """The font id (font_id), the font noted as Kivy's cache will hold it: a font not open yet is opened now, and
    the first opened is closed when more than KIVY_OPEN_FONTS are."""
    options = label.options
    fid = font_id(options)
    if fid not in _open_fonts:
        _open_fonts[fid] = {key: options.get(key) for key in _FONT_OPTIONS}
        while len(_open_fonts) > KIVY_OPEN_FONTS:
            _open_fonts.popitem(last=False)
    return fid


class _OutlineProbe:
    """What Kivy's ``_get_extents`` reads from a label, for one open font, with a one-pixel outline."""

    def __init__(self, fid: str, options: dict[str, Any]) -> None:
        self.fid = fid
        self.options = {**options, "outline_width": 1}

    def _get_font_id(self) -> str:
        return self.fid


def flush_glyph_caches() -> int:
    """Empty the glyph cache of every font Kivy holds open; how many fonts. Glyphs are drawn again when next used."""
    if _original is None:
        return 0
    from kivy.core.text._text_sdl2 import _get_extents

    flushed = 0
    for fid, options in list(_open_fonts.items()):
        try:
            _get_extents(_OutlineProbe(fid, options), "")  # the outline set (cache emptied) and set back to none
        except Exception:  # noqa: BLE001  (a font that failed to open: nothing of it is cached)
            _open_fonts.pop(fid, None)
            continue
        flushed += 1
    return flushed
