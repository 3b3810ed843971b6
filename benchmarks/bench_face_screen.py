"""The face screen: preview frames blitted per second in the oval, and a centred face to the screen's capture.

A child process runs the kiosk offscreen (SDL ``offscreen``, Mesa's software renderer here:
every redraw of the 1080x1920 window is drawn by the CPU) with its event loop paced as
``kiosk run`` paces it (Kivy's clock, 60 frames/s at most). The camera simulator streams a
printed photo (nothing is captured, so the preview runs on) at 20 and 30 frames/s while the
real detector analyses it; the screen's own count of frames blitted into its texture is read
over a few seconds, and 拍照 is touched ten times (finger lifted to the first frame drawn after its handler ran). Then the
``approach`` visit is played three times: from the face step's
first centred frame to the moment the screen has the outcome and hands it to the workflow.
Figures are printed, never asserted.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

MEASURE_S = 5.0


def _loop_for(seconds: float) -> None:
    from kivy.base import EventLoop

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        EventLoop.idle()  # Kivy's clock sleeps to keep to maxfps, as in the running kiosk


def _enter_face(app: Any, runtime: Any) -> Any:
    from kiosk.demo import people

    app.item = runtime.catalog.get("S01")
    app.txn = runtime.engine.start("S01")
    app.txn.identify(card=people.card_for(app.item))
    app.go("face")
    return app.sm.get_screen("face")


def _touch_latencies(driver: Any, window: Any, flip_times: list[float], taps: int = 10) -> list[float]:
    """Finger lifted off 拍照 to the first frame drawn after its handler ran, while the preview runs (ms)."""
    button = driver.find("capture_button")
    released: list[float] = []
    button.bind(on_release=lambda *_a: released.append(time.monotonic()))
    took = []
    for n in range(taps):
        x, y = button.to_window(*button.center)
        touch = driver._touch_cls("scripted", 10_000 + n, (x / (window.width - 1), y / (window.height - 1)))
        driver.provider.queue.append(("begin", touch))
        _loop_for(0.3)  # the finger rests, as a ScrollView waits for one
        lifted = time.monotonic()
        driver.provider.queue.append(("end", touch))
        deadline = lifted + 5
        drawn: list[float] = []
        while not drawn and time.monotonic() < deadline:
            _loop_for(0.001)
            if len(released) > n:  # the frame may be drawn in the very loop pass that handled the touch
                drawn = [t for t in flip_times if t >= released[n]]
        if drawn:
            took.append(round((drawn[0] - lifted) * 1000, 1))
    return took


def _child() -> None:
    """In the child: the app on the face screen; print the figures as one JSON line."""
    out = Path(tempfile.mkdtemp(prefix="kiosk-bench-face-screen-"))
    os.environ.update({"SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(out / "kivy")})
    from kivy.core.window import Window

    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.config import from_dict
    from kiosk.demo.driver import UiDriver

    cfg = from_dict({"paths": {"state_dir": str(out / "state")}, "speech": {"warm_up": False},
                     "face": {"liveness_window_s": 60.0}})
    prepare_kivy(cfg.ui, headless=True)
    runtime = build_runtime(cfg)
    driver = UiDriver(KioskApp(runtime, cfg))
    driver.start()
    app = driver.app
    camera = runtime.devices.get("camera")
    flips = [0]
    flip_times: list[float] = []

    from kiosk.screens.base import gl_finish_without_gil

    finish = gl_finish_without_gil()

    def flipped(*_args: Any) -> None:
        if finish is not None:
            finish()  # handlers run newest first: the frame is on the screen only once it has finished
        flips[0] += 1
        flip_times.append(time.monotonic())
        del flip_times[:-50]

    Window.bind(on_flip=flipped)
    results: dict[str, Any] = {"preview": [], "centred_to_capture_s": []}
    try:
        for fps in (20.0, 30.0):
            camera.fps = fps
            camera.play("photo")
            screen = _enter_face(app, runtime)
            _loop_for(1.5)  # the camera and the detector warm up
            step = screen._step
            blits, flips0, frames0 = screen.blitted, flips[0], step.stats.preview_frames
            analysed0, analysis0 = step.stats.analysed_frames, step.stats.analysis_s
            began = time.monotonic()
            _loop_for(MEASURE_S)
            took = time.monotonic() - began
            analysed = step.stats.analysed_frames - analysed0
            results["preview"].append({
                "camera_fps": fps, "blitted_fps": round((screen.blitted - blits) / took, 1),
                "redraws_fps": round((flips[0] - flips0) / took, 1),
                "step_preview_fps": round((step.stats.preview_frames - frames0) / took, 1),
                "analysed_fps": round(analysed / took, 1),
                "analysis_ms": round((step.stats.analysis_s - analysis0) / max(1, analysed) * 1000, 1)})
            if fps == 20.0:
                results["touch_ms"] = _touch_latencies(driver, Window, flip_times)
                screen._stop_try()  # the same screen without its camera: what the preview costs a touch
                _loop_for(1.0)
                results["touch_still_ms"] = _touch_latencies(driver, Window, flip_times)
            app.end_session("cancel")
            _loop_for(0.5)
        camera.fps = 20.0
        camera.play("approach")
        for _ in range(3):
            screen = _enter_face(app, runtime)
            handed: list[float] = []
            real_finished = screen._finished
            screen._finished = lambda token, outcome, f=real_finished: (handed.append(time.monotonic()),
                                                                         f(token, outcome))
            deadline = time.monotonic() + 30
            while not handed and time.monotonic() < deadline:
                _loop_for(0.1)
            step = screen._step
            placed = step.stats.first_placed_at if step is not None else None
            if handed and placed is not None:
                results["centred_to_capture_s"].append(round(handed[0] - placed, 2))
            del screen._finished
            _loop_for(1.0)
            app.end_session("cancel")
            _loop_for(0.5)
    finally:
        driver.stop()
        runtime.close()
    print(json.dumps(results))


def figures() -> dict[str, Any]:
    """Run the child and return its figures."""
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_LOG_MODE": "PYTHON"}
    child = subprocess.run([sys.executable, "-m", "benchmarks.bench_face_screen", "--child"], env=env,
                           capture_output=True, text=True, timeout=600)
    line = next((ln for ln in child.stdout.splitlines() if ln.startswith("{")), None)
    if child.returncode != 0 or line is None:
        raise RuntimeError(f"the face screen benchmark child failed: {child.stderr[-2000:]}")
    return json.loads(line)


def main() -> None:
    """Print the figures."""
    f = figures()
    for p in f["preview"]:
        print(f"   face screen, camera at {p['camera_fps']:2.0f}/s: {p['blitted_fps']:5.1f} frames/s blitted in the oval"
              f" ({p['redraws_fps']:.1f} window redraws/s; step {p['step_preview_fps']:.1f} preview,"
              f" {p['analysed_fps']:.1f} analysed/s at {p['analysis_ms']:.0f} ms)")
    touch = f.get("touch_ms") or []
    if touch:
        print(f"   face screen, finger lifted off 拍照 to the next frame drawn while the preview runs: median"
              f" {statistics.median(touch):.0f} ms, max {max(touch):.0f} ms (n={len(touch)})")
    still = f.get("touch_still_ms") or []
    if still:
        print(f"   face screen, the same with the camera stopped (no preview):            median"
              f" {statistics.median(still):.0f} ms, max {max(still):.0f} ms (n={len(still)})")
    waits = f["centred_to_capture_s"]
    if waits:
        print(f"   face screen, centred face to the capture handed on (approach): median {statistics.median(waits):.2f} s,"
              f" max {max(waits):.2f} s (n={len(waits)})")
    else:
        print("   face screen, centred face to capture: no capture")


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        main()
