"""Care of the panel in an empty hall: when the attract screen comes, how its text drifts, how the header shifts.

Pure functions of time and sizes (no Kivy): the screens (kiosk.screens.attract) call them on
their clock, the tests call them with a clock they set.

Burn-in comes from the same pixels lit the same way for hours. The attract screen moves its
text all the time; the header every screen shows moves a pixel every ``every_s`` seconds,
round a square of ``2 * max_px + 1`` positions and back (one pixel a step, the centre at
start), so no edge stays on the same pixel row for more than one step.
"""
from __future__ import annotations

from dataclasses import dataclass


def attract_due(idle_s: float, after_s: float, *, on_home: bool, resident_present: bool) -> bool:
    """Whether the attract screen should show: home, nobody served, and ``after_s`` (> 0) without a touch."""
    return after_s > 0 and on_home and not resident_present and idle_s >= after_s


def pixel_shift(elapsed_s: float, every_s: float, max_px: int) -> tuple[int, int]:
    """The header's offset (dx, dy) in pixels ``elapsed_s`` after start: within ±``max_px``, one pixel a step."""
    if max_px <= 0 or every_s <= 0:
        return 0, 0
    side = 2 * max_px + 1
    cells = side * side
    period = 2 * cells - 2  # there and back along the serpentine, never jumping
    index = (int(max(elapsed_s, 0.0) // every_s) + max_px * side + max_px) % period  # step 0: the centre
    if index >= cells:
        index = period - index
    row, col = divmod(index, side)
    x = col if row % 2 == 0 else side - 1 - col
    return x - max_px, row - max_px


@dataclass(frozen=True)
class Drift:
    """Where the attract screen's text box is and which way it moves (pixels, pixels a step)."""

    x: float
    y: float
    vx: float
    vy: float

    def step(self, width: float, height: float, area_w: float, area_h: float) -> "Drift":
        """One step on, bouncing off the edges of the area (a box larger than the area stays at its origin)."""
        x, vx = _bounce(self.x + self.vx, self.vx, max(area_w - width, 0.0))
        y, vy = _bounce(self.y + self.vy, self.vy, max(area_h - height, 0.0))
        return Drift(x, y, vx, vy)


def _bounce(pos: float, speed: float, room: float) -> tuple[float, float]:
    if pos < 0:
        return min(-pos, room), abs(speed)
    if pos > room:
        return max(2 * room - pos, 0.0), -abs(speed)
    return pos, speed
