"""Voice guidance on screens: from a screen appearing to its first audio sample at the output, cached and uncached.

A child process runs the kiosk offscreen with the real SDL speaker driver playing into SDL's
``disk`` output (what a sound card would get, written in real time). For each of a dozen
items the guide screen is shown (``app.go``, the moment it appears) and a watcher reading
the output file notes the first non-silent sample of what the screen says. "Uncached": the
first time each guide appears (its item name, fee and time never rendered before);
"cached": the same guides shown again, as the next resident hears them. Figures are
printed, never asserted.
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

ROUNDS = 12


def _child() -> None:
    """In the child: the app on the SDL disk speaker; show guides and time their first samples."""
    out = Path(tempfile.mkdtemp(prefix="kiosk-bench-voice-"))
    raw = out / "card.raw"
    os.environ.update({"SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(out / "kivy"),
                       "SDL_AUDIODRIVER": "disk", "SDL_DISKAUDIOFILE": str(raw)})
    from benchmarks.bench_speech import _OutputWatcher
    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.config import from_dict
    from kiosk.demo.driver import UiDriver

    cfg = from_dict({"paths": {"state_dir": str(out / "state")}, "speech": {"warm_up": False},
                     "devices": {"speaker": {"driver": "sdl"}}})
    prepare_kivy(cfg.ui, headless=True)
    runtime = build_runtime(cfg)
    driver = UiDriver(KioskApp(runtime, cfg))
    driver.start()
    watcher = _OutputWatcher(raw)
    speech = runtime.speech
    app = driver.app
    results: dict[str, list[float]] = {"uncached": [], "cached": []}
    try:
        items = [item.id for item in runtime.catalog.items][:ROUNDS]
        for kind in ("uncached", "cached"):
            for item_id in items:
                speech.interrupt()
                speech.wait_idle(30)
                driver.wait_seconds(0.1)  # silence on the output between screens
                app.item = runtime.catalog.get(item_id)
                watcher.arm()
                app.go("guide")  # the screen appears; speech starts on the next frame
                deadline = time.monotonic() + 10
                while not watcher._heard.is_set() and time.monotonic() < deadline:
                    driver.pump()
                    time.sleep(0.001)
                results[kind].append(watcher.wait(0.1))
                app.go("home")
    finally:
        watcher.stop()
        driver.stop()
        runtime.close()
    print(json.dumps({kind: [round(v, 1) for v in values] for kind, values in results.items()}))


def figures() -> dict[str, dict[str, float]]:
    """Run the child; ``screen_first_sample_ms`` medians and maxima, cached and uncached."""
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_LOG_MODE": "PYTHON"}
    child = subprocess.run([sys.executable, "-m", "benchmarks.bench_voice_screens", "--child"], env=env,
                           capture_output=True, text=True, timeout=600)
    line = next((ln for ln in child.stdout.splitlines() if ln.startswith("{")), None)
    if child.returncode != 0 or line is None:
        raise RuntimeError(f"the voice screen benchmark child failed: {child.stderr[-2000:]}")
    values = {k: [x for x in v if x == x] for k, v in json.loads(line).items()}  # NaN: never heard
    return {"screen_first_sample_ms": {k: round(statistics.median(v), 1) for k, v in values.items() if v},
            "screen_first_sample_max_ms": {k: round(max(v), 1) for k, v in values.items() if v}}


def main() -> None:
    """Print the figures."""
    f = figures()
    med, worst = f["screen_first_sample_ms"], f["screen_first_sample_max_ms"]
    print(f"voice: screen appears -> first sample at the output (SDL disk driver, {ROUNDS} guide screens): "
          f"cached median {med.get('cached')} ms (max {worst.get('cached')}), "
          f"uncached median {med.get('uncached')} ms (max {worst.get('uncached')})")
    print("screen_first_sample_ms " + json.dumps(med))


if __name__ == "__main__":
    if "--child" in sys.argv:
        _child()
    else:
        main()
