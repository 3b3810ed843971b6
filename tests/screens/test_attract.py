"""The attract screen on the running app: it comes after the configured time on an idle home screen, is
drawn offscreen, dims the (fake sysfs) backlight, and the first touch or key only takes it away; the
header's pixel shift follows a clock the test sets."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
from kivy.clock import Clock

from kiosk.hardware.backlight import Backlight

pytestmark = pytest.mark.ui

ATTRACT_AFTER_S = 2.0
LEVEL, TOP = 800, 1000


def _brightness(folder: Path) -> int:
    return int((folder / "brightness").read_text())


@pytest.fixture
def attract(ui: Any, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The shared app with a 2 s attract time and a fake backlight at 800 of 1000; all put back afterwards."""
    app = ui.app
    panel = tmp_path / "sys" / "class" / "backlight" / "panel"
    panel.mkdir(parents=True)
    (panel / "brightness").write_text(f"{LEVEL}\n")
    (panel / "max_brightness").write_text(f"{TOP}\n")
    config, backlight = app.kiosk_config, app.backlight
    app.kiosk_config = config.model_copy(update={"ui": config.ui.model_copy(update={
        "attract_after_s": ATTRACT_AFTER_S, "attract_brightness": 0.25})})
    app.backlight = Backlight(panel.parent)
    try:
        yield ui, panel
    finally:
        app.attract_leave()
        app.kiosk_config, app.backlight = config, backlight
        if app.keypad_active:
            app.end_session("cancel")  # the keys pressed here turned the keypad's read-out on


def _wait_attract(ui: Any) -> float:
    """Touch, then wait for the attract screen; the seconds without a touch at the moment it came."""
    app = ui.app
    came: list[float] = []
    mark = lambda _app, shown: shown and came.append(app.attract_idle_s())  # noqa: E731
    app.bind(attract_shown=mark)
    try:
        app.touched()
        ui.wait_until(lambda: app.attract_shown, "the attract screen", 20)
    finally:
        app.unbind(attract_shown=mark)
    ui.pump(2)
    return came[0]


def _pixel(frame: Any, x: float, y: float) -> tuple[int, int, int]:
    """The frame's colour at window point (x, y) (origin bottom left, as Kivy's)."""
    return frame.getpixel((int(x), frame.size[1] - 1 - int(y)))


def test_it_comes_after_the_configured_time_in_chinese_drawn_dark_and_dims_the_backlight(attract: Any) -> None:
    ui, panel = attract
    app = ui.app
    app.lang = "en"  # the last resident read English
    # Measured as it comes: what it does then (Chinese again) may count as a new screen and restart the idle clock.
    assert _wait_attract(ui) >= ATTRACT_AFTER_S
    assert app.sm.current == "home"  # a layer over home, not a screen of its own
    assert app.lang == "zh_CN"  # Chinese first for whoever comes next
    layer = app.attract_layer
    prompt, station = layer.ids.attract_prompt, layer.ids.attract_station
    assert prompt.text == "请触摸屏幕开始"
    assert station.text == app.kiosk_config.terminal.name
    assert _brightness(panel) == TOP // 4  # the fraction configured of the maximum
    from kivy.core.window import Window  # here: the window must not open before the fixture sizes it

    frame = ui.grab()
    box = layer.ids.drift_box
    # Black round the drifting text (where home's blue tiles were), the prompt drawn in its yellow.
    far = (10 if box.center_x > Window.width / 2 else Window.width - 10,
           10 if box.center_y > Window.height / 2 else Window.height - 10)
    assert _pixel(frame, *far) == (0, 0, 0)
    px, py = prompt.to_window(prompt.x, prompt.y)
    yellow = [frame.getpixel((x, frame.size[1] - 1 - y)) for x in range(int(px), int(px + prompt.width), 2)
              for y in range(int(py), int(py + prompt.height), 2)]
    assert any(r > 200 and g > 170 and b < 120 for r, g, b in yellow)
    before = tuple(box.pos)
    ui.wait_seconds(1.2)
    assert tuple(box.pos) != before  # the text drifts


def test_a_touch_leaves_it_within_one_frame_and_does_not_act_on_the_tile_beneath(attract: Any) -> None:
    ui, panel = attract
    app = ui.app
    _wait_attract(ui)
    tile = app.sm.get_screen("home").ids.tiles.children[-1]  # the first tile: H01's guide under the finger
    x, y = tile.to_window(*tile.center)
    from kivy.core.window import Window

    width, height = Window.size
    touch = ui._touch_cls("scripted", 900_001, (x / (width - 1), y / (height - 1)))
    frames = Clock.frames
    ui.provider.queue.append(("begin", touch))
    ui.pump(1)
    assert Clock.frames - frames == 1 and not app.attract_shown and app.attract_layer.opacity == 0
    assert _brightness(panel) == LEVEL  # restored the moment the resident came
    frame = ui.grab()
    wx, wy = tile.to_window(tile.x, tile.y)
    r, g, b = _pixel(frame, wx + 20, wy + tile.height / 2)  # the tile's own blue, not the attract's black
    assert b > 120 and b > r, (r, g, b)
    ui.wait_seconds(0.3)
    ui.provider.queue.append(("end", touch))
    ui.pump(3)
    assert app.sm.current == "home" and app.item is None and app.txn is None  # nothing started
    ui.tap(tile, "H01 tile")  # the next touch is the resident's own
    ui.wait_screen("guide")


def test_a_keypad_key_leaves_it_and_goes_no_further(attract: Any) -> None:
    ui, panel = attract
    app = ui.app
    _wait_attract(ui)
    keys = app.keypad_keys
    ui.press_key("numpad5", wake=False)  # activate: on home it would open the focused tile
    assert not app.attract_shown and _brightness(panel) == LEVEL
    assert app.keypad_keys == keys and not app.keypad_active and app.sm.current == "home"
    ui.press_key("numpad2")  # the next key is the keypad's again
    assert app.keypad_keys == keys + 1 and app.keypad_focused is not None


def test_it_does_not_come_during_a_visit_and_the_brightness_comes_back_when_the_kiosk_stops(attract: Any) -> None:
    ui, panel = attract
    app = ui.app
    app.open_tile(app.runtime.home_items[0].id)
    ui.wait_screen("guide")
    ui.wait_seconds(ATTRACT_AFTER_S + 1.5)
    assert not app.attract_shown
    app.go_home()
    _wait_attract(ui)
    assert _brightness(panel) == TOP // 4
    app.attract_stop()  # what on_stop runs
    assert _brightness(panel) == LEVEL


def test_the_header_shifts_a_few_pixels_on_the_clock(attract: Any) -> None:
    ui, _panel = attract
    app = ui.app
    every, most = app.kiosk_config.ui.pixel_shift_every_s, app.kiosk_config.ui.pixel_shift_px
    now = [0.0]
    clock, origin = app.shift_clock, app._shift_origin
    app.shift_clock, app._shift_origin = (lambda: now[0]), 0.0
    button = ui.find("language_button", "home")
    try:
        assert app.update_pixel_shift() == (0, 0)
        ui.pump(2)
        home_at = button.to_window(button.x, button.y)
        seen = set()
        for step in range(1, 6 * (2 * most + 1) ** 2):
            now[0] = step * every + 1.0
            dx, dy = app.update_pixel_shift()
            assert abs(dx) <= most and abs(dy) <= most
            seen.add((dx, dy))
        now[0] = 5 * every + 1.0
        dx, dy = app.update_pixel_shift()
        ui.pump(2)
        x, y = button.to_window(button.x, button.y)
        assert (round(x - home_at[0]), round(y - home_at[1])) == (dx, dy) != (0, 0)
        assert len(seen) == (2 * most + 1) ** 2  # every offset of the square, over the hours
    finally:
        app.shift_clock, app._shift_origin = clock, origin
        app.update_pixel_shift()


def test_a_scripted_resident_wakes_it_before_touching_a_tile(attract: Any) -> None:
    ui, panel = attract
    app = ui.app
    _wait_attract(ui)
    touches = ui.touches
    ui.tap(app.sm.get_screen("home").ids.tiles.children[-1], "H01 tile")  # the driver wakes it first
    ui.wait_screen("guide")
    assert ui.touches == touches + 2 and not app.attract_shown and _brightness(panel) == LEVEL


def test_a_scripted_keypad_resident_wakes_it_with_a_key_then_presses_again(attract: Any) -> None:
    ui, panel = attract
    app = ui.app
    _wait_attract(ui)
    keys, pressed = app.keypad_keys, ui.keys
    ui.press_key("numpad2")  # the driver's first press wakes it, the second is the resident's own
    assert not app.attract_shown and _brightness(panel) == LEVEL
    assert ui.keys == pressed + 2 and app.keypad_keys == keys + 1 and app.keypad_focused is not None


def test_the_idle_clock_runs_while_no_frame_does(attract: Any) -> None:
    import time

    ui, _panel = attract
    app = ui.app
    app.touched()
    # No frame runs here, as while the app is being built: Kivy's boottime stands still, and a presence read
    # from it jumped by the whole time since Kivy was imported at the first frame (the kiosk opened on the
    # attract screen). The idle clock must count the time that passed all the same.
    time.sleep(0.3)
    assert app.attract_idle_s() >= 0.3
    app.touched()
    ui.pump(2)
    assert app.attract_idle_s() < ATTRACT_AFTER_S and not app.attract_shown


def test_frame_pace_is_the_full_rate_in_use_and_the_lower_one_only_at_rest_after_the_quiet_time() -> None:
    from kiosk.screens.pace import FramePace

    class FakeClock:
        _max_fps = 30.0

    clock = FakeClock()
    pace = FramePace(clock, 60, 15, idle_after_s=10)
    pace.touched()
    assert pace.fps == 60
    pace.tick(quiet_s=9.9, at_rest=True)
    assert pace.fps == 60  # not quiet long enough
    pace.tick(quiet_s=60, at_rest=False)
    assert pace.fps == 60  # a visit open, or busy, or off home: never the lower rate
    pace.tick(quiet_s=10, at_rest=True)
    assert pace.fps == 15
    pace.touched()
    assert pace.fps == 60


def test_nobody_there_lowers_the_frame_rate_and_the_first_touch_brings_it_back(attract: Any) -> None:
    ui, _panel = attract
    app = ui.app
    rates = app.kiosk_config.ui
    assert (rates.maxfps, rates.idle_maxfps) == (60, 15)
    app.touched()
    ui.pump(2)
    assert Clock._max_fps == rates.maxfps
    app._last_presence -= 30  # nobody for half a minute
    ui.wait_until(lambda: Clock._max_fps == rates.idle_maxfps, "the idle frame rate", 5)
    tile = app.sm.get_screen("home").ids.tiles.children[-1]
    x, y = tile.to_window(*tile.center)
    from kivy.core.window import Window

    width, height = Window.size
    touch = ui._touch_cls("scripted", 900_002, (x / (width - 1), y / (height - 1)))
    ui.provider.queue.append(("begin", touch))
    ui.pump(1)
    assert Clock._max_fps == rates.maxfps  # from the frame that read the touch
    ui.provider.queue.append(("end", touch))
    ui.pump(3)
