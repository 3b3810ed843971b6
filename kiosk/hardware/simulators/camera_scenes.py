"""What the simulated camera films: a real portrait moved, scaled and blinking in front of a wall.

The face is Grace Hopper's official US Navy portrait (public domain), which matplotlib's
wheel ships as ``mpl-data/sample_data/grace_hopper.jpg``; it is found through the
installed distribution's file list, so matplotlib itself is never imported and nothing is
downloaded. A sequence is a list of poses over time (face width as a fraction of the frame
width, face centre as fractions of the frame); a blink covers both eyes with eyelids of the
skin's own colour for a few frames, and a live person sways by a pixel or two, so no two
frames of a live sequence are the same while every frame of ``photo`` is.
"""
from __future__ import annotations

import functools
import importlib.metadata
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.errors import NoDevice

if TYPE_CHECKING:
    import numpy as np

PORTRAIT_DIST = "matplotlib"
PORTRAIT_FILE = "matplotlib/mpl-data/sample_data/grace_hopper.jpg"
# Where things are in the 512x600 portrait, measured once on the file (OpenCV's frontal-face
# cascade finds the face box; the eye centres were read off the picture).
PORTRAIT_FACE = (155, 105, 222, 222)  # x, y, w, h
PORTRAIT_EYES = ((220, 187), (307, 186))
PORTRAIT_EYE_AXES = (17, 10)  # half-width, half-height of an eyelid
WALL_RGB = (214, 222, 226)


@dataclass(frozen=True)
class Pose:
    """Where the face is at one moment: width and centre as fractions of the frame; None: nobody there."""

    face_width: float
    cx: float = 0.5
    cy: float = 0.5


@dataclass(frozen=True)
class Sequence:
    """A scripted visit: poses at times (seconds), blinks, and the stretch that repeats after the end."""

    name: str
    keys: tuple[tuple[float, Pose | None], ...]  # sorted by time; between two poses the face moves linearly
    blinks: tuple[float, ...] = ()  # start times of blinks (eyes closed for blink_s)
    loop_from: float = 0.0  # after the last key, time wraps back to here
    sway: bool = True  # a live person is never perfectly still; a photo on a stand is
    blink_s: float = 0.3  # a slow blink, as the kiosk asks for

    @property
    def still(self) -> bool:
        """True when every frame is the same picture (a photo, an empty room)."""
        return len(self.keys) == 1 and not self.sway and not self.blinks

    @property
    def end(self) -> float:
        """Time of the last key."""
        return self.keys[-1][0]

    def at(self, t: float) -> tuple[Pose | None, bool]:
        """The pose and whether the eyes are closed ``t`` seconds after the start."""
        if t > self.end and self.end > self.loop_from:
            t = self.loop_from + (t - self.loop_from) % (self.end - self.loop_from)
        closed = any(b <= t < b + self.blink_s for b in self.blinks)
        before = self.keys[0]
        for key in self.keys:
            if key[0] > t:
                break
            before = key
        else:
            return before[1], closed
        t0, p0 = before
        t1, p1 = key
        if p0 is None or p1 is None or t1 <= t0:
            return p0, closed
        k = (t - t0) / (t1 - t0)
        return Pose(p0.face_width + k * (p1.face_width - p0.face_width),
                    p0.cx + k * (p1.cx - p0.cx), p0.cy + k * (p1.cy - p0.cy)), closed


PLACED = Pose(0.32)
SEQUENCES: dict[str, Sequence] = {s.name: s for s in (
    # walks in from the right, comes closer, centres, holds still and blinks every 3 s
    Sequence("approach", ((0.0, None), (0.6, None), (0.61, Pose(0.13, 0.84, 0.45)), (1.6, Pose(0.20, 0.70, 0.48)),
                          (2.4, Pose(0.30, 0.64, 0.50)), (3.0, PLACED), (6.0, PLACED)),
             blinks=(3.5,), loop_from=3.0),
    # stands centred but too far away for 3 s, then steps closer as told
    Sequence("far", ((0.0, Pose(0.15)), (3.0, Pose(0.15)), (4.0, PLACED), (7.0, PLACED)),
             blinks=(1.2, 4.6), loop_from=4.0),
    # leans in far too close for 2 s, then steps back as told
    Sequence("near", ((0.0, Pose(0.62)), (2.0, Pose(0.62)), (3.0, Pose(0.34)), (6.0, Pose(0.34))),
             blinks=(0.8, 3.6), loop_from=3.0),
    # placed at once, never blinks, but turns the head aside and back when asked
    Sequence("turn", ((0.0, PLACED), (3.5, PLACED), (3.9, Pose(0.32, 0.57)), (4.3, Pose(0.32, 0.57)),
                      (4.7, PLACED), (8.0, PLACED)), loop_from=3.5),
    # a printed photo held up in the right place: every frame the same
    Sequence("photo", ((0.0, PLACED),), sway=False),
    # nobody in front of the kiosk
    Sequence("empty", ((0.0, None),), sway=False),
)}
DEFAULT_SEQUENCE = "approach"


def portrait_path() -> Path:
    """The portrait file inside the installed matplotlib distribution. Raises NoDevice when it is missing."""
    try:
        path = Path(str(importlib.metadata.distribution(PORTRAIT_DIST).locate_file(PORTRAIT_FILE)))
    except importlib.metadata.PackageNotFoundError:
        path = Path("/nonexistent")
    if not path.is_file():
        raise NoDevice(f"the camera simulator's portrait ({PORTRAIT_DIST}: {PORTRAIT_FILE}) is not installed",
                       device="camera")
    return path


@functools.lru_cache(maxsize=1)
def _portrait() -> tuple["np.ndarray", "np.ndarray", "np.ndarray"]:
    """The portrait (RGB), the same with closed eyes, and a soft head-and-shoulders mask (0..255)."""
    import cv2
    import numpy as np

    bgr = cv2.imread(str(portrait_path()), cv2.IMREAD_COLOR)
    if bgr is None:
        raise NoDevice("the camera simulator's portrait cannot be decoded", device="camera")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    closed = rgb.copy()
    ax, ay = PORTRAIT_EYE_AXES
    for x, y in PORTRAIT_EYES:
        skin = np.median(rgb[y + ay + 4:y + ay + 10, x - ax // 2:x + ax // 2].reshape(-1, 3), axis=0)
        lid = tuple(int(v) for v in skin)
        cv2.ellipse(closed, (x, y), (ax, ay), 0, 0, 360, lid, -1)
        cv2.ellipse(closed, (x, y + ay // 3), (ax - 2, ay // 3), 0, 0, 180, tuple(int(v * 0.6) for v in skin), 1)
    h, w = rgb.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    fx, fy, fw, fh = PORTRAIT_FACE
    cv2.ellipse(mask, (fx + fw // 2, fy + fh // 2 + fh // 6), (int(fw * 0.95), int(fh * 1.3)), 0, 0, 360, 255, -1)
    cv2.ellipse(mask, (fx + fw // 2, h), (int(fw * 1.15), h - fy - fh), 0, 180, 360, 255, -1)  # shoulders
    mask = cv2.GaussianBlur(mask, (0, 0), 12)
    for arr in (rgb, closed, mask):
        arr.flags.writeable = False
    return rgb, closed, mask


@functools.lru_cache(maxsize=4)
def wall(width: int, height: int) -> "np.ndarray":
    """The empty scene: a softly lit wall (read-only)."""
    import numpy as np

    shade = np.linspace(1.04, 0.92, height, dtype=np.float32)[:, None, None]
    img = np.clip(np.array(WALL_RGB, np.float32)[None, None, :] * shade, 0, 255).astype(np.uint8)
    img = np.ascontiguousarray(np.broadcast_to(img, (height, width, 3)))
    img.flags.writeable = False
    return img


def compose(width: int, height: int, pose: Pose | None, closed: bool, t: float = 0.0,
            sway: bool = False) -> "np.ndarray":
    """One RGB frame of the scene with the face at ``pose`` (a new array unless nobody is there)."""
    import cv2
    import numpy as np

    background = wall(width, height)
    if pose is None:
        return background
    rgb, rgb_closed, mask = _portrait()
    src = rgb_closed if closed else rgb
    fx, fy, fw, fh = PORTRAIT_FACE
    scale = pose.face_width * width / fw
    dx = 1.5 * math.sin(2 * math.pi * t / 1.7) if sway else 0.0
    dy = 1.0 * math.sin(2 * math.pi * t / 2.3) if sway else 0.0
    # the offset of the scaled portrait's top-left corner in the frame
    ox = pose.cx * width + dx - (fx + fw / 2) * scale
    oy = pose.cy * height + dy - (fy + fh / 2) * scale
    # the part of the frame the portrait covers, and the source rectangle that lands there
    x0, y0 = max(0, int(math.floor(ox))), max(0, int(math.floor(oy)))
    x1 = min(width, int(math.ceil(ox + src.shape[1] * scale)))
    y1 = min(height, int(math.ceil(oy + src.shape[0] * scale)))
    out = background.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    # map frame pixels back into the portrait: one affine warp of just the covered part
    m = np.float32([[1 / scale, 0, (x0 - ox) / scale], [0, 1 / scale, (y0 - oy) / scale]])
    size = (x1 - x0, y1 - y0)
    face = cv2.warpAffine(src, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    a = alpha.astype(np.uint16)[:, :, None]
    region = out[y0:y1, x0:x1]
    region[:] = ((face.astype(np.uint16) * a + region.astype(np.uint16) * (255 - a) + 127) // 255).astype(np.uint8)
    return out
