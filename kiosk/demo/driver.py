"""The touch driver: runs a KioskApp frame by frame and touches it through Kivy's input path.

The kiosk runs offscreen (SDL ``offscreen`` driver, no X server) with its real services.
A scripted resident touches buttons the way a finger would: a MotionEvent at the button's
window coordinates, queued on an input provider that the event loop reads like any other
touch device. A button that is covered or scrolled out of sight therefore does not get
the touch, and the flow fails. The UI tests drive the app with :class:`UiDriver` too.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import kiosk.app  # noqa: F401  (sets the Kivy environment before Kivy is imported)
from kiosk.errors import KioskError

log = logging.getLogger(__name__)

STEP_TIMEOUT_S = 30.0
GRAB_TIMEOUT_S = 10.0  # a frame asked for to grab comes with the next pass of the loop
# While waiting, the driver naps between frames so the worker thread doing the service
# call (rendering a PDF, talking to the backend) gets the interpreter.
IDLE_NAP_S = 0.03
LIST_HOLD_S = 0.3  # a finger on a list: past ScrollView's scroll_timeout (200 ms), so the entry beneath takes it


class DemoError(KioskError):
    """The scripted resident could not go on (a button did not take the touch, a screen never came)."""

    code = "demo_failed"


class WidgetGone(DemoError):
    """The widget left the screen before the touch: its list was redrawn (an availability change refills
    a list), so a resident looks again and touches the new entry."""


# --- touches through the input path ----------------------------------------------------
def _touch_classes() -> tuple[type, type]:
    from kivy.input.motionevent import MotionEvent
    from kivy.input.provider import MotionEventProvider

    class ScriptedTouch(MotionEvent):
        """A finger at normalised window coordinates (0..1, origin bottom left)."""

        def __init__(self, device: str, uid: int, args: tuple[float, float]) -> None:
            super().__init__(device, uid, args, is_touch=True, type_id="touch")

        def depack(self, args: tuple[float, float]) -> None:
            self.sx, self.sy = args
            self.profile = ["pos"]
            super().depack(args)

    class ScriptedTouchProvider(MotionEventProvider):
        """An input device the event loop polls each frame, fed by the scripted resident."""

        def __init__(self, device: str, args: str) -> None:
            super().__init__(device, args)
            self.queue: deque[tuple[str, Any]] = deque()

        def update(self, dispatch_fn: Callable[[str, Any], None]) -> None:
            while self.queue:
                dispatch_fn(*self.queue.popleft())

    return ScriptedTouch, ScriptedTouchProvider



def scrolling_lists(widget: Any) -> list[Any]:
    """The ScrollViews holding ``widget`` that can scroll now, innermost first (home scrolls only when its content is
    taller than the screen, and a view that cannot scroll hands a touch on at once)."""
    from kivy.uix.scrollview import ScrollView

    lists, parent = [], widget.parent
    while parent is not None and parent is not parent.parent:
        if isinstance(parent, ScrollView) and (parent.do_scroll_x or parent.do_scroll_y):
            lists.append(parent)
        parent = parent.parent
    return lists


def lists_at_rest(lists: list[Any]) -> bool:
    """True when no list in ``lists`` glides or springs back from an overscroll.

    Only a damped effect springs back; a plain ScrollEffect clamps at once and keeps the last overscroll it saw as
    a stale number (it never sets it back to 0), so there the overscroll says nothing. Reading it made every touch
    on a form that had once overscrolled wait the full 5 s.
    """
    from kivy.effects.dampedscroll import DampedScrollEffect

    def still(effect: Any) -> bool:
        springing = isinstance(effect, DampedScrollEffect) and bool(effect.overscroll)
        return abs(getattr(effect, "velocity", 0)) < 1e-3 and not springing

    return all(still(effect) for sv in lists for effect in (sv.effect_x, sv.effect_y) if effect is not None)

class UiDriver:
    """Runs a KioskApp frame by frame and touches, waits and takes screenshots like a resident."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.touches = 0
        self.touches_on: dict[str, int] = {}  # touches by the screen they were made on
        self.touched_again = 0  # buttons that moved from under the finger before it lifted, touched again
        self.keys = 0  # keypad keys pressed (press_key)
        # Wall time the scripted resident spent pausing (and the driver photographing),
        # so a flow's machine time can leave it out.
        self.paused_s = 0.0
        self.nap_s = IDLE_NAP_S  # between frames while waiting
        self.tap_hold_s = LIST_HOLD_S  # a touch outside any list (one on a list always holds LIST_HOLD_S)
        # A scripted resident answers the idle warning ("are you still there?") before a
        # touch, as a person at the screen would; the UI tests leave it unanswered.
        self.answer_idle_warning = False
        # Touch → response drawn: from the finger lifting (or the key going down) to the first frame flipped
        # once the UI has handled that event, in ms, every touch and key in order (#19's touch_ms).
        self.response_ms: list[float] = []
        self._answer_since: float | None = None
        self._answer_handled: Callable[[], bool] = lambda: True
        self._gl_finish: Callable[[], Any] = lambda: None
        self._uid = 0
        self._grab_wanted = False
        self._frame: Any = None
        self._touch_cls, provider_cls = _touch_classes()
        self.provider = provider_cls("scripted", "")

    def start(self) -> None:
        """Build the app, open the (offscreen) window and start the event loop without blocking."""
        from kivy.base import EventLoop, runTouchApp
        from kivy.core.window import Window

        from kiosk.screens.base import gl_finish_without_gil

        self._gl_finish = gl_finish_without_gil()
        self.app._run_prepare()
        runTouchApp(embedded=True)
        EventLoop.add_input_provider(self.provider)
        self.provider.start()
        Window.bind(on_flip=self._on_flip)
        self.pump(5)

    def stop(self) -> None:
        """Stop the app and close the window."""
        from kivy.base import EventLoop

        EventLoop.remove_input_provider(self.provider)
        self.app.stop()

    # --- the loop ---------------------------------------------------------------------
    def pump(self, frames: int = 1) -> None:
        """Run ``frames`` iterations of the Kivy main loop."""
        from kivy.base import EventLoop

        for _ in range(frames):
            EventLoop.idle()
            if EventLoop.window is not None:
                EventLoop.window.mainloop()  # SDL events (none offscreen, but keep the path whole)

    def wait_until(self, predicate: Callable[[], Any], what: str, timeout: float = STEP_TIMEOUT_S) -> Any:
        """Run the loop until ``predicate()`` is truthy; raises DemoError after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise DemoError(f"timed out after {timeout:.0f} s waiting for {what} "
                                f"(screen {self.current})")
            self.pump()
            time.sleep(self.nap_s)

    def wait_seconds(self, seconds: float) -> None:
        """Run the loop for ``seconds`` of wall time (the resident pausing: counted in ``paused_s``)."""
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            self.pump()
            time.sleep(self.nap_s)
        self.paused_s += time.monotonic() - started

    @property
    def current(self) -> str:
        """The name of the screen on show."""
        return self.app.sm.current

    def wait_screen(self, *names: str, timeout: float = STEP_TIMEOUT_S) -> str:
        """Wait until one of ``names`` is on show and no service call is running."""
        self.wait_until(lambda: self.current in names and not self.app.busy,
                        f"screen {'/'.join(names)}", timeout)
        self.pump(2)
        return self.current

    def wait_leave(self, name: str, timeout: float = STEP_TIMEOUT_S) -> str:
        """Wait until the screen ``name`` is gone and no service call is running."""
        self.wait_until(lambda: self.current != name and not self.app.busy, f"leaving {name}", timeout)
        self.pump(2)
        return self.current

    # --- touches ----------------------------------------------------------------------
    def tap_at(self, x: float, y: float, hold_s: float | None = None) -> None:
        """Put a finger down at window pixel (x, y) and lift it after ``hold_s`` (default: long enough for a
        list to hand the touch on), as the touchscreen reports it."""
        screen = self.current
        touch = self.finger_down(x, y)
        # A ScrollView holds a touch for scroll_timeout (200 ms) before it hands it to
        # the button beneath, as it does for a real finger.
        self.wait_seconds(LIST_HOLD_S if hold_s is None else hold_s)
        self.finger_up(touch)
        self.touches_on[screen] = self.touches_on.get(screen, 0) + 1

    def finger_down(self, x: float, y: float) -> Any:
        """Put a finger down at window pixel (x, y), as the touchscreen reports it; the touch, for
        :meth:`finger_up`. The event is handled at the next frame."""
        from kivy.core.window import Window

        width, height = Window.size
        self._uid += 1
        touch = self._touch_cls("scripted", self._uid, (x / max(1, width - 1), y / max(1, height - 1)))
        self.provider.queue.append(("begin", touch))
        return touch

    def finger_up(self, touch: Any) -> None:
        """Lift the finger of ``touch`` (timed as a response) and run two frames."""
        lift = ("end", touch)
        self._await_answer(lambda: lift not in self.provider.queue)
        self.provider.queue.append(lift)
        self.pump(2)
        self.touches += 1

    def press_key(self, name: str, *, wake: bool = True) -> None:
        """Press and release the keypad key ``name`` (Kivy's keycode name, e.g. numpad8) through the window's
        keyboard events, as the keypad's HID reports reach Kivy. On the attract screen the first key only wakes
        the kiosk: with ``wake`` the resident then presses the key again, as a person would."""
        if wake and getattr(self.app, "attract_shown", False):
            self._key(name)
        self._key(name)

    def _key(self, name: str) -> None:
        from kivy.core.window import Keyboard, Window

        code = Keyboard.keycodes[name]
        handled = False
        self._await_answer(lambda: handled)
        Window.dispatch("on_key_down", code, 0, None, [])
        handled = True
        self.pump(1)
        Window.dispatch("on_key_up", code, 0)
        self.pump(2)
        self.keys += 1

    def settle(self, widget: Any) -> None:
        """Wait until every list scrolling ``widget`` is at rest.

        A touch on a list still gliding only stops it (as on a phone), so a resident
        waits for the list to stand still before touching an entry.
        """
        lists = scrolling_lists(widget)
        try:
            self.wait_until(lambda: lists_at_rest(lists), "the list to stop scrolling", 5)
        except DemoError:
            # A damped effect left holding a little overscroll may never report rest; the
            # touch itself still says whether the widget took it.
            log.debug("list not at rest after 5 s; touching anyway")

    def tap_entry(self, find: Callable[[], Any], what: str = "") -> None:
        """Touch the list entry ``find`` returns, scrolled into view first; looked up again when the list was
        redrawn under the finger (WidgetGone), as a resident would look again."""
        for attempt in range(3):
            widget = find()
            self.reveal(widget)
            try:
                self.tap(widget, what)
                return
            except WidgetGone:
                if attempt == 2:
                    raise
                log.info("%s: the list was redrawn; looking again", what or "entry")

    def reveal(self, widget: Any) -> None:
        """Scroll the list holding ``widget`` so that it is in view, as a resident would (nothing to do when no list
        holding it can scroll: home, as a rule)."""
        lists = scrolling_lists(widget)
        if not lists:
            return
        view = lists[0]
        # Options that just arrived may still be growing (wrapped labels), so look
        # again after scrolling, as an eye following the list would.
        for _attempt in range(4):
            self.pump(2)  # a list still being laid out would be scrolled by stale sizes
            view.scroll_to(widget, padding=40, animate=False)
            # A list barely taller than its view turns a few pixels into a huge scroll
            # fraction: keep it inside the list, as a finger would.
            view.scroll_y = min(1.0, max(0.0, view.scroll_y))
            view.scroll_x = min(1.0, max(0.0, view.scroll_x))
            self.pump(3)
            x, y = widget.to_window(*widget.center)
            px, py = view.to_window(view.x, view.y)
            if px <= x <= px + view.width and py <= y <= py + view.height:
                return

    @staticmethod
    def _topmost(x: float, y: float) -> str:
        """What lies under window pixel (x, y), from the layer under the window's root down to the innermost
        widget drawn last ("Overlay > Label('请稍候……')"; '' when none): the layer says what took the touch,
        the innermost widget what it showed there."""
        from kivy.core.window import Window

        path: list[str] = []
        widgets = list(Window.children)
        while widgets:
            hit = None
            for child in widgets:  # children[0] is drawn last, on top
                if child.opacity == 0 or getattr(child, "shown", True) is False:
                    continue  # a hidden layer (an Overlay not shown) lets the touch through
                parent = child.parent
                local = (x, y) if parent is None or parent is Window else parent.to_widget(x, y)
                if child.collide_point(*local):
                    hit = child
                    break
            if hit is None:
                break
            path.append(type(hit).__name__ + (f"({hit.text[:20]!r})" if isinstance(getattr(hit, "text", None), str) else ""))
            widgets = list(hit.children)
        return " > ".join(path[1:] or path)  # the window's one root (KioskRoot) is under every touch

    def answer_warning(self) -> bool:
        """Touch the idle warning's button when it is up and this resident answers it; True when touched."""
        if not (self.answer_idle_warning and getattr(self.app, "idle_warning", False)):
            return False
        self.answer_idle_warning = False  # the "still here" touch itself must not recurse
        try:
            self.tap(self.app.root.ids.continue_button, "still here")
        finally:
            self.answer_idle_warning = True
        return True

    def wake_attract(self) -> bool:
        """Touch the attract screen first when it shows (its touch only wakes the kiosk); True when touched."""
        if not getattr(self.app, "attract_shown", False):
            return False
        from kivy.core.window import Window

        self.tap_at(Window.width / 2, Window.height / 2)
        return True

    def tap(self, widget: Any, what: str = "") -> None:
        """Touch the centre of ``widget``; raises DemoError when the widget did not get it.

        A resident wakes the attract screen first, as a person touches it before reaching for a
        button. A resident who answers the idle warning answers it first, and, when it came up while
        they were reaching for ``widget`` (a slow screen), answers it and touches again.
        """
        self.wake_attract()
        self.answer_warning()
        try:
            self._tap_once(widget, what)
        except DemoError:
            if not self.answer_warning():
                raise
            self._tap_once(widget, what)

    def _tap_once(self, widget: Any, what: str, *, again: bool = True) -> None:
        from kivy.clock import Clock
        from kivy.core.window import Window

        self.settle(widget)
        label = what or getattr(widget, "text", "") or type(widget).__name__
        if widget.get_root_window() is None:  # a detached entry's position is its old list's, not the window's
            raise WidgetGone(f"{label!r} left the screen before the touch (its list was redrawn)")
        x, y = widget.to_window(*widget.center)
        width, height = Window.size
        if not (0 <= x < width and 0 <= y < height):
            raise DemoError(f"{label!r} is off screen at ({x:.0f}, {y:.0f})")
        pressed: list[bool] = []
        released: list[bool] = []
        mark = lambda *_a: pressed.append(True)  # noqa: E731
        mark_release = lambda *_a: released.append(True)  # noqa: E731
        # A button reports the press; a text field takes the keyboard focus instead.
        event = "on_press" if hasattr(widget, "trigger_action") else None
        if event:
            widget.bind(on_press=mark, on_release=mark_release)
        frames = Clock.frames
        try:
            self.tap_at(x, y, LIST_HOLD_S if scrolling_lists(widget) else self.tap_hold_s)
        finally:
            if event:
                widget.unbind(on_press=mark, on_release=mark_release)
        if not event and getattr(widget, "focus", False):
            pressed.append(True)
        if pressed and event and not released and again and widget.get_root_window() is not None:
            after = widget.to_window(*widget.center)
            if after != (x, y):
                # The screen was laid out again between the frame the resident saw and the lift (a notice that came
                # in as the finger went down): the lift landed outside the button, which then did nothing. A
                # resident touches it again where it now is.
                log.info("%r moved from under the finger, (%.0f, %.0f) to (%.0f, %.0f); touching it again",
                         label, x, y, after[0], after[1])
                self.touched_again += 1
                self._tap_once(widget, what, again=False)
                return
        if not pressed:
            state = "disabled" if widget.disabled else "covered or out of view"
            after = widget.to_window(*widget.center)
            # What the touch met, for the log of a flow that lost its way: frames drawn while the
            # finger was down (a list holds a touch for 3 frames), and whether the widget moved.
            detail = (f"{Clock.frames - frames} frames while down; at ({x:.0f}, {y:.0f}), "
                      f"now at ({after[0]:.0f}, {after[1]:.0f}); under the finger: {self._topmost(x, y)}; "
                      f"busy {getattr(self.app, 'busy', None)}, idle warning {getattr(self.app, 'idle_warning', None)}")
            log.warning("%r did not take the touch: %s", label, detail)
            raise DemoError(f"{label!r} did not take the touch on screen {self.current} ({state}; {detail})")

    def find(self, widget_id: str, screen: str | None = None) -> Any:
        """The widget with kv id ``widget_id`` on the current (or given) screen, header included."""
        target = self.app.sm.get_screen(screen or self.current)
        for widget in target.walk():
            ids = getattr(widget, "ids", {})
            if widget_id in ids:
                return ids[widget_id]
        raise DemoError(f"no widget {widget_id!r} on screen {target.name}")

    def tap_id(self, widget_id: str, screen: str | None = None) -> None:
        """Touch the widget with kv id ``widget_id`` on the current (or given) screen."""
        self.tap(self.find(widget_id, screen), widget_id)

    # --- frames -----------------------------------------------------------------------
    def _await_answer(self, handled: Callable[[], bool]) -> None:
        """From now, time the response to one event: the first frame flipped once ``handled()`` is true ends it.
        One still waiting for its frame (the event changed nothing on the screen) is dropped, not timed."""
        if self._answer_since is not None:
            log.debug("an event drew no frame before the next one; not timed")
        self._answer_handled = handled
        self._answer_since = time.monotonic()

    def _on_flip(self, *_args: Any) -> None:
        if self._answer_since is not None and self._answer_handled():
            # This runs before the kiosk's own glFinish (bound earlier, called later): without waiting for the
            # renderer here, the time would end before the frame is drawn.
            self._gl_finish()
            self.response_ms.append((time.monotonic() - self._answer_since) * 1000)
            log.debug("response drawn in %.1f ms on %s", self.response_ms[-1], self.current)
            self._answer_since = None
        # Bound to on_flip, so it runs before the buffers are swapped: the back buffer
        # still holds the finished frame.
        if not self._grab_wanted:
            return
        from kivy.core.window import Window
        from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glReadPixels
        from PIL import Image

        width, height = Window.size
        data = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
        self._frame = Image.frombytes("RGB", (width, height), bytes(data)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        self._grab_wanted = False

    def grab(self) -> Any:
        """The window as the next frame draws it (a PIL RGB image, top row first)."""
        from kivy.core.window import Window

        started = time.monotonic()
        self._grab_wanted = True
        Window.canvas.ask_update()
        # Frame after frame with no nap between (the clock's own wait holds maxfps): the frame asked for is the next
        # one, and a nap after it only made each grab 30 ms longer (400 of them in a UI audit).
        while self._grab_wanted:
            if time.monotonic() - started > GRAB_TIMEOUT_S:
                raise DemoError(f"timed out after {GRAB_TIMEOUT_S:.0f} s waiting for a frame to grab "
                                f"(screen {self.current})")
            self.pump()
        self.paused_s += time.monotonic() - started  # photographing is not the kiosk's time
        frame, self._frame = self._frame, None
        return frame

    def screenshot(self, path: Path) -> Path:
        """Save the window as it is now to ``path`` (PNG)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.grab().save(path)
        return path
