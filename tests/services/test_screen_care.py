"""When the attract screen comes, how its text drifts, and the header's pixel shift, on a clock the test sets."""
from __future__ import annotations

import pytest

from kiosk.services.screen_care import Drift, attract_due, pixel_shift


def test_attract_comes_only_on_an_idle_home_screen_with_nobody_served():
    assert attract_due(120, 120, on_home=True, resident_present=False)
    assert not attract_due(119.5, 120, on_home=True, resident_present=False)
    assert not attract_due(500, 120, on_home=False, resident_present=False)
    assert not attract_due(500, 120, on_home=True, resident_present=True)
    assert not attract_due(10_000, 0, on_home=True, resident_present=False)  # 0: never


@pytest.mark.parametrize("max_px", [1, 2, 3, 5])
def test_the_shift_starts_at_the_centre_moves_one_pixel_a_step_and_visits_every_offset(max_px):
    every = 600.0
    side = 2 * max_px + 1
    offsets = [pixel_shift(step * every + 1.0, every, max_px) for step in range(4 * side * side)]
    assert offsets[0] == (0, 0)
    assert pixel_shift(every - 0.001, every, max_px) == (0, 0)  # nothing moves within a step
    for (x0, y0), (x1, y1) in zip(offsets, offsets[1:]):
        assert abs(x1 - x0) + abs(y1 - y0) == 1  # one pixel a step, no jump at the turn
    assert all(abs(dx) <= max_px and abs(dy) <= max_px for dx, dy in offsets)
    assert set(offsets) == {(x, y) for x in range(-max_px, max_px + 1) for y in range(-max_px, max_px + 1)}


def test_the_shift_is_still_when_turned_off():
    assert pixel_shift(99_999, 600, 0) == (0, 0)
    assert pixel_shift(99_999, 0, 3) == (0, 0)


def test_the_drift_bounces_off_every_edge_and_stays_inside():
    drift = Drift(0, 0, 6, 6)
    seen_x, seen_y = set(), set()
    for _ in range(2000):
        drift = drift.step(300, 200, 1080, 1920)
        assert 0 <= drift.x <= 1080 - 300 and 0 <= drift.y <= 1920 - 200
        seen_x.add(drift.vx > 0)
        seen_y.add(drift.vy > 0)
    assert seen_x == {True, False} and seen_y == {True, False}  # it turned at both edges of both axes


def test_a_box_larger_than_the_area_stays_at_the_origin():
    assert Drift(0, 0, 6, 6).step(2000, 100, 1080, 1920).x == 0
