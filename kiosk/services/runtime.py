"""Assembles the terminal's services from its config: the one object the UI and the CLI hold.

``Runtime.from_config(cfg)`` sets up masked logging under the state folder, loads the
catalog, builds the devices, starts the embedded backend simulator when the config says
``backend.url = "embedded"`` (loopback, a free port, its database under the state folder;
its port bound at once, the simulator built in a thread and waited for by the first call),
makes the signed backend client, opens the journal, builds the workflow engine and the speech
service, and runs crash recovery before the first resident is served. No Kivy here.
"""
from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from kiosk.config import KioskConfig
from kiosk.durable import remove_stale_temps
from kiosk.errors import ConfigError, KioskError, UnknownItemError
from kiosk.services.health import Availability, DiskGuard, HealthMonitor, needed_devices
from kiosk.services.help import HelpDesk
from kiosk.services.journal import Journal
from kiosk.services.logs import setup_logging, teardown_logging
from kiosk.services.speech import SpeechService, fixed_prompts
from kiosk.services.stats import Stats
from kiosk.services.touch_supervisor import NAME as TOUCH, TouchSupervisor
from kiosk.services.watchdog import WatchdogFeeder
from kiosk.services.workflow.engine import SessionStore, WorkflowEngine
from kiosk.services.workflow.records import MoneyAlarm, TransactionEnded
from kiosk.services.workflow.recovery import RecoveryAction, recover

log = logging.getLogger(__name__)

HEALTH_TTL_S = 5.0  # a probe answer is reused this long, so list screens can ask per item


# Kept for callers that imported them from here; the logic lives in kiosk.services.health.
__all__ = ["Availability", "Runtime"]
_needed_devices = needed_devices


def home_items(catalog: Any, cfg: KioskConfig) -> tuple[Any, ...]:
    """The home screen's tiles: config ``ui.home_items`` or the catalog's. Raises ConfigError for an unknown id."""
    try:
        return catalog.home_items(cfg.ui.home_items)
    except UnknownItemError as exc:
        raise ConfigError(f"ui.home_items: {exc.detail}", key="ui.home_items", value=cfg.ui.home_items) from None


# Where the kiosk's own stores write through kiosk.durable (state folder, heartbeat queue, counter, acks, seen).
SWEPT_FOLDERS = ("", "heartbeat", "heartbeat/queue")


class Runtime:
    """The assembled services of one terminal."""

    def __init__(self, config: KioskConfig, catalog: Any, devices: Any, backend: Any, journal: Journal,
                 engine: WorkflowEngine, sim: Any = None) -> None:
        self.config = config
        self.catalog = catalog
        self.devices = devices
        self.backend = backend
        self.journal = journal
        self.engine = engine
        self.sim = sim
        self.home_items = home_items(catalog, config)
        self.recovered: list[RecoveryAction] = []
        self._health_lock = threading.Lock()
        self._health: tuple[float, bool] = (0.0, False)
        self._stopped = False
        self.metrics: Any = None
        self.speech = SpeechService.from_config(config, getattr(devices, "speaker", None))
        self._face_detector: Any = None
        up = config.upkeep
        self.stats = Stats(self.state_dir)
        self.help = HelpDesk(backend, journal, self.stats, poll_s=config.help.poll_s)
        self.disk = DiskGuard.from_config(config)
        self.health = HealthMonitor(catalog, devices, self.backend_up,
                                    backend_url=config.backend.url, disk=self.disk,
                                    interval_s=up.health_interval_s, upkeep=self.upkeep,
                                    upkeep_interval_s=up.upkeep_interval_s, terminal_id=config.terminal.id)
        engine.admit = self.health.admit
        # The UI clock pings systemd through this; a touch screen gone for good holds it (a deaf kiosk restarts).
        self.watchdog = WatchdogFeeder()
        self.touch: TouchSupervisor | None = None
        if config.touch.enabled:
            self.touch = TouchSupervisor.from_config(config.touch, self.watchdog)
            self.health.sources[TOUCH] = self.touch
        engine.on_end.append(self._transaction_ended)
        # Counted from the start (start-up recovery runs before metrics are attached).
        self.alarms: dict[str, int] = {}
        self._alarm_lock = threading.Lock()
        engine.on_alarm.append(self._money_alarm)

    @property
    def state_dir(self) -> Path:
        """The terminal's state folder (journal, sessions, spool, logs)."""
        return self.config.paths.root()

    @classmethod
    def from_config(cls, cfg: KioskConfig, *, recover_now: bool = True, defer_sim: bool = False) -> "Runtime":
        """Build every service from ``cfg`` and recover what a crash left half done.

        The embedded simulator is built in a thread; ``defer_sim`` builds it only at the first
        backend call (or ``sim.build_in_background()``), so the kiosk's first frame has the CPU.
        """
        from kiosk.hardware.factory import build_devices
        from kiosk.services.backend import BackendClient
        from kiosk.services.catalog import Catalog

        from kiosk import localtime

        localtime.set_zone(cfg.terminal.timezone)  # "today" is the station's day, as the backend's
        state = cfg.paths.root()
        state.mkdir(parents=True, exist_ok=True, mode=0o700)
        setup_logging(state, max_bytes=int(cfg.upkeep.log_max_mb * 1024 * 1024), backups=cfg.upkeep.log_backups)
        catalog = Catalog.load()
        home_items(catalog, cfg)  # a bad ui.home_items is refused before anything starts
        sim = None
        if cfg.backend.url == "embedded":
            from kiosk.backend_sim.server import bind

            # Port 0: the OS picks a free port, so two kiosks (or tests) never collide. Bound now,
            # built in a thread: at once, or at the first call when the caller asked to defer it.
            sim = bind("127.0.0.1", 0, db_path=str(state / "backend-sim.sqlite3"))
            if not defer_sim:
                sim.build_in_background()
            cfg = cfg.model_copy(update={"backend": cfg.backend.model_copy(update={"url": sim.url})})
        try:
            devices = build_devices(cfg)
            for name, device in devices.all():
                try:
                    device.open()
                except KioskError as err:  # a broken device is reported by status, not fatal here
                    log.error("device %s did not open: %s", name, err.code)
            backend = BackendClient.from_config(cfg)
            if sim is not None:
                backend.before_call = sim.ensure_started  # a call never races the simulator's build
            journal = Journal(state)
            engine = WorkflowEngine(catalog, backend, devices, journal, SessionStore(state), cfg)
        except BaseException:
            if sim is not None:
                sim.stop()
            raise
        runtime = cls(cfg, catalog, devices, backend, journal, engine, sim)
        if recover_now:
            runtime.recover()
        return runtime

    def recover(self) -> list[RecoveryAction]:
        """Run start-up recovery (a backend that is down postpones it), then drop settled old journal entries."""
        self.sweep_cut_leftovers()
        try:
            self.recovered = recover(self.engine)
        except KioskError as err:
            log.error("recovery postponed: %s", err.code)
            self.recovered = []
        self.prune_journal()
        return self.recovered

    def sweep_cut_leftovers(self) -> int:
        """Delete the half-written temporary files a power cut left in the folders this process writes.

        Not ``update/``: kiosk-update writes there, perhaps at this very moment. Session folders
        are wiped whole by recovery.
        """
        removed = sum(len(remove_stale_temps(self.state_dir / sub)) for sub in SWEPT_FOLDERS)
        if removed:
            log.warning("start-up: %d half-written file(s) from an interrupted write removed", removed)
        return removed

    def prune_journal(self) -> int:
        """Delete settled journal entries older than ``[upkeep] journal_retention_days``; returns how many."""
        purged = self.journal.purge(self.config.upkeep.journal_retention_days * 24 * 3600)
        if purged:
            self.journal.checkpoint()  # secure_delete zeroed the rows; fold the WAL so no copy lingers there
            log.info("journal: %d old entries deleted", purged)
        return purged

    def upkeep(self) -> None:
        """Periodic upkeep while running (the health thread calls it hourly): journal pruning."""
        try:
            self.prune_journal()
        except KioskError as err:
            log.error("journal pruning failed: %s", err.code)

    def reconcile(self) -> list[RecoveryAction]:
        """Settle, while running, orders paid after the kiosk gave up on them (refund or produce)."""
        try:
            return recover(self.engine, wipe=False)
        except KioskError as err:
            log.warning("reconcile postponed: %s", err.code)
            return []

    # --- availability ------------------------------------------------------------------
    def backend_up(self, *, fresh: bool = False) -> bool:
        """Whether the backend answers its health check (cached for a few seconds)."""
        with self._health_lock:
            at, up = self._health
            if not fresh and time.monotonic() - at < HEALTH_TTL_S:
                return up
        try:
            answer = self.backend.health()
            up = isinstance(answer, dict) and answer.get("status") == "ok"
        except KioskError as err:
            log.warning("backend health: %s", err.code)
            up = False
        with self._health_lock:
            was = self._health[1]
            self._health = (time.monotonic(), up)
        if was != up:
            log.info("backend is %s", "up" if up else "down")
        return up

    def device_statuses(self) -> dict[str, Any]:
        """Every device's status now, with the parts health reports like devices (the touch screen)."""
        statuses = dict(self.devices.statuses())
        for name, source in self.health.sources.items():
            statuses[name] = source.status()
        return statuses

    def item_available(self, item: Any) -> Availability:
        """Whether ``item`` can run now (devices it needs, backend, disk); see ``self.health``."""
        return self.health.item_available(item)

    def out_of_service(self) -> bool:
        """True when no item can run now (or an operator's notice is set); reason in ``health.out_of_service_reason()``."""
        return self.health.out_of_service()

    def warm_speech(self) -> threading.Thread | None:
        """Render the fixed prompts into the speech cache in a background thread (when [speech] warm_up is on)."""
        if not (self.config.speech.enabled and self.config.speech.warm_up):
            return None
        return self.speech.warm(fixed_prompts(self.catalog))

    def face_step(self) -> Any:
        """A new :class:`~kiosk.services.face.step.FaceStep` on the configured camera with the ``[face]`` config.

        One per try; the Haar detector is loaded once and shared by consecutive steps (its
        first use imports OpenCV, about a quarter of a second: do it off the UI thread).
        Raises NoDevice when no camera is configured or OpenCV lacks the cascades.
        """
        from kiosk.errors import NoDevice
        from kiosk.services.face.detector import HaarFaceDetector
        from kiosk.services.face.step import FaceStep

        camera = self.devices.camera
        if camera is None:
            raise NoDevice("no camera is configured", device="camera")
        if self._face_detector is None:
            self._face_detector = HaarFaceDetector()
        return FaceStep(camera, self.config.face, detector=self._face_detector)

    def start_monitoring(self) -> None:
        """Poll devices, backend and disk in the background (and prune the journal hourly) until stop()."""
        if self.touch is not None:
            self.touch.check()  # opened before the first health poll reports it
            self.touch.start()
        self.health.start()

    def attach_metrics(self, metrics: Any) -> None:
        """Feed ``metrics`` (KioskMetrics): device/supply/disk state on every health poll and one count per transaction.

        The runtime then counts transactions itself: a caller using this must not call
        ``metrics.record_transaction`` as well.
        """
        with self._alarm_lock:
            self.metrics = metrics
            self.help.metrics = metrics
            metrics.set_help_open(self.help.open_count)
            for kind, count in self.alarms.items():
                metrics.record_alarm(kind, count)
        metrics.declare_items(item.id for item in self.catalog.items)
        metrics.set_certificate(self.config.backend.client_cert_file)
        self.health.attach_metrics(metrics)

    def _money_alarm(self, alarm: MoneyAlarm) -> None:
        with self._alarm_lock:
            self.alarms[alarm.kind] = self.alarms.get(alarm.kind, 0) + 1
            if self.metrics is not None:
                self.metrics.record_alarm(alarm.kind)

    def _transaction_ended(self, ended: TransactionEnded) -> None:
        self.stats.record_ended(ended)
        if self.metrics is not None:
            self.metrics.record_transaction(ended.item_id, ended.outcome, ended.duration_s)
            if ended.rating and ended.outcome == "completed":
                try:
                    self.metrics.record_rating(ended.rating)
                except ValueError:
                    log.warning("satisfaction rating not counted in metrics: unknown value")

    # --- stopping ----------------------------------------------------------------------
    def stop(self) -> None:
        """Cancel open transactions, close devices and the journal, stop the embedded simulator."""
        if self._stopped:
            return
        self._stopped = True
        self.health.stop()
        if self.touch is not None:
            self.touch.stop()
        self.help.end_session()
        self.speech.close()
        for txn in self.engine.active():
            try:
                txn.cancel()
                txn.finish()
            except KioskError as err:
                log.warning("closing txn=%s: %s", txn.id, err.code)
        for _name, device in self.devices.all():
            try:
                device.close()
            except KioskError:
                pass
        self.journal.close()
        self.stats.close()
        if self.sim is not None:
            self.sim.stop()
        teardown_logging(self.state_dir)

    close = stop

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
