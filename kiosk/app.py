"""The Kivy shell: one window, one screen manager, the idle timer and the lockdown.

The shell routes between screens and runs the one service call a screen asks for on a worker
thread, so a slow backend or a printing A4 job never freezes the touch screen. Business rules
stay in kiosk.services: the shell follows ``Transaction.step`` and ``.outcome`` to the next screen.

Kivy reads its environment at import and creates the window when the first widget module
is imported, so this module imports only ``kivy.app`` at the top (which opens no window)
and :func:`prepare_kivy` must run before :meth:`KioskApp.build`.
"""
from __future__ import annotations

import importlib
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

# Kivy parses sys.argv and writes ~/.kivy/config.ini at import unless told not to; the
# kiosk's settings come only from its own TOML config.
os.environ.setdefault("KIVY_NO_ARGS", "1")
os.environ.setdefault("KIVY_NO_CONFIG", "1")
os.environ.setdefault("KIVY_NO_FILELOG", "1")
os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
if "KIVY_HOME" not in os.environ:
    os.environ["KIVY_HOME"] = tempfile.mkdtemp(prefix="kiosk-kivy-")

from kivy.app import App  # noqa: E402  (must follow the environment above)
from kivy.clock import Clock  # noqa: E402
from kivy.properties import (BooleanProperty, NumericProperty, ObjectProperty,  # noqa: E402
                             StringProperty)

from kiosk.config import KioskConfig, UiConfig  # noqa: E402
from kiosk.errors import KioskError  # noqa: E402
from kiosk.i18n import translate  # noqa: E402
from kiosk.screens.help import HelpCalls  # noqa: E402  (Kivy properties only: opens no window)
from kiosk.screens.voice import VoiceGuide  # noqa: E402  (likewise)
from kiosk.screens.keypad import KeypadFocus  # noqa: E402  (likewise)
from kiosk.screens.attract import AttractMode  # noqa: E402  (likewise)
from kiosk.screens.startup import FirstFrame, ScreenWarmer, cjk_font  # noqa: E402  (likewise)

log = logging.getLogger(__name__)

SCREENS_DIR = Path(__file__).parent / "screens"
# Which screen shows which workflow step (the values of kiosk.services.workflow.steps.Step).
STEP_SCREENS = {"identify": "identify", "face": "face", "form": "form", "confirm": "confirm", "pay": "payment",
                "produce": "printing", "done": "done"}
# Screens on which the idle timer does not run: nothing to abandon on home and out of
# service; payment has its own countdown (the order's expiry); printing must finish.
IDLE_EXEMPT = frozenset({"home", "out_of_service", "payment", "printing"})
# The technician's screens; the hidden corner gesture opens them from these resident screens only.
MAINTENANCE_SCREENS = frozenset({"maintenance_pin", "maintenance"})
GESTURE_SCREENS = frozenset({"home", "out_of_service"})
# Out-of-service reasons that are not an operator's notice text.
OOS_CODES = frozenset({"", "nothing_usable", "maintenance", "operator_notice"})
# What the idle warning says will be wiped, by what the session holds (Session.held()).
WIPED = {"identity": "your ID card details", "face_photo": "the photo of your face",
         "form": "what you filled in", "results": "your results and documents"}
KEY_ESCAPE, KEY_BACK, KEY_F1 = 27, 1001, 282
AVAILABILITY_POLL_S = 5.0
CARE_SCALE = 1.5  # care mode: every text and target this much larger
RECONCILE_EVERY_S = 180.0  # settles payments that arrived after the kiosk gave up on them


class _QuietKivyNoise(logging.Filter):
    """Drops Kivy's report that no X cut buffer exists: a kiosk has no X selection to share."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Cutbuffer:")


logging.getLogger("kivy").addFilter(_QuietKivyNoise())


def _value(enum_or_str: Any) -> Any:
    """An enum member's value (Step, Outcome), or the plain value itself."""
    return getattr(enum_or_str, "value", enum_or_str)


def prepare_kivy(ui: UiConfig, *, headless: bool) -> None:
    """Configure Kivy before the window exists: size, offscreen driver, lockdown settings; the allocator."""
    if headless:
        os.environ["SDL_VIDEODRIVER"] = "offscreen"
    from kivy.config import Config

    from kiosk.services.heap import settle_allocator

    settle_allocator()  # months in one process: large blocks kept out of the heap (kiosk.services.heap)
    Config.set("graphics", "width", str(ui.width))
    Config.set("graphics", "height", str(ui.height))
    Config.set("graphics", "fullscreen", "auto" if ui.fullscreen and not headless else "0")
    Config.set("graphics", "resizable", "0")
    Config.set("graphics", "borderless", "1" if ui.fullscreen else "0")
    # No way out: Escape does not close the app, and a right click cannot leave a red
    # multitouch dot that a resident could drag around.
    Config.set("kivy", "exit_on_escape", "0")
    # The form screen brings its own keyboard panel (pinyin input, number pad): Kivy's
    # docked keyboard has no Chinese and would float over the form's buttons.
    Config.set("kivy", "keyboard_mode", "system")
    Config.set("input", "mouse", "mouse,disable_multitouch")
    Config.set("graphics", "maxfps", str(ui.maxfps))  # in use; kiosk.screens.pace lowers it when idle
    Config.set("graphics", "multisamples", "0")  # Kivy's 2x MSAA doubles a frame's cost on llvmpipe (CONTRACTS)


class KioskApp(AttractMode, KeypadFocus, VoiceGuide, HelpCalls, App):
    """The touch UI on a :class:`kiosk.services.runtime.Runtime` (mixins: help, speech, keypad, attract screen)."""

    lang = StringProperty("zh_CN")
    txn = ObjectProperty(None, allownone=True)
    item = ObjectProperty(None, allownone=True)
    error = ObjectProperty(None, allownone=True)
    busy = BooleanProperty(False)
    busy_overlay = BooleanProperty(False)  # the "please wait" layer (printing shows its own progress)
    idle_left = NumericProperty(0)
    idle_warning = BooleanProperty(False)
    idle_wipe = StringProperty("")  # what the idle warning says will be wiped
    # Bumped whenever the set of unavailable items changes, so lists redraw themselves.
    availability = NumericProperty(0)
    backend_down = BooleanProperty(False)
    # An operator's out-of-service notice (remote command), shown on the out-of-service screen.
    oos_notice = StringProperty("")
    # Care mode (关怀模式): every text 1.5x, larger targets, lists paged, stronger contrast,
    # no timed auto-advance, idle timeout doubled. ``ts`` is the factor the kv rules scale by.
    care = BooleanProperty(False)
    ts = NumericProperty(1.0)

    def __init__(self, runtime: Any, config: KioskConfig, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runtime = runtime
        self.kiosk_config = config
        self.lang = config.ui.language
        self.title = "police-kiosk"
        self.unavailable: dict[str, str] = {}
        self.result: Any = None
        self.list_items: tuple[Any, ...] = ()
        self.list_title: tuple[str, str] = ("", "")
        from kiosk.services.idle import IdleTimer

        self.idle = IdleTimer(config.ui.idle_timeout_s, config.ui.idle_warning_s, clock=Clock.get_boottime)
        self.care = config.ui.care_mode_default
        self._last_presence = time.monotonic()  # not Kivy's boottime: it stands still until the clock ticks
        self._generation = 0  # bumped when a transaction ends; stale worker results are dropped
        self.sm: Any = None
        from kiosk.services.maintenance_ops import CornerGesture, MaintenanceService

        self.maintenance = MaintenanceService(runtime, on_restart=self.request_restart)
        self.gesture = CornerGesture()
        self.exit_status = 0
        self._restart_pending = False
        self.first_frame = FirstFrame()  # what start-up leaves until the home screen is on show

    # --- text -------------------------------------------------------------------------
    def tr(self, msgid: str, lang: str | None = None) -> str:
        """Translate an English msgid into the current (or given) language."""
        return translate(msgid, lang or self.lang)

    def local(self, zh: str, en: str, lang: str | None = None) -> str:
        """Pick the Chinese or English variant of a catalog or backend text."""
        return zh if (lang or self.lang) == "zh_CN" else (en or zh)

    def toggle_language(self) -> None:
        """Switch between Chinese and English (the button on every screen)."""
        self.lang = "en" if self.lang == "zh_CN" else "zh_CN"

    def toggle_care(self) -> None:
        """Switch care mode (关怀模式) on or off (the switch on the home screen)."""
        self.care = not self.care

    def on_care(self, _app: Any, care: bool) -> None:
        """Scale every text and target with the mode."""
        self.ts = CARE_SCALE if care else 1.0
        self.idle.timeout_s = self.kiosk_config.ui.idle_timeout_s * (2 if care else 1)

    @property
    def idle_limit_s(self) -> float:
        """Seconds without a touch before the session ends: doubled in care mode."""
        return self.idle.timeout_s

    # --- building ---------------------------------------------------------------------
    def build(self) -> Any:
        """Register the Chinese font, load the shared kv rules and create the home screen."""
        from kivy.core.text import DEFAULT_FONT, LabelBase
        from kivy.core.window import Window
        from kivy.lang import Builder

        LabelBase.register(DEFAULT_FONT, cjk_font())
        from kiosk.screens import kinsoku, scroll_bar, text_surface

        kinsoku.install()  # no wrapped line starts with 。，、 (Kivy breaks Chinese at any character)
        scroll_bar.install()  # a list filled again for every resident does not gather bindings
        text_surface.install()  # a label keeps no second copy of its pixels
        Builder.load_file(str(SCREENS_DIR / "common.kv"))
        from kiosk.screens.base import KioskRoot, gl_finish_without_gil

        # Without a glFinish per frame the offscreen (llvmpipe) driver queues frames and
        # native memory grows without bound.
        finish = gl_finish_without_gil()
        Window.bind(on_flip=lambda *_: finish())
        Window.bind(on_keyboard=self._on_keyboard)
        Window.bind(on_request_close=lambda *_a, **_k: True)
        self.first_frame.watch(Window)
        if self.kiosk_config.profile == "production" or not self.kiosk_config.ui.show_cursor:
            Window.show_cursor = False
        root = KioskRoot()
        self.sm = root.ids.sm
        self.runtime.help.listeners.append(self.help_from_worker)
        self.voice_start()
        self.keypad_start()
        self.go("home")
        Clock.schedule_interval(self._idle_tick, 0.5)
        self.bind(lang=lambda *_a: self.idle_warning and setattr(self, "idle_wipe", self.wipe_notice()))  # at once
        Clock.schedule_interval(self.refresh_availability, AVAILABILITY_POLL_S)
        self.first_frame.then(self.refresh_availability)  # its thread would share the interpreter with this frame
        Clock.schedule_interval(self._reconcile, RECONCILE_EVERY_S)
        return root

    def on_start(self) -> None:
        """Tell systemd the kiosk is up, and keep its watchdog fed from the UI clock."""
        from kiosk.services import pinyin, sdnotify

        sdnotify.ready("serving")
        # Once home is on show: the pinyin index off the UI thread (0.5 s from its cache, 3 s on a fresh machine).
        self.first_frame.then(threading.Thread(target=pinyin.warm_up, name="kiosk-pinyin", daemon=True).start)
        self.first_frame.then(ScreenWarmer(self).start)  # a visit's screens, built while nobody is here
        self.start_watchdog()

    def start_watchdog(self, env: Mapping[str, str] | None = None) -> Any:
        """Ping systemd's watchdog every half interval from the Kivy clock; the event, or None outside systemd.

        Fed from the Kivy clock on purpose: a frozen UI loop stops the pings and systemd
        restarts the kiosk; so does a part holding ``runtime.watchdog`` (a touch screen gone for good).
        """
        from kiosk.services import sdnotify

        interval = sdnotify.watchdog_interval(env)
        if not interval:
            return None
        return Clock.schedule_interval(lambda _dt: self.runtime.watchdog.tick(env), interval / 2)

    def on_stop(self) -> None:
        """Tell systemd the kiosk is stopping."""
        from kiosk.services import sdnotify

        sdnotify.stopping()

    def open_settings(self, *largs: Any) -> bool:
        """The Kivy settings panel (F1) is not reachable on a kiosk."""
        return False

    def _on_keyboard(self, _window: Any, key: int, *_args: Any) -> bool:
        # Any key stops speech at once. Returning True stops Kivy's own handling: Escape/back
        # would close the app, F1 would open the settings panel.
        self.voice_interrupt()
        return key in (KEY_ESCAPE, KEY_BACK, KEY_F1)

    # --- navigation -------------------------------------------------------------------
    def screen(self, name: str) -> Any:
        """The screen called ``name``, created (and its .kv loaded) on first use."""
        if not self.sm.has_screen(name):
            from kivy.lang import Builder

            Builder.load_file(str(SCREENS_DIR / f"{name}.kv"))
            module = importlib.import_module(f"kiosk.screens.{name}")
            self.sm.add_widget(module.SCREEN(name=name))
        return self.sm.get_screen(name)

    def go(self, name: str) -> None:
        """Show screen ``name``."""
        self.screen(name)
        self.sm.current = name
        self.touched()
        self.help_screen_changed(name)
        self.voice_screen_changed(name)
        self.keypad_screen_changed(name)

    def go_home(self) -> None:
        """Back to the home screen with no item selected."""
        from kiosk.screens.base import forget_residents

        self.item = self.result = self.error = None
        self.go("home")
        forget_residents(self.sm)  # nothing of the last resident stays in the screens' widgets

    def show_items(self, title_zh: str, title_en: str, items: Any) -> None:
        """Show a list of items (a category or search results)."""
        self.list_items = tuple(items)
        self.list_title = (title_zh, title_en)
        self.go("category")

    def category_name(self, category: Any) -> str:
        """A catalog Category's name in the current language."""
        return self.local(category.name_zh, category.name_en)

    def open_category(self, category: Any) -> None:
        """Show the items of one category."""
        self.show_items(category.name_zh, category.name_en, self.runtime.catalog.in_category(category.code))

    def search(self, text: str) -> None:
        """Show the items whose id or name matches ``text``."""
        self.show_items(self.tr("Search results", "zh_CN"), "Search results", self.runtime.catalog.search(text))

    def open_item(self, item_id: str) -> None:
        """Show the guide of one item."""
        self.item = self.runtime.catalog.get(item_id)
        self.go("guide")

    def open_tile(self, item_id: str) -> None:
        """A home tile: the item's guide, whose "Back" leads home."""
        self.list_items = ()
        self.open_item(item_id)

    # --- transactions ------------------------------------------------------------------
    def start_item(self) -> None:
        """Start a transaction for the item on the guide screen."""
        self.txn = self.runtime.engine.start(self.item.id)
        self.follow()

    def follow(self) -> None:
        """Show the screen for the transaction's current step, or its outcome."""
        txn = self.txn
        if txn is None:
            self.go_home()
            return
        outcome = _value(txn.outcome)
        if outcome in ("failed", "refused"):
            self.error = txn.error
            self.go("error")
            return
        if outcome == "cancelled":
            self.end_session("cancel")
            return
        step = _value(txn.step)
        self.go(STEP_SCREENS[step])

    def run_step(self, call: Callable[..., Any], *args: Any,
                 on_result: Callable[[Any], None] | None = None,
                 on_recoverable: Callable[[KioskError], None] | None = None,
                 overlay: bool = True) -> None:
        """Run one service call off the UI thread, then follow the transaction.

        The busy layer takes every touch meanwhile, so a second touch cannot start a
        second call; ``overlay`` says whether it also dims the screen. ``on_recoverable``
        gets the errors that leave the transaction open (a bad form value, a card read to
        try again); other errors show the transaction's outcome. An ``on_result`` that
        returns True has chosen the next screen itself.
        """
        generation = self._generation
        self.busy = True
        self.busy_overlay = overlay

        def work() -> None:
            try:
                result: Any = call(*args)
                error: BaseException | None = None
            except BaseException as exc:  # shown to the resident, never lost
                result, error = None, exc
            Clock.schedule_once(lambda _dt: self._step_done(generation, result, error, on_result,
                                                            on_recoverable))

        threading.Thread(target=work, name="kiosk-step", daemon=True).start()

    def _step_done(self, generation: int, result: Any, error: BaseException | None,
                   on_result: Callable[[Any], None] | None,
                   on_recoverable: Callable[[KioskError], None] | None) -> None:
        self.busy = self.busy_overlay = False
        if generation != self._generation:
            return  # the session ended (idle timeout) while the call ran
        if (isinstance(error, KioskError) and on_recoverable is not None
                and self.txn is not None and self.txn.outcome is None):
            on_recoverable(error)
            return
        if error is not None:
            self.show_failure(error)
            return
        if on_result is not None and on_result(result):
            return  # the screen showed what comes next itself
        self.follow()

    def show_failure(self, error: BaseException) -> None:
        """A service call failed: show the transaction's outcome, or the error itself."""
        if not isinstance(error, KioskError):
            log.error("step failed: %s", type(error).__name__, exc_info=error)
            error = KioskError(type(error).__name__)
        if self.txn is not None and _value(self.txn.outcome) is not None:
            self.follow()
            return
        self.error = error  # the call failed without deciding the transaction
        self.go("error")

    def background(self, call: Callable[..., Any], *args: Any,
                   on_result: Callable[[Any], None] | None = None,
                   on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run a call that does not move the transaction (lookup options, polling) off the UI thread."""
        generation = self._generation

        def work() -> None:
            try:
                result: Any = call(*args)
            except BaseException as exc:
                if on_error is not None:
                    # bound now: Python unbinds ``exc`` when the except block ends
                    Clock.schedule_once(lambda _dt, err=exc: generation == self._generation and on_error(err))
                return
            if on_result is not None:
                Clock.schedule_once(lambda _dt: generation == self._generation and on_result(result))

        threading.Thread(target=work, name="kiosk-call", daemon=True).start()

    def card_present(self) -> bool:
        """Whether the ID card reader reports a card in its field (False when it cannot tell)."""
        reader = self.runtime.devices.get("id_card")
        try:
            return reader is not None and bool(reader.card_present())
        except KioskError:
            return False

    def cancel(self) -> None:
        """The resident gives up: cancel the transaction, wipe the session and go home."""
        self.end_session("cancel")

    def finish(self) -> None:
        """The resident is done: end the transaction (wipes the session) and go home."""
        self.end_session("done")

    def end_session(self, reason: str) -> None:
        """End the current transaction, if any ("cancel", "timeout" or "done"), wipe it, go home."""
        txn = self.txn
        self._generation += 1
        self.busy = self.busy_overlay = False
        if txn is not None:
            try:
                if txn.outcome is None:
                    txn.cancel(reason="timeout" if reason == "timeout" else "cancel")
                txn.finish()
            except KioskError as exc:
                # Paid but not produced yet: never drop it; produce, then finish.
                log.warning("ending the transaction: %s", exc.code)
                if _value(txn.step) == "produce":
                    self.go("printing")
                    return
        self.txn = None
        if reason != "cancel":
            # The next resident starts in the station's default mode; one who cancels keeps theirs (home forgets it).
            self.care = self.kiosk_config.ui.care_mode_default
        self.idle.restart()
        self.end_help()  # a call for help ends with the session
        self.voice_session_ended()
        self.keypad_session_ended()
        self.go_home()

    # --- idle timer ---------------------------------------------------------------------
    def touched(self) -> None:
        """A touch anywhere (or a new screen): the resident is still there."""
        self._last_presence = time.monotonic()
        self.idle.touched()
        self.idle_warning = False

    def extend_time(self) -> None:
        """The idle warning's one touch: the resident wants more time (as often as they ask)."""
        self.idle.extend()
        self.idle_warning = False

    def wipe_notice(self) -> str:
        """What the idle timeout will wipe, from what the session holds now, in the current language."""
        session = getattr(self.txn, "session", None)
        held = session.held() if session is not None else ()
        if not held:
            return self.tr("Nothing of yours has been read yet. The visit simply ends.")
        things = ("、" if self.lang == "zh_CN" else ", ").join(self.tr(WIPED[kind]) for kind in held)
        return self.tr("This will be wiped: {data}.").format(data=things)

    def _idle_tick(self, _dt: float) -> None:
        current = self.sm.current if self.sm else "home"
        if self._restart_pending and self.txn is None and not self.busy:
            self._restart_now()
            return
        if current == "home" and self.care != self.kiosk_config.ui.care_mode_default \
                and time.monotonic() - self._last_presence > self.idle_limit_s:
            self.care = self.kiosk_config.ui.care_mode_default  # the resident has gone
        if current in IDLE_EXEMPT or self.busy:
            self.idle.touched()
            self.idle_warning = False
            self.idle_left = 0
            return
        # A resident waiting for the officer's answer has not walked away: the help call's longer limit.
        state = self.idle.state(self.help_idle_timeout(self.idle_limit_s))
        left = state.left_s
        self.idle_left = max(0, int(left + 0.999))
        if state.warning:
            self.idle_wipe = self.wipe_notice()  # the language may change while it shows
        self.idle_warning = state.warning
        if state.expired:
            log.info("idle timeout on screen %s: session ended", current)
            self.idle_warning = False
            self.end_session("done" if current == "done" else "timeout")

    # --- backend availability -----------------------------------------------------------
    def refresh_availability(self, _dt: float = 0) -> None:
        """Ask the runtime's health monitor what can run now; lists redraw when that changes."""
        def work() -> None:
            try:
                down = self.runtime.health.unavailable_items()
                out = self.runtime.out_of_service()
                reason = self.runtime.health.out_of_service_reason() if out else ""
            except KioskError as err:
                log.error("health check failed: %s", err.code)
                return
            Clock.schedule_once(lambda _dt: self._set_unavailable(down, out, reason))

        threading.Thread(target=work, name="kiosk-availability", daemon=True).start()

    def _set_unavailable(self, down: dict[str, str], out_of_service: bool, reason: str = "") -> None:
        self.oos_notice = "" if reason in OOS_CODES else reason
        if down != self.unavailable or self.availability == 0:
            log.info("availability: %d of %d items unavailable (%s)", len(down), len(self.runtime.catalog.items),
                     ", ".join(sorted(set(down.values()))) or "all available")
            self.unavailable = down
            self.availability += 1
        self.backend_down = "backend_unavailable" in down.values()
        # Nothing can be served: say so instead of offering dead buttons (only between
        # visits, never in the middle of one); back by itself when the runtime recovers.
        if out_of_service and self.sm.current == "home":
            self.go("out_of_service")
        elif not out_of_service and self.sm.current == "out_of_service":
            self.go_home()

    def _reconcile(self, _dt: float) -> None:
        threading.Thread(target=self.runtime.reconcile, name="kiosk-reconcile", daemon=True).start()

    # --- maintenance and remote commands --------------------------------------------------
    def corner_touch(self, x: float, y: float, width: float, height: float) -> None:
        """Feed a touch-down to the hidden gesture; the fourth corner opens the PIN screen."""
        if self.sm is None or self.sm.current not in GESTURE_SCREENS or self.txn is not None:
            return
        if self.gesture.touch(x, y, width, height):
            log.info("maintenance gesture recognised")
            self.go("maintenance_pin")

    def leave_maintenance(self) -> None:
        """Back to service from the technician's screens (or a remote command)."""
        self.maintenance.leave()
        if self.sm is not None and self.sm.current in MAINTENANCE_SCREENS:
            self.go_home()
        self.refresh_availability()

    def command_handler(self) -> Any:
        """The heartbeat's CommandHandler: acts on the runtime, then updates the UI on the Kivy loop."""
        from kiosk.services.maintenance_ops import KioskCommandHandler, UiHooks

        def on_ui(call: Callable[[], None]) -> None:
            Clock.schedule_once(lambda _dt: call())

        def maintenance_changed(on: bool) -> None:
            if not on:
                on_ui(lambda: self.sm.current in MAINTENANCE_SCREENS and self.go_home())
            on_ui(self.refresh_availability)

        return KioskCommandHandler(self.maintenance, UiHooks(
            restart=lambda: on_ui(self.request_restart), maintenance_changed=maintenance_changed,
            notice_changed=lambda _text: on_ui(self.refresh_availability)))

    def request_restart(self) -> None:
        """Exit with RESTART_EXIT_STATUS (systemd starts the kiosk again) once no resident is being served."""
        self._restart_pending = True
        log.warning("restart requested; restarting when no resident is being served")

    def _restart_now(self) -> None:
        from kiosk.services.maintenance_ops import RESTART_EXIT_STATUS

        self._restart_pending = False
        self.first_frame = FirstFrame()  # what start-up leaves until the home screen is on show
        self.exit_status = RESTART_EXIT_STATUS
        log.warning("restarting the kiosk (exit status %d)", RESTART_EXIT_STATUS)
        self.stop()

    def unavailable_reason(self, item: Any) -> str:
        """Why the item cannot run now ('' when it can): backend_unavailable, <device>_unavailable."""
        return self.unavailable.get(item.id, "") if item is not None else ""

    def produced(self, result: Any) -> None:
        """Keep what production returned (documents, receipts, display lines) for the done screen."""
        self.result = result

    def rate(self, rating: str) -> None:
        """Count the resident's rating of this visit (satisfied, basically_satisfied, dissatisfied)."""
        self.runtime.stats.record_rating(rating, self.txn.item.id if self.txn else "")

    def is_available(self, item: Any) -> bool:
        """Whether the item can be started now (the last answer of the runtime)."""
        return item is not None and item.id not in self.unavailable


def build_runtime(cfg: KioskConfig, *, defer_sim: bool = False) -> Any:
    """The services assembled from the config (the demo profile embeds the backend simulator: Runtime.from_config)."""
    from kiosk.services.runtime import Runtime

    return Runtime.from_config(cfg, defer_sim=defer_sim)
