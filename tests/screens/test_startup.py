"""Work held until the first frame (kiosk.screens.startup.FirstFrame), and the app that uses it.

A job handed over before the first frame must not run before it (its thread would slow the frame),
must run right after it, once, and one handed over later must still run.
"""
from __future__ import annotations

from typing import Any, Callable

from kiosk.screens.startup import FirstFrame


class FakeWindow:
    """Just the window's on_flip binding."""

    def __init__(self) -> None:
        self.handlers: list[Callable[..., Any]] = []

    def bind(self, on_flip: Callable[..., Any]) -> None:
        self.handlers.append(on_flip)

    def unbind(self, on_flip: Callable[..., Any]) -> None:
        self.handlers.remove(on_flip)

    def flip(self) -> None:
        for handler in list(self.handlers):
            handler(self)


def _tick() -> None:
    from kivy.clock import Clock

    Clock.tick()


def test_jobs_wait_for_the_first_frame_then_run_once() -> None:
    window = FakeWindow()
    ran: list[str] = []
    first = FirstFrame()
    first.watch(window)
    first.then(lambda: ran.append("a"))
    first.then(lambda: ran.append("b"))
    _tick()
    assert ran == [] and not first.drawn  # nothing before the frame
    window.flip()
    assert ran == [] and first.drawn  # not inside the flip either: the frame goes out first
    _tick()
    assert ran == ["a", "b"]
    window.flip()
    _tick()
    assert ran == ["a", "b"] and window.handlers == []  # once


def test_a_job_handed_over_after_the_first_frame_runs_at_the_next_tick() -> None:
    window = FakeWindow()
    ran: list[str] = []
    first = FirstFrame()
    first.watch(window)
    window.flip()
    _tick()
    first.then(lambda: ran.append("late"))
    _tick()
    assert ran == ["late"]


def test_a_failing_job_does_not_keep_the_others_from_starting() -> None:
    window = FakeWindow()
    ran: list[str] = []
    first = FirstFrame()
    first.watch(window)
    first.then(lambda: 1 / 0)
    first.then(lambda: ran.append("after"))
    window.flip()
    _tick()
    assert ran == ["after"]


def test_the_running_app_started_its_background_work_after_its_first_frame(kiosk_ui: Any) -> None:
    app = kiosk_ui.app
    assert app.first_frame.drawn
    assert app.availability > 0  # the first availability check was started by the first frame
    assert app.runtime.backend_up()


def test_the_first_screen_is_said_once_the_first_frame_is_out() -> None:
    from kiosk.screens.voice import VoiceGuide

    class App:
        def __init__(self) -> None:
            self.first_frame = FirstFrame()
            self.said: list[str] = []

        def announce_screen(self, name: str) -> None:
            self.said.append(name)

    app, window = App(), FakeWindow()
    app.first_frame.watch(window)
    VoiceGuide.voice_screen_changed(app, "home")  # type: ignore[arg-type]
    _tick()
    assert app.said == []  # its rendering (pypinyin, espeak) would share the interpreter with the first frame
    window.flip()
    _tick()
    assert app.said == ["home"]
    VoiceGuide.voice_screen_changed(app, "guide")  # type: ignore[arg-type]
    assert app.said == ["home", "guide"]  # later screens are said at once, before their frame


class RestingApp:
    """What the screen warmer reads of the app: home or not, a visit, a service call, seconds since a touch."""

    def __init__(self, fail: str = "") -> None:
        from types import SimpleNamespace

        self.sm = SimpleNamespace(current="home")
        self.availability = 0  # no availability answer yet
        self.txn: object | None = None
        self.busy = False
        self.still_s = 5.0
        self.built: list[str] = []
        self.fail = fail

    def attract_idle_s(self) -> float:
        return self.still_s

    def screen(self, name: str) -> None:
        if name == self.fail:
            raise RuntimeError("cannot build")
        self.built.append(name)


def test_the_warmer_builds_a_visits_screens_one_a_tick_and_only_at_rest(monkeypatch: Any) -> None:
    import gc

    from kiosk.screens import startup

    monkeypatch.setattr(startup, "WARM_RETRY_S", 0)  # the retry comes at the next tick instead of a second later
    app = RestingApp()
    # Held by nobody but the clock.
    startup.ScreenWarmer(app, ("guide", "identify", "form", "confirm"), printing=False).start()
    gc.collect()
    _tick()
    _tick()
    assert app.built == []  # the first availability answer goes first
    app.availability = 1
    _tick()
    assert app.built == ["guide"]
    app.sm.current, app.txn = "guide", object()  # a resident came: nothing is built under their fingers
    for _ in range(3):
        _tick()
    assert app.built == ["guide"]
    app.sm.current, app.txn, app.still_s = "home", None, 0.2  # back home, but touched a moment ago
    _tick()
    assert app.built == ["guide"]
    app.still_s = startup.WARM_STILL_S
    _tick()
    _tick()
    assert app.built == ["guide", "identify", "form"]
    _tick()
    _tick()
    assert app.built == ["guide", "identify", "form", "confirm"]  # and then it stops


def test_the_warmer_loads_the_printing_once_after_the_screens_and_only_at_rest(monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from kiosk.screens import startup

    monkeypatch.setattr(startup, "WARM_RETRY_S", 0)
    app = RestingApp()
    app.availability = 1
    warmed: list[list[str]] = []
    app.runtime = SimpleNamespace(engine=SimpleNamespace(printing=SimpleNamespace(  # type: ignore[attr-defined]
        warm_up=lambda: warmed.append(list(app.built)))))
    startup.ScreenWarmer(app, ("guide", "form")).start()
    _tick()
    _tick()
    app.txn = object()  # a resident: the specimen is not rendered under their fingers
    _tick()
    _tick()
    assert warmed == []
    app.txn = None
    for _ in range(4):
        _tick()
    assert warmed == [["guide", "form"]]  # once, after the screens


def test_a_screen_the_warmer_cannot_build_does_not_stop_the_others() -> None:
    from kiosk.screens import startup

    app = RestingApp(fail="form")
    app.availability = 1
    startup.ScreenWarmer(app, ("identify", "form", "confirm"), printing=False).start()
    for _ in range(4):
        _tick()
    assert app.built == ["identify", "confirm"]  # form is built (and fails visibly) when a visit asks for it


def test_the_running_app_builds_a_visits_screens_while_it_stands_at_rest(ui: Any) -> None:
    from kiosk.screens.startup import WARM_SCREENS

    ui.wait_until(lambda: all(ui.app.sm.has_screen(name) for name in WARM_SCREENS), "every visit's screen", 30)
    assert ui.current == "home"
