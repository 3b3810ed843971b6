"""The home screen: the flagship tiles, the categories with icons and sizes, through real touches."""
from __future__ import annotations

from typing import Any

import pytest
from PIL import ImageFont

from kiosk.screens.icons import ICON_FONT, glyph, glyphs
from tests.screens.test_screens import settle_availability

pytestmark = pytest.mark.ui

FLAGSHIPS = ("H01", "S01", "T02")


def test_every_icon_the_catalog_names_is_in_the_installed_set() -> None:
    from kiosk.services.catalog import Catalog

    catalog = Catalog.load()
    names = {c.icon for c in catalog.categories()} | {catalog.icon(i) for i in catalog.items}
    font = ImageFont.truetype(str(ICON_FONT), 96)
    for name in names:
        left, top, right, bottom = font.getbbox(glyph(name))
        assert right - left > 20 and bottom - top > 20, name  # the font draws it, not a blank
    assert len(glyphs()) > 500 and glyphs()["car"] == "\uf1b9"


@pytest.mark.parametrize("item_id", FLAGSHIPS)
def test_a_flagship_reaches_its_card_prompt_in_two_touches(ui: Any, item_id: str) -> None:
    app = ui.app
    home = app.sm.get_screen("home")
    before = ui.touches
    ui.tap(home.tile_for(item_id))  # the tile: one touch to the guide
    ui.wait_screen("guide")
    assert app.item.id == item_id
    ui.tap_id("start_button")  # 开始办理
    ui.wait_screen("identify")
    assert ui.touches - before == 2
    assert app.txn.item.id == item_id and "请将身份证放在读卡区" in app.sm.current_screen.ids.prompt.text
    ui.tap_id("cancel_button")
    ui.wait_screen("home")


def test_the_tiles_show_icon_and_name_in_one_language_and_back_leads_home(ui: Any) -> None:
    app = ui.app
    home = app.sm.get_screen("home")
    catalog = app.runtime.catalog
    assert [t.item_id for t in reversed(home.ids.tiles.children)] == list(FLAGSHIPS)
    for tile in home.ids.tiles.children:
        item = catalog.get(tile.item_id)
        assert tile.ids.icon.text == glyph(catalog.icon(item)) and tile.ids.name.text.startswith(item.name_zh)
        assert tile.height >= 160
    ui.tap_id("language_button", "home")
    assert all(t.ids.name.text.startswith(catalog.get(t.item_id).name_en) for t in home.ids.tiles.children)
    ui.tap_id("language_button", "home")
    ui.tap(home.tile_for("S01"))
    ui.wait_screen("guide")
    ui.tap_id("back_button")  # a tile's guide goes back home, not to a category list
    ui.wait_screen("home")


def test_each_category_has_its_icon_and_says_how_many_services_it_has(ui: Any) -> None:
    app = ui.app
    home = app.sm.get_screen("home")
    catalog = app.runtime.catalog
    tiles = {t.code: t for t in home.ids.categories.children}
    assert set(tiles) == {c.code for c in catalog.categories()}
    for category in catalog.categories():
        tile = tiles[category.code]
        count = len(catalog.in_category(category.code))
        assert tile.ids.icon.text == glyph(category.icon)
        assert tile.ids.name.text == category.name_zh and tile.ids.count.text == f"{count}项服务"
    assert tiles["H"].ids.count.text == "22项服务"
    ui.tap_id("language_button", "home")
    assert tiles["E"].ids.name.text == "Exit and entry" and tiles["E"].ids.count.text == "9 services"
    ui.tap_id("language_button", "home")
    ui.tap(tiles["E"])  # the category still lists its items
    ui.wait_screen("category")
    assert len(app.sm.current_screen.ids.item_list.children) == 9


def test_a_list_does_not_move_under_a_finger_when_items_become_unavailable(ui: Any, monkeypatch: Any) -> None:
    # The UI soak's session 975: the backend went down while the resident's finger was on the category list, and
    # the list was filled again under it. In care mode an item that cannot run takes a taller entry (its name and
    # "unavailable right now" in large type), so the entries below slide down; the list hands the touch to the
    # entry under the finger 0.2 s after it came down, and that was the one above.
    app = ui.app
    app.care = True
    try:
        ui.pump(10)
        ui.tap(app.sm.get_screen("home").category_tile("T"))
        ui.wait_screen("category")
        screen = app.sm.current_screen
        entries = list(reversed(screen.ids.item_list.children))
        target = entries[3]
        x, y = target.to_window(target.center_x, target.top - 30)  # near its upper edge: the list grows downwards
        down = {e.item_id: "test_down" for e in entries[:3]}
        monkeypatch.setattr(app.runtime.health, "unavailable_items", lambda: dict(down))  # the polls agree
        settle_availability(ui)  # before the finger: the list hands the touch on 200 ms after it came down
        finger = ui.finger_down(x, y)
        ui.pump(2)
        app._set_unavailable(down, False)  # as a health answer does
        ui.wait_seconds(0.3)  # the list hands the touch on after 200 ms
        assert screen.finger_on_list()
        assert screen.ids.item_list.children[-1] is entries[0]  # not filled again yet
        ui.finger_up(finger)
        ui.wait_screen("guide")
        assert app.item.id == target.item_id
        # The list held back is not filled again behind the guide, where nobody sees it (its recheck finds it hidden)
        # but when the resident comes back to it: the three say they cannot run now, in taller entries.
        from kiosk.screens.fingers import RECHECK_S

        ui.wait_seconds(RECHECK_S + 0.3)
        assert screen.ids.item_list.children[-1] is entries[0]
        ui.tap_id("back_button")
        ui.wait_screen("category")
        ui.pump(3)
        refilled = list(reversed(screen.ids.item_list.children))
        assert refilled[0] is not entries[0]
        assert [e.item_id for e in refilled if "暂停办理" in e.label] == [e.item_id for e in entries[:3]]
        later = screen.button_for(target.item_id)
        assert later.to_window(0, later.top)[1] < (y + 30) - 60  # the slide the finger was spared (window pixels)
    finally:
        monkeypatch.undo()
        settle_availability(ui)
        app._set_unavailable({}, False)
        app.care = False


def test_home_does_not_move_a_tile_from_under_a_finger_when_the_backend_goes_down(ui: Any, monkeypatch: Any) -> None:
    # The UI soak's session 341: a health probe found the backend down while the resident's finger was on a category
    # tile. The notice came in above the tiles and moved them down; the finger lifted outside the tile, which then
    # was not pressed, and the resident stood at home.
    app = ui.app
    home = app.sm.get_screen("home")
    tile = home.category_tile("H")
    x, y = tile.to_window(tile.center_x, tile.top - 20)  # near its upper edge: the notice moves it down the screen
    down = {item.id: "backend_unavailable" for item in app.runtime.catalog.items if item.id.startswith("H")}
    monkeypatch.setattr(app.runtime.health, "unavailable_items", lambda: dict(down))  # the polls agree
    try:
        settle_availability(ui)
        finger = ui.finger_down(x, y)
        ui.pump(2)
        app._set_unavailable(down, False)  # as a health answer does
        ui.wait_seconds(0.3)
        assert app.backend_down and home.finger_on_list()
        assert not home.notice and home.ids.backend_notice.height == 0  # held back: the tile is where it was
        assert tile.to_window(tile.center_x, tile.top - 20) == (x, y)
        ui.finger_up(finger)
        ui.wait_screen("category")
        assert app.list_title[0] == tile.category.name_zh
        # Back home, the notice is there and the tiles under it have moved down.
        ui.tap_id("home_button")
        ui.wait_screen("home")
        ui.pump(3)
        assert home.notice and home.ids.backend_notice.height >= 60
        assert tile.to_window(tile.center_x, tile.top - 20)[1] < y - 60
        # On show with no finger down, the notice follows the backend's state at once.
        monkeypatch.undo()
        settle_availability(ui)
        app._set_unavailable({}, False)
        ui.pump(3)
        assert not home.notice and tile.to_window(tile.center_x, tile.top - 20) == (x, y)
    finally:
        monkeypatch.undo()
        settle_availability(ui)
        app._set_unavailable({}, False)


def test_an_unavailable_line_follows_care_modes_type_size(ui: Any, monkeypatch: Any) -> None:
    # A fixed 40 px line stayed small under care mode's 60 px and larger names.
    app = ui.app
    home = app.sm.get_screen("home")
    down = {"H01": "backend_unavailable"}
    monkeypatch.setattr(app.runtime.health, "unavailable_items", lambda: dict(down))
    try:
        settle_availability(ui)
        app._set_unavailable(down, False)
        ui.pump(3)
        assert "[size=40]（暂停办理）" in home.tile_for("H01").label
        app.care = True
        ui.pump(3)
        assert "[size=60]（暂停办理）" in home.tile_for("H01").label
        ui.tap(home.category_tile("H"))
        ui.wait_screen("category")
        assert "[size=60]（暂停办理）" in app.sm.current_screen.button_for("H01").label
        ui.tap_id("home_button")
        ui.wait_screen("home")
    finally:
        app.care = False
        monkeypatch.undo()
        settle_availability(ui)
        app._set_unavailable({}, False)
        ui.pump(3)
    assert "暂停办理" not in home.tile_for("H01").label


@pytest.mark.parametrize("lang", ["zh_CN", "en"])
@pytest.mark.parametrize("care", [False, True], ids=["normal", "care"])
def test_home_scrolls_instead_of_covering_the_header_when_its_content_is_taller(ui: Any, monkeypatch: Any,
                                                                              lang: str, care: bool) -> None:
    # With the backend down, every flagship takes a second line and the notice three more: in English that was
    # 1,922 px of content in a body of 1,760 (2,280 in 1,714 in care mode), and the tiles were drawn over the header's
    # buttons (关怀模式, 呼叫民警, the language switch).
    app = ui.app
    home = app.sm.get_screen("home")
    scroller, body = home.ids.scroller, home.ids.body
    down = {item.id: "backend_unavailable" for item in app.runtime.catalog.items if item.needs_backend}
    monkeypatch.setattr(app.runtime.health, "unavailable_items", lambda: dict(down))
    try:
        settle_availability(ui)
        app._set_unavailable(down, False)
        app.lang, app.care = lang, care
        ui.pump(4)
        assert home.notice
        # Nothing in the body overlaps: it is as tall as its content, and scrolls when that is taller than the screen.
        assert body.height >= body.minimum_height
        assert scroller.do_scroll_y == (body.minimum_height > scroller.height + 1)
        if lang == "en" and care:
            assert scroller.do_scroll_y  # 2,280 px: the case that covered the header
        header = home.children[0].children[-1]  # the screen's column: the header first
        assert scroller.to_window(scroller.x, scroller.top)[1] <= header.to_window(header.x, header.y)[1] + 1
        # The category at the very bottom is reached with a touch (scrolled to as a resident would) ...
        last = home.ids.categories.children[0]
        ui.tap_entry(lambda: last)
        ui.wait_screen("category")
        assert app.list_title[0] == last.category.name_zh
        ui.tap_id("home_button")
        ui.wait_screen("home")
        assert scroller.scroll_y == 1  # the next resident sees home from its top
        # ... and the header's buttons take their touches (the care switch, here).
        ui.tap_id("care_button")
        ui.pump(2)
        assert app.care is not care
    finally:
        app.care, app.lang = False, "zh_CN"
        monkeypatch.undo()
        settle_availability(ui)
        app._set_unavailable({}, False)
        ui.pump(3)
    # Back to normal: home fits again and hands a touch on at once.
    assert not scroller.do_scroll_y


def test_home_tidies_the_heap_once_the_resident_has_gone(ui: Any, monkeypatch: Any) -> None:
    from kiosk.screens import home as home_module

    calls: list[float] = []
    after_s = home_module.TIDY_AFTER_S
    monkeypatch.setattr(home_module, "TIDY_AFTER_S", 0.5)
    kinds: list[dict[str, Any]] = []
    monkeypatch.setattr(home_module.heap, "tidy",
                        lambda **kw: kinds.append(kw) or calls.append(ui.app.attract_idle_s()) or 0.0)
    app = ui.app
    home = app.sm.get_screen("home")
    home._tidy.cancel()  # one armed when this test's fixture came home
    home._tidy = home_module.Clock.create_trigger(home._tidy_heap, home_module.TIDY_AFTER_S)
    try:
        ui.tap(home.tile_for("H01"))  # a visit: no tidy while it lasts
        ui.wait_screen("guide")
        ui.wait_seconds(1.0)
        assert calls == []
        ui.tap_id("back_button")  # gone: home tidies once it has been still for TIDY_AFTER_S
        ui.wait_screen("home")
        ui.wait_until(lambda: calls, "the tidy")
        assert len(calls) == 1 and calls[0] >= 0.5
        assert kinds[0].get("freeze") is True  # the survivors set aside from the automatic collections
        ui.wait_seconds(1.0)
        assert len(calls) == 1  # once per arrival, not on every tick
    finally:
        home._tidy.cancel()
        home._tidy = home_module.Clock.create_trigger(home._tidy_heap, after_s)


def test_a_tidy_deletes_the_textures_freed_before_it_and_hands_their_pixels_back(ui: Any) -> None:
    # Kivy deletes a freed texture's GL texture at its next frame; with llvmpipe its pixels are in the C heap, so a
    # trim before that frame could not hand them back (3 to 9 MiB after a resident's visit, measured).
    import gc
    import threading

    from kivy.uix.label import Label

    from kiosk.screens.base import release_graphics
    from kiosk.services import heap
    from kiosk.soak.sampler import malloc_mib

    ui.pump(3)
    heap.tidy(after_collect=release_graphics)
    before = malloc_mib()["used"]
    from kivy.core.window import Window

    labels = [Label(text="户籍证明" * 12, font_size=200) for _ in range(4)]
    for label in labels:
        Window.add_widget(label)
    ui.pump(2)  # the renderer takes a texture's pixels when it is first drawn
    pixels = sum(label.texture.width * label.texture.height * 4 for label in labels) / 2**20
    assert pixels > 12
    assert malloc_mib()["used"] > before + pixels * 0.8  # in the C heap
    for label in labels:
        Window.remove_widget(label)
    ui.pump(1)
    del labels, label
    gc.collect()
    heap.trim_heap()
    assert malloc_mib()["used"] > before + pixels * 0.8  # freed by Python, not yet by the renderer
    # Off the drawing thread nothing is deleted (GL belongs to the thread that draws).
    off: list[bool] = []
    worker = threading.Thread(target=lambda: off.append(release_graphics()))
    worker.start()
    worker.join()
    assert off == [False]
    heap.tidy(after_collect=release_graphics)  # on the UI thread, no frame run since
    assert malloc_mib()["used"] < before + 2


def test_a_tidy_hands_freed_memory_back() -> None:
    from kiosk.services import heap
    from kiosk.soak.sampler import _status_field

    blocks = [bytes(3072) for _ in range(60_000)]  # ~180 MiB in glibc's heap, every 32nd block kept
    kept = blocks[::32]
    held = _status_field("VmRSS") / 1024
    del blocks
    took = heap.tidy()
    assert _status_field("VmRSS") / 1024 < held - 100
    assert 0 <= took < 30 and len(kept) == 1875


def test_a_resident_touches_again_a_tile_that_moved_from_under_the_finger(ui: Any) -> None:
    # The UI soak's session 341 once more: the backend's notice came in just before the finger went down, so the
    # finger watch had nothing to hold back; the screen was laid out again under the finger, the lift landed outside
    # the tile and the resident stood at home. A resident touches the tile again where it now is.
    app = ui.app
    home = app.sm.get_screen("home")
    settle_availability(ui)
    app._set_unavailable({}, False)  # whatever an earlier test left: no notice yet
    ui.pump(3)
    assert not home.notice
    tile = home.category_tile("H")
    before = tile.to_window(*tile.center)
    # The layout change already under way as the finger goes down: the notice, shown the moment the tile is pressed.
    show_notice = lambda *_a: setattr(home, "notice", True)  # noqa: E731
    tile.bind(on_press=show_notice)
    again = ui.touched_again
    try:
        ui.tap(tile)
        ui.wait_screen("category")
        assert app.list_title[0] == tile.category.name_zh
        assert ui.touched_again == again + 1  # once: the first lift landed outside the tile
    finally:
        tile.unbind(on_press=show_notice)
        home.notice = False
        if app.sm.current != "home":
            ui.tap_id("home_button")
            ui.wait_screen("home")
    assert tile.to_window(*tile.center) == before


def test_home_touched_during_its_wait_tidies_once_it_has_been_still_long_enough(ui: Any, monkeypatch: Any) -> None:
    from kiosk.screens import home as home_module

    calls: list[object] = []
    monkeypatch.setattr(home_module.heap, "tidy", lambda **kw: calls.append(kw) or 0.0)
    home = ui.app.sm.get_screen("home")
    try:
        ui.app.touched()  # someone touched the search box 0.4 s before the tidy was due
        monkeypatch.setattr(ui.app, "_last_presence", ui.app._last_presence - 0.4)
        home._tidy_heap(0)
        assert calls == []
        # Due again once home has been still for TIDY_AFTER_S, not TIDY_AFTER_S after this check.
        assert abs(home._tidy.timeout - (home_module.TIDY_AFTER_S - 0.4 + 0.05)) < 0.05
    finally:
        home._tidy.cancel()
        home._tidy.timeout = home_module.TIDY_AFTER_S


def _drawn_labels(app: Any) -> dict[Any, Any]:
    """Every label of the screens built and the overlays that draws a texture of its own: label -> texture."""
    from kivy.core.window import Window
    from kivy.uix.label import Label

    found = {}
    for root in [*app.sm.screens, *Window.children]:
        for widget in root.walk(restrict=True):
            if isinstance(widget, Label) and widget.texture not in (None, widget._label.texture_1px):
                found[widget] = widget.texture
    return found


def test_the_tidy_at_rest_gives_every_label_a_new_texture_and_lets_the_old_ones_go(ui: Any,
                                                                                   monkeypatch: Any) -> None:
    # With llvmpipe, what a label's texture holds in the C heap grows with the visits drawn; only a new texture
    # hands it back (6 to 14 MiB a session in the UI soak). Home's tidy at rest renews them all.
    import gc
    import weakref

    from kiosk.screens import home as home_module

    app = ui.app
    home = app.sm.get_screen("home")
    ui.tap(home.tile_for("H01"))  # a visit draws the guide
    ui.wait_screen("guide")
    ui.tap_id("back_button")
    ui.wait_screen("home")
    settle_availability(ui)  # no availability answer lands between the two grabs
    shown = ui.grab()
    before = _drawn_labels(app)
    screens = {_screen_of(label) for label in before}
    assert len(before) > 40 and {"home", "guide"} <= screens  # the one on show and one that is not
    sizes = {label: tuple(texture.size) for label, texture in before.items()}
    gone = [weakref.ref(texture) for texture in before.values()]
    tidied: list[dict[str, Any]] = []
    real_tidy = home_module.heap.tidy
    monkeypatch.setattr(home_module.heap, "tidy", lambda **kw: tidied.append(kw) or real_tidy(**kw))
    del before
    home.rest_tidy()
    after = _drawn_labels(app)
    ui.pump(2)
    assert _pixels_differing(shown, ui.grab()) < 0.001  # and home looks as it did
    assert len(tidied) == 1 and tidied[0]["freeze"] is True  # the heap tidied after the renewal
    assert set(sizes) <= set(after)  # no label lost its text
    changed = {(label.text[:20], size, tuple(after[label].size)) for label, size in sizes.items()
               if tuple(after[label].size) != size}
    assert not changed  # the same text, drawn again
    gc.collect()
    assert [ref for ref in gone if ref() is not None] == []  # every old texture let go


def _screen_of(widget: Any) -> str:
    from kivy.uix.screenmanager import Screen

    while not isinstance(widget, Screen):
        if widget.parent is None or widget.parent is widget:  # the window is its own parent
            return "window"
        widget = widget.parent
    return widget.name


def _pixels_differing(one: Any, other: Any) -> float:
    from PIL import ImageChops

    diff = ImageChops.difference(one, other).convert("L").point(lambda v: 255 if v > 24 else 0)
    return sum(diff.histogram()[255:]) / (one.width * one.height)
