"""The home screen: the flagship tiles, the categories with icons and sizes, through real touches."""
from __future__ import annotations

from typing import Any

import pytest
from PIL import ImageFont

from kiosk.screens.icons import ICON_FONT, glyph, glyphs

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
