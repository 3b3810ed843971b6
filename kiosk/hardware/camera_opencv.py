"""Camera driver over OpenCV's VideoCapture (V4L2 webcams, or any source OpenCV opens).

Options: ``device`` (camera index, /dev/videoN, or a file/URL/image-sequence pattern such
as ``frames/%03d.jpg``; default 0), ``width`` and ``height`` (requested size), ``warmup``
(frames dropped after opening while exposure settles; 3), ``jpeg_quality`` (90), ``fps``
(asked of the device, and the most the preview stream grabs; 30). Frames leave this module
as RGB arrays (:class:`~kiosk.hardware.camera.Frame`) or JPEG bytes and are never written
to disk or logged.
"""
from __future__ import annotations

import os
import time
from typing import Any, Mapping

from kiosk.errors import DeviceOffline, DeviceTimeout, NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.camera import Camera, Frame


def _cv2() -> Any:
    try:
        import cv2
    except ImportError:
        raise NoDevice("OpenCV (opencv-python-headless) is not installed", device="camera") from None
    return cv2


class OpenCvCamera(Camera):
    """A camera read through cv2.VideoCapture."""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        self.options = dict(options or {})
        device = self.options.get("device", 0)
        self.source: int | str = int(device) if isinstance(device, int) or str(device).isdigit() else str(device)
        self.warmup = int(self.options.get("warmup", 3))
        self.jpeg_quality = int(self.options.get("jpeg_quality", 90))
        self.stream_fps = float(self.options.get("fps", 30))
        self._cap: Any = None
        self._node: tuple[int, int] | None = None  # (inode, device number) of the source when it opened
        self._seq = 0

    def _source_path(self) -> str | None:
        """What must exist for the source to be there: /dev/videoN, the file, a sequence's folder (None: a URL)."""
        if isinstance(self.source, int):
            return f"/dev/video{self.source}"
        if "://" in self.source:
            return None
        return (os.path.dirname(self.source) or ".") if "%" in self.source else self.source

    def _node_now(self) -> tuple[int, int] | None:
        path = self._source_path()
        if path is None:
            return None
        st = os.stat(path)  # FileNotFoundError when unplugged
        return st.st_ino, st.st_rdev

    def open(self) -> None:
        """Open the source. Raises NoDevice."""
        with self._lock:
            if self._cap is not None:
                return
            cv2 = _cv2()
            cap = cv2.VideoCapture(self.source)
            if not cap.isOpened():
                cap.release()
                raise NoDevice(f"camera {self.source!r} does not open", device=self.name)
            if "width" in self.options:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, int(self.options["width"]))
            if "height" in self.options:
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, int(self.options["height"]))
            if "fps" in self.options:
                cap.set(cv2.CAP_PROP_FPS, float(self.options["fps"]))
            for _ in range(self.warmup):
                cap.grab()
            self._cap = cap
            try:
                self._node = self._node_now()
            except OSError:
                self._node = None

    def close(self) -> None:
        """Stop the stream and release the camera; safe to call twice."""
        super().close()
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def status(self) -> DeviceStatus:
        """ONLINE when the source opens; NO_DEVICE once it is gone (unplugged). Never raises.

        A capture whose device node vanished, or now names another device (plugged in again),
        is released, so the camera is opened afresh when it is back, without a restart.
        """
        with self._lock:
            if self._cap is not None:
                try:
                    stale = self._node_now() != self._node
                except OSError:
                    stale = True
                if stale:  # only the capture: a running preview stream reopens it on its next frame
                    self._cap.release()
                    self._cap = None
        try:
            self.open()
        except NoDevice as err:
            return status(DeviceState.NO_DEVICE, detail=err.detail)
        return status(DeviceState.ONLINE)

    def read_frame(self, timeout: float = 5.0) -> Frame:
        """The device's next frame as RGB. Raises NoDevice, DeviceTimeout, DeviceOffline."""
        cv2 = _cv2()
        deadline = time.monotonic() + timeout
        with self._lock:
            self.open()
            while True:
                ok, frame = self._cap.read()
                if ok and frame is not None and frame.size:
                    break
                if self._cap.get(cv2.CAP_PROP_FRAME_COUNT) > 0:
                    # a recorded source ran out: start it again rather than fail
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                if time.monotonic() >= deadline:
                    gone = not self._cap.isOpened()
                    # A V4L2 capture of an unplugged camera may still say it is open: released
                    # either way, so the next read opens the camera again.
                    self._cap.release()
                    self._cap = None
                    if gone:
                        raise DeviceOffline("camera went away", device=self.name)
                    raise DeviceTimeout("camera gave no frame in time", device=self.name)
                time.sleep(0.02)
            taken_at = time.monotonic()
            self._seq += 1
            seq = self._seq
        pixels = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        return Frame(pixels, seq, taken_at)
