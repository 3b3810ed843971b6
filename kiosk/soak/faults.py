"""The soak's faults switched on and off in the real simulators and counted where each is applied.

Where the count comes from, by kind:

- ``backend_timeout``, ``backend_5xx``, ``backend_garbage``: the backend simulator's next request
  stalls past the kiosk's read timeout, answers 503, or answers garbage (``fail_next``); the
  simulator counts the modes it applies (``timeout``, ``error``, ``garbage``);
- ``backend_slow``: every request of the session is held up ``SLOW_MS`` (the simulator counts ``slow``);
- ``answer_lost``: the item's operation is done, its answer lost once (the simulator counts it);
- ``paper_out_mid_job``: the receipt roll is left with ``SHORT_ROLL_MM``, so the next receipt runs out
  mid-job; counted here when a job that started with paper ended with none (a real run-out);
- ``card_pulled_mid_read``: the ID card reader simulator's ``card_removed_mid_read`` (it counts it);
- ``printer_offline``: the receipt printer stops answering mid-job (its ``offline_mid_job``, counted by it);
- ``pcscd_restart``: the private pcscd is stopped and started while the resident is at the chip
  reader (:meth:`FaultInjector.restart_pcscd`, counted when it was restarted);
- ``disk_nearly_full``: the disk guard's ``statvfs`` (injectable for this) reports the real file
  system with a ballast taking all but half the floor; counted each time the guard measured it.
  Nothing is written to fill the disk: the machine is shared and the journal must stay writable.
"""
from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any, Callable

from kiosk.errors import PaperOut
from kiosk.soak.plan import BACKEND_FAULTS

log = logging.getLogger(__name__)

SLOW_MS = 1200
SHORT_ROLL_MM = 10.0
# What a device simulator counts, by the soak's kind.
DEVICE_COUNTS = {"card_pulled_mid_read": ("id_card", "card_removed_mid_read"),
                 "printer_offline": ("receipt_printer", "offline_mid_job")}
SIM_COUNTS = {**{kind: mode for kind, mode in BACKEND_FAULTS.items()}, "backend_slow": "slow",
              "answer_lost": "answer_lost"}


class BallastStatvfs:
    """``os.statvfs`` for the disk guard that, while armed, leaves only half the guard's floor free."""

    def __init__(self, real: Callable[[str], Any], floor_mb: int) -> None:
        self.real = real
        self.floor_mb = floor_mb
        self.armed = False
        self.applied = 0
        self._lock = threading.Lock()

    def __call__(self, path: str) -> Any:
        st = self.real(path)
        with self._lock:
            if not self.armed:
                return st
            self.applied += 1
        left = int(self.floor_mb * 1024 * 1024 / 2 / st.f_frsize)
        return SimpleNamespace(f_bavail=min(st.f_bavail, left), f_frsize=st.f_frsize, f_blocks=st.f_blocks)


class PaperRunOut:
    """Wraps the receipt simulator's ``_raw`` to count jobs that started with paper and ran out mid-way."""

    def __init__(self, printer: Any) -> None:
        self.printer = printer
        self.applied = 0
        raw = printer._raw

        def counted(data: bytes, _raw: Callable[[bytes], None] = raw) -> None:
            had = printer.paper_mm > 0
            try:
                _raw(data)
            except PaperOut:
                if had and printer.paper_mm <= 0:
                    self.applied += 1
                raise
        printer._raw = counted


class FaultInjector:
    """Switches one session's fault on and off; ``counts()`` says how often each kind was applied so far."""

    def __init__(self, runtime: Any, restart_pcscd: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self._restart_pcscd = restart_pcscd  # restarts the soak's private pcscd (None: no PC/SC path)
        self.sim = runtime.sim
        self.pcscd_restarts = 0
        receipt = runtime.devices.get("receipt_printer")
        self.paper = PaperRunOut(receipt) if receipt is not None and hasattr(receipt, "refill") else None
        guard = runtime.disk
        self.ballast = BallastStatvfs(guard._statvfs, guard.min_free_mb)
        guard._statvfs = self.ballast
        self.armed = ""
        self._base = self._raw_counts()

    def _raw_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        sim_applied = self.sim.app.faults.applied() if self.sim is not None else {}
        for kind, mode in SIM_COUNTS.items():
            counts[kind] = sim_applied.get(mode, 0)
        for kind, (device_name, fault) in DEVICE_COUNTS.items():
            device = self.runtime.devices.get(device_name)
            counts[kind] = device.applied().get(fault, 0) if device is not None and hasattr(device, "applied") else 0
        counts["paper_out_mid_job"] = self.paper.applied if self.paper is not None else 0
        counts["pcscd_restart"] = self.pcscd_restarts
        counts["disk_nearly_full"] = self.ballast.applied
        return counts

    def counts(self) -> dict[str, int]:
        """How often each kind was applied since this injector was made."""
        return {kind: n - self._base.get(kind, 0) for kind, n in self._raw_counts().items()}

    def arm(self, kind: str, item: Any) -> None:
        """Switch ``kind`` on for a session doing ``item`` (pcscd_restart waits for :meth:`restart_pcscd`)."""
        self.armed = kind
        faults = self.sim.app.faults if self.sim is not None else None
        if kind in BACKEND_FAULTS:
            stall = float(self.runtime.config.backend.read_timeout_s) + 1.0
            faults.update({"fail_next": 1, "mode": BACKEND_FAULTS[kind], "timeout_s": stall})
        elif kind == "backend_slow":
            faults.update({"latency_ms": SLOW_MS})
        elif kind == "answer_lost":
            faults.update({"lose_answers_of": item.operation, "lose_answers": 1})
        elif kind == "paper_out_mid_job":
            self.runtime.devices.get("receipt_printer").refill(SHORT_ROLL_MM)
        elif kind == "card_pulled_mid_read":
            self.runtime.devices.get("id_card").inject("card_removed_mid_read", 1)
        elif kind == "printer_offline":
            self.runtime.devices.get("receipt_printer").inject("offline_mid_job", 1)
        elif kind == "disk_nearly_full":
            self.ballast.armed = True
            self.runtime.health.poll()  # the guard measures now, not at the next health poll
        elif kind != "pcscd_restart":
            raise ValueError(f"unknown soak fault {kind!r}")

    def restart_pcscd(self) -> bool:
        """Restart the private pcscd when this session's fault is pcscd_restart; True when it was restarted."""
        if self.armed != "pcscd_restart" or self._restart_pcscd is None:
            return False
        self.armed = ""  # once per session
        self._restart_pcscd()
        self.pcscd_restarts += 1
        log.info("soak: pcscd restarted")
        return True

    def disarm(self) -> None:
        """Switch the session's fault off again (an armed count that never fired too) and put supplies back."""
        kind, self.armed = self.armed, ""
        faults = self.sim.app.faults if self.sim is not None else None
        if kind in BACKEND_FAULTS:
            faults.update({"fail_next": 0, "mode": "error"})
        elif kind == "backend_slow":
            faults.update({"latency_ms": 0})
        elif kind == "answer_lost":
            faults.update({"lose_answers_of": "", "lose_answers": 0})
        elif kind == "paper_out_mid_job":
            self.runtime.devices.get("receipt_printer").refill()
        elif kind == "card_pulled_mid_read":
            self.runtime.devices.get("id_card").clear("card_removed_mid_read")
        elif kind == "printer_offline":
            self.runtime.devices.get("receipt_printer").clear("offline_mid_job")
        elif kind == "disk_nearly_full":
            self.ballast.armed = False
            self.runtime.health.poll()
