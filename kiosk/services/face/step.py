"""The face step as a service: preview frames and guidance for the screen, the captured image for the workflow.

``FaceStep(camera, cfg).start(on_update, on_result)`` streams the camera and runs two
threads, neither of them the UI's: one mirrors every new frame into raw RGB bytes for the
preview (with the latest guidance), one analyses the newest frame it can get (faces, eyes)
and feeds :class:`~kiosk.services.face.guide.FaceGuide`. The screen polls :meth:`latest` on
its clock or takes ``on_update`` calls (from a worker thread: hop to the UI thread before
touching widgets), calls :meth:`capture_now` for the 拍照 button and :meth:`stop` when it
leaves. The outcome (``on_result`` or :meth:`result`) carries the captured JPEG, which
goes to ``Transaction.face_attempt`` and nowhere else.

Nothing here writes a file. Preview frames live only in memory; :meth:`stop` drops them
and zeroes the buffers the step owns (the captured image once it has been handed on lives
in the session, which zeroes it when it ends).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from kiosk.config import FaceConfig
from kiosk.errors import DeviceError
from kiosk.hardware.camera import Camera, Frame, encode_jpeg
from kiosk.services.face.detector import Box, HaarFaceDetector
from kiosk.services.face.guide import FaceGuide, Guidance, Liveness, Verdict

log = logging.getLogger(__name__)

CAPTURED = "captured"
LIVENESS_FAILED = "liveness_failed"
CAMERA_FAILED = "camera_failed"
HISTORY_MAX = 1000  # guidance changes kept in stats (a resident dancing about must not grow memory)
CAMERA_GRACE_S = 5.0  # no frame for this long: the step ends camera_failed (the screen shows the device error)


@dataclass(frozen=True, eq=False)
class FaceUpdate:
    """One preview frame for the screen, with what to tell the resident.

    ``rgb`` is ``width * height * 3`` bytes, rows top to bottom, already mirrored (the
    resident sees themselves as in a mirror); ``face`` is in those mirrored coordinates.
    """

    seq: int
    rgb: bytes
    width: int
    height: int
    guidance: Guidance
    liveness: Liveness
    hold: float
    face: Box | None
    taken_at: float

    def __repr__(self) -> str:
        return (f"FaceUpdate(seq={self.seq}, {self.width}x{self.height}, guidance={self.guidance.value}, "
                f"liveness={self.liveness.value}, hold={self.hold:.2f})")


@dataclass(frozen=True, eq=False)
class FaceOutcome:
    """How the face step ended: ``captured`` (with the JPEG), ``liveness_failed`` or ``camera_failed``."""

    status: str
    image: bytearray | None = None
    automatic: bool = False
    liveness: str = ""  # how liveness was shown: "blink" or "head_turn"
    elapsed_s: float = 0.0  # from start() to the outcome
    error: str = ""  # camera_failed: the device error's code (device_offline, device_timeout, ...)

    @property
    def captured(self) -> bool:
        """True when there is an image for the backend's compare."""
        return self.status == CAPTURED and self.image is not None

    def wipe(self) -> None:
        """Zero the image bytes (safe to call twice)."""
        if self.image is not None:
            self.image[:] = bytes(len(self.image))

    def __repr__(self) -> str:  # a face is personal data: never in a log line
        size = len(self.image) if self.image is not None else 0
        return f"FaceOutcome({self.status}, automatic={self.automatic}, liveness={self.liveness!r}, {size} bytes)"


@dataclass
class FaceStepStats:
    """Counters for benchmarks and the operator: frames shown and analysed, analysis time."""

    preview_frames: int = 0
    analysed_frames: int = 0
    analysis_s: float = 0.0
    started_at: float = 0.0
    first_placed_at: float | None = None  # frame time of the first centred face
    outcome_at: float | None = None  # frame time of the frame the outcome was decided on
    history: list[tuple[float, str, str]] = field(default_factory=list)  # (t, guidance, liveness) changes


class FaceStep:
    """One resident's face step on one camera; start it once, stop it when the screen leaves."""

    def __init__(self, camera: Camera, cfg: FaceConfig | None = None, *,
                 detector: HaarFaceDetector | None = None, lockstep: bool = False) -> None:
        """``lockstep``: read and analyse every frame in turn (tests and benchmarks on a simulator)."""
        self.camera = camera
        self.cfg = cfg or FaceConfig()
        self.detector = detector or HaarFaceDetector()
        self.lockstep = lockstep
        self.guide = FaceGuide(self.cfg)
        self.stats = FaceStepStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._threads: list[threading.Thread] = []
        self._latest: FaceUpdate | None = None
        self._verdict: Verdict | None = None
        self._outcome: FaceOutcome | None = None
        self._capture_requested = False
        self._on_update: Callable[[FaceUpdate], None] | None = None
        self._on_result: Callable[[FaceOutcome], None] | None = None
        self._last_frame_at = 0.0

    # --- the screen's API -----------------------------------------------------------------
    def start(self, on_update: Callable[[FaceUpdate], None] | None = None,
              on_result: Callable[[FaceOutcome], None] | None = None) -> None:
        """Start the camera stream and the worker threads. Raises NoDevice, RuntimeError when started twice."""
        if self._threads:
            raise RuntimeError("a FaceStep runs once; make a new one for the next try")
        self._on_update, self._on_result = on_update, on_result
        self.stats.started_at = self._last_frame_at = time.monotonic()
        if self.lockstep:
            self.camera.open()
            self._spawn(self._lockstep_loop, "face-step")
        else:
            self.camera.start_stream()
            self._spawn(self._analysis_loop, "face-analysis")
            self._spawn(self._preview_loop, "face-preview")

    def latest(self) -> FaceUpdate | None:
        """The newest preview frame with its guidance, without waiting (None before the first)."""
        with self._lock:
            return self._latest

    def capture_now(self) -> None:
        """The 拍照 button: capture as soon as liveness has been shown (at once when it has)."""
        with self._lock:
            self._capture_requested = True

    def result(self, timeout: float | None = None) -> FaceOutcome | None:
        """Wait for the outcome (None when it did not come within ``timeout``, or the step was stopped)."""
        self._done.wait(timeout)
        with self._lock:
            return self._outcome

    @property
    def done(self) -> bool:
        """True once the step has an outcome (or was stopped)."""
        return self._done.is_set()

    def stop(self) -> None:
        """Stop the threads and the camera stream and drop every frame; safe to call twice."""
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(5.0)
        if not self.lockstep:
            self.camera.stop_stream()
        with self._lock:
            self._latest = None
            self._verdict = None
        for frame in self.guide.forget():
            if frame is not None and frame.pixels.flags.writeable:
                frame.pixels.fill(0)  # a real camera's frames are ours: zero the ones kept
        self._done.set()

    # --- the work -------------------------------------------------------------------------
    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=self._guarded(target), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _guarded(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                target()
            except Exception:  # a bug must not leave the screen waiting forever
                log.exception("face step worker failed")
                self._stop.set()
                self._done.set()
        return run

    def _analysis_loop(self) -> None:
        seq = -1
        while not self._stop.is_set() and not self._done.is_set():
            try:
                frame = self.camera.next_frame(seq, timeout=1.0)
            except DeviceError as err:
                self._camera_trouble(err)
                continue
            seq = frame.seq
            self._analyse(frame)

    def _camera_trouble(self, err: DeviceError) -> None:
        """No frame: wait a little; past the grace period the step ends camera_failed."""
        log.warning("face step: camera gave no frame (%s)", err.code)
        if time.monotonic() - self._last_frame_at > CAMERA_GRACE_S:
            self._finish(FaceOutcome(CAMERA_FAILED, elapsed_s=time.monotonic() - self.stats.started_at,
                                     error=err.code), None)
        else:
            self._stop.wait(0.2)

    def _preview_loop(self) -> None:
        seq = -1
        while not self._stop.is_set():
            if self._done.is_set():
                return  # the last frame stays on screen, frozen
            try:
                frame = self.camera.next_frame(seq, timeout=1.0)
            except DeviceError:
                self._stop.wait(0.2)
                continue
            seq = frame.seq
            self._publish(frame)

    def _lockstep_loop(self) -> None:
        while not self._stop.is_set() and not self._done.is_set():
            try:
                frame = self.camera.read_frame(timeout=1.0)
            except DeviceError as err:
                self._camera_trouble(err)
                continue
            self._analyse(frame)
            self._publish(frame)

    def _analyse(self, frame: Frame) -> None:
        began = time.perf_counter()
        self._last_frame_at = time.monotonic()
        analysis = self.detector.analyse(frame.pixels)
        with self._lock:
            manual = self._capture_requested
        if manual:
            self.guide.request_capture(frame.taken_at)
        verdict = self.guide.observe(frame.taken_at, analysis, frame)
        stats = self.stats
        stats.analysed_frames += 1
        stats.analysis_s += time.perf_counter() - began
        if stats.first_placed_at is None and self.guide.placed_since is not None:
            stats.first_placed_at = self.guide.placed_since
        if len(stats.history) < HISTORY_MAX and (
                not stats.history or stats.history[-1][1:] != (verdict.guidance.value, verdict.liveness.value)):
            stats.history.append((frame.taken_at, verdict.guidance.value, verdict.liveness.value))
        with self._lock:
            self._verdict = verdict
        if verdict.failed:
            self._finish(FaceOutcome(LIVENESS_FAILED, elapsed_s=time.monotonic() - stats.started_at), frame)
        elif self.guide.done and not self._done.is_set():
            chosen: Frame = verdict.capture if verdict.capture is not None else frame
            image = bytearray(encode_jpeg(chosen.pixels))
            self._finish(FaceOutcome(CAPTURED, image, verdict.automatic, self.guide.method,
                                     time.monotonic() - stats.started_at), frame)

    def _finish(self, outcome: FaceOutcome, frame: Frame | None) -> None:
        if frame is not None:
            self.stats.outcome_at = frame.taken_at
        with self._lock:
            self._outcome = outcome
        log.info("face step: %s (automatic=%s, liveness=%s)", outcome.status, outcome.automatic,
                 outcome.liveness or "-")
        self._done.set()
        if not self.lockstep:
            self.camera.stop_stream()  # nothing more to show or analyse: give the cores back to the UI
        if self._on_result is not None:
            self._on_result(outcome)

    def _publish(self, frame: Frame) -> None:
        import cv2

        with self._lock:
            verdict = self._verdict
        mirrored = cv2.flip(frame.pixels, 1)
        face = verdict.face.mirrored(frame.width) if verdict and verdict.face else None
        update = FaceUpdate(frame.seq, mirrored.tobytes(), frame.width, frame.height,
                            verdict.guidance if verdict else Guidance.NO_FACE,
                            verdict.liveness if verdict else Liveness.BLINK,
                            verdict.hold if verdict else 0.0, face, frame.taken_at)
        with self._lock:
            self._latest = update
        self.stats.preview_frames += 1
        if self._on_update is not None:
            self._on_update(update)
