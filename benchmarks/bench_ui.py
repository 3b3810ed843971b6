"""Touch UI figures: offscreen frames per second, memory over screen transitions, seconds per H01.

Kivy opens one window per process and must be configured before it is imported, so the
measurements run in child processes; this module only starts them and prints what they
report.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FPS_SECONDS = 5.0
TRANSITIONS = (0, 50, 150, 300)
H01_RUNS = 3


def _rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child() -> None:
    """In the child: run the app offscreen, count frames, walk screens and watch memory."""
    os.environ.update({"SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": tempfile.mkdtemp(prefix="kiosk-bench-kivy-")})
    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.config import from_dict
    from kiosk.demo.driver import UiDriver

    state = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    cfg = from_dict({"paths": {"state_dir": str(state)}})
    prepare_kivy(cfg.ui, headless=True)
    from kivy.config import Config

    Config.set("graphics", "maxfps", "0")  # as fast as the renderer goes
    runtime = build_runtime(cfg)
    driver = UiDriver(KioskApp(runtime, cfg))
    driver.start()
    try:
        from kivy.clock import Clock
        from kivy.core.window import Window

        app = driver.app
        driver.wait_until(lambda: app.availability > 0, "the first availability check")
        frames = 0

        def count(*_args: object) -> None:
            nonlocal frames
            frames += 1

        Window.bind(on_flip=count)
        started = time.perf_counter()
        while time.perf_counter() - started < FPS_SECONDS:
            Window.canvas.ask_update()  # a full redraw each frame, as an animated screen needs
            driver.pump()
        fps = frames / (time.perf_counter() - started)
        Window.unbind(on_flip=count)
        print(json.dumps({"fps_full_redraw": round(fps, 1)}), flush=True)

        item = runtime.catalog.get("H01")
        app.list_items = runtime.catalog.in_category(item.category)
        cycle = ("category", "guide", "home")
        done = 0
        for target in TRANSITIONS:
            while done < target:
                name = cycle[done % len(cycle)]
                if name == "guide":
                    app.item = item
                app.go(name)
                driver.pump(2)
                done += 1
            Clock.tick()
            print(json.dumps({"transitions": done, "rss_mib": round(_rss_mib(), 1)}), flush=True)
    finally:
        driver.stop()
        runtime.close()


def main() -> None:
    """Print frames/s, RSS after N screen transitions, and seconds per H01 demo flow."""
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_LOG_MODE": "PYTHON"}
    child = subprocess.run([sys.executable, "-m", "benchmarks.bench_ui", "--child"], env=env,
                           capture_output=True, text=True, timeout=600)
    for line in child.stdout.splitlines():
        if not line.startswith("{"):
            continue
        figure = json.loads(line)
        if "fps_full_redraw" in figure:
            print(f"ui: {figure['fps_full_redraw']:.1f} frames/s offscreen 1080x1920, full redraw each frame")
        else:
            print(f"ui: RSS {figure['rss_mib']:.1f} MiB after {figure['transitions']} screen transitions")
    if child.returncode != 0:
        print(child.stderr[-2000:])
        raise RuntimeError("the UI benchmark child failed")
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-demo-") as out:
        demo = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--out", out,
                               "--flow", *(["H01"] * H01_RUNS)],
                              env={**env, "SDL_VIDEODRIVER": "offscreen"}, capture_output=True, text=True,
                              timeout=900)
        flows = json.loads((Path(out) / "summary.json").read_text(encoding="utf-8"))["flows"]
    seconds = [flow["seconds"] for flow in flows if flow["outcome"] == "completed"]
    for n, flow in enumerate(flows, 1):
        print(f"ui: H01 flow {n}: {flow['outcome']} in {flow['seconds']:.1f} s "
              f"({flow['touches_after_identity']} touches after the card)")
    if seconds:
        print(f"ui: H01 mean {sum(seconds) / len(seconds):.1f} s per flow over {len(seconds)} runs "
              "(includes the scripted resident's pauses)")
    if demo.returncode != 0:
        print(demo.stderr[-2000:])


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        main()
