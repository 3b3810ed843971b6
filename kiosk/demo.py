"""`kiosk demo`: scripted residents drive the real UI headless, through Kivy's input path.

The kiosk runs offscreen (SDL ``offscreen`` driver, no X server) with its real services.
A scripted resident touches buttons the way a finger would: a MotionEvent at the button's
window coordinates, queued on an input provider that the event loop reads like any other
touch device. A button that is covered or scrolled out of sight therefore does not get
the touch, and the flow fails. Every screen visited is saved as a PNG.

:class:`UiDriver` is also what the UI tests use.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import kiosk.app  # noqa: F401  (sets the Kivy environment before Kivy is imported)
from kiosk import demo_residents, localtime
from kiosk.config import KioskConfig, PathsConfig, load
from kiosk.errors import ConfigError, KioskError

log = logging.getLogger(__name__)

DEFAULT_FLOW = "H01"
STEP_TIMEOUT_S = 30.0
MAX_SCREENS_PER_FLOW = 40
# While waiting, the driver naps between frames so the worker thread doing the service
# call (rendering a PDF, talking to the backend) gets the interpreter.
IDLE_NAP_S = 0.03


class DemoError(KioskError):
    """The scripted resident could not go on (a button did not take the touch, a screen never came)."""

    code = "demo_failed"


class InputRejected(Exception):
    """The kiosk refused a value the script typed on purpose; the resident gives up."""


def _unused(path: Path) -> Path:
    """``path`` (ITEM-REST), or ITEM.runK-REST when an earlier flow of the same item took it."""
    item, _, rest = path.name.partition("-")
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{item}.run{k}-{rest}")
        k += 1
    return candidate


def _full_date(yymmdd: str, *, past: bool) -> str:
    """A date as printed on a data page (YYYYMMDD) from the MRZ's YYMMDD."""
    yy = int(yymmdd[:2])
    this_year = localtime.today().year
    century = (19 if 2000 + yy > this_year else 20) if past else 20
    return f"{century}{yymmdd}"


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


class UiDriver:
    """Runs a KioskApp frame by frame and touches, waits and takes screenshots like a resident."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.touches = 0
        # Wall time the scripted resident spent pausing (and the driver photographing),
        # so a flow's machine time can leave it out.
        self.paused_s = 0.0
        # A scripted resident answers the idle warning ("are you still there?") before a
        # touch, as a person at the screen would; the UI tests leave it unanswered.
        self.answer_idle_warning = False
        self._uid = 0
        self._shot: Path | None = None
        self._touch_cls, provider_cls = _touch_classes()
        self.provider = provider_cls("scripted", "")

    def start(self) -> None:
        """Build the app, open the (offscreen) window and start the event loop without blocking."""
        from kivy.base import EventLoop, runTouchApp
        from kivy.core.window import Window

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
            time.sleep(IDLE_NAP_S)

    def wait_seconds(self, seconds: float) -> None:
        """Run the loop for ``seconds`` of wall time (the resident pausing: counted in ``paused_s``)."""
        started = time.monotonic()
        deadline = started + seconds
        while time.monotonic() < deadline:
            self.pump()
            time.sleep(IDLE_NAP_S)
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
    def tap_at(self, x: float, y: float) -> None:
        """Put a finger down at window pixel (x, y) and lift it, as the touchscreen reports it."""
        from kivy.core.window import Window

        width, height = Window.size
        self._uid += 1
        touch = self._touch_cls("scripted", self._uid, (x / max(1, width - 1), y / max(1, height - 1)))
        self.provider.queue.append(("begin", touch))
        # A ScrollView holds a touch for scroll_timeout (200 ms) before it hands it to
        # the button beneath, as it does for a real finger.
        self.wait_seconds(0.3)
        self.provider.queue.append(("end", touch))
        self.pump(2)
        self.touches += 1

    def settle(self, widget: Any) -> None:
        """Wait until every list scrolling ``widget`` is at rest.

        A touch on a list still gliding only stops it (as on a phone), so a resident
        waits for the list to stand still before touching an entry.
        """
        from kivy.uix.scrollview import ScrollView

        lists, parent = [], widget.parent
        while parent is not None and parent is not parent.parent:
            if isinstance(parent, ScrollView):
                lists.append(parent)
            parent = parent.parent

        def at_rest() -> bool:
            return all(abs(getattr(effect, "velocity", 0)) < 1e-3 and not getattr(effect, "overscroll", 0)
                       for sv in lists for effect in (sv.effect_x, sv.effect_y) if effect is not None)

        try:
            self.wait_until(at_rest, "the list to stop scrolling", 5)
        except DemoError:
            # An effect left holding a little overscroll never reports rest; the touch
            # itself still says whether the widget took it.
            log.debug("list not at rest after 5 s; touching anyway")

    def reveal(self, widget: Any) -> None:
        """Scroll the list holding ``widget`` so that it is in view, as a resident would."""
        from kivy.uix.scrollview import ScrollView

        parent = widget.parent
        while parent is not None and parent is not parent.parent:
            if isinstance(parent, ScrollView):
                # Options that just arrived may still be growing (wrapped labels), so look
                # again after scrolling, as an eye following the list would.
                for _attempt in range(4):
                    self.pump(2)  # a list still being laid out would be scrolled by stale sizes
                    parent.scroll_to(widget, padding=40, animate=False)
                    # A list barely taller than its view turns a few pixels into a huge scroll
                    # fraction: keep it inside the list, as a finger would.
                    parent.scroll_y = min(1.0, max(0.0, parent.scroll_y))
                    parent.scroll_x = min(1.0, max(0.0, parent.scroll_x))
                    self.pump(3)
                    x, y = widget.to_window(*widget.center)
                    px, py = parent.to_window(parent.x, parent.y)
                    if px <= x <= px + parent.width and py <= y <= py + parent.height:
                        return
                return
            parent = parent.parent

    def tap(self, widget: Any, what: str = "") -> None:
        """Touch the centre of ``widget``; raises DemoError when the widget did not get it."""
        from kivy.core.window import Window

        if self.answer_idle_warning and getattr(self.app, "idle_warning", False):
            self.answer_idle_warning = False  # the "still here" touch itself must not recurse
            try:
                self.tap(self.app.root.ids.continue_button, "still here")
            finally:
                self.answer_idle_warning = True
        self.settle(widget)
        x, y = widget.to_window(*widget.center)
        width, height = Window.size
        label = what or getattr(widget, "text", "") or type(widget).__name__
        if not (0 <= x < width and 0 <= y < height):
            raise DemoError(f"{label!r} is off screen at ({x:.0f}, {y:.0f})")
        pressed: list[bool] = []
        mark = lambda *_a: pressed.append(True)  # noqa: E731
        # A button reports the press; a text field takes the keyboard focus instead.
        event = "on_press" if hasattr(widget, "trigger_action") else None
        if event:
            widget.bind(on_press=mark)
        try:
            self.tap_at(x, y)
        finally:
            if event:
                widget.unbind(on_press=mark)
        if not event and getattr(widget, "focus", False):
            pressed.append(True)
        if not pressed:
            state = "disabled" if widget.disabled else "covered or out of view"
            raise DemoError(f"{label!r} did not take the touch on screen {self.current} ({state})")

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

    # --- screenshots ------------------------------------------------------------------
    def _on_flip(self, *_args: Any) -> None:
        # Bound to on_flip, so it runs before the buffers are swapped: the back buffer
        # still holds the finished frame.
        if self._shot is None:
            return
        from kivy.core.window import Window
        from kivy.graphics.opengl import GL_RGB, GL_UNSIGNED_BYTE, glReadPixels
        from PIL import Image

        width, height = Window.size
        data = glReadPixels(0, 0, width, height, GL_RGB, GL_UNSIGNED_BYTE)
        image = Image.frombytes("RGB", (width, height), bytes(data)).transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        image.save(self._shot)
        self._shot = None

    def screenshot(self, path: Path) -> Path:
        """Save the window as it is now to ``path`` (PNG)."""
        from kivy.core.window import Window

        started = time.monotonic()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._shot = path
        Window.canvas.ask_update()
        self.wait_until(lambda: self._shot is None, "a frame to screenshot", 10)
        self.paused_s += time.monotonic() - started  # photographing is not the kiosk's time
        return path


# --- the scripted resident ---------------------------------------------------------------
ANSWER_LOST = "answer_lost"  # the backend simulator's fault: an operation's answers lost on the way back
CHIP_FAULTS = ("tampered", "cloned")  # chip=: the chip reader simulator's forged chips
TRAVEL_ENTRY_FIELDS = ("document_number", "birth_date", "expiry_date")  # typed under mrz=typed


def device_faults() -> frozenset[str]:
    """Every fault a device simulator knows, by its config name."""
    from kiosk.hardware.simulators import a4, camera, idcard, pcsc, receipt, scanner

    classes = (a4.SimA4Printer, camera.SimCamera, idcard.SimIdCardReader, pcsc.SimChipReader,
               receipt.SimReceiptPrinter, scanner.SimScanner)
    return frozenset().union(*(c.FAULTS for c in classes))


@dataclass(frozen=True)
class FlowScript:
    """One flow of a demo run: the item and how the scripted resident behaves in it."""

    item: str
    person: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    leave: str = ""
    pay: bool = True
    typed_mrz: bool = False
    slip: bool = True  # take the optional slip a query offers
    faults: tuple[str, ...] = ()  # fault=KIND: answer_lost or a device fault's config name
    lost: int = 2  # with answer_lost: how many answers are lost (-1: all)
    chip: str = ""  # chip=tampered|cloned

    @classmethod
    def parse(cls, text: str) -> "FlowScript":
        """``ITEM[:PERSON][:FIELD=VALUE][:leave=SCREEN][:pay=no][:mrz=typed][:slip=no][:fault=KIND][:lost=N|all]
        [:chip=tampered|cloned]`` (FLOW_SYNTAX). Fields are checked against the item by :meth:`check`.

        Raises ConfigError.
        """
        item, *options = text.split(":")
        person, values, leave, pay, typed, slip = None, {}, "", True, False, True
        faults: list[str] = []
        lost: int | None = None
        chip = ""
        for option in options:
            key, eq, value = option.partition("=")
            if not eq:
                try:
                    person = demo_residents.person_key(key)
                except KeyError as exc:
                    raise ConfigError(str(exc.args[0]), key="flow", value=text) from None
            elif key == "leave":
                leave = value
            elif key == "pay":
                pay = value.lower() not in ("no", "0", "false")
            elif key == "slip":
                slip = value.lower() not in ("no", "0", "false")
            elif key == "mrz":
                if value != "typed":
                    raise ConfigError(f"mrz={value}: the only choice is mrz=typed", key="flow", value=text)
                typed = True
            elif key == "fault":
                if value != ANSWER_LOST and value not in device_faults():
                    raise ConfigError(f"{text}: fault={value} is not a fault; faults are {ANSWER_LOST} and the device "
                                      f"faults {', '.join(sorted(device_faults()))}", key="flow", value=text)
                faults.append(value)
            elif key == "lost":
                if value != "all" and not (value.isdigit() and int(value) > 0):
                    raise ConfigError(f"{text}: lost={value}: a number of answers (1, 2, ...) or all",
                                      key="flow", value=text)
                lost = -1 if value == "all" else int(value)
            elif key == "chip":
                if value not in CHIP_FAULTS:
                    raise ConfigError(f"{text}: chip={value}: the choices are {' and '.join(CHIP_FAULTS)}",
                                      key="flow", value=text)
                chip = value
            else:
                values[key] = value
        if lost is not None and ANSWER_LOST not in faults:
            raise ConfigError(f"{text}: lost= goes with fault={ANSWER_LOST}", key="flow", value=text)
        return cls(item.strip().upper(), person, values, leave, pay, typed, slip, tuple(faults),
                   2 if lost is None else lost, chip)

    def check(self, item: Any) -> None:
        """Refuse, naming it, an option that is neither in the flow syntax nor a field of ``item``
        (nor, under mrz=typed, a travel-entry field). Raises ConfigError."""
        fields = {spec.name for spec in item.fields}
        if self.typed_mrz:
            fields |= set(TRAVEL_ENTRY_FIELDS)
        for key in self.values:
            if key not in fields:
                where = f"fields of {item.id}: {', '.join(sorted(fields))}" if fields else f"{item.id} has no fields"
                raise ConfigError(f"flow {self.item}: option {key!r} is not in the flow syntax and not a field "
                                  f"of the item ({where})", key="flow", value=key)
        if self.chip and item.identity != "travel_document":
            raise ConfigError(f"flow {self.item}: chip={self.chip} needs an item read from a travel document chip",
                              key="flow", value=f"chip={self.chip}")

    @property
    def scripted_fault(self) -> bool:
        """Whether the flow injects a fault (its failing is then part of the script)."""
        return bool(self.faults or self.chip)


@dataclass
class FlowRecord:
    """One flow's line in summary.json."""

    item: str
    person: str = ""
    outcome: str = "failed"
    reason: str = ""
    message: str = ""  # the refusal or error as the resident read it (English)
    where: str = ""  # where the refusal sends the resident (English)
    touches: int = 0
    touches_after_identity: int = 0
    seconds: float = 0.0  # machine time: wall time less the resident's pauses and screenshots
    wall_seconds: float = 0.0
    pause_seconds: float = 0.0  # the resident's own pauses (finger down, looking for the reader, paying)
    device_delay_seconds: float = 0.0  # simulated device delays (delay_s options), also left out of seconds
    shown: list[str] = field(default_factory=list)  # every text the flow's last screen showed
    reference: str = ""  # the backend's tracking number / reference of what was done
    verification_codes: list[str] = field(default_factory=list)
    display: list[list[str]] = field(default_factory=list)  # result lines [label_en, value] shown on the done screen
    documents: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    # [{"kind", "count"}]: each scripted fault, and any other that fired, as often as a simulator applied it
    faults: list[dict[str, Any]] = field(default_factory=list)


class Resident:
    """Walks one item from the home screen to the end, recording what happened."""

    def __init__(self, driver: UiDriver, runtime: Any, out: Path, *, shots: str = "all") -> None:
        self.driver = driver
        self.shots = shots  # "all": every screen once; "ends": only outcomes, complaints and notices
        self.runtime = runtime
        self.out = out
        self.last_code = ""  # the verification code of the last document printed in this run
        self.delayed_s = 0.0  # simulated device delays so far (delay_s options)
        self._delays_before = 0.0
        self._count_device_delays()

    def _count_device_delays(self) -> None:
        """Time every simulator's configured delay, so a flow's machine time can leave it out."""
        lock = threading.Lock()
        for _name, device in self.runtime.devices.all():
            pause = getattr(device, "_pause", None)
            if pause is None:
                continue

            def timed(fraction: float = 1.0, _pause: Any = pause) -> None:
                started = time.monotonic()
                try:
                    _pause(fraction)
                finally:
                    with lock:
                        self.delayed_s += time.monotonic() - started
            device._pause = timed

    def run(self, flow: FlowScript | str) -> FlowRecord:
        """Do one flow end to end; never raises (the record says what failed)."""
        script = flow if isinstance(flow, FlowScript) else FlowScript.parse(flow)
        item_id = script.item
        drv, app = self.driver, self.driver.app
        record = FlowRecord(item_id)
        self.record, self.script = record, script
        self._seen: set[str] = set()
        self.txn: Any = None
        a4 = self.runtime.devices.get("a4_printer")
        receipt = self.runtime.devices.get("receipt_printer")
        a4_before = len(a4.jobs) if a4 is not None else 0
        receipt_before = len(receipt.jobs) if receipt is not None else 0
        touches_before, paused_before = drv.touches, drv.paused_s
        drv.answer_idle_warning = not script.leave
        identified_at: int | None = None
        started = time.monotonic()
        reader = self.runtime.devices.get("id_card")
        if reader is not None and hasattr(reader, "remove"):
            reader.remove()  # the resident still has the card in hand
        applied_before = self.applied_faults()
        armed: list[tuple[Any, str]] = []
        try:
            item = self.runtime.catalog.get(item_id)
            armed = self.arm_faults(item)
            self.person = script.person or demo_residents.person_for(item)
            record.person = self.person if item.needs_identity else ""
            drv.wait_screen("home")
            self.shot("home")
            self.open_item(item)
            if item.kind == "guide":
                # The guide screen is the whole service of a guide item.
                record.outcome, record.reason = "completed", "guide_shown"
                record.shown = self.visible_text()
                drv.tap_id("home_button")
                drv.wait_screen("home")
                return record
            if drv.app.sm.get_screen("guide").ids.start_button.disabled:
                record.outcome, record.reason = "unavailable", self._unavailable_reason(item)
                drv.tap_id("home_button")
                drv.wait_screen("home")
                return record
            drv.tap_id("start_button")
            for _step in range(MAX_SCREENS_PER_FLOW):
                # Printing is busy on purpose (the progress screen): photograph it meanwhile.
                drv.wait_until(lambda: drv.current == "printing" or not app.busy, "the next screen")
                drv.pump(2)
                screen = drv.current
                self.txn = app.txn or self.txn
                if identified_at is None and screen not in ("identify", "home"):
                    identified_at = drv.touches
                self.shot(screen)
                if screen == script.leave:
                    self.walk_away(screen)
                    break
                if screen == "identify":
                    self.present_identity(item)
                    drv.wait_leave("identify")
                elif screen == "face":
                    drv.tap_id("capture_button")
                    drv.wait_until(lambda: not app.busy, "the face check")
                    if drv.current == "face":
                        self.shot("face", again=True)  # the miss and the tries left
                elif screen == "form":
                    if not self.fill_form(item):
                        drv.tap_id("next_button")
                    drv.wait_until(lambda: not app.busy, "the form check")
                    if drv.current == "form":
                        form = app.sm.current_screen
                        complaints = {n: e.text for n, e in form.errors.items() if e.text}
                        self.shot("form", again=True)
                        record.shown = self.visible_text()
                        if not script.values:
                            raise DemoError(f"the form was not accepted ({complaints})")
                        # A scripted wrong value: the complaint stays beside the field; the resident gives up.
                        record.outcome, record.reason = "input_rejected", ",".join(complaints)
                        record.message = "; ".join(complaints.values())
                        drv.tap_id("cancel_button")
                        drv.wait_screen("home")
                        break
                elif screen == "confirm":
                    drv.tap_id("confirm_button")
                    drv.wait_leave("confirm")
                elif screen == "payment":
                    self.pay()
                    drv.wait_leave("payment", timeout=60 + (0 if script.pay else
                                                            self.runtime.config.payment.timeout_s))
                elif screen == "printing":
                    # An answer lost on the way is asked for again until backend.unknown_outcome_s.
                    drv.wait_leave("printing", timeout=60 + float(self.runtime.config.backend.unknown_outcome_s))
                elif screen in ("done", "error"):
                    self.end(screen)
                    break
                elif screen == "reprint":
                    drv.tap_id("reprint_button")  # documents owed from an earlier visit
                    drv.wait_leave("reprint", timeout=60)
                elif screen == "home":
                    record.outcome = "cancelled"
                    record.reason = getattr(self.txn, "reason", "") or "returned_home"
                    break
                else:
                    raise DemoError(f"unexpected screen {screen}")
            else:
                raise DemoError(f"no end after {MAX_SCREENS_PER_FLOW} screens")
        except InputRejected as rejected:
            record.outcome, record.reason, record.message = "input_rejected", "travel_details", str(rejected)
            record.shown = self.visible_text()
            self.driver.tap_id("cancel_button", "travel_entry")
            self.driver.wait_screen("home")
        except KioskError as err:
            record.outcome, record.reason = "failed", f"{err.code}: {err.detail}"
            log.error("demo flow %s failed: %s", item_id, err.detail or err.code)
            self._back_home()
        finally:
            self.disarm_faults(armed)
            record.faults = self.fault_counts(applied_before)
            wall = time.monotonic() - started
            record.wall_seconds = round(wall, 2)
            record.pause_seconds = round(drv.paused_s - paused_before, 2)
            record.device_delay_seconds = round(self._device_delays(), 2)
            record.seconds = round(max(0.0, wall - record.pause_seconds - record.device_delay_seconds), 2)
            record.touches = drv.touches - touches_before
            record.touches_after_identity = (drv.touches - identified_at) if identified_at is not None else 0
            if a4 is not None:
                for n, job in enumerate(a4.jobs[a4_before:]):
                    target = _unused(self.out / "documents" / f"{item_id}-{n + 1}.pdf")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(job.path, target)
                    record.documents.append(str(target.relative_to(self.out)))
            if receipt is not None:
                for n, data in enumerate(receipt.jobs[receipt_before:]):
                    target = _unused(self.out / "receipts" / f"{item_id}-{n + 1}.bin")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                    record.receipts.append(str(target.relative_to(self.out)))
        return record

    # --- scripted faults ----------------------------------------------------------------
    def applied_faults(self) -> dict[str, int]:
        """How often each fault was applied so far, as the simulators count it (backend and devices)."""
        counts: dict[str, int] = {}
        if self.runtime.sim is not None:
            counts.update(self.runtime.sim.app.faults.applied())
        for _name, device in self.runtime.devices.all():
            for kind, n in (device.applied() if hasattr(device, "applied") else {}).items():
                counts[kind] = counts.get(kind, 0) + n
        return counts

    def arm_faults(self, item: Any) -> list[tuple[Any, str]]:
        """Switch on the flow's scripted faults; returns the (device, fault) pairs to switch off after."""
        armed: list[tuple[Any, str]] = []
        for kind in self.script.faults:
            if kind == ANSWER_LOST:
                if self.runtime.sim is None:
                    raise DemoError("fault=answer_lost needs the embedded backend simulator")
                if item.operation:  # an item without an operation has no answer to lose: it never fires
                    self.runtime.sim.app.faults.update({"lose_answers_of": item.operation,
                                                        "lose_answers": self.script.lost})
                    armed.append((self.runtime.sim.app.faults, kind))
                continue
            for _name, device in self.runtime.devices.all():
                if kind in getattr(device, "FAULTS", ()):
                    # 1: an event fault fires once; a state fault (paper_out) stays on for the flow.
                    device.inject(kind, 1)
                    armed.append((device, kind))
        if self.script.chip:
            chip = self.runtime.devices.get("pcsc")
            if chip is None or self.script.chip not in getattr(chip, "FAULTS", ()):
                raise DemoError(f"chip={self.script.chip} needs the simulated chip reader")
            chip.inject(self.script.chip, 1)
            armed.append((chip, self.script.chip))
        return armed

    def disarm_faults(self, armed: list[tuple[Any, str]]) -> None:
        """Switch the flow's scripted faults off again (those that never fired too)."""
        for target, kind in armed:
            if kind == ANSWER_LOST:
                target.update({"lose_answers_of": "", "lose_answers": 0})
            else:
                target.clear(kind)

    def fault_counts(self, before: dict[str, int]) -> list[dict[str, Any]]:
        """``[{"kind", "count"}]``: the scripted faults (0 when they never fired), then any other that fired."""
        after = self.applied_faults()
        fired = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > 0}
        scripted = list(dict.fromkeys([*self.script.faults, *([self.script.chip] if self.script.chip else [])]))
        return ([{"kind": k, "count": fired.get(k, 0)} for k in scripted]
                + [{"kind": k, "count": n} for k, n in sorted(fired.items()) if k not in scripted])

    def end(self, screen: str) -> None:
        """The done or error screen: note the outcome and what was shown, then leave as a resident does."""
        drv, app, record = self.driver, self.driver.app, self.record
        txn = app.txn or self.txn
        outcome = getattr(getattr(txn, "outcome", None), "value", None)
        record.outcome = outcome or "failed"
        record.reason = (txn.reason if txn is not None else "") or (
            app.error.code if app.error is not None else "")
        record.shown = self.visible_text()
        reader = self.runtime.devices.get("id_card")
        if screen == "done":
            result = app.result
            record.reference = str(getattr(result, "reference", "") or "")
            codes = list(getattr(result, "verification_codes", ()) or ())
            record.verification_codes = codes
            record.display = [[str(line.get("label_en", "")), str(line.get("value", ""))]
                              for line in (getattr(result, "display", None) or ())]
            if codes:
                self.last_code = codes[-1]  # what a later verify flow checks
            done = app.sm.get_screen("done")
            if done.slip_state == "offered" and self.script.slip:
                # A query's results are on screen; this resident wants them on paper too.
                drv.tap_id("slip_button")
                drv.wait_until(lambda: done.slip_state != "printing", "the slip to print", 30)
                if done.slip_state != "printed":
                    record.message = done.ids.problem.text
                    self.shot("done", again=True)
            drv.tap_id("rate_satisfied")
            if reader is not None and hasattr(reader, "remove"):
                reader.remove()  # the resident takes the card back
            drv.tap_id("finish_button")
        else:
            error = app.error
            record.message = error.message("en") if error is not None else ""
            record.where = getattr(error, "where_en", "") or ""
            if reader is not None and hasattr(reader, "remove"):
                reader.remove()
            drv.tap_id("home_button")
        drv.wait_screen("home")

    def walk_away(self, screen: str) -> None:
        """Stop touching on ``screen``: the idle timeout (or the payment's expiry) ends the visit."""
        drv, record = self.driver, self.record
        limit = float(self.runtime.config.ui.idle_timeout_s) + float(self.runtime.config.payment.timeout_s) + 30
        drv.wait_until(lambda: drv.current == "home" and not drv.app.busy, "the idle timeout", limit)
        self.shot("home", again=True)
        outcome = getattr(getattr(self.txn, "outcome", None), "value", None)
        record.outcome = outcome or "cancelled"
        record.reason = getattr(self.txn, "reason", "") or "walked_away"
        session = getattr(self.txn, "session", None)
        # The evidence that nothing of the resident stayed behind.
        record.shown = [f"session_ended={getattr(session, 'ended', None) is not None}",
                        f"identity_kept={getattr(session, 'identity', None) is not None}"]

    def _device_delays(self) -> float:
        """Simulated device delay since the last call (the demo profile configures none)."""
        delta = self.delayed_s - self._delays_before
        self._delays_before = self.delayed_s
        return max(0.0, delta)

    def _unavailable_reason(self, item: Any) -> str:
        available = self.runtime.item_available(item)
        return getattr(available, "reason", "") or "unavailable"

    def _back_home(self) -> None:
        drv, app = self.driver, self.driver.app
        try:
            app.end_session("cancel")
            drv.wait_screen("home", timeout=10)
        except KioskError:
            pass

    def visible_text(self) -> list[str]:
        """Every text on show on the current screen (labels and buttons)."""
        screen = self.driver.app.sm.current_screen
        return [w.text for w in screen.walk() if isinstance(getattr(w, "text", None), str)
                and w.text.strip() and w.opacity > 0]

    def shot(self, screen: str, *, again: bool = False) -> None:
        """A screenshot of ``screen`` the first time the flow shows it (or ``again``)."""
        if screen in self._seen and not again:
            return
        if self.shots == "ends" and not again and screen not in ("done", "error"):
            return
        self._seen.add(screen)
        n = len(self.record.screenshots) + 1
        path = _unused(self.out / "screenshots" / f"{self.record.item}-{n:02d}-{screen}.png")
        self.driver.screenshot(path)
        self.record.screenshots.append(str(path.relative_to(self.out)))

    def open_item(self, item: Any) -> None:
        """Home → the item's category → the item's guide."""
        drv = self.driver
        home = drv.app.sm.get_screen("home")
        button = next(b for b in home.ids.categories.children if b.category.code == item.category)
        drv.tap(button, f"category {item.category}")
        drv.wait_screen("category")
        self.shot("category")
        screen = drv.app.sm.get_screen("category")
        target = screen.button_for(item.id)
        drv.reveal(target)
        drv.tap(target, f"item {item.id}")
        drv.wait_screen("guide")
        self.shot("guide")

    def present_identity(self, item: Any) -> None:
        """Put the card (or travel document) on its reader."""
        if item.identity == "travel_document":
            from kiosk.hardware.simulators.vicc import DemoDocument

            document = demo_residents.travel_document_for(item, self.script.person)
            chip, scanner = self.runtime.devices.get("pcsc"), self.runtime.devices.get("scanner")
            if not (hasattr(chip, "place") and hasattr(scanner, "feed")):
                raise DemoError("the demo needs the simulated chip reader and scanner")
            chip.place(document)
            if self.script.typed_mrz:
                self.type_travel_details(document)
                return
            # The data page under the scanner: only the number and dates matter for BAC.
            scanner.feed(DemoDocument("P", "CHN", "DEMO", "RESIDENT", document.document_number, "CHN",
                                      document.birth_date, "<", document.expiry_date).mrz())
            return
        reader = self.runtime.devices.get("id_card")
        if reader is None or not hasattr(reader, "place"):
            raise DemoError("the demo needs the simulated ID card reader")
        self.driver.wait_seconds(0.5)  # the resident takes a moment to find the reader
        reader.place(demo_residents.card_for(item, self.person).id_number)

    def type_travel_details(self, document: Any) -> None:
        """The scanner cannot read the data page: type the number and dates, touch by touch.

        Dates are typed as the resident reads them on the page (YYYYMMDD). A scripted
        wrong value that the kiosk refuses ends the flow as ``input_rejected``.
        """
        drv = self.driver
        drv.tap_id("type_button", "identify")
        drv.wait_screen("travel_entry")
        self.shot("travel_entry")
        screen = drv.app.sm.get_screen("travel_entry")
        typed = {"document_number": document.document_number,
                 "birth_date": _full_date(document.birth_date, past=True),
                 "expiry_date": _full_date(document.expiry_date, past=False), **self.script.values}
        for name in ("document_number", "birth_date", "expiry_date"):
            widget = screen.inputs[name]
            drv.reveal(widget)
            drv.tap(widget, f"field {name}")
            panel = screen.ids.ime
            while (key := panel.next_key(typed[name])) is not None:
                drv.tap(key)
            drv.pump(2)
        self.close_keyboard(screen)
        drv.tap_id("read_button", "travel_entry")
        drv.wait_until(lambda: not drv.app.busy, "the chip read")
        drv.pump(2)
        if drv.current == "travel_entry":
            complaints = "; ".join(c for c in [screen.ids.problem.text] + [e.text for e in screen.errors.values()] if c)
            self.shot("travel_entry", again=True)
            if not self.script.values:
                raise DemoError(f"the typed travel document details were not accepted ({complaints})")
            raise InputRejected(complaints)

    def value_for(self, item: Any, spec: Any) -> str | None:
        """What the resident enters in ``spec``: the script's value, else the item's happy-path value."""
        if spec.name in self.script.values:
            return self.script.values[spec.name]
        if spec.name == "verification_code" and self.last_code:
            return self.last_code
        return demo_residents.happy_value(item, spec)

    def choose(self, spec: Any, grid: Any, errors: Any) -> None:
        """Touch the option with the wanted value (the first one when any will do)."""
        drv = self.driver
        drv.wait_until(lambda: grid.children or errors[spec.name].text, f"options of {spec.name}", 15)
        if not grid.children:
            raise DemoError(f"nothing to choose for {spec.name}: {errors[spec.name].text}")
        wanted = self.value_for(drv.app.txn.item, spec)
        for _attempt in range(5):
            buttons = list(reversed(grid.children))  # children are kept last-added first
            button = next((b for b in buttons if b.value == wanted), None) if wanted is not None else buttons[0]
            if button is None:
                raise DemoError(f"no option {wanted!r} for {spec.name}")
            drv.reveal(button)
            # An earlier choice may have asked for this list again: the option seen a moment
            # ago can have been replaced by a fresh one, so look again.
            if button.parent is grid:
                break
            drv.wait_until(lambda: grid.children, f"options of {spec.name} again", 15)
        drv.tap(button, f"option {button.value} of {spec.name}")

    def fill_form(self, item: Any) -> bool:
        """Choose and type the flow's values, field by field.

        True when the form submitted itself (a form that is a single choice).
        """
        from kivy.core.window import Window

        from kiosk.screens.ime import is_name_field

        drv = self.driver
        screen = drv.app.sm.get_screen("form")
        if screen._one_choice:
            spec = item.fields[0]
            self.choose(spec, screen.inputs[spec.name], screen.errors)
            return True
        for spec in item.fields:
            widget = screen.inputs[spec.name]
            scripted = spec.name in self.script.values
            if spec.type in ("choice", "lookup"):
                if spec.required or scripted:
                    later = [f for f in item.fields[item.fields.index(spec) + 1:] if f.type == "lookup"]
                    before = {f.name: {id(b) for b in screen.inputs[f.name].children} for f in later}
                    self.choose(spec, widget, screen.errors)
                    # The form asks again for the options of later lookups (they may depend on
                    # this choice): wait for the fresh ones before touching any.
                    for f in later:
                        grid = screen.inputs[f.name]
                        drv.wait_until(lambda g=grid, old=before[f.name]: (
                            (g.children and not {id(b) for b in g.children} & old)
                            or screen.errors[f.name].text), f"fresh options of {f.name}", 20)
            elif spec.required or scripted:
                value = self.value_for(item, spec)
                drv.pump(3)  # let the list settle to its size before looking for the field
                drv.reveal(widget)
                drv.tap(widget, f"field {spec.name}")
                panel = screen.ids.ime
                if spec.type == "text" and is_name_field(spec.name) and value and panel.can_type(value):
                    # A name is typed on the form's keyboard panel, touch by touch: pinyin, then the candidate.
                    while (key := panel.next_key(value)) is not None:
                        drv.tap(key)
                else:
                    Window.dispatch("on_textinput", value or "")
                drv.pump(2)
                self.close_keyboard(screen)
        return False

    def close_keyboard(self, screen: Any) -> None:
        """Touch the on-screen keyboard's done key, if the form opened one, so the form is whole again."""
        panel = screen.ids.get("ime")
        if panel is None or not getattr(panel, "open", False):
            return
        key = panel.ids.get("pad_done" if getattr(panel, "pad", False) else "done_key")
        if key is None:
            return
        self.driver.tap(key, "keyboard done")
        self.driver.pump(3)

    def pay(self) -> None:
        """Wait for the QR code, then pay from the 'phone' (the simulator's pay endpoint), unless scripted not to."""
        import requests

        drv = self.driver
        screen = drv.app.sm.get_screen("payment")
        order = drv.wait_until(lambda: screen.order, "the payment QR code")
        drv.pump(2)
        self.shot("payment")
        if not self.script.pay:
            # The resident walks off without paying: the countdown runs out, the order is cancelled.
            drv.wait_until(lambda: drv.current != "payment" or screen.ids.notice.text, "the payment timeout",
                           float(self.runtime.config.payment.timeout_s) + 30)
            self.record.shown = self.visible_text()
            self.shot("payment", again=True)
            return
        if self.runtime.sim is None:
            raise DemoError("paying needs the embedded backend simulator")
        drv.wait_seconds(0.5)
        answer = requests.post(f"{self.runtime.sim.url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=10)
        if answer.status_code != 200:
            raise DemoError(f"the phone could not pay: HTTP {answer.status_code}")


# --- running it -----------------------------------------------------------------------
def demo_config(cfg: KioskConfig, state_dir: Path) -> KioskConfig:
    """The config with a fresh state folder and the card still in the resident's hand."""
    if cfg.profile == "production":
        raise ConfigError("the demo drives simulators; it does not run on the production profile",
                          key="profile", value=cfg.profile)
    devices = dict(cfg.devices)
    card = devices["id_card"]
    devices["id_card"] = card.model_copy(update={"options": {**card.options, "card_on_reader": False}})
    a4 = devices["a4_printer"]
    devices["a4_printer"] = a4.model_copy(update={"options": {"output_dir": str(state_dir / "paper_tray"),
                                                              **a4.options}})
    return cfg.model_copy(update={"paths": PathsConfig(state_dir=str(state_dir)), "devices": devices})


def _stop_demo(signum: int, _frame: Any) -> None:
    log.info("demo stopped by signal %d", signum)
    raise SystemExit(128 + signum)


def run_demo(cfg: KioskConfig, out: Path, flows: list[str], *, all_items: bool = False,
             shots: str = "all", state_dir: Path | None = None) -> int:
    """Run the flows (FLOW_SYNTAX) headless on one simulator, write ``out``/summary.json.

    ``state_dir`` keeps the journal and the embedded simulator's database there (a fresh
    temporary folder otherwise, removed at the end); the run starts with recovery, as
    `kiosk run` does, and summary.json's ``recovered`` says what it finished. Returns 0
    when every plain flow completed and no scripted one failed (a flow with a scripted
    fault may end failed: only the driver losing its way counts then).
    """
    from kiosk.app import KioskApp, build_runtime, prepare_kivy
    from kiosk.services.catalog import Catalog

    scripts = [FlowScript.parse(f) for f in flows]  # a bad script is refused before anything starts
    catalog = Catalog.load()
    for script in scripts:
        script.check(catalog.get(script.item))  # UnknownItemError, or an option the item does not take
    out.mkdir(parents=True, exist_ok=True)
    keep = state_dir is not None
    state = Path(state_dir) if keep else Path(tempfile.mkdtemp(prefix="kiosk-demo-"))
    state.mkdir(parents=True, exist_ok=True)
    records: list[FlowRecord] = []
    recovered: list[dict[str, Any]] = []
    # Our own handlers before SDL starts: SDL would otherwise turn SIGTERM into a window
    # close, which the kiosk refuses, and a stopped demo would run on. Unwinding runs the
    # clean-ups below (the state folder holds the simulator's residents).
    previous = {sig: signal.signal(sig, _stop_demo) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        cfg = demo_config(cfg, state)
        prepare_kivy(cfg.ui, headless=True)
        runtime = build_runtime(cfg)  # runs start-up recovery
        try:
            recovered = _recovered(runtime, out)
            if all_items:
                scripts = [FlowScript(i) for i in demo_residents.run_order([it.id for it in runtime.catalog.items])]
            app = KioskApp(runtime, cfg)
            driver = UiDriver(app)
            driver.start()
            try:
                driver.wait_until(lambda: app.availability > 0, "the first availability check")
                driver.wait_seconds(0.5)
                resident = Resident(driver, runtime, out, shots=shots)
                for script in scripts or [FlowScript(DEFAULT_FLOW)]:
                    record = resident.run(script)
                    records.append(record)
                    print(f"kiosk demo: {script.item}{':' + record.person if record.person else ''}: "
                          f"{record.outcome} {record.reason} ({record.touches} touches, "
                          f"{record.touches_after_identity} after identity, {record.seconds:.1f} s machine, "
                          f"{record.wall_seconds:.1f} s wall)", flush=True)
                    # Written after every flow, so a long --all run leaves its results so far.
                    _write_summary(out, records, recovered)
            finally:
                driver.stop()
        finally:
            runtime.close()
    finally:
        if not keep:
            shutil.rmtree(state, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    plain = {id(s) for s in scripts if s == FlowScript(s.item)}

    def ok(script: FlowScript, record: FlowRecord) -> bool:
        if id(script) in plain:
            return record.outcome == "completed"
        if script.scripted_fault:
            return not record.reason.startswith(DemoError.code)
        return record.outcome != "failed"

    return 0 if records and all(ok(s, r) for s, r in zip(scripts or [FlowScript(DEFAULT_FLOW)], records)) else 1


def _write_summary(out: Path, records: list[FlowRecord], recovered: list[dict[str, Any]]) -> None:
    summary = {"flows": [r.__dict__ for r in records], "recovered": recovered}
    (out / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")


def _recovered(runtime: Any, out: Path) -> list[dict[str, Any]]:
    """What start-up recovery finished, for summary.json, with the receipts it printed saved under ``out``."""
    printer = runtime.devices.get("receipt_printer")
    jobs = list(getattr(printer, "jobs", ()))  # nothing else has printed yet: these are recovery's
    entries = []
    for action in runtime.recovered:
        printed = []
        for kind in action.printed:
            if kind == "receipt" and jobs:
                target = _unused(out / "receipts" / f"{action.item_id}-recovered.bin")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(jobs.pop(0))
                printed.append(str(target.relative_to(out)))
            else:
                printed.append(kind)
        entries.append({"transaction": action.txn_id, "item": action.item_id, "reference": action.reference,
                        "actions": list(action.actions), "printed": printed, "refunded": action.refunded})
    if entries:
        print(f"kiosk demo: start-up recovery settled {len(entries)} transaction(s): "
              + "; ".join(f"{e['item']} {','.join(e['actions'])}" for e in entries), flush=True)
    return entries  # written to summary.json with the first flow (its appearing means a flow is done)


def cli_demo(args: argparse.Namespace) -> int:
    """`kiosk demo --out DIR [--flow FLOW ...] [--all] [--state DIR]` (FLOW_SYNTAX)."""
    cfg = load(getattr(args, "config", None))
    out = Path(args.out)
    state = getattr(args, "state", None)
    status = run_demo(cfg, out, list(args.flow or []), all_items=args.all,
                      shots=getattr(args, "screenshots", "all"), state_dir=Path(state) if state else None)
    print(f"kiosk demo: summary written to {(out / 'summary.json').resolve()}")
    return status
