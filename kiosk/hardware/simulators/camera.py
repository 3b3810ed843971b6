"""Simulated camera: plays a scripted visit as a stream of frames (see ``camera_scenes``).

``options.sequence`` picks the visit: ``approach`` (default: walks in, comes closer, centres,
holds still, blinks), ``far`` (too far away for 3 s, then steps closer), ``near`` (too
close for 2 s, then steps back), ``turn`` (never blinks; turns the head aside and back),
``photo`` (a printed photo: identical frames) or ``empty`` (nobody). With
``options.images`` (paths) it cycles through those pictures instead. Frames come at
``fps``; with ``realtime = false`` they come as fast as they are read, stamped with the
sequence's own clock, so a test runs a 10-second visit in a fraction of that.

Options: sequence, images, width, height, fps, realtime, delay_s. Faults: no_face (the next
n frames show nobody), offline, timeout. Every ``start_stream`` starts the visit again
(a new resident); :meth:`SimCamera.play` switches to another sequence.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from kiosk.errors import ConfigError, DeviceOffline, DeviceTimeout
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.camera import Camera, Frame
from kiosk.hardware.simulators import camera_scenes as scenes
from kiosk.hardware.simulators.faults import SimulatedDevice

if TYPE_CHECKING:
    import numpy as np


def _load_rgb(path: Path) -> "np.ndarray":
    import numpy as np
    from PIL import Image

    with Image.open(path) as img:
        arr = np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    arr.flags.writeable = False
    return arr


class SimCamera(SimulatedDevice, Camera):
    """Camera simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"no_face", "offline", "timeout"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "images": [], "width": 640, "height": 480,
                                  "sequence": scenes.DEFAULT_SEQUENCE, "fps": 20.0, "realtime": True}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        self._images: list[np.ndarray] = []
        for i, p in enumerate(self.options["images"]):
            where = f"devices.{name}.options.images"
            try:
                self._images.append(_load_rgb(Path(str(p)).expanduser()))
            except Exception as exc:  # Pillow raises several unrelated types for a bad file
                raise ConfigError(f"{where}[{i}]: cannot load image ({type(exc).__name__})",
                                  key=where, value=str(p)) from None
        w, h = int(self.options["width"]), int(self.options["height"])
        if not (16 <= w <= 4096 and 16 <= h <= 4096):
            raise ConfigError(f"devices.{name}.options.width/height: 16..4096 pixels, got {w}x{h}",
                              key=f"devices.{name}.options.width", value=w)
        self.size = (w, h)
        self.fps = float(self.options["fps"])
        if not 1 <= self.fps <= 120:
            raise ConfigError(f"devices.{name}.options.fps: 1..120 frames a second, got {self.fps}",
                              key=f"devices.{name}.options.fps", value=self.fps)
        self.stream_fps = 0.0  # read_frame paces itself
        self.realtime = bool(self.options["realtime"])
        self.sequence = self._check_sequence(str(self.options["sequence"]), f"devices.{name}.options.sequence")
        self._started_at = 0.0
        self._frame_no = 0
        self._stills: dict[str, np.ndarray] = {}
        self.captures = 0
        self.frames_served = 0

    @staticmethod
    def _check_sequence(name: str, where: str) -> scenes.Sequence:
        try:
            return scenes.SEQUENCES[name]
        except KeyError:
            raise ConfigError(f"{where}: unknown sequence {name!r}; known: {', '.join(sorted(scenes.SEQUENCES))}",
                              key=where, value=name) from None

    # --- the visit ----------------------------------------------------------------------
    def play(self, sequence: str) -> None:
        """Switch to another sequence and start it from the beginning. Raises ConfigError."""
        chosen = self._check_sequence(sequence, f"devices.{self.name}.options.sequence")
        with self._sim_lock:
            self.sequence = chosen
            self._restart()

    def _restart(self) -> None:
        self._frame_no = 0
        self._started_at = time.monotonic()

    def start_stream(self) -> None:
        """Start the visit from the beginning and stream it."""
        if not self.streaming:
            with self._sim_lock:
                self._restart()
        super().start_stream()

    def read_frame(self, timeout: float = 5.0) -> Frame:
        """The next frame of the visit (waiting for its moment when realtime). Raises DeviceTimeout, DeviceOffline."""
        with self._sim_lock:
            if self._hit("offline"):
                raise DeviceOffline("camera does not answer", device=self.name)
            if self._take("timeout"):
                raise DeviceTimeout("no frame in time", device=self.name)
            if not self._started_at:
                self._restart()
            n = self._frame_no
            if self.realtime:  # the visit goes on at the wall clock's pace: a slow reader misses frames
                n = max(n, int((time.monotonic() - self._started_at) * self.fps))
            self._frame_no = n + 1
            nobody = self._take("no_face")
            sequence = self.sequence
            due = self._started_at + n / self.fps
            served = self.frames_served
            self.frames_served += 1
        if self.realtime:
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(timeout)
                raise DeviceTimeout("no frame in time", device=self.name)
            if wait > 0:
                time.sleep(wait)
            taken_at = time.monotonic()
        else:
            taken_at = due
        w, h = self.size
        if nobody:
            pixels = scenes.wall(w, h)
        elif self._images:
            pixels = self._images[served % len(self._images)]
        elif sequence.still:
            pixels = self._still(sequence)
        else:
            pose, closed = sequence.at(n / self.fps)
            pixels = scenes.compose(w, h, pose, closed, n / self.fps, sequence.sway)
        return Frame(pixels, n + 1, taken_at)

    def _still(self, sequence: scenes.Sequence) -> "np.ndarray":
        """A still scene is drawn once: every frame is the very same picture."""
        with self._sim_lock:
            if sequence.name not in self._stills:
                picture = scenes.compose(*self.size, sequence.keys[0][1], False)
                picture.flags.writeable = False
                self._stills[sequence.name] = picture
            return self._stills[sequence.name]

    def capture(self, timeout: float = 5.0) -> bytes:
        """One frame of the visit as JPEG bytes. Raises DeviceTimeout, DeviceOffline."""
        with self._sim_lock:
            self._busy += 1
        try:
            self._pause()
            return super().capture(timeout)
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
