"""What a frame fills: hidden layers are not drawn, lists clip with a scissor box, no full-window stencil or quad.

A software renderer (llvmpipe) fills every pixel of every quad, seen or not; these are the fills taken out, each
checked in the canvas and in the pixels the window drew.
"""
from __future__ import annotations

from typing import Any

import pytest

TILE_BLUE = (26, 77, 166)  # a category list entry (common.kv CategoryTile: 0.10, 0.30, 0.65)


def _instructions(canvas: Any) -> list[str]:
    names = []
    for child in canvas.children:
        names.append(type(child).__name__)
        if hasattr(child, "children"):
            names.extend(_instructions(child))
    return names


def _near(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 6) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b))


def test_hidden_layers_are_out_of_the_window_canvas_and_come_back_in_their_place(ui: Any) -> None:
    app = ui.app
    root = app.root
    layers = {name: root.ids[name] for name in ("busy_overlay", "help_confirm", "help_reply", "idle_overlay")}
    layers["attract_layer"] = app.attract_layer
    if app.attract_shown:  # the shared app sat on home while earlier tests ran their own kiosks
        app.attract_leave()
    ui.pump(2)
    state = {name: (layer.opacity, root.canvas.indexof(layer.canvas)) for name, layer in layers.items()}
    # Hidden exactly when out of the canvas (an earlier test in the shared app may leave a layer up, such as an
    # officer's reply); the busy layer is down after the fixture's reset.
    assert all((opacity == 0) == (index == -1) for opacity, index in state.values()), state
    assert state["busy_overlay"] == (0, -1) and state["attract_layer"] == (0, -1), state
    before = ui.grab()
    busy = root.ids.busy_overlay
    app.busy_overlay = True
    try:
        ui.pump(2)
        drawn = root.canvas.indexof(busy.canvas)
        assert drawn > root.canvas.indexof(app.sm.canvas)  # over the screens
        assert drawn < root.canvas.indexof(root.ids.focus_ring.canvas)  # under the keypad's focus ring
        dimmed = ui.grab()
        x, y = 20, before.height // 2
        assert sum(dimmed.getpixel((x, y))) < sum(before.getpixel((x, y))) * 0.6  # the dimming is seen
    finally:
        app.busy_overlay = False
    ui.pump(2)
    assert root.canvas.indexof(busy.canvas) == -1
    assert _near(ui.grab().getpixel((x, y)), before.getpixel((x, y)))


def test_no_stencil_anywhere_lists_clip_with_a_scissor_box(ui: Any) -> None:
    app = ui.app
    home = app.sm.get_screen("home")
    tiles = {t.code: t for t in home.ids.categories.children}
    ui.tap(tiles["H"])  # 22 services: the list runs on below its bottom edge
    ui.wait_screen("category")
    ui.pump(2)
    from kivy.core.window import Window

    assert not [n for n in _instructions(Window.canvas) if n.startswith("Stencil")]
    screen = app.sm.current_screen
    scroller, entries = screen.ids.scroller, screen.ids.item_list
    assert "ScissorPush" in _instructions(scroller.canvas.before)
    assert entries.y < scroller.y - 40  # entries below the list's bottom edge, out of sight
    hidden = [e for e in entries.children if e.top < scroller.y]
    assert hidden
    frame = ui.grab()
    # Just below the list, where the next entry would be drawn without the clip: the screen's background.
    x = int(scroller.right) - 60  # right of the entries' texts, left of the scroll bar
    y_window = int(scroller.y) - 8
    assert not _near(frame.getpixel((x, frame.height - y_window)), TILE_BLUE, 20)
    # And inside the list, an entry is drawn.
    inside = next(e for e in entries.children if e.y > scroller.y + 10 and e.top < scroller.top - 10)
    y_inside = int(inside.center_y)
    assert _near(frame.getpixel((x, frame.height - y_inside)), TILE_BLUE, 20)


def test_every_list_scrolls_without_a_spring(ui: Any) -> None:
    # The damped effect's spring, integrated per frame, swings without bound after a frame slower than a second: home
    # (the one list that did not set it) was once left with every tile below the screen on a loaded machine.
    from kivy.effects.dampedscroll import DampedScrollEffect
    from kivy.uix.scrollview import ScrollView

    home = ui.app.sm.get_screen("home")
    # The kiosk's rule for every ScrollView (common.kv) sets it: a list made now gets it, as home's has.
    shown = [w for screen in ui.app.sm.screens for w in screen.walk() if isinstance(w, ScrollView)]
    lists = [ScrollView(), home.ids.scroller, *shown]
    assert len(lists) >= 3
    assert not [w for w in lists if isinstance(w.effect_y, DampedScrollEffect) or w.effect_y is None]


def test_the_card_glide_eases_down_rests_on_the_reader_and_rises() -> None:
    from kiosk.screens.identify import CARD_GLIDE_S, card_drop_at

    down, rest, up = CARD_GLIDE_S
    cycle = down + rest + up
    assert card_drop_at(0) == 0 and card_drop_at(down / 2) == 0.5 and card_drop_at(down) == 1
    descent = [card_drop_at(down * i / 20) for i in range(21)]
    assert descent == sorted(descent)
    assert descent[1] < 0.05 and descent[10] - descent[9] > descent[1]  # eased: slow from the top, quick mid-way
    assert card_drop_at(down + rest / 2) == 1
    assert card_drop_at(down + rest + up / 2) == 0.5
    assert card_drop_at(cycle + down / 2) == pytest.approx(card_drop_at(down / 2))  # over and over


def test_the_card_on_identify_moves_at_its_own_pace_not_every_frame(ui: Any) -> None:
    from kivy.core.window import Window

    from kiosk.screens.identify import CARD_STEP_S
    from tests.screens.test_screens import start_h01

    start_h01(ui)
    screen = ui.app.sm.get_screen("identify")
    moves: list[float] = []
    flips = [0]

    def flipped(*_args: Any) -> None:
        flips[0] += 1

    def moved(_screen: Any, value: float) -> None:
        moves.append(value)

    screen.bind(card_drop=moved)
    Window.bind(on_flip=flipped)
    try:
        ui.wait_seconds(4.0)  # two glides
    finally:
        Window.unbind(on_flip=flipped)
        screen.unbind(card_drop=moved)
    most = 4.0 / CARD_STEP_S + 2
    assert 0 < len(moves) <= most, moves
    assert min(moves) < 0.2 and max(moves) == 1  # all the way down and up again
    # Frames are drawn when something moved: at most one per move, beside a few of the screen's own.
    assert flips[0] <= most + 10, (flips[0], len(moves))
    ui.tap_id("cancel_button")
    ui.wait_screen("home")
    assert screen.card_drop == 0 and screen._glide is None


def test_a_grab_is_the_next_frame_with_no_nap_after_it(ui: Any) -> None:
    import time

    from kivy.core.window import Window

    nap = ui.nap_s
    ui.nap_s = 2.0  # a nap anywhere in the grab would show as 2 s
    try:
        started = time.monotonic()
        frame = ui.grab()
        took = time.monotonic() - started
    finally:
        ui.nap_s = nap
    assert took < 1.0, took  # a frame or two at most
    assert frame.size == tuple(Window.size) and ui._grab_wanted is False
