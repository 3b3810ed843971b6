"""Start-up: process spawn to the first frame drawn with the home screen, the kiosk beside a bare Kivy app.

Each measurement is a fresh child process (``sys.executable -m benchmarks.bench_startup --child ...``),
timed from just before its spawn to the first ``Window.on_flip`` once its first screen is on show:
the kiosk as ``kiosk run --headless`` assembles it (demo profile, offscreen, 1080x1920:
``prepare_kivy``, ``build_runtime``, ``KioskApp``; after the first frame monitoring, speech warm-up
and heartbeat) and a bare two-screen Kivy app (a ScreenManager with two Screens, a Label each) in a window configured the same
(size, offscreen driver, maxfps, no multisampling: :func:`kiosk_window`). They run alternately, kiosk
then bare, ROUNDS times, and the medians are reported, so a loaded machine slows both alike and their
ratio holds.
The kiosk child goes on to its first availability answer (``app.availability`` > 0: the backend was asked,
the embedded simulator built), ``ready_s`` from the same spawn, with its peak RSS by then: what start-up left
until after the first frame shows there.
Each child prints its figure as one JSON line on stdout. Figures are printed, never asserted.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROUNDS = 5
CHILD_TIMEOUT_S = 300
READY_LIMIT_S = 60.0  # a kiosk child whose first availability answer has not come by then reports ready_s null
KIVY_ENV = {"KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1", "KIVY_LOG_MODE": "PYTHON",
            "SDL_VIDEODRIVER": "offscreen"}


def peak_rss_mib() -> float | None:
    """This process's peak resident set so far (VmHWM of /proc/self/status), MiB; None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def kiosk_as_run(cfg: Any) -> tuple[Any, Any, Any]:
    """The kiosk as ``kiosk run --headless`` assembles it (kiosk.run.run_kiosk) on ``cfg``: (runtime, app,
    heartbeat). The metrics server is left out: the demo profile does not serve it. Monitoring, speech
    warm-up and the heartbeat start after the first frame, as there (kiosk.run.start_in_background)."""
    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.run import start_in_background
    from kiosk.services.heartbeat import HeartbeatSender

    prepare_kivy(cfg.ui, headless=True)
    runtime = build_runtime(cfg, defer_sim=True)
    app = KioskApp(runtime, cfg)
    heartbeat = HeartbeatSender.from_runtime(runtime, app.command_handler(), None, max_queue=cfg.heartbeat.queue_max)
    start_in_background(app, runtime, heartbeat, cfg)
    return runtime, app, heartbeat


def _on_first_frame(app: Any, shown: Any, spawned: float, extra: Any, ready: Any = None) -> None:
    """From the app's start: at the first flip with ``shown()`` true, take the figure; print it and stop the app
    then, or (with ``ready``) once ``ready()`` is true, adding ``ready_s`` and ``ready_peak_rss_mib``."""
    from kivy.clock import Clock
    from kivy.core.window import Window

    def done(figure: dict[str, Any]) -> None:
        print(json.dumps(figure), flush=True)
        Clock.schedule_once(lambda _dt: app.stop())

    def flip(*_args: Any) -> None:
        if not shown():
            return
        figure = {"start_s": round(time.monotonic() - spawned, 3), **extra()}
        Window.unbind(on_flip=flip)
        if ready is None:
            done(figure)
            return

        def poll(_dt: float) -> bool:
            if time.monotonic() - spawned > READY_LIMIT_S or ready():
                done({**figure, "ready_s": round(time.monotonic() - spawned, 3) if ready() else None,
                      "ready_peak_rss_mib": peak_rss_mib()})
                return False
            return True
        Clock.schedule_interval(poll, 0.02)

    app.bind(on_start=lambda *_a: Window.bind(on_flip=flip))


def _kiosk_child(spawned: float, state: Path) -> None:
    """In the child: the kiosk until its first frame with the home screen on show."""
    from kiosk.config import from_dict

    runtime, app, heartbeat = kiosk_as_run(from_dict({"paths": {"state_dir": str(state)}}))  # the demo profile

    def home() -> bool:
        return app.sm is not None and app.sm.current == "home" and not app.sm.transition.is_active

    def ready() -> bool:  # the first availability answer: the backend asked, the simulator built
        return bool(app.availability > 0)
    _on_first_frame(app, home, spawned, lambda: {"peak_rss_mib": peak_rss_mib()}, ready)
    try:
        app.run()
    finally:
        heartbeat.stop()
        runtime.close()


def kiosk_window() -> dict[str, str]:
    """The graphics settings ``kiosk.app.prepare_kivy`` gives the kiosk's headless window (demo profile), for the
    bare app: read here, in the parent, so the bare child imports nothing of the kiosk."""
    from kiosk.config import from_dict

    ui = from_dict({}).ui
    # [ui] maxfps where the config has it; prepare_kivy's fixed 30 before it did.
    return {"width": str(ui.width), "height": str(ui.height), "fullscreen": "0", "resizable": "0",
            "maxfps": str(getattr(ui, "maxfps", 30)), "multisamples": "0"}


def _bare_child(spawned: float, window: dict[str, str]) -> None:
    """In the child: a two-screen Kivy app until its first frame with the first screen on show."""
    from kivy.config import Config

    for key, value in window.items():
        Config.set("graphics", key, value)
    from kivy.app import App
    from kivy.uix.label import Label
    from kivy.uix.screenmanager import Screen, ScreenManager

    class Bare(App):
        def build(self) -> Any:
            self.sm = ScreenManager()
            for name in ("first", "second"):
                screen = Screen(name=name)
                screen.add_widget(Label(text=f"the {name} screen"))
                self.sm.add_widget(screen)
            return self.sm

    app = Bare()

    def first() -> bool:
        sm = getattr(app, "sm", None)
        return sm is not None and sm.current == "first" and not sm.transition.is_active
    _on_first_frame(app, first, spawned, lambda: {"peak_rss_mib": peak_rss_mib()})
    app.run()


def _measure(kind: str, workdir: Path, n: int, window: dict[str, str]) -> dict[str, Any]:
    """One fresh child of ``kind`` ("kiosk" or "bare"); its figure (start_s, peak_rss_mib)."""
    kivy_home = workdir / f"kivy-{kind}-{n}"
    what = str(workdir / f"state-{n}") if kind == "kiosk" else json.dumps(window)
    env = {**{k: v for k, v in os.environ.items() if k not in ("KIOSK_CONFIG", "PYTHONMALLOC")}, **KIVY_ENV,
           "KIVY_HOME": str(kivy_home)}
    if kind == "kiosk":  # on the allocator kiosk.service gives it; the bare app on Python's default
        from kiosk.services.heap import PYTHON_ALLOCATOR  # here: the children import this module too

        env["PYTHONMALLOC"] = PYTHON_ALLOCATOR
    spawned = time.monotonic()
    child = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_startup", "--child", kind, repr(spawned), what],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()  # SDL turns SIGTERM into a window close, which the kiosk refuses
        child.communicate()
        raise RuntimeError(f"the {kind} start-up child did not finish in {CHILD_TIMEOUT_S} s") from None
    figures = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not figures:
        raise RuntimeError(f"the {kind} start-up child reported nothing (exit {child.returncode}): {err[-2000:]}")
    return figures[-1]


def compile_sources() -> None:
    """Byte-compile the kiosk's own packages, as a deployed kiosk has them: its release is pip-installed from a
    wheel, which writes each module's bytecode (provisioning/update/release_env.py). A checkout run with
    PYTHONDONTWRITEBYTECODE (this machine's environment) otherwise compiles ~100 modules from source at every
    start, 0.1–0.2 s of CPU the bare Kivy app, loading Kivy's installed bytecode, does not spend."""
    import compileall

    root = Path(__file__).resolve().parent.parent
    for package in ("kiosk", "print_templates"):
        compileall.compile_dir(str(root / package), quiet=1)


def figures(rounds: int = ROUNDS) -> dict[str, Any]:
    """Alternate kiosk and bare children ``rounds`` times (the kiosk's bytecode compiled first); the medians and
    every round's figures."""
    compile_sources()
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-startup-"))
    window = kiosk_window()
    kiosk: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    try:
        for n in range(rounds):
            kiosk.append(_measure("kiosk", workdir, n, window))
            bare.append(_measure("bare", workdir, n, window))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    kiosk_s = [f["start_s"] for f in kiosk]
    bare_s = [f["start_s"] for f in bare]
    kiosk_rss = [f["peak_rss_mib"] for f in kiosk if f.get("peak_rss_mib") is not None]
    ready_s = [f["ready_s"] for f in kiosk if f.get("ready_s") is not None]
    ready_rss = [f["ready_peak_rss_mib"] for f in kiosk if f.get("ready_peak_rss_mib") is not None]
    return {"start_s": round(statistics.median(kiosk_s), 3),
            "bare_kivy_start_s": round(statistics.median(bare_s), 3),
            "start_rounds_s": {"kiosk": kiosk_s, "bare": bare_s},
            "first_frame_peak_rss_mib": round(statistics.median(kiosk_rss), 1) if kiosk_rss else None,
            "bare_peak_rss_mib": statistics.median(f["peak_rss_mib"] for f in bare) if bare else None,
            "ready_s": round(statistics.median(ready_s), 3) if len(ready_s) == len(kiosk) else None,
            "ready_peak_rss_mib": round(statistics.median(ready_rss), 1) if ready_rss else None}


def main() -> dict[str, Any]:
    """Print the start-up figures; return them for bench.json."""
    f = figures()
    print(f"start-up to the first frame with the home screen, offscreen 1080x1920 ({ROUNDS} alternated rounds):")
    print(f"   kiosk (as `kiosk run --headless`)   median {f['start_s']:.2f} s   rounds {f['start_rounds_s']['kiosk']}")
    print(f"   bare two-screen Kivy app           median {f['bare_kivy_start_s']:.2f} s   "
          f"rounds {f['start_rounds_s']['bare']}")
    print(f"   kiosk / bare: {f['start_s'] / f['bare_kivy_start_s']:.1f}x; peak RSS at the first frame: kiosk "
          f"{f['first_frame_peak_rss_mib']} MiB, bare {f['bare_peak_rss_mib']} MiB")
    print(f"   kiosk's first availability answer (monitoring, simulator, warm-ups started after the first frame): "
          f"median {f['ready_s']} s, peak RSS by then {f['ready_peak_rss_mib']} MiB")
    return f


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        if sys.argv[2] == "kiosk":
            _kiosk_child(float(sys.argv[3]), Path(sys.argv[4]))
        else:
            _bare_child(float(sys.argv[3]), json.loads(sys.argv[4]))
    else:
        main()
