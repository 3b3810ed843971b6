"""Camera driver over OpenCV's VideoCapture (V4L2 webcams, or any source OpenCV opens).

Options: ``device`` (camera index, /dev/videoN, or a file/URL/image-sequence pattern such
as ``frames/%03d.jpg``; default 0), ``width`` and ``height`` (requested size), ``warmup``
(frames dropped after opening while exposure settles; 3), ``jpeg_quality`` (90).
Frames leave this module as JPEG bytes and are never written to disk or logged.
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from kiosk.errors import DeviceOffline, DeviceTimeout, NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.camera import Camera


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
        self.quality = int(self.options.get("jpeg_quality", 90))
        self._cap: Any = None

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
            for _ in range(self.warmup):
                cap.grab()
            self._cap = cap

    def close(self) -> None:
        """Release the camera; safe to call twice."""
        with self._lock:
            if self._cap is not None:
                self._cap.release()
                self._cap = None

    def status(self) -> DeviceStatus:
        """ONLINE when the source opens; never raises."""
        try:
            self.open()
        except NoDevice as err:
            return status(DeviceState.NO_DEVICE, detail=err.detail)
        return status(DeviceState.ONLINE)

    def capture(self, timeout: float = 5.0) -> bytes:
        """One frame as JPEG bytes. Raises NoDevice, DeviceTimeout, DeviceOffline."""
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
                    if not self._cap.isOpened():
                        self.close()
                        raise DeviceOffline("camera went away", device=self.name)
                    raise DeviceTimeout("camera gave no frame in time", device=self.name)
                time.sleep(0.02)
            ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            if not ok:
                raise DeviceOffline("frame could not be encoded", device=self.name)
            return jpeg.tobytes()
