"""The face step: analysis time per frame, live preview frames per second, and centred face to capture.

Runs on the camera simulator (Grace Hopper's portrait) through the real Haar detector.
The preview rate is measured as the screen will see it: the simulator streaming in real
time, the preview and analysis threads both running, frames counted at ``on_update``.
"""
from __future__ import annotations

import statistics
import threading
import time

from kiosk.config import FaceConfig
from kiosk.hardware.simulators.camera import SimCamera
from kiosk.services.face.detector import HaarFaceDetector
from kiosk.services.face.step import FaceStep


def _analysis_ms(detector: HaarFaceDetector) -> None:
    for sequence in ("approach", "near", "empty"):
        camera = SimCamera("camera", {"sequence": sequence, "realtime": False})
        frames = [camera.read_frame() for _ in range(100)]
        took = []
        for frame in frames:
            began = time.perf_counter()
            detector.analyse(frame.pixels)
            took.append(time.perf_counter() - began)
        med = statistics.median(took) * 1000
        print(f"   analysis per frame, {sequence:<9} median {med:5.1f} ms, max {max(took) * 1000:5.1f} ms"
              f"  (room for {1000 / med:4.0f} frames/s on one core)")


def _preview_fps(detector: HaarFaceDetector) -> None:
    for fps in (20.0, 30.0):
        camera = SimCamera("camera", {"sequence": "photo", "fps": fps})
        stamps: list[float] = []
        step = FaceStep(camera, FaceConfig(liveness_window_s=60.0), detector=detector)
        step.start(on_update=lambda u: stamps.append(time.monotonic()))
        time.sleep(4.0)
        step.stop()
        shown = (len(stamps) - 1) / (stamps[-1] - stamps[0])
        stats = step.stats
        analysed = stats.analysed_frames / (stamps[-1] - stats.started_at)
        print(f"   live preview, camera at {fps:2.0f}/s        {shown:5.1f} frames/s shown, {analysed:5.1f} analysed/s,"
              f" analysis {stats.analysis_s / max(1, stats.analysed_frames) * 1000:.1f} ms each")


def _centred_to_capture(detector: HaarFaceDetector) -> None:
    waits, lags = [], []
    for _ in range(3):
        results: list[float] = []
        camera = SimCamera("camera", {"sequence": "approach", "fps": 20.0})
        step = FaceStep(camera, FaceConfig(), detector=detector)
        done = threading.Event()
        step.start(on_result=lambda _o: (results.append(time.monotonic()), done.set()))
        done.wait(20)
        step.stop()
        stats = step.stats
        if not results or stats.first_placed_at is None or stats.outcome_at is None:
            print("   centred face to capture: no capture")
            return
        waits.append(results[0] - stats.first_placed_at)
        lags.append(results[0] - stats.outcome_at)
    hold = FaceConfig().hold_s
    print(f"   centred face to capture (approach, hold_s {hold:.1f})"
          f"  median {statistics.median(waits):.2f} s, max {max(waits):.2f} s (n={len(waits)})")
    print(f"   deciding frame to on_result                  median {statistics.median(lags) * 1000:.0f} ms")


def main() -> None:
    """Print the figures."""
    detector = HaarFaceDetector()
    _analysis_ms(detector)
    _preview_fps(detector)
    _centred_to_capture(detector)


if __name__ == "__main__":
    main()
