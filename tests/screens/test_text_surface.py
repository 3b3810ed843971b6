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
