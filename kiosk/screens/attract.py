"""The attract screen an empty hall sees, and the header's pixel shift against burn-in.

After ``ui.attract_after_s`` without a touch on the home screen (no visit under way, no call
for help, nothing running), a layer over home shows the station's name and "请触摸屏幕开始"
drifting slowly on black, in the station's own language (Chinese first: the last resident's
English goes with them), and the backlight is dimmed (kiosk.hardware.backlight) where the
display has one. The first touch or key (the keypad's included) takes the layer away at once,
puts the brightness back, and does nothing else: the touch that wakes the screen never reaches
the tile under it, the key never moves the keypad's focus.

The layer is not a screen of the screen manager: home stays the current screen beneath it, so
the idle timers, care mode's return to the default and the out-of-service switch run exactly
as they do without it. :class:`AttractMode` is mixed into the app; like the other mixins this
module imports no Kivy widget at load (the app imports it before the window exists).
"""
from __future__ import annotations

import atexit
import logging
import time
from pathlib import Path
from typing import Any, Callable

from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty

from kiosk.screens.pace import FramePace
from kiosk.services.screen_care import Drift, attract_due, pixel_shift

log = logging.getLogger(__name__)

KV_FILE = Path(__file__).with_name("attract.kv")
TICK_S = 0.5  # how often the idle time is looked at
DRIFT_EVERY_S = 0.5  # the text moves this often (a software renderer redraws only then) ...
DRIFT_STEP_PX = 6  # ... by this much: about 12 px a second, slow enough to read
HELP_UNDER_WAY = frozenset({"asking", "calling", "open"})
BACKLIGHT_FILE = "backlight.json"  # the level before dimming, while dimmed (kiosk.hardware.backlight)


def _layer_class() -> type:
    """The layer's widget class (made on first use: no widget module is imported at load)."""
    from kivy.factory import Factory
    from kivy.uix.floatlayout import FloatLayout

    if "AttractLayer" in Factory.classes:
        return Factory.get("AttractLayer")

    from kiosk.screens.base import DrawnOnlyWhenSeen

    class AttractLayer(DrawnOnlyWhenSeen, FloatLayout):
        """The full-window attract layer; while ``shown`` it takes every touch, and the first one ends it."""

        shown = BooleanProperty(False)

        def on_touch_down(self, touch: Any) -> bool:
            """The waking touch: leave the attract screen and keep the touch from what lies beneath."""
            if not self.shown:
                return False
            touch.ud["attract_woke"] = True
            touch.grab(self)
            from kivy.app import App

            App.get_running_app().attract_leave()
            return True

        def on_touch_move(self, touch: Any) -> bool:
            """Moves of the waking touch go nowhere."""
            return self.shown or bool(touch.ud.get("attract_woke"))

        def on_touch_up(self, touch: Any) -> bool:
            """The waking touch's release goes nowhere either (no button beneath sees it)."""
            if touch.grab_current is self:
                touch.ungrab(self)
                return True
            return self.shown or bool(touch.ud.get("attract_woke"))

    Factory.register("AttractLayer", cls=AttractLayer)
    return AttractLayer


class AttractMode:
    """Mixed into the KioskApp: the attract layer, the backlight it dims, and the header's pixel shift."""

    attract_shown = BooleanProperty(False)
    header_shift = ListProperty([0, 0])  # (dx, dy) in pixels; the Header rule (common.kv) moves by it

    attract_layer: Any = None
    backlight: Any = None
    shift_clock: Callable[[], float] | None = None  # seconds, monotonic; tests set their own
    _shift_origin = 0.0
    _waking_key: int | None = None
    _drift_event: Any = None
    pace: Any = None  # kiosk.screens.pace.FramePace, from attract_start
    _drift = Drift(0.0, 0.0, DRIFT_STEP_PX, DRIFT_STEP_PX)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.bind(on_start=lambda *_a: self.attract_start(), on_stop=lambda *_a: self.attract_stop())

    def attract_start(self) -> None:
        """Put the layer over every other, listen to keys before the keypad does, start the clocks."""
        from kivy.core.window import Window
        from kivy.lang import Builder

        from kiosk.hardware.backlight import Backlight

        ui = self.kiosk_config.ui
        self.backlight = Backlight(ui.backlight_dir, remember=self.runtime.state_dir / BACKLIGHT_FILE)
        self.backlight.recover()  # the level a kiosk that died while dimmed could not put back
        atexit.register(self.attract_stop)  # an exit that skips on_stop still gives the level back
        if self.attract_layer is None:
            _layer_class()
            Builder.load_file(str(KV_FILE))
            from kivy.factory import Factory

            self.attract_layer = Factory.AttractLayer()
            self.root.add_widget(self.attract_layer)  # added last: drawn on top, offered every touch first
        # Bound after the keypad (build): Kivy calls the last bound first, so a waking key goes no further.
        Window.bind(on_key_down=self._attract_key_down, on_key_up=self._attract_key_up)
        # The full frame rate from the frame that reads a touch or key (the window sees them before any widget).
        self.pace = FramePace(Clock, ui.maxfps, ui.idle_maxfps)
        Window.fbind("on_touch_down", lambda *_a: self.pace.touched())
        Window.fbind("on_key_down", lambda *_a, **_k: self.pace.touched())
        if self.shift_clock is None:
            self.shift_clock = Clock.get_boottime
        self._shift_origin = self.shift_clock()
        Clock.schedule_interval(self._attract_tick, TICK_S)
        Clock.schedule_interval(lambda _dt: self.update_pixel_shift(), min(ui.pixel_shift_every_s / 4, 60.0))

    def attract_stop(self) -> None:
        """The kiosk stops: the display gets its brightness back."""
        if self.backlight is not None:
            self.backlight.restore()

    # --- coming and going --------------------------------------------------------------------
    def attract_idle_s(self) -> float:
        """Seconds since the last touch (or key, or new screen), on the monotonic clock: Kivy's boottime stands
        still until its clock ticks, so a presence read while the app was built jumped by the whole time since
        Kivy was imported at the first frame (the kiosk opened on the attract screen)."""
        return time.monotonic() - self._last_presence

    def _resident_present(self) -> bool:
        return (self.txn is not None or self.busy or self.idle_warning
                or getattr(self, "help_status", "") in HELP_UNDER_WAY)

    def _attract_tick(self, _dt: float) -> None:
        on_home = self.sm is not None and self.sm.current == "home"
        self.pace.tick(self.attract_idle_s(), on_home and not self._resident_present())
        if self.attract_shown:
            if not on_home or self._resident_present():  # out of service, a remote command: not for an empty hall
                self.attract_leave()
            return
        if attract_due(self.attract_idle_s(), self.kiosk_config.ui.attract_after_s, on_home=on_home,
                       resident_present=self._resident_present()):
            self.attract_show()

    def attract_show(self) -> None:
        """Show the attract layer over home, in the station's language, and dim the backlight."""
        if self.attract_shown or self.attract_layer is None:
            return
        ui = self.kiosk_config.ui
        self.lang = ui.language  # Chinese first: whoever comes next meets the station's language
        self.voice_interrupt()
        self._release_touched_field()  # a search box left focused must not take a keypad's digits
        self.attract_layer.shown = self.attract_shown = True
        layer, box = self.attract_layer, self.attract_layer.ids.drift_box
        self._drift = Drift(max(layer.width - box.width, 0) / 2, max(layer.height - box.height, 0) / 2,
                            DRIFT_STEP_PX, DRIFT_STEP_PX)  # from the middle of the screen
        self._drift_step()
        self._drift_event = Clock.schedule_interval(lambda _dt: self._drift_step(), DRIFT_EVERY_S)
        dimmed = self.backlight is not None and self.backlight.dim(ui.attract_brightness)
        log.info("attract screen on after %.0f s without a touch (backlight %s)", self.attract_idle_s(),
                 "dimmed" if dimmed else "unchanged")

    def attract_leave(self) -> None:
        """Take the attract layer away (in this frame) and give the backlight its level back."""
        if not self.attract_shown:
            return
        self.attract_layer.shown = self.attract_shown = False
        if self._drift_event is not None:
            self._drift_event.cancel()
            self._drift_event = None
        if self.backlight is not None:
            self.backlight.restore()
        self.touched()
        log.info("attract screen off")

    def _drift_step(self) -> None:
        layer = self.attract_layer
        box = layer.ids.drift_box
        self._drift = self._drift.step(box.width, box.height, layer.width, layer.height)
        box.pos = (layer.x + self._drift.x, layer.y + self._drift.y)

    # --- keys ------------------------------------------------------------------------------------
    def _attract_key_down(self, _window: Any, key: int, *_args: Any, **_kwargs: Any) -> bool:
        if not self.attract_shown:
            return False
        self._waking_key = key
        self.attract_leave()
        return True

    def _attract_key_up(self, _window: Any, key: int, *_args: Any, **_kwargs: Any) -> bool:
        if key != self._waking_key:
            return False
        self._waking_key = None
        return True

    # --- the header's pixel shift ----------------------------------------------------------------
    def update_pixel_shift(self) -> tuple[int, int]:
        """Move the header to its offset for the time now (``shift_clock``); returns (dx, dy)."""
        ui = self.kiosk_config.ui
        clock = self.shift_clock or Clock.get_boottime
        shift = pixel_shift(clock() - self._shift_origin, ui.pixel_shift_every_s, ui.pixel_shift_px)
        if list(shift) != list(self.header_shift):
            self.header_shift = list(shift)
        return shift
