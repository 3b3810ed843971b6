"""Kivy's SDL2 text provider kept each label's rendered surface (a second copy of its pixels): the kiosk's drop it."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.ui


def _texture_pixels(texture: Any) -> bytes:
    return bytes(texture.pixels)


def test_a_rendered_label_keeps_its_texture_and_no_surface(ui: Any) -> None:
    from kivy.core.text import Label as CoreLabel

    label = CoreLabel(text="请取走您的证件", font_size=48)
    label.refresh()
    pixels = _texture_pixels(label.texture)  # the texture is drawn when first used
    assert label.texture.size[0] > 100 and any(pixels[3::4])  # the text was drawn: some pixels are not transparent
    assert label._surface is None
    label.text = "请取走您的证件和回执"  # drawn again: a new surface, dropped in turn
    label.refresh()
    assert any(_texture_pixels(label.texture)[3::4])
    assert label._surface is None and label.texture.size[0] > 200


def test_the_screens_labels_hold_no_surfaces(ui: Any) -> None:
    import gc

    app = ui.app
    ui.tap(app.sm.get_screen("home").category_tile("T"))
    ui.wait_screen("category")
    ui.pump(2)
    gc.unfreeze()  # labels home's tidy set aside from the collections (kiosk.services.heap.set_aside) count too
    labels = [o for o in gc.get_objects() if type(o).__name__ in ("LabelSDL2", "MarkupLabel")]
    assert len(labels) > 20
    assert [o for o in labels if getattr(o, "_surface", None) is not None] == []
    ui.tap_id("back_button")
    ui.wait_screen("home")


def test_the_mend_is_installed_once(ui: Any) -> None:
    from kivy.core.text import Label as CoreLabel

    from kiosk.screens import text_surface

    patched = CoreLabel._render_end
    assert text_surface._original is not None and patched is not text_surface._original
    text_surface.install()
    assert CoreLabel._render_end is patched


def _open_on(path: str) -> int:
    import os

    fds = os.listdir("/proc/self/fd")
    count = 0
    for fd in fds:
        try:
            count += os.readlink(f"/proc/self/fd/{fd}") == path
        except OSError:  # the listing's own descriptor, closed by now
            pass
    return count


def test_one_size_written_as_int_or_float_opens_its_font_once_and_renders_the_same(ui: Any) -> None:
    import os

    from kivy.core.text import Label as CoreLabel

    def rendered(size: float) -> tuple[Any, bytes]:
        label = CoreLabel(text="户籍证明 Household", font_size=size)
        label.refresh()
        return label, _texture_pixels(label.texture)

    first, as_int = rendered(97)  # a size no screen uses: its font is not open yet
    path = os.path.realpath(first.options["font_name_r"])
    opened = _open_on(path)
    second, as_float = rendered(97.0)
    third, _ = rendered(97.6)  # opened at int(97.6) points, as Kivy opens every size
    assert as_float == as_int
    assert first._get_font_id() == second._get_font_id() == third._get_font_id()
    assert _open_on(path) == opened  # no second copy of the face, nor a third
    other, _ = rendered(98.0)
    assert other._get_font_id() != first._get_font_id() and _open_on(path) == opened + 1


def _malloc_used() -> float:
    """MiB of the C heap in use after a full collection (glibc's mallinfo2, as the soak reads it)."""
    import gc

    from kiosk.soak.sampler import malloc_mib

    gc.collect()
    return malloc_mib()["used"]


def test_the_glyph_caches_are_emptied_and_the_text_drawn_the_same_after(ui: Any) -> None:
    from kivy.core.text import Label as CoreLabel

    from kiosk.screens import text_surface

    # 240 Chinese characters at a size no screen uses: glyphs the font has not cached yet, 13 at a time.
    chars = [chr(0x4E00 + 97 * k) for k in range(240)]
    lines = ["".join(chars[k:k + 13]) for k in range(0, len(chars), 13)]
    before = _malloc_used()
    labels = []
    for line in lines:
        label = CoreLabel(text=line, font_size=151)
        label.refresh()
        labels.append((label, _texture_pixels(label.texture)))
    filled = _malloc_used()
    fid = text_surface.font_id(labels[0][0].options)
    assert fid in text_surface._open_fonts  # the mirror saw Kivy open it
    flushed = text_surface.flush_glyph_caches()
    emptied = _malloc_used()
    assert flushed == len(text_surface._open_fonts) >= 1
    # A glyph 151 px high holds about 20 KiB of pixels in its cache slot: 240 of them, about 5 MiB. (The heap grew by
    # more: with the software renderer, the labels' textures are in it too, and they are still held.)
    assert filled - before > 5, filled - before
    assert filled - emptied > 3, filled - emptied
    again = text_surface.flush_glyph_caches()
    assert again == flushed and emptied - _malloc_used() < 1  # nothing left to give back: it was the caches
    for label, pixels in labels:  # drawn again from glyphs loaded afresh: the same pixels
        label.texture = None
        label.refresh()
        assert _texture_pixels(label.texture) == pixels


def test_the_mirror_of_kivys_open_fonts_drops_the_first_opened_beyond_its_limit() -> None:
    from kiosk.screens import text_surface

    saved = dict(text_surface._open_fonts)

    class Core:
        def __init__(self, size: int) -> None:
            self.options = {"font_size": size, "font_name_r": "/f.ttf", "bold": False, "italic": False,
                            "underline": False, "strikethrough": False}

    try:
        text_surface._open_fonts.clear()
        ids = [text_surface._mirrored_font_id(Core(size)) for size in range(10, 10 + text_surface.KIVY_OPEN_FONTS)]
        assert list(text_surface._open_fonts) == ids
        assert text_surface._mirrored_font_id(Core(10)) == ids[0]  # open already: nothing changes
        text_surface._mirrored_font_id(Core(500))
        assert len(text_surface._open_fonts) == text_surface.KIVY_OPEN_FONTS
        assert ids[0] not in text_surface._open_fonts and next(reversed(text_surface._open_fonts)).startswith("500|")
    finally:
        text_surface._open_fonts.clear()
        text_surface._open_fonts.update(saved)
