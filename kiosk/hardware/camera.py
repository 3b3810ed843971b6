"""Camera for the face check (人证核验): the interface, with a frame stream for a live preview."""
from __future__ import annotations

import abc
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiosk.errors import DeviceError, DeviceTimeout
from kiosk.hardware.base import Device

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, eq=False)
class Frame:
    """One picture from the camera: RGB pixels (rows top to bottom), its number and when it was taken.

    ``pixels`` is a (height, width, 3) uint8 array owned by whoever holds the frame; a
    frame is a resident's likeness, so it is never logged (see ``__repr__``) or written.
    """

    pixels: "np.ndarray"
    seq: int
    taken_at: float  # time.monotonic() of the camera, or the simulator's own clock

    @property
    def width(self) -> int:
        """Width in pixels."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Height in pixels."""
        return int(self.pixels.shape[0])

    def __repr__(self) -> str:
        return f"Frame(seq={self.seq}, {self.width}x{self.height}, taken_at={self.taken_at:.3f})"


def encode_jpeg(pixels: "np.ndarray", quality: int = 90) -> bytes:
    """JPEG bytes of an RGB frame. Raises DeviceError when OpenCV cannot encode it."""
    import cv2

    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise DeviceError("frame could not be encoded", device="camera")
    return jpeg.tobytes()


class Camera(Device):
    """The camera at the screen: single stills for the backend, and a stream of frames for a preview.

    A driver implements one primitive, :meth:`read_frame` (block until the device gives its
    next frame). The base turns it into a stream: :meth:`start_stream` runs a grab thread
    that keeps only the newest frame, so :meth:`latest_frame` never blocks and a slow
    reader (the face analysis) never makes the device fall behind.
    """

    kind = "camera"
    jpeg_quality = 90
    #: at most this many frames a second are grabbed by the stream (0: as the device gives them)
    stream_fps = 30.0

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._stream_cond = threading.Condition()
        self._stream_thread: threading.Thread | None = None
        self._stream_stop = threading.Event()
        self._latest: Frame | None = None
        self._stream_error: DeviceError | None = None

    @abc.abstractmethod
    def read_frame(self, timeout: float = 5.0) -> Frame:
        """Block until the device's next frame. Raises DeviceTimeout, DeviceOffline, NoDevice."""

    def capture(self, timeout: float = 5.0) -> bytes:
        """One fresh frame as JPEG bytes (the stream's next one while it runs). Raises DeviceTimeout, DeviceOffline."""
        if self.streaming:
            latest = self.latest_frame()
            frame = self.next_frame(latest.seq if latest else -1, timeout)
        else:
            frame = self.read_frame(timeout)
        return encode_jpeg(frame.pixels, self.jpeg_quality)

    # --- the stream ---------------------------------------------------------------------
    @property
    def streaming(self) -> bool:
        """True while the grab thread runs."""
        thread = self._stream_thread
        return thread is not None and thread.is_alive()

    def start_stream(self) -> None:
        """Start grabbing frames in the background (a no-op while already streaming). Raises NoDevice."""
        self.open()
        with self._stream_cond:
            if self.streaming:
                return
            self._stream_stop.clear()
            self._latest = None
            self._stream_error = None
            self._stream_thread = threading.Thread(target=self._grab_loop, name=f"{self.name}-stream", daemon=True)
            self._stream_thread.start()

    def stop_stream(self) -> None:
        """Stop the grab thread and forget the last frame; safe to call twice."""
        self._stream_stop.set()
        thread = self._stream_thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        with self._stream_cond:
            self._stream_thread = None
            self._latest = None
            self._stream_cond.notify_all()

    def latest_frame(self) -> Frame | None:
        """The newest streamed frame, without waiting (None before the first one)."""
        with self._stream_cond:
            return self._latest

    def next_frame(self, after: int = -1, timeout: float = 1.0) -> Frame:
        """Wait for a streamed frame newer than number ``after``. Raises DeviceTimeout or the device's error."""
        deadline = time.monotonic() + timeout
        with self._stream_cond:
            while True:
                if self._latest is not None and self._latest.seq > after:
                    return self._latest
                left = deadline - time.monotonic()
                if left <= 0 or not self.streaming:
                    if self._stream_error is not None:
                        raise self._stream_error
                    raise DeviceTimeout("camera gave no new frame in time", device=self.name)
                self._stream_cond.wait(left)

    def _grab_loop(self) -> None:
        period = 1.0 / self.stream_fps if self.stream_fps > 0 else 0.0
        next_at = time.monotonic()
        while not self._stream_stop.is_set():
            try:
                frame = self.read_frame(timeout=1.0)
            except DeviceError as err:  # keep trying: a resident should not lose the step to one hiccup
                with self._stream_cond:
                    self._stream_error = err
                    self._stream_cond.notify_all()
                self._stream_stop.wait(0.2)
                continue
            with self._stream_cond:
                self._latest = frame
                self._stream_error = None
                self._stream_cond.notify_all()
            if period:  # a file source or a simulator would otherwise run flat out
                now = time.monotonic()
                next_at = next_at + period if next_at + period > now - period else now
                self._stream_stop.wait(max(0.0, next_at - now))

    def close(self) -> None:
        """Stop the stream and release the device; safe to call twice."""
        self.stop_stream()

