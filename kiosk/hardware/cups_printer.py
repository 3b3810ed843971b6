"""The A4 printer through CUPS (pycups): submit, follow the job to completion, map the reasons.

A job counts as printed only when CUPS reports job-state 9 (completed). While it runs, the
queue's printer-state-reasons are watched: media-empty, media-jam, door-open or the queue
stopping cancel the job and raise at once, so a resident is told within seconds rather than
waiting for a job that will never finish, and nothing prints later behind their back. A
queue that is stopped or rejecting jobs is refused before anything is submitted.

Every job the kiosk submitted is purged once it has ended, completed or not (Cancel-Job with
purge-job): cupsd would otherwise keep the document (a resident's certificate) in its spool
for a day and the job's record for good, whatever the queue (PreserveJobFiles and
PreserveJobHistory are server-wide settings the kiosk cannot rely on).

Options: queue (required), server (host, host:port or a socket path; default: CUPS' own
choice, $CUPS_SERVER), poll_s, retries (resubmits after a job the printer aborted).
"""
from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError, CoverOpen, DeviceOffline, DeviceTimeout, NoDevice, PaperOut, PrintFailed
from kiosk.hardware.a4 import A4Printer
from kiosk.hardware.base import DeviceState, DeviceStatus, SupplyState, status

log = logging.getLogger(__name__)

JOB_PENDING, JOB_HELD, JOB_PROCESSING, JOB_STOPPED, JOB_CANCELED, JOB_ABORTED, JOB_COMPLETED = range(3, 10)
PRINTER_IDLE, PRINTER_PROCESSING, PRINTER_STOPPED = 3, 4, 5

_OPTIONS = {"driver": str, "queue": str, "server": str, "poll_s": (int, float), "retries": int}
PURGE_WAIT_S = 1.0  # how long a print waits for cupsd to let go of a job it is still stopping
# printer-state-reasons keyword (suffix -error/-warning/-report removed) -> what it means here
_REASON_CONDITIONS = {
    "media-empty": "paper_out", "media-needed": "paper_out", "input-tray-missing": "paper_out",
    "media-jam": "jam", "door-open": "cover_open", "cover-open": "cover_open", "interlock-open": "cover_open",
    "offline": "offline", "shutdown": "offline", "timed-out": "offline",
    "paused": "stopped", "stopped": "stopped",
}


def reason_keyword(reason: str) -> str:
    """'media-empty-error' -> 'media-empty'."""
    for suffix in ("-error", "-warning", "-report"):
        if reason.endswith(suffix):
            return reason[: -len(suffix)]
    return reason


def status_from_attributes(attrs: Mapping[str, Any]) -> DeviceStatus:
    """The status model from a queue's printer-state, -state-reasons and -is-accepting-jobs."""
    reasons = {reason_keyword(r) for r in attrs.get("printer-state-reasons") or () if r and r != "none"}
    conditions = {_REASON_CONDITIONS[r] for r in reasons if r in _REASON_CONDITIONS}
    paper = SupplyState.OUT if "paper_out" in conditions else (
        SupplyState.LOW if "media-low" in reasons else SupplyState.OK)
    toner = SupplyState.OUT if reasons & {"toner-empty", "marker-supply-empty"} else (
        SupplyState.LOW if reasons & {"toner-low", "marker-supply-low"} else SupplyState.OK)
    supplies = {"paper": paper, "toner": toner}
    conditions.discard("paper_out")  # said by the paper supply
    accepting = attrs.get("printer-is-accepting-jobs", True)
    if not accepting:
        conditions.add("rejecting")
    state_code = attrs.get("printer-state", PRINTER_IDLE)
    detail = str(attrs.get("printer-state-message") or "")
    if "cover_open" in conditions or "jam" in conditions:
        state = DeviceState.USER_ERROR
    elif "offline" in conditions or "stopped" in conditions or state_code == PRINTER_STOPPED or not accepting:
        state = DeviceState.OFFLINE
        if state_code == PRINTER_STOPPED:
            conditions.add("stopped")
    elif state_code == PRINTER_PROCESSING:
        state = DeviceState.BUSY
    else:
        state = DeviceState.ONLINE
    return status(state, supplies, conditions, detail=detail)


def _error_for(st: DeviceStatus, device: str, when: str, *, submitted: bool = False) -> Exception | None:
    """The exception a status means for a job (None when it can print or, once submitted, may still).

    A submitted job survives the queue starting to reject new jobs and an offline printer
    the backend keeps retrying (it then ends in a timeout); paper, door, jam and a stopped
    queue will not resolve by themselves while the resident waits.
    """
    if st.supplies.get("paper") == SupplyState.OUT:
        return PaperOut(f"A4 paper out {when}", device=device)
    if "cover_open" in st.conditions:
        return CoverOpen(f"A4 printer door open {when}", device=device)
    if "jam" in st.conditions:
        return PrintFailed(f"A4 paper jam {when}", device=device)
    if submitted and "stopped" not in st.conditions:
        return None
    if "rejecting" in st.conditions:
        return PrintFailed(f"queue is rejecting jobs {when}" + (f": {st.detail}" if st.detail else ""), device=device)
    if "stopped" in st.conditions:
        return DeviceOffline(f"queue is stopped {when}" + (f": {st.detail}" if st.detail else ""), device=device)
    if st.state == DeviceState.OFFLINE:
        return DeviceOffline(f"A4 printer offline {when}", device=device)
    if st.supplies.get("toner") == SupplyState.OUT:
        return PrintFailed(f"A4 printer toner empty {when}", device=device)
    return None


class JobAborted(PrintFailed):
    """CUPS cancelled or aborted the job itself (the printer refused it); worth one resubmission."""


class CupsA4Printer(A4Printer):
    """One CUPS queue. ``print_pdf`` waits for job-state 9; ``cancel`` and ``print_raw`` serve others."""

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name)
        for key, value in options.items():
            where = f"devices.{name}.options.{key}"
            if key not in _OPTIONS:
                raise ConfigError(f"{where}: unknown option; known: {', '.join(sorted(_OPTIONS))}",
                                  key=where, value=value)
            if not isinstance(value, _OPTIONS[key]) or isinstance(value, bool):
                raise ConfigError(f"{where}: wrong type {type(value).__name__}", key=where, value=value)
        if not options.get("queue"):
            raise ConfigError(f"devices.{name}.options.queue: required by the cups driver",
                              key=f"devices.{name}.options.queue", value=None)
        self.queue = str(options["queue"])
        self.server = str(options.get("server", ""))
        self.poll_s = float(options.get("poll_s", 0.2))
        self.retries = int(options.get("retries", 1))
        self._local = threading.local()  # a pycups Connection is not safe to share across threads
        self.unpurged: set[int] = set()  # ended jobs cupsd has not let go of yet (see purge)
        self._unpurged_lock = threading.Lock()

    # --- connection ---------------------------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            import cups

            host, _, port = self.server.rpartition(":") if ":" in self.server and not self.server.startswith("/") \
                else (self.server, "", "")
            kwargs: dict[str, Any] = {}
            if host:
                kwargs["host"] = host
            if port:
                kwargs["port"] = int(port)
            try:
                conn = cups.Connection(**kwargs)
            except RuntimeError as exc:  # pycups: "failed to connect to server"
                raise DeviceOffline(f"CUPS not reachable{' at ' + self.server if self.server else ''}: {exc}",
                                    device=self.name) from None
            self._local.conn = conn
        return conn

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """One IPP call; a dropped connection is retried once on a fresh one."""
        import cups

        for attempt in (0, 1):
            try:
                return getattr(self._conn(), method)(*args, **kwargs)
            except cups.HTTPError as exc:
                self._local.conn = None
                if attempt:
                    raise DeviceOffline(f"CUPS connection failed: HTTP {exc.args[0]}", device=self.name) from None
            except RuntimeError as exc:
                self._local.conn = None
                if attempt:
                    raise DeviceOffline(f"CUPS connection failed: {exc}", device=self.name) from None

    def open(self) -> None:
        """Check the queue exists. Raises NoDevice, DeviceOffline."""
        self._attributes()

    def close(self) -> None:
        """Drop this thread's connection."""
        self._local.conn = None

    def _attributes(self) -> Mapping[str, Any]:
        import cups

        try:
            return self._call("getPrinterAttributes", self.queue, requested_attributes=[
                "printer-state", "printer-state-reasons", "printer-is-accepting-jobs", "printer-state-message"])
        except cups.IPPError as exc:
            if exc.args and exc.args[0] == cups.IPP_NOT_FOUND:
                raise NoDevice(f"no CUPS queue {self.queue!r}", device=self.name) from None
            raise DeviceOffline(f"CUPS: {exc.args[-1] if exc.args else exc}", device=self.name) from None

    def status(self) -> DeviceStatus:
        """State, paper and toner, cover open, jam, stopped or rejecting queue. Never raises."""
        try:
            if self.unpurged:
                self._purge_leftovers()
            return status_from_attributes(self._attributes())
        except NoDevice as exc:
            return status(DeviceState.NO_DEVICE, {"paper": SupplyState.UNKNOWN}, detail=exc.detail)
        except DeviceOffline as exc:
            return status(DeviceState.OFFLINE, {"paper": SupplyState.UNKNOWN}, detail=exc.detail)
        except Exception as exc:  # pycups raises more than its documented types; status never does
            return status(DeviceState.HARDWARE_ERROR, {"paper": SupplyState.UNKNOWN}, detail=type(exc).__name__)

    # --- jobs -----------------------------------------------------------------------------------
    def job_state(self, job_id: int) -> tuple[int, tuple[str, ...], str]:
        """(job-state, job-state-reasons, printer message) of one job. Raises DeviceOffline, PrintFailed."""
        import cups

        try:
            attrs = self._call("getJobAttributes", int(job_id), requested_attributes=[
                "job-state", "job-state-reasons", "job-printer-state-message"])
        except cups.IPPError as exc:
            raise PrintFailed(f"job {job_id} unknown to CUPS: {exc.args[-1] if exc.args else exc}",
                              device=self.name) from None
        reasons = attrs.get("job-state-reasons") or ()
        if isinstance(reasons, str):
            reasons = (reasons,)
        return int(attrs.get("job-state", 0)), tuple(reasons), str(attrs.get("job-printer-state-message") or "")

    def cancel(self, job_id: int | str) -> None:
        """Cancel a job (nothing happens for one already finished). Raises DeviceOffline."""
        import cups

        try:
            self._call("cancelJob", int(job_id))
        except cups.IPPError:
            pass  # already completed, cancelled or purged

    def purge(self, job_id: int | str, wait_s: float = PURGE_WAIT_S) -> bool:
        """Have cupsd delete an ended job's document files and record (purge-job); True once it is gone.

        A job still stopping (its backend not yet dead) loses its files at once but keeps its
        record until it has stopped: it is asked again for up to ``wait_s``, and a job still
        there then is purged later, on the next print or status (``unpurged``).
        """
        import cups

        deadline = time.monotonic() + wait_s
        while True:
            try:
                self._call("cancelJob", int(job_id), purge_job=True)
            except cups.IPPError as exc:
                if exc.args and exc.args[0] == cups.IPP_NOT_FOUND:
                    with self._unpurged_lock:
                        self.unpurged.discard(int(job_id))
                    return True
            except DeviceOffline:
                pass
            try:
                self._call("getJobAttributes", int(job_id), requested_attributes=["job-state"])
            except cups.IPPError as exc:
                if exc.args and exc.args[0] == cups.IPP_NOT_FOUND:
                    with self._unpurged_lock:
                        self.unpurged.discard(int(job_id))
                    return True
            except DeviceOffline:
                pass
            if time.monotonic() >= deadline:
                with self._unpurged_lock:
                    self.unpurged.add(int(job_id))
                log.warning("CUPS still holds job %s; it is purged again later", job_id)
                return False
            time.sleep(min(self.poll_s, 0.2))

    def _purge_leftovers(self) -> None:
        with self._unpurged_lock:
            leftovers = sorted(self.unpurged)
        for job_id in leftovers:
            self.purge(job_id, wait_s=0)

    def _submit(self, path: Path, title: str, options: Mapping[str, str]) -> int:
        import cups

        try:
            return int(self._call("printFile", self.queue, str(path), title, dict(options)))
        except cups.IPPError as exc:
            code = exc.args[0] if exc.args else None
            text = exc.args[-1] if exc.args else str(exc)
            if code == cups.IPP_NOT_FOUND:
                raise NoDevice(f"no CUPS queue {self.queue!r}", device=self.name) from None
            raise PrintFailed(f"CUPS refused the job: {text}", device=self.name) from None

    def _wait(self, job_id: int, deadline: float) -> None:
        """Poll until job-state 9. Cancels the job and raises on any other end."""
        while True:
            state, reasons, message = self.job_state(job_id)
            if state == JOB_COMPLETED:
                return
            if state in (JOB_CANCELED, JOB_ABORTED) or (state == JOB_STOPPED and any(
                    r in ("job-completed-with-errors", "job-stopped") or r.endswith("-error") for r in reasons)):
                self.cancel(job_id)
                cause = _error_for(self.status(), self.name, "during the job")
                raise cause or JobAborted(f"job {job_id} ended {'/'.join(reasons) or state}"
                                           + (f": {message}" if message else ""), device=self.name)
            cause = _error_for(self.status(), self.name, "during the job", submitted=True)
            if cause is not None:
                self.cancel(job_id)
                raise cause
            if time.monotonic() >= deadline:
                self.cancel(job_id)
                raise DeviceTimeout(f"job {job_id} not completed in time (state {state})", device=self.name)
            time.sleep(self.poll_s)

    def _print_file(self, path: Path, title: str, options: Mapping[str, str], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._lock:
            attempt = 0
            while True:
                cause = _error_for(self.status(), self.name, "before printing")
                if cause is not None:
                    raise cause
                job_id = self._submit(path, title, options)
                log.info("A4 job %s submitted to %s", job_id, self.queue)
                try:
                    self._wait(job_id, deadline)
                    log.info("A4 job %s completed", job_id)
                    return str(job_id)
                except JobAborted:
                    # an aborted job is worth one more try while time is left; paper, door,
                    # jam and stopped-queue errors are raised as they are
                    attempt += 1
                    if attempt > self.retries or time.monotonic() >= deadline:
                        raise
                    log.warning("A4 job %s failed; resubmitting (attempt %d)", job_id, attempt + 1)
                finally:
                    self.purge(job_id)  # ended one way or the other: no copy stays in cupsd's spool

    def print_pdf(self, pdf: Path, title: str, timeout: float = 60.0) -> str:
        """Print ``pdf`` and wait for job-state 9; returns the CUPS job id.

        Raises PaperOut, CoverOpen, DeviceOffline, DeviceTimeout, PrintFailed, NoDevice.
        """
        pdf = Path(pdf)
        if not pdf.is_file():
            raise PrintFailed(f"no such document {pdf}", device=self.name)
        return self._print_file(pdf, title, {"document-format": "application/pdf"}, timeout)

    def print_raw(self, data: bytes, title: str, timeout: float = 30.0) -> str:
        """Send bytes unfiltered (a raw receipt queue) and wait for completion; returns the job id."""
        with tempfile.NamedTemporaryFile(prefix="kiosk-raw-", suffix=".bin") as fh:
            fh.write(data)
            fh.flush()
            return self._print_file(Path(fh.name), title, {"raw": "true"}, timeout)
