"""Simulated thermal receipt printer: keeps every byte it is sent and uses up its paper roll.

``received`` holds every byte that reached the printer (a job cut short leaves its first
part there, as on a real printer); ``jobs`` holds each completed job. The roll starts at
``paper_length_mm`` and each job uses ``job_length_mm`` (or, when 0, an estimate from its
line feeds), so the paper supply goes low at ``paper_low_mm`` and out by itself; a job
longer than what is left prints its first part and fails with PaperOut. ``refill()`` is
the technician changing the roll.

Options: paper_length_mm, paper_low_mm, job_length_mm, line_mm, delay_s.
Faults: paper_out, paper_low, cover_open, offline, offline_mid_job (takes the first half
of the job's bytes, then stops answering).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from kiosk.errors import CoverOpen, DeviceOffline, PaperOut
from kiosk.hardware.base import DeviceState, DeviceStatus, SupplyState, status
from kiosk.hardware.receipt import ReceiptPrinter
from kiosk.hardware.simulators.faults import SimulatedDevice

_FEED_LINES = re.compile(rb"\x1bd(.)", re.DOTALL)  # ESC d n: print and feed n lines
_CUT_MARGIN_MM = 12.0  # paper between the last line and the cutter


class SimReceiptPrinter(SimulatedDevice, ReceiptPrinter):
    """ESC/POS receipt printer simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"paper_out", "paper_low", "cover_open", "offline", "offline_mid_job"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "paper_length_mm": 50000.0, "paper_low_mm": 3000.0,
                                  "job_length_mm": 0.0, "line_mm": 4.23}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        self._received = bytearray()  # a bytearray: appending to bytes would copy the whole log per job
        self.jobs: list[bytes] = []
        self.paper_mm = float(self.options["paper_length_mm"])

    @property
    def received(self) -> bytes:
        """Every byte that reached the printer, in order, including the start of failed jobs."""
        with self._sim_lock:
            return bytes(self._received)

    def job_length_mm(self, data: bytes) -> float:
        """Paper one job uses: the configured length, or an estimate from its line feeds."""
        fixed = float(self.options["job_length_mm"])
        if fixed > 0:
            return fixed
        lines = data.count(b"\n") + sum(m.group(1)[0] for m in _FEED_LINES.finditer(data))
        return _CUT_MARGIN_MM + lines * float(self.options["line_mm"])

    def refill(self, length_mm: float | None = None) -> None:
        """Load a new roll (the configured length unless given)."""
        with self._changed:
            self.paper_mm = float(self.options["paper_length_mm"] if length_mm is None else length_mm)

    def print_bytes(self, data: bytes) -> None:
        """Print one job as the interface does (status first); the state fault that stops it is counted.

        Raises PaperOut, CoverOpen, DeviceOffline, PrintFailed.
        """
        try:
            super().print_bytes(data)
        except (PaperOut, CoverOpen, DeviceOffline) as err:
            stopped_by = {PaperOut: "paper_out", CoverOpen: "cover_open", DeviceOffline: "offline"}[type(err)]
            self._hit(stopped_by)
            raise

    def _raw(self, data: bytes) -> None:
        """Take one job's bytes. Raises PaperOut, CoverOpen, DeviceOffline."""
        with self._changed:
            if self._on("offline"):
                raise DeviceOffline("printer does not answer", device=self.name)
            if self._on("cover_open"):
                raise CoverOpen("receipt cover open", device=self.name)
            if self._on("paper_out") or self.paper_mm <= 0:
                raise PaperOut("receipt paper out", device=self.name)
            need = self.job_length_mm(data)
            self._busy += 1
        try:
            self._pause()
            with self._changed:
                if self._take("offline_mid_job"):
                    self._received += data[: len(data) // 2]
                    raise DeviceOffline("printer stopped answering mid-job", device=self.name)
                if need > self.paper_mm:
                    printed = int(len(data) * self.paper_mm / need)
                    self._received += data[:printed]
                    self.paper_mm = 0.0
                    raise PaperOut("receipt paper ran out mid-job", device=self.name)
                self.paper_mm -= need
                self._received += data
                self.jobs.append(bytes(data))
        finally:
            with self._changed:
                self._busy -= 1

    def paper_state(self) -> SupplyState:
        """Paper level from the faults and the roll counter."""
        with self._sim_lock:
            if self._on("paper_out") or self.paper_mm <= 0:
                return SupplyState.OUT
            if self._on("paper_low") or self.paper_mm <= float(self.options["paper_low_mm"]):
                return SupplyState.LOW
            return SupplyState.OK

    def status(self) -> DeviceStatus:
        """Offline; user error with cover_open; busy while printing; paper ok/low/out. Never raises."""
        with self._sim_lock:
            paper = self.paper_state()
            if self._on("offline"):
                return status(DeviceState.OFFLINE, {"paper": SupplyState.UNKNOWN}, detail="printer does not answer")
            if self._on("cover_open"):
                return status(DeviceState.USER_ERROR, {"paper": paper}, {"cover_open"}, detail="cover open")
            state = DeviceState.BUSY if self._busy else DeviceState.ONLINE
            roll = float(self.options["paper_length_mm"]) or 1.0
            return status(state, {"paper": paper}, detail=f"{max(self.paper_mm, 0.0):.0f} mm paper left",
                          levels={"paper": max(self.paper_mm, 0.0) / roll})
