"""Simulated A4 printer: copies each printed PDF into a "paper tray" folder and counts sheets.

A completed job's PDF lands in ``output_dir`` as ``<job id>.pdf`` (the factory points it at
``<state_dir>/paper_tray``); a job that fails (jam, paper running out half way, rejected
file) leaves nothing there, so nothing counts as printed that the caller was told failed.
The tray holds ``sheets``; each page uses one, the supply goes low at ``sheets_low`` and
out by itself; ``refill()`` is the technician loading paper. The tray keeps the newest
``keep`` documents and deletes older ones: on a real kiosk the resident takes the paper
away, and a simulator left running for weeks must not pile up residents' certificates.

Options: output_dir, sheets, sheets_low, keep (100; 0 keeps all), delay_s.
Faults: paper_out, paper_low, jam, cover_open, offline, reject, timeout.
"""
from __future__ import annotations

import itertools
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import CoverOpen, DeviceOffline, DeviceTimeout, PaperOut, PrintFailed
from kiosk.hardware.a4 import A4Printer
from kiosk.hardware.base import DeviceState, DeviceStatus, SupplyState, status
from kiosk.hardware.simulators.faults import SimulatedDevice


@dataclass(frozen=True, repr=False)
class A4Job:
    """One completed job: its id, where its copy lies, its page count and title."""

    job_id: str
    path: Path
    pages: int
    title: str

    def __repr__(self) -> str:  # the title may name the resident
        return f"A4Job({self.job_id}, {self.pages} pages)"


def count_pages(pdf: Path) -> int:
    """Pages in a PDF file. Raises PrintFailed when it is not a readable PDF."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        with pdf.open("rb") as fh:
            if fh.read(5) != b"%PDF-":
                raise PrintFailed("the printer rejected a file that is not a PDF")
        return len(PdfReader(str(pdf)).pages)
    except (OSError, PyPdfError, ValueError) as exc:
        raise PrintFailed(f"the printer rejected an unreadable PDF ({type(exc).__name__})") from None


class SimA4Printer(SimulatedDevice, A4Printer):
    """A4 printer simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"paper_out", "paper_low", "jam", "cover_open", "offline", "reject", "timeout"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "output_dir": "", "sheets": 250, "sheets_low": 20, "keep": 100}

    _run = itertools.count(1)  # job numbers stay unique across printers in one process

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        self.sheets = int(self.options["sheets"])
        self.jobs: list[A4Job] = []
        self._output_dir = Path(self.options["output_dir"]).expanduser() if self.options["output_dir"] else None

    @property
    def output_dir(self) -> Path:
        """The paper tray folder (a temporary folder when none was configured)."""
        with self._sim_lock:
            if self._output_dir is None:
                self._output_dir = Path(tempfile.mkdtemp(prefix="kiosk-paper-tray-"))
            return self._output_dir

    def refill(self, sheets: int | None = None) -> None:
        """Load paper (the configured tray size unless given)."""
        with self._sim_lock:
            self.sheets = int(self.options["sheets"] if sheets is None else sheets)

    def print_pdf(self, pdf: Path, title: str, timeout: float = 60.0) -> str:
        """Print ``pdf``; returns the job id once its copy is in the tray.

        Raises PaperOut, CoverOpen, DeviceOffline, DeviceTimeout, PrintFailed.
        """
        with self._lock:  # one job at a time, as a real queue prints them
            with self._sim_lock:
                self._check_ready()
                pages = count_pages(Path(pdf))
                if self._take("reject"):
                    raise PrintFailed("the printer rejected the job", device=self.name)
                self._busy += 1
            try:
                self._pause()
                with self._sim_lock:
                    self._check_ready()
                    if self._take("jam"):
                        self.sheets = max(0, self.sheets - 1)
                        raise PrintFailed("paper jam", device=self.name)
                    if pages > self.sheets:
                        self.sheets = 0
                        raise PaperOut("paper ran out during the job", device=self.name)
                    self.sheets -= pages
                    job_id = f"sim-{time.strftime('%Y%m%d%H%M%S')}-{next(self._run):05d}"
                    out = self.output_dir
                    out.mkdir(parents=True, exist_ok=True)
                    target = out / f"{job_id}.pdf"
                    # Copy to a temp name first so the tray never shows half a document.
                    partial = target.with_suffix(".part")
                    shutil.copyfile(pdf, partial)
                    partial.replace(target)
                    self.jobs.append(A4Job(job_id, target, pages, title))
                    self._trim_tray()
                    return job_id
            finally:
                with self._sim_lock:
                    self._busy -= 1

    def _trim_tray(self) -> None:
        keep = int(self.options["keep"])
        if keep <= 0:
            return
        if len(self.jobs) > keep:
            self.jobs[-keep - 1].path.unlink(missing_ok=True)  # taken away by its resident long ago

    def _check_ready(self) -> None:
        if self._hit("offline"):
            raise DeviceOffline("printer does not answer", device=self.name)
        if self._take("timeout"):
            raise DeviceTimeout("the job did not complete in time", device=self.name)
        if self._hit("cover_open"):
            raise CoverOpen("printer cover open", device=self.name)
        if self._hit("paper_out") or self.sheets <= 0:
            raise PaperOut("A4 paper out", device=self.name)

    def paper_state(self) -> SupplyState:
        """Paper level from the faults and the sheet counter."""
        with self._sim_lock:
            if self._on("paper_out") or self.sheets <= 0:
                return SupplyState.OUT
            if self._on("paper_low") or self.sheets <= int(self.options["sheets_low"]):
                return SupplyState.LOW
            return SupplyState.OK

    def status(self) -> DeviceStatus:
        """Offline; user error (cover_open, jam); hardware error while timing out; busy. Never raises."""
        with self._sim_lock:
            paper = self.paper_state()
            if self._on("offline"):
                return status(DeviceState.OFFLINE, {"paper": SupplyState.UNKNOWN}, detail="printer does not answer")
            conditions = {c for c in ("cover_open", "jam") if self._on(c)}
            if conditions:
                return status(DeviceState.USER_ERROR, {"paper": paper}, conditions)
            if self._on("timeout"):
                return status(DeviceState.HARDWARE_ERROR, {"paper": paper}, detail="jobs do not complete")
            state = DeviceState.BUSY if self._busy else DeviceState.ONLINE
            return status(state, {"paper": paper}, detail=f"{self.sheets} sheets left")
