"""The UI soak: the kiosk as ``kiosk run --headless`` builds it, driven in-process by scripted residents.

``prepare_kivy`` (offscreen), ``build_runtime``, health monitoring, speech warm-up, the heartbeat and
``KioskApp`` as :func:`kiosk.run.run_kiosk` assembles them; the demo's :class:`UiDriver` runs the
event loop frame by frame and each session's resident (:class:`SoakResident`, the demo's resident
with the soak's manners) touches or keys its way through one planned session. Residents do not
pause; one who walks away gets a short idle timeout (``WALK_AWAY_S``). After every session the
kiosk must be back on the home screen by itself within that session's limit, or it is stuck.
"""
from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from kiosk.demo import people
from kiosk.demo.driver import DemoError, UiDriver
from kiosk.demo.flows import FlowScript
from kiosk.demo.resident import Resident
from kiosk.errors import KioskError
from kiosk.soak import ledger
from kiosk.soak.chip import ChipStation
from kiosk.soak.engine_soak import new_resident, soak_config, top_up
from kiosk.soak.faults import FaultInjector
from kiosk.soak.plan import FAULT_KINDS, SessionPlan, plan_sessions, tours
from kiosk.soak.report import SoakResult
from kiosk.soak.sampler import (READ_EVERY, grown, live_types, malloc_mib, memory_map, open_descriptors, opened,
                                python_arenas_mib, python_blocks, rss_reading, sample, sqlite_mib, texture_mib)

log = logging.getLogger(__name__)

WALK_AWAY_S = 10.0  # the walk-aways' idle timeout (doubled in care mode, as the kiosk doubles it)
WALK_AWAY_WARNING_S = 4.0
HOME_SLACK_S = 15.0  # frames, the warning's last reading and the session's end, on a loaded 2-core machine
PAYMENT_TIMEOUT_S = 60  # the order's expiry: the payment screen's own idle limit
TIDY_EVERY = 50  # sessions between emptying the copies of documents, receipts and speech
BRISK_HOLD_S = 0.08  # a quick finger outside lists (one on a list still holds past ScrollView's 200 ms)
SPEECH_CACHE_MB = 32  # full before the warm-up's 100 sessions end (a 64 MiB cache is not full until ~225)
SOAK_NAP_S = 0.005  # between frames while waiting (the demo naps 30 ms)


class SoakDriver(UiDriver):
    """The demo's driver, counting the idle warnings a resident answered and the screens they came up on."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        self.warnings: dict[str, int] = {}
        # Residents who do not pause: a brisk tap outside lists, and a shorter nap between frames (the Kivy
        # clock's own wait for the next frame still leaves the service threads the interpreter).
        self.tap_hold_s = BRISK_HOLD_S
        self.nap_s = SOAK_NAP_S

    def answer_warning(self) -> bool:
        """Answer the warning as the demo's driver does; count it by screen when answered."""
        screen = self.current
        answered = super().answer_warning()
        if answered:
            self.warnings[screen] = self.warnings.get(screen, 0) + 1
            log.warning("soak: idle warning answered on screen %s", screen)
        return answered


class SoakResident(Resident):
    """The demo's resident without screenshots, with the soak's chip reader, cancels, walk-aways and faults."""

    def __init__(self, driver: SoakDriver, runtime: Any, out: Path, station: ChipStation,
                 injector: FaultInjector) -> None:
        super().__init__(driver, runtime, out, shots="ends")
        self.pause_s = 0.0  # lays the card down and pays at once: the soak's residents do not pause
        self.station = station
        self.injector = injector
        self.plan = SessionPlan(0, "")
        self.late_home = False  # a walk-away whose session outlived its idle timeout

    def shot(self, screen: str, *, again: bool = False) -> None:
        """No screenshots in a soak."""

    def take_card_back(self) -> None:
        """Lift the ID card and the travel document off their readers."""
        super().take_card_back()
        self.station.remove()

    def present_identity(self, item: Any) -> None:
        """A travel document goes on the PC/SC reader (pcscd restarted first when that is the fault) and its
        data page under the scanner; an ID card as in the demo."""
        if item.identity != "travel_document":
            super().present_identity(item)
            return
        from kiosk.hardware.simulators.vicc import DemoDocument

        document = people.travel_document_for(item, self.script.person)
        self.injector.restart_pcscd()
        self.station.place(document)
        self.runtime.devices.get("scanner").feed(
            DemoDocument("P", "CHN", "DEMO", "RESIDENT", document.document_number, "CHN", document.birth_date, "<",
                         document.expiry_date).mrz())

    def at_identify(self, item: Any) -> bool:
        """Lay the card on the reader; when the screen says it moved (pulled mid-read: the reader lost it), lay it
        again, as a resident would."""
        drv = self.driver
        self.present_identity(item)
        reader = self.runtime.devices.get("id_card")
        if item.identity != "travel_document" and reader is not None:
            screen = drv.app.sm.get_screen("identify")

            def card_gone() -> bool:
                return (drv.current == "identify" and not drv.app.busy and bool(screen.ids.problem.text)
                        and not reader.card_present())
            drv.wait_until(lambda: drv.current != "identify" or card_gone(), "the card read")
            if card_gone():
                self.present_identity(item)
        drv.wait_leave("identify")
        return False

    def open_item(self, item: Any) -> None:
        """Open the item as the demo does; when its entry moved as the list was redrawn (availability changed under
        the finger), look again once, as a resident would."""
        try:
            super().open_item(item)
        except DemoError as err:
            if self.driver.current != "category":
                raise
            log.warning("soak: %s: looking again (%s)", item.id, err.detail or err)
            self.driver.pump(5)
            category = self.driver.app.sm.get_screen("category")
            target = category.button_for(item.id)
            self.driver.reveal(target)
            self.press(target, f"item {item.id}")
            self.driver.wait_screen("guide")

    def action_for(self, screen: str) -> Callable[[Any], bool]:
        """A cancelling resident's cancel on the planned screen; otherwise the demo resident's action."""
        if self.plan.behaviour == "cancel" and screen == self.plan.screen:
            return self.cancel_here
        return super().action_for(screen)

    def cancel_here(self, item: Any) -> bool:
        """Touch 取消 and expect home."""
        self.press_id("cancel_button")
        self.driver.wait_screen("home")
        self.record.outcome, self.record.reason = "cancelled", "cancel"
        return True

    def walk_away(self, screen: str) -> None:
        """Walk away with the short idle timeout; note when home came later than the timeout allows."""
        app = self.driver.app
        app.idle.timeout_s = WALK_AWAY_S * (2 if app.care else 1)
        app.idle.warning_s = WALK_AWAY_WARNING_S
        started = time.monotonic()
        try:
            super().walk_away(screen)
        finally:
            took = time.monotonic() - started
            self.late_home = took > app.idle.timeout_s + HOME_SLACK_S
            if self.late_home:
                log.error("soak: walk-away on %s took %.1f s to reach home (limit %.0f s)", screen, took,
                          app.idle.timeout_s)
            app.idle.warning_s = float(self.runtime.config.ui.idle_warning_s)
            app.on_care(app, app.care)  # the configured timeout back (doubled in care mode)

    def back_home(self) -> None:
        """After the resident lost their way: the kiosk must bring itself home (idle timeout), not the soak."""
        app = self.driver.app
        limit = max(app.idle.timeout_s, PAYMENT_TIMEOUT_S) + app.idle.warning_s + HOME_SLACK_S
        self.driver.wait_until(lambda: self.driver.current == "home" and not app.busy, "home after a lost flow",
                               limit)


def script_for(plan: SessionPlan) -> FlowScript:
    """The demo's flow script for a planned session."""
    return FlowScript(plan.item, values=dict(plan.values),
                      leave=plan.screen if plan.behaviour == "walk_away" else "",
                      help=plan.screen if plan.behaviour == "help" else "",
                      input="keypad" if plan.behaviour == "keypad" else "touch",
                      mode="care" if plan.behaviour == "care" else "")


class UiSoak:
    """The assembled kiosk, its driver and resident, and the soak's counts."""

    def __init__(self, out: Path, station: ChipStation) -> None:
        from kiosk.app import KioskApp, build_runtime, prepare_kivy
        from kiosk.run import start_in_background
        from kiosk.services.heartbeat import HeartbeatSender

        state = out / "ui-state"
        shutil.rmtree(state, ignore_errors=True)
        self.demo_out = out / "ui-demo"
        shutil.rmtree(self.demo_out, ignore_errors=True)
        self.demo_out.mkdir(parents=True)
        # The speaker simulator does not hold each utterance for its length: residents who do not pause do not
        # wait for the voice either (it is still rendered by espeak-ng and played to the simulator).
        # The prompt cache is bounded (speech.cache_mb, LRU): at the default 64 MiB it fills over the first ~225
        # sessions, past the warm-up, and its filling would read as growth. At SPEECH_CACHE_MB it is full within
        # the warm-up, and the RSS fitted after it shows what is not bounded.
        cfg = soak_config(state, devices={"pcsc": station.device_config(), "speaker": {"options": {"realtime": False}}},
                          payment={"timeout_s": PAYMENT_TIMEOUT_S}, speech={"cache_mb": SPEECH_CACHE_MB})
        prepare_kivy(cfg.ui, headless=True)  # as `kiosk run --headless`
        self.runtime = build_runtime(cfg, defer_sim=True)
        self.app = KioskApp(self.runtime, cfg)
        self.heartbeat = HeartbeatSender.from_runtime(self.runtime, self.app.command_handler(), None,
                                                      max_queue=cfg.heartbeat.queue_max)
        # Monitoring, speech warm-up and the heartbeat after the first frame, as kiosk.run does.
        start_in_background(self.app, self.runtime, self.heartbeat, cfg)
        self.driver = SoakDriver(self.app)
        self.injector = FaultInjector(self.runtime, station.restart_pcscd)
        self.resident = SoakResident(self.driver, self.runtime, self.demo_out, station, self.injector)

    def start(self) -> None:
        """Open the (offscreen) window and wait for the first availability check, as the demo does."""
        self.driver.start()
        self.driver.wait_until(lambda: self.app.availability > 0, "the first availability check")

    def session(self, plan: SessionPlan, result: SoakResult) -> str:
        """One planned session: its fault armed and disarmed, its outcome counted (and returned), stuck when home
        never came."""
        app, drv, item = self.app, self.driver, self.runtime.catalog.get(plan.item)
        outcome = "crashed"
        self.resident.plan, self.resident.late_home = plan, False
        new_resident(self.runtime)
        if plan.fault:
            self.injector.arm(plan.fault, item)
            if plan.fault == "disk_nearly_full":
                self._availability(lambda: app.unavailable.get(item.id) == "disk_full", "the disk guard's verdict")
        try:
            record = self.resident.run(script_for(plan))
            outcome = "resident_lost" if record.reason.startswith(DemoError.code) else record.outcome
            result.count(outcome)
            if outcome == "resident_lost":
                log.error("soak: session %d %s %s: %s", plan.index, plan.item, plan.behaviour, record.reason)
        except DemoError as err:  # back_home: the kiosk did not bring itself home
            outcome = "resident_lost"
            result.count(outcome)
            result.stuck += 1
            log.error("soak: session %d %s stuck: %s", plan.index, plan.item, err.detail or err)
        except KioskError as err:
            outcome = "failed"
            result.count(outcome)
            log.error("soak: session %d %s: %s", plan.index, plan.item, err.code)
        except Exception:  # noqa: BLE001  (a crash: counted, logged, and the soak goes on)
            result.crashes += 1
            log.exception("soak: session %d (%s) crashed", plan.index, plan.item)
        finally:
            self.injector.disarm()
        if self.resident.late_home:
            result.stuck += 1
        if not self._home_by_itself():
            result.stuck += 1
            log.error("soak: session %d %s: not home within its limit (screen %s)", plan.index, plan.item, drv.current)
            app.end_session("cancel")
            drv.wait_until(lambda: drv.current == "home" and not app.busy, "home after ending the session", 60)
        if plan.fault:
            # The fault is off (paper back in, disk guard clear): the lists learn it now, not at their next
            # 5 s poll, or the next resident would find a start button still greyed by this session's fault.
            # The backend's health answer is cached for a few seconds: a fault the probe caught would still be
            # read from the cache, so the probe asks again (the next residents met the backend "down" before).
            self.runtime.backend_up(fresh=True)
            expected = dict(self.runtime.health.poll().unavailable)
            self._availability(lambda: app.unavailable == expected, "the lists after the fault")
        return outcome

    def rest(self) -> None:
        """What a kiosk left still at home does after TIDY_AFTER_S (the home screen's tidy at rest), then two
        frames, so that the labels' new textures have their pixels when the reading is taken. The soak's residents
        come at once, so home never waits that long by itself; every reading comes after it."""
        if self.driver.current == "home" and self.app.txn is None:
            self.app.sm.get_screen("home").rest_tidy()
        self.driver.pump(2)

    def _home_by_itself(self) -> bool:
        app, drv = self.app, self.driver
        limit = max(app.idle.timeout_s, PAYMENT_TIMEOUT_S) + app.idle.warning_s + HOME_SLACK_S
        try:
            drv.wait_until(lambda: drv.current == "home" and not app.busy and app.txn is None, "home", limit)
            return True
        except DemoError:
            return False

    def _availability(self, predicate: Callable[[], bool], what: str) -> None:
        """Ask the health monitor again and wait until the lists show ``what`` (logged when they never do)."""
        self.app.refresh_availability()
        try:
            self.driver.wait_until(predicate, what, 20)
        except DemoError as err:
            log.error("soak: %s", err.detail or err)

    def tidy(self) -> None:
        """Empty the copies the demo's resident keeps of documents, receipts and speech, and its driver's touch
        timings; paper back in."""
        for sub in ("documents", "receipts", "audio", "screenshots"):
            shutil.rmtree(self.demo_out / sub, ignore_errors=True)
        top_up(self.runtime)
        self.driver.response_ms.clear()  # the driver times every touch for the demo's summary; the soak reads none

    def stop(self) -> None:
        """Stop the app and the heartbeat (the runtime stays open for the ledger)."""
        try:
            self.driver.stop()
        finally:
            self.heartbeat.stop()


def run(out: Path, sessions: int, seed: int, *, sample_every: int = 100, warmup: int = 100,
        read_every: int = READ_EVERY, trace: bool = False,
        progress: Callable[[str], None] = print) -> tuple[SoakResult, dict[str, int]]:
    """The UI soak of ``sessions`` sessions under ``out``; the result and the idle warnings answered by screen."""
    station = ChipStation(out / "pcscd").start()
    result = SoakResult(warmup=warmup)
    started = time.monotonic()
    soak: UiSoak | None = None
    try:
        soak = UiSoak(out, station)
        items = soak.runtime.catalog.items
        plans = plan_sessions(items, sessions, seed, flagships=[item.id for item in soak.runtime.home_items],
                              tour=warmup if tours(items, sessions, warmup) else 0)
        soak.start()
        soak.rest()
        result.samples.append(sample(0))
        result.readings.append((0, result.samples[-1].rss_mib))
        census = live_types(), open_descriptors()
        tracer = AllocationTracer(progress) if trace else None
        for plan in plans:
            began = time.monotonic()
            outcome = soak.session(plan, result)
            done = plan.index + 1
            progress(f"soak ui: session {done} {plan.item} {plan.behaviour}{' ' + plan.fault if plan.fault else ''}"
                     f"{' ' + plan.screen if plan.screen else ''}: {outcome} ({time.monotonic() - began:.1f} s)")
            if done % TIDY_EVERY == 0:
                soak.tidy()
            if done % sample_every == 0 or done == sessions or done % read_every == 0:
                soak.rest()
            if done % sample_every == 0 or done == sessions:
                result.samples.append(sample(done))
                result.readings.append((done, result.samples[-1].rss_mib))
                census = _diagnose(census, progress)
                if tracer is not None and done >= warmup:
                    tracer.compare(done)
                rate = done / (time.monotonic() - started) * 60
                # The prompt cache fills to its bound (speech.cache_mb) early on: RSS that grows with it is a cache
                # filling, not a leak.
                cache = soak.runtime.speech.cache
                progress(f"soak ui: {done}/{sessions} sessions ({rate:.1f}/min), rss {result.samples[-1].rss_mib:.1f} "
                         f"MiB, speech cache {cache.size_bytes / 2**20:.1f}/{cache.max_bytes / 2**20:.0f} MiB, "
                         f"stuck {result.stuck}, crashes {result.crashes}")
            elif done % read_every == 0:
                result.readings.append((done, rss_reading()))
                progress(f"soak ui: reading {done}: rss {result.readings[-1][1]:.1f} MiB, {_held()}")
        if tracer is not None:
            tracer.stop()
        soak.stop()
        soak.runtime.reconcile()  # what the kiosk's reconcile timer does: late payments settled
        counts = soak.injector.counts()
        result.faults = {kind: counts.get(kind, 0) for kind in FAULT_KINDS}
        result.mismatches = ledger.reconcile(soak.runtime.sim.app.db.path, soak.runtime.journal,
                                             soak.runtime.config.terminal.id)
        warnings = dict(soak.driver.warnings)
    finally:
        if soak is not None:
            soak.runtime.close()
        station.stop()
    result.sessions = sessions
    result.seconds = time.monotonic() - started
    return result, warnings


def _diagnose(before: tuple[Any, Any], progress: Callable[[str], None]) -> tuple[Any, Any]:
    """Say where the memory sits (mappings, textures' pixels), which object types grew and which descriptors were
    opened since ``before`` (census, descriptors); the new pair, for the next time."""
    census, descriptors = live_types(), open_descriptors()
    where = memory_map()
    progress(f"soak ui: memory heap {where['heap']} anon {where['anon']} files {where['files']} MiB, {_held(where)}, "
             f"textures {texture_mib()} MiB; grown since the last sample: "
             + (", ".join(f"{name} +{n}" for name, n in grown(before[0], census)) or "nothing")
             + "; descriptors opened since: "
             + (", ".join(f"{kind} +{n}" for kind, n in opened(before[1], descriptors)) or "none"))
    return census, descriptors


def _held(where: dict[str, float] | None = None) -> str:
    """What the allocators hold (after the reading's trim): C's in use and free, Python's blocks and arenas, and the
    threads' stacks (what the resident set holds beside the allocators; from ``where``, a memory_map already read)."""
    held, sqlite = malloc_mib(), sqlite_mib()
    c_part = f"malloc used {held['used']} free {held['free']} MiB, " if held else ""
    c_part += f"sqlite {sqlite} MiB, " if sqlite is not None else ""
    return (f"{c_part}python blocks {python_blocks()} in {python_arenas_mib()} MiB of arenas, "
            f"stacks {(where or memory_map())['stacks']} MiB")


class AllocationTracer:
    """``--trace``: Python's allocations traced (``tracemalloc``, one frame each) from the start; at each sample
    from the warm-up's end on, the lines whose live allocations grew most since the warm-up's end are said.

    Off by default: tracing costs every allocation time and memory of its own (not counted in the readings'
    trend, which it shifts by a constant). It finds growth that Python allocates; growth inside C libraries
    (SDL, Mesa, FreeType) does not show here."""

    TOP = 10

    def __init__(self, progress: Callable[[str], None]) -> None:
        import tracemalloc

        self._tm = tracemalloc
        self.progress = progress
        self.base: Any = None
        tracemalloc.start(1)

    def _snapshot(self) -> Any:
        return self._tm.take_snapshot().filter_traces((self._tm.Filter(False, self._tm.__file__),))

    def compare(self, session: int) -> None:
        """The first call keeps the baseline; each later one says what grew since it."""
        snapshot = self._snapshot()
        if self.base is None:
            self.base = snapshot
            self.progress(f"soak ui: allocations traced from session {session} "
                          f"({self._tm.get_traced_memory()[0] / 2**20:.1f} MiB live)")
            return
        top = snapshot.compare_to(self.base, "lineno")[: self.TOP]
        self.progress(f"soak ui: allocations grown since the warm-up, at session {session}: "
                      + "; ".join(f"{_short(s.traceback[0])} {s.size_diff / 1024:+.0f} KiB {s.count_diff:+d}"
                                  for s in top))

    def stop(self) -> None:
        """Tracing off."""
        self._tm.stop()


def _short(frame: Any) -> str:
    """A traced line as the last three parts of its file's path and its number (kivy/uix/label.py:123)."""
    return f"{'/'.join(frame.filename.rsplit('/', 3)[-3:])}:{frame.lineno}"
