"""Health of the terminal: devices, backend and disk polled into one status model.

A :class:`HealthMonitor` polls ``Devices.statuses()``, the backend's health probe and a
:class:`DiskGuard` on the state folder, on an interval in a background thread (or one
``poll()`` at a time in tests), and keeps the latest :class:`HealthSnapshot`. From it each
catalog item is available or not, with a reason code and a notice (zh/en through gettext):

- an item is disabled only when a device it needs is unusable (``<device>_unavailable``) or
  it needs the backend and the backend is down (``backend_unavailable``);
- when free space on the state folder is below ``[upkeep] min_free_mb`` every item that
  would journal or print is disabled (``disk_full``) and guides are still served, until the
  space is back above ``resume_free_mb``;
- with no item usable at all (or an operator's notice) the kiosk is out of service.

Nothing is latched: the next poll that sees the device or backend back enables the items
again, so the kiosk recovers by itself. No Kivy here; no personal data in any of it.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping

from kiosk.errors import KioskError
from kiosk.hardware.base import DeviceState, DeviceStatus
from kiosk.services.catalog import CatalogItem

log = logging.getLogger(__name__)

BACKEND_UNAVAILABLE = "backend_unavailable"
DISK_FULL = "disk_full"
NOTHING_USABLE = "nothing_usable"
MB = 1024 * 1024

# Resident-facing notices by reason (English msgids; Chinese in locale/zh_CN/.../health.po).
_DEVICE_NOTICES = {
    "id_card": "This service is unavailable right now: the ID card reader is not working. "
               "Please ask the staff for help.",
    "pcsc": "This service is unavailable right now: the passport and permit reader is not working. "
            "Please ask the staff for help.",
    "scanner": "This service is unavailable right now: the document scanner is not working. "
               "Please ask the staff for help.",
    "camera": "This service is unavailable right now: the camera is not working. Please ask the staff for help.",
    "a4_printer": "This service is unavailable right now: the document printer is not working. "
                  "Please ask the staff for help.",
    "receipt_printer": "This service is unavailable right now: the receipt printer is not working. "
                       "Please ask the staff for help.",
}
_NOTICES = {
    BACKEND_UNAVAILABLE: "This service is unavailable right now: the police service system cannot be reached. "
                         "Please try again later.",
    DISK_FULL: "This service is paused for maintenance. Service guides are still available.",
    NOTHING_USABLE: "This terminal is out of service. Please go to the service counter or another terminal.",
}
_GENERIC_NOTICE = "This service is unavailable right now. Please ask the staff for help."
OUT_OF_SERVICE_NOTICE = _NOTICES[NOTHING_USABLE]


def notice(reason: str, lang: str = "zh_CN") -> str:
    """The resident-facing notice for an unavailability ``reason`` in ``lang`` ('' when there is none)."""
    from kiosk.i18n import translate

    if not reason:
        return ""
    msgid = _NOTICES.get(reason)
    if msgid is None and reason.endswith("_unavailable"):
        msgid = _DEVICE_NOTICES.get(reason.removesuffix("_unavailable"))
    return translate(msgid or _GENERIC_NOTICE, lang)


class DiskFull(KioskError):
    """Free space on the state folder is below the configured floor: only guides are served."""

    code = "disk_full"
    message_en = _NOTICES[DISK_FULL]
    exit_status = 75  # EX_TEMPFAIL


@dataclass(frozen=True)
class Availability:
    """Whether an item can run now; truthy when it can, and unpacks as ``ok, reason``."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ok, self.reason))

    def notice(self, lang: str = "zh_CN") -> str:
        """The notice a resident reads for this reason ('' when available)."""
        return "" if self.ok else notice(self.reason, lang)


def needed_devices(item: CatalogItem) -> tuple[str, ...]:
    """The devices ``item`` cannot run without, from its identity and outputs.

    A travel document's chip is read over PC/SC; its keys come from the MRZ the scanner
    reads, or from the details the resident types when the scanner cannot (so the scanner
    alone does not stop those items). Receipts and slips need the receipt printer, except a
    query's slip, which is only offered when the printer can print it.
    """
    needed: list[str] = []
    identity = item.identity
    if identity in ("id_card", "id_card_and_face"):
        needed.append("id_card")
    if identity == "id_card_and_face":
        needed.append("camera")
    if identity == "travel_document":
        needed.append("pcsc")
    outputs = set(item.outputs)
    if item.slip_on_request:
        outputs.discard("slip")
    if "a4_document" in outputs:
        needed.append("a4_printer")
    if outputs & {"receipt", "slip"}:
        needed.append("receipt_printer")
    return tuple(needed)


def needs_disk(item: CatalogItem) -> bool:
    """Whether ``item`` journals or prints (everything but guides), so a full disk stops it."""
    return item.kind != "guide"


# --- disk ------------------------------------------------------------------------------
@dataclass(frozen=True)
class DiskStatus:
    """Free space on the state folder against the floor; ``low`` stops disk-using items."""

    path: str
    free_mb: float
    total_mb: float
    min_free_mb: int
    resume_free_mb: int
    low: bool
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form used by `kiosk health --json`."""
        return {"path": self.path, "free_mb": round(self.free_mb, 1), "total_mb": round(self.total_mb, 1),
                "min_free_mb": self.min_free_mb, "resume_free_mb": self.resume_free_mb, "low": self.low,
                **({"error": self.error} if self.error else {})}


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent (the state folder may not exist yet)."""
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


class DiskGuard:
    """Checks free space on ``path``: low below ``min_free_mb``, back above ``resume_free_mb``.

    ``statvfs`` is injectable so tests can present a full disk without filling one.
    """

    def __init__(self, path: str | os.PathLike[str], min_free_mb: int = 200, resume_free_mb: int | None = None,
                 *, statvfs: Callable[[str], Any] = os.statvfs) -> None:
        self.path = Path(path)
        self.min_free_mb = int(min_free_mb)
        self.resume_free_mb = max(int(resume_free_mb if resume_free_mb is not None else min_free_mb),
                                  self.min_free_mb)
        self._statvfs = statvfs
        self._low = False
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: Any, **kwargs: Any) -> "DiskGuard":
        """The guard for ``cfg``'s state folder with its [upkeep] thresholds."""
        return cls(cfg.paths.root(), cfg.upkeep.min_free_mb, cfg.upkeep.resume_free_mb, **kwargs)

    @property
    def low(self) -> bool:
        """The last check's verdict."""
        return self._low

    def check(self) -> DiskStatus:
        """Measure now; logs at ERROR when space drops below the floor and at INFO when it is back."""
        target = _existing(self.path)
        error = ""
        try:
            st = self._statvfs(str(target))
            free_mb = st.f_bavail * st.f_frsize / MB  # what an unprivileged process may still write
            total_mb = st.f_blocks * st.f_frsize / MB
        except OSError as exc:
            free_mb = total_mb = 0.0
            error = exc.strerror or type(exc).__name__
        with self._lock:
            was = self._low
            if error:
                low = True  # a state folder we cannot even measure cannot take a journal either
            elif was:
                low = free_mb < self.resume_free_mb
            else:
                low = free_mb < self.min_free_mb
            self._low = low
        if low and not was:
            log.error("disk low: state folder %s has %.1f MB free, floor %d MB%s; transactions stopped, "
                      "guides still served", target, free_mb, self.min_free_mb, f" ({error})" if error else "")
        elif was and not low:
            log.info("disk ok again: %.1f MB free on %s; transactions resumed", free_mb, target)
        return DiskStatus(str(target), free_mb, total_mb, self.min_free_mb, self.resume_free_mb, low, error)


# --- the status model ------------------------------------------------------------------
@dataclass(frozen=True)
class HealthSnapshot:
    """One poll: device statuses, backend, disk, and which items cannot run and why."""

    devices: Mapping[str, DeviceStatus]
    backend_up: bool
    backend_url: str
    disk: DiskStatus | None
    unavailable: Mapping[str, str]  # item id -> reason
    out_of_service: bool
    out_of_service_reason: str
    checked_at: float  # unix seconds
    monotonic_at: float = 0.0
    terminal_id: str = ""

    def availability(self, item: Any) -> Availability:
        """Whether ``item`` can run according to this snapshot."""
        if self.out_of_service and self.out_of_service_reason != NOTHING_USABLE:
            return Availability(False, self.out_of_service_reason)
        reason = self.unavailable[item.id] if item.id in self.unavailable else _reason(item, self)
        return Availability(not reason, reason or "")

    @property
    def healthy(self) -> bool:
        """True when every device is usable, the backend is up, the disk is fine and the kiosk serves."""
        return (self.backend_up and all(st.usable for st in self.devices.values())
                and not (self.disk and self.disk.low) and not self.out_of_service)

    def to_dict(self) -> dict[str, Any]:
        """The `kiosk health --json` object (also what heartbeats may send); no personal data."""
        return {
            "terminal": self.terminal_id,
            "checked_at": self.checked_at,
            "healthy": self.healthy,
            "devices": {name: {**st.to_dict(), "usable": st.usable} for name, st in sorted(self.devices.items())},
            "backend": {"up": self.backend_up, "url": self.backend_url},
            "disk": self.disk.to_dict() if self.disk else None,
            "out_of_service": self.out_of_service,
            "out_of_service_reason": self.out_of_service_reason,
            "unavailable_items": dict(sorted(self.unavailable.items())),
        }


def _reason(item: CatalogItem, snap: HealthSnapshot) -> str:
    """Why ``item`` cannot run under ``snap`` ('' when it can). Device before backend: it is the more specific."""
    if snap.disk is not None and snap.disk.low and needs_disk(item):
        return DISK_FULL
    for name in needed_devices(item):
        st = snap.devices.get(name)
        if st is None or not st.usable:
            return f"{name}_unavailable"
    if item.needs_backend and not snap.backend_up:
        return BACKEND_UNAVAILABLE
    return ""


class _HealthGauges:
    """Disk and service gauges added to a KioskMetrics registry (metrics.py holds the device ones)."""

    def __init__(self, registry: Any) -> None:
        from prometheus_client import Gauge

        self.disk_free = Gauge("kiosk_disk_free_bytes", "Free bytes on the state folder's file system.",
                               registry=registry)
        self.disk_low = Gauge("kiosk_disk_low", "1 while free space is below the floor (only guides are served).",
                              registry=registry)
        self.backend_up = Gauge("kiosk_backend_up", "1 while the backend answers its health check.",
                                registry=registry)
        self.out_of_service = Gauge("kiosk_out_of_service", "1 while the kiosk serves no item at all.",
                                    registry=registry)
        self.items_unavailable = Gauge("kiosk_items_unavailable", "Catalog items that cannot run now.",
                                       registry=registry)


def _gauges_for(metrics: Any) -> _HealthGauges:
    gauges = getattr(metrics, "_kiosk_health_gauges", None)
    if gauges is None:  # one set per registry: a second monitor on the same metrics reuses it
        gauges = _HealthGauges(metrics.registry)
        metrics._kiosk_health_gauges = gauges
    return gauges


class HealthMonitor:
    """Polls devices, backend and disk into a HealthSnapshot; decides per item whether it can run.

    ``poll()`` runs one check now (tests step it). ``start()`` polls every ``interval_s`` in
    a daemon thread and runs ``upkeep`` (journal pruning) every ``upkeep_interval_s``;
    ``stop()`` ends it. ``snapshot()`` polls again when the last answer is older than
    ``max_age_s`` (2 s), so a device fault shows at once whether or not the thread runs, and
    a list screen asking for 71 items in a row causes one poll.
    """

    def __init__(self, catalog: Any, devices: Any, backend_probe: Callable[[], bool], *,
                 backend_url: str = "", disk: DiskGuard | None = None, metrics: Any = None,
                 interval_s: float = 10.0, upkeep: Callable[[], Any] | None = None,
                 upkeep_interval_s: float = 3600.0, terminal_id: str = "", max_age_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.catalog = catalog
        self.devices = devices
        self.backend_probe = backend_probe
        self.backend_url = backend_url
        self.disk = disk
        self.interval_s = float(interval_s)
        self.max_age_s = float(max_age_s)
        self.upkeep = upkeep
        self.upkeep_interval_s = float(upkeep_interval_s)
        self.terminal_id = terminal_id
        self.clock = clock
        self.listeners: list[Callable[[HealthSnapshot], None]] = []  # called after a poll that changed something
        # Parts reported like devices that are not in ``devices`` (the touch supervisor): name -> object with status().
        self.sources: dict[str, Any] = {}
        self._metrics: Any = None
        self._gauges: _HealthGauges | None = None
        self._poll_lock = threading.Lock()
        self._snapshot: HealthSnapshot | None = None
        self._notice_reason = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_upkeep = clock()
        if metrics is not None:
            self.attach_metrics(metrics)

    def attach_metrics(self, metrics: Any) -> None:
        """Feed ``metrics`` (a KioskMetrics) with device, supply, disk and service state on every poll."""
        self._metrics = metrics
        self._gauges = _gauges_for(metrics)
        if self._snapshot is not None:
            self._feed(self._snapshot)

    # --- polling ---------------------------------------------------------------------
    def poll(self) -> HealthSnapshot:
        """Check devices, backend and disk now; returns and keeps the new snapshot."""
        with self._poll_lock:
            statuses = dict(self.devices.statuses()) if self.devices is not None else {}
            for name, source in list(self.sources.items()):
                try:
                    statuses[name] = source.status()
                except Exception as exc:  # as Devices.statuses: a broken promise reads as hardware_error
                    statuses[name] = DeviceStatus(DeviceState.HARDWARE_ERROR, detail=f"status failed: {type(exc).__name__}")
            try:
                up = bool(self.backend_probe())
            except Exception as exc:  # a probe must not take the monitor down: count it as down
                log.warning("backend probe failed: %s", type(exc).__name__)
                up = False
            disk = self.disk.check() if self.disk is not None else None
            base = HealthSnapshot(MappingProxyType(statuses), up, self.backend_url, disk, MappingProxyType({}),
                                  False, "", time.time(), self.clock(), self.terminal_id)
            items = tuple(self.catalog.items) if self.catalog is not None else ()
            unavailable = {item.id: r for item in items if (r := _reason(item, base))}
            oos, oos_reason = self._out_of_service(items, unavailable)
            snap = HealthSnapshot(base.devices, up, self.backend_url, disk, MappingProxyType(unavailable), oos,
                                  oos_reason, base.checked_at, base.monotonic_at, self.terminal_id)
            previous, self._snapshot = self._snapshot, snap
        self._log_changes(previous, snap)
        self._feed(snap)
        if previous is None or _changed(previous, snap):
            for listener in list(self.listeners):
                try:
                    listener(snap)
                except Exception:  # one broken listener must not stop the others or the monitor
                    log.exception("health listener failed")
        return snap

    def _out_of_service(self, items: tuple[Any, ...], unavailable: Mapping[str, str]) -> tuple[bool, str]:
        if self._notice_reason:
            return True, self._notice_reason
        if items and len(unavailable) == len(items):
            return True, NOTHING_USABLE
        return False, ""

    def snapshot(self, max_age_s: float | None = None) -> HealthSnapshot:
        """The latest snapshot; polls first when there is none or it is older than ``max_age_s`` (default ``self.max_age_s``)."""
        max_age = self.max_age_s if max_age_s is None else max_age_s
        snap = self._snapshot
        if snap is None or self.clock() - snap.monotonic_at > max_age:
            with self._poll_lock:  # another caller may be polling right now: wait for its answer
                snap = self._snapshot
            if snap is None or self.clock() - snap.monotonic_at > max_age:
                snap = self.poll()
        return snap

    # --- what callers ask ------------------------------------------------------------
    def item_available(self, item: Any) -> Availability:
        """Whether ``item`` can run now (reasons: ``<device>_unavailable``, ``backend_unavailable``, ``disk_full``)."""
        return self.snapshot().availability(item)

    def unavailable_items(self) -> dict[str, str]:
        """Item id -> reason for every item that cannot run now."""
        return dict(self.snapshot().unavailable)

    def out_of_service(self) -> bool:
        """True when no item can run (or an operator's out-of-service notice is set)."""
        return self.snapshot().out_of_service

    def out_of_service_reason(self) -> str:
        """Why the kiosk is out of service: ``nothing_usable`` or the notice's reason ('' when serving)."""
        return self.snapshot().out_of_service_reason

    def set_out_of_service(self, reason: str = "operator_notice") -> None:
        """Take the kiosk out of service by decision (maintenance, a remote command) until cleared."""
        self._notice_reason = reason or "operator_notice"
        log.warning("out of service by notice: %s", self._notice_reason)
        self.poll()

    def clear_out_of_service(self) -> None:
        """Lift an out-of-service notice; the kiosk serves whatever its devices allow."""
        if self._notice_reason:
            log.info("out-of-service notice lifted: %s", self._notice_reason)
        self._notice_reason = ""
        self.poll()

    def admit(self, item: Any) -> None:
        """Refuse to start an item that would write to a full disk. Raises DiskFull."""
        if self.disk is not None and needs_disk(item):
            snap = self.snapshot()
            if snap.disk is not None and snap.disk.low:
                raise DiskFull(f"item {item.id} needs disk; {snap.disk.free_mb:.1f} MB free on {snap.disk.path}",
                               item=item.id)

    # --- background thread -----------------------------------------------------------
    def start(self) -> None:
        """Poll in a daemon thread every ``interval_s`` (and run upkeep on its own interval); idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kiosk-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    @property
    def running(self) -> bool:
        """Whether the polling thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def step(self) -> HealthSnapshot:
        """One round of the thread's loop, synchronously: poll, then upkeep when it is due."""
        snap = self.poll()
        if self.upkeep is not None and self.clock() - self._last_upkeep >= self.upkeep_interval_s:
            self._last_upkeep = self.clock()
            try:
                self.upkeep()
            except Exception:  # upkeep failing (disk full, locked DB) must not stop health polling
                log.exception("upkeep failed")
        return snap

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except Exception:
                log.exception("health poll failed")
            self._stop.wait(self.interval_s)

    # --- reporting -------------------------------------------------------------------
    def _feed(self, snap: HealthSnapshot) -> None:
        if self._metrics is None or self._gauges is None:
            return
        self._metrics.update_devices(snap.devices)
        g = self._gauges
        g.backend_up.set(1 if snap.backend_up else 0)
        g.out_of_service.set(1 if snap.out_of_service else 0)
        g.items_unavailable.set(len(snap.unavailable))
        if snap.disk is not None:
            g.disk_free.set(snap.disk.free_mb * MB)
            g.disk_low.set(1 if snap.disk.low else 0)

    def _log_changes(self, old: HealthSnapshot | None, new: HealthSnapshot) -> None:
        old_devices = old.devices if old is not None else {}
        for name, st in new.devices.items():
            before = old_devices.get(name)
            if before is None and st.usable:
                continue  # the first poll names only what is wrong
            if before is None or before.usable != st.usable or before.state != st.state:
                level = logging.INFO if st.usable else logging.WARNING
                log.log(level, "device %s is %s%s", name, st.state.value, "" if st.usable else " (unusable)")
        if old is not None and old.backend_up != new.backend_up:
            log.log(logging.INFO if new.backend_up else logging.WARNING, "backend is %s",
                    "up" if new.backend_up else "down")
        if (old is None and new.unavailable) or (old is not None and dict(old.unavailable) != dict(new.unavailable)):
            counts = Counter(new.unavailable.values())
            log.info("availability: %d items unavailable (%s)", len(new.unavailable),
                     ", ".join(f"{r}={n}" for r, n in sorted(counts.items())) or "all available")
        if new.out_of_service and (old is None or not old.out_of_service):
            log.error("kiosk out of service: %s", new.out_of_service_reason)
        elif old is not None and old.out_of_service and not new.out_of_service:
            log.info("kiosk back in service")


def _changed(a: HealthSnapshot, b: HealthSnapshot) -> bool:
    return (a.backend_up != b.backend_up or dict(a.unavailable) != dict(b.unavailable)
            or a.out_of_service != b.out_of_service
            or {k: v.to_dict() for k, v in a.devices.items()} != {k: v.to_dict() for k, v in b.devices.items()}
            or (a.disk and a.disk.low) != (b.disk and b.disk.low))
