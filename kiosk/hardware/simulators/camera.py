"""Simulated camera: serves still JPEG frames, from files or drawn with Pillow.

With ``options.images`` (paths) it cycles through those pictures; without, it draws a
plain head-and-shoulders figure. The ``no_face`` fault serves an empty scene instead.
Drawn frames carry a JPEG comment, ``kiosk-sim:face`` or ``kiosk-sim:no_face``, which a
simulated face matcher may read; real frames carry none.

Options: images, width, height, delay_s. Faults: no_face, offline, timeout.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError, DeviceOffline, DeviceTimeout
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.camera import Camera
from kiosk.hardware.simulators.faults import SimulatedDevice

FACE_COMMENT = b"kiosk-sim:face"
NO_FACE_COMMENT = b"kiosk-sim:no_face"


def draw_frame(width: int, height: int, face: bool) -> bytes:
    """A JPEG of a plain backdrop, with a head-and-shoulders figure when ``face``."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), (200, 214, 229))
    if face:
        d = ImageDraw.Draw(img)
        cx, cy, r = width // 2, int(height * 0.42), min(width, height) // 5
        d.ellipse((cx - 2 * r, cy + int(1.3 * r), cx + 2 * r, cy + 4 * r), fill=(40, 60, 110))  # shoulders
        d.ellipse((cx - r, cy - int(1.25 * r), cx + r, cy + int(1.25 * r)), fill=(236, 200, 170))  # head
        for dx in (-r // 2.5, r // 2.5):
            d.ellipse((cx + dx - r // 8, cy - r // 4 - r // 8, cx + dx + r // 8, cy - r // 4 + r // 8),
                      fill=(30, 30, 30))  # eyes
        d.arc((cx - r // 2, cy + r // 8, cx + r // 2, cy + r // 1.6), 20, 160, fill=(150, 60, 60), width=3)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85, comment=FACE_COMMENT if face else NO_FACE_COMMENT)
    return buf.getvalue()


def _load_jpeg(path: Path) -> bytes:
    from PIL import Image

    raw = path.read_bytes()
    img = Image.open(io.BytesIO(raw))
    if img.format == "JPEG":
        return raw
    buf = io.BytesIO()
    img.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.getvalue()


class SimCamera(SimulatedDevice, Camera):
    """Camera simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"no_face", "offline", "timeout"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "images": [], "width": 640, "height": 480}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        self._images: list[bytes] = []
        for i, p in enumerate(self.options["images"]):
            where = f"devices.{name}.options.images"
            try:
                self._images.append(_load_jpeg(Path(str(p)).expanduser()))
            except Exception as exc:  # Pillow raises several unrelated types for a bad file
                raise ConfigError(f"{where}[{i}]: cannot load image ({type(exc).__name__})",
                                  key=where, value=str(p)) from None
        w, h = int(self.options["width"]), int(self.options["height"])
        if not (16 <= w <= 4096 and 16 <= h <= 4096):
            raise ConfigError(f"devices.{name}.options.width/height: 16..4096 pixels, got {w}x{h}",
                              key=f"devices.{name}.options.width", value=w)
        self._face = draw_frame(w, h, True) if not self._images else b""
        self._empty = draw_frame(w, h, False)
        self._next = 0
        self.captures = 0

    def capture(self, timeout: float = 5.0) -> bytes:
        """Capture one frame as JPEG bytes. Raises DeviceTimeout, DeviceOffline."""
        with self._sim_lock:
            if self._hit("offline"):
                raise DeviceOffline("camera does not answer", device=self.name)
            if self._take("timeout"):
                raise DeviceTimeout("no frame in time", device=self.name)
            if self._take("no_face"):
                frame = self._empty
            elif self._images:
                frame = self._images[self._next % len(self._images)]
                self._next += 1
            else:
                frame = self._face
            self._busy += 1
        try:
            self._pause()
            return frame
        finally:
            with self._sim_lock:
                self._busy -= 1
                self.captures += 1

    def status(self) -> DeviceStatus:
        """Offline, hardware error while timing out, busy while capturing, else online. Never raises."""
        with self._sim_lock:
            if self._on("offline"):
                return status(DeviceState.OFFLINE, detail="camera does not answer")
            if self._on("timeout"):
                return status(DeviceState.HARDWARE_ERROR, detail="camera gives no frames")
            return status(DeviceState.BUSY if self._busy else DeviceState.ONLINE)
