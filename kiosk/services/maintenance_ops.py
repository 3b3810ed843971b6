"""What the technician does in maintenance mode, and what remote commands do: no Kivy here.

The maintenance screens are thin: each button calls one method of :class:`MaintenanceService`
(device status, test prints, paper counter reset, owed prints and their reprint, a masked log
export, restart, leaving). The hidden entry gesture is :class:`CornerGesture` (the four screen
corners touched clockwise from the top left within a few seconds), fed with raw touch
positions by the UI. :class:`KioskCommandHandler` is the heartbeat's ``CommandHandler``: it acts
on the runtime here and tells the UI through callbacks, so it is tested without a window.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from kiosk import localtime
from kiosk.durable import fsync_dir, write_atomic
from kiosk.errors import KioskError
from kiosk.hardware.idcard import IdentityCard
from kiosk.privacy import mask_text
from kiosk.services import journal as J
from kiosk.services.heartbeat import RemoteCommand
from kiosk.services.maintenance import AccessStatus, MaintenanceAccess
from kiosk.services.workflow.records import Produced
from kiosk.services.workflow.reprint import reprint_entry

log = logging.getLogger(__name__)

# Exit status of a restart asked for by the technician or a remote command: EX_TEMPFAIL, non-zero
# so the unit's Restart=on-failure starts the kiosk again; `kiosk run` returns it.
RESTART_EXIT_STATUS = 75
CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")
GESTURE_WINDOW_S = 5.0
CORNER_FRACTION = 0.1  # a corner is a square of this share of the shorter window side
MAINTENANCE_REASON = "maintenance"


class MaintenanceOpError(KioskError):
    """A maintenance action could not be done."""

    code = "maintenance_op_failed"
    message_en = "The maintenance action failed."


class NotInMaintenance(MaintenanceOpError):
    """A maintenance action was asked for without the PIN having been accepted."""

    code = "maintenance_not_active"
    message_en = "Enter the maintenance PIN first."


class NothingOwed(MaintenanceOpError):
    """The reprint names no print this terminal still owes."""

    code = "reprint_not_owed"
    message_en = "No unfinished print with that reference."


class ReprintNeedsHolder(MaintenanceOpError):
    """An A4 document is only fetched again with its holder's ID card on the reader."""

    code = "reprint_needs_holder_card"
    message_en = "This document can only be reprinted with its holder's ID card on the reader."


class KioskBusy(MaintenanceOpError):
    """A resident is being served: a remote reprint would share the printer with their transaction."""

    code = "kiosk_busy"
    message_en = "A resident is being served. Try again later."


class NoSuchDevice(MaintenanceOpError):
    """The device asked for is not configured (or disabled)."""

    code = "maintenance_no_device"
    message_en = "That device is not configured on this terminal."


# --- the hidden gesture ----------------------------------------------------------------------
class CornerGesture:
    """Recognises the four corners touched clockwise from the top left within ``window_s`` seconds.

    Positions are window pixels with the origin at the bottom left (Kivy's). A touch anywhere
    else, a corner out of order or a sequence that took too long starts over, so a resident
    tapping around the screen does not open it by chance.
    """

    def __init__(self, *, window_s: float = GESTURE_WINDOW_S, fraction: float = CORNER_FRACTION,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self.fraction = fraction
        self.clock = clock
        self._done = 0
        self._started = 0.0

    def corner(self, x: float, y: float, width: float, height: float) -> str:
        """The corner (x, y) lies in ('' for none)."""
        size = min(width, height) * self.fraction
        left, right = x <= size, x >= width - size
        bottom, top = y <= size, y >= height - size
        for name, hit in (("top_left", top and left), ("top_right", top and right),
                          ("bottom_right", bottom and right), ("bottom_left", bottom and left)):
            if hit:
                return name
        return ""

    def touch(self, x: float, y: float, width: float, height: float) -> bool:
        """Feed one touch-down; True when it completes the gesture (which then starts over)."""
        now = self.clock()
        where = self.corner(x, y, width, height)
        if self._done and now - self._started > self.window_s:
            self._done = 0
        if where and where == CORNERS[self._done]:
            if self._done == 0:
                self._started = now
            self._done += 1
        elif where == CORNERS[0]:
            self._done, self._started = 1, now
        else:
            self._done = 0
        if self._done == len(CORNERS):
            self._done = 0
            return True
        return False


# --- what the screens show -------------------------------------------------------------------
@dataclass(frozen=True)
class DeviceRow:
    """One device on the status screen (the status model, no personal data)."""

    name: str
    state: str
    usable: bool
    supplies: dict[str, str] = field(default_factory=dict)
    conditions: tuple[str, ...] = ()

    def line(self) -> str:
        """One line of text for the status list."""
        parts = [f"{self.name}: {self.state}"]
        parts += [f"{k}={v}" for k, v in sorted(self.supplies.items())]
        parts += list(self.conditions)
        return "  ".join(parts)


@dataclass(frozen=True)
class OwedPrint:
    """A document or receipt issued but never printed (from the journal)."""

    key: str
    item_id: str
    kind: str  # print_a4 or print_receipt
    document_id: str
    reference: str
    created_at: float

    def line(self) -> str:
        """One line of text for the list (references only: no personal data exists here)."""
        what = "A4" if self.kind == J.PRINT_A4 else "receipt"
        when = localtime.stamp(self.created_at, "%Y-%m-%d %H:%M")
        return f"{when}  {self.item_id}  {what}  {self.reference or self.document_id}"


@dataclass(frozen=True)
class PaperCounter:
    """Refills of one printer's paper as recorded by the technician."""

    device: str
    refills: int
    refilled_at: float


@dataclass(frozen=True)
class ExportResult:
    """Where the masked logs went and how much was written."""

    path: Path
    files: int
    lines: int


class MaintenanceService:
    """The technician's actions on one terminal's runtime, behind the PIN check."""

    def __init__(self, runtime: Any, access: MaintenanceAccess | None = None, *,
                 export_dir: str | os.PathLike[str] | None = None,
                 on_restart: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self.access = access or MaintenanceAccess.for_state_dir(runtime.state_dir)
        configured = export_dir if export_dir is not None else _config_export_dir(runtime)
        # A configured folder is a USB stick's mount point: never created here (that would write
        # to the kiosk's own disk when the stick is missing); the default folder is.
        self._default_export = not configured
        self.export_dir = Path(configured) if configured else Path(runtime.state_dir) / "exports"
        self.on_restart = on_restart
        self.active = False
        self._counter_path = Path(runtime.state_dir) / "paper-counters.json"

    # -- entering and leaving -------------------------------------------------------------
    def status(self) -> AccessStatus:
        """PIN set, attempts left, locked until when (for the PIN screen)."""
        return self.access.status()

    def unlock(self, pin: str) -> None:
        """Check the technician PIN and enter maintenance. Raises WrongPin, LockedOut, PinNotSet."""
        self.access.check(pin)
        self.active = True
        self.runtime.health.set_out_of_service(MAINTENANCE_REASON)
        log.warning("maintenance mode entered on site")

    def enter_remote(self) -> None:
        """A remote command takes the kiosk out of service for maintenance (the menu still needs the PIN)."""
        self.runtime.health.set_out_of_service(MAINTENANCE_REASON)

    def leave(self) -> None:
        """Leave maintenance: lift the out-of-service notice, the kiosk serves again."""
        self.active = False
        self.runtime.health.clear_out_of_service()
        log.warning("maintenance mode left; back in service")

    def _require(self) -> None:
        if not self.active:
            raise NotInMaintenance("maintenance action without the PIN")

    # -- devices ----------------------------------------------------------------------------
    def device_rows(self) -> list[DeviceRow]:
        """The status model of every configured device."""
        rows = []
        for name, st in self.runtime.devices.statuses().items():
            d = st.to_dict() if hasattr(st, "to_dict") else dict(st)
            rows.append(DeviceRow(str(name), str(d.get("state", "")), bool(d.get("usable", False)),
                                  {str(k): str(v) for k, v in (d.get("supplies") or {}).items()},
                                  tuple(str(c) for c in d.get("conditions") or ())))
        return rows

    def _device(self, name: str) -> Any:
        device = self.runtime.devices.get(name)
        if device is None:
            raise NoSuchDevice(f"device {name} is not configured", device=name)
        return device

    def test_print_receipt(self) -> bytes:
        """Print the receipt printer's test page; returns the bytes sent. Raises DeviceError."""
        from print_templates.receipts import render_receipt

        self._require()
        printer = self._device("receipt_printer")
        terminal = self.runtime.config.terminal.id
        data = {"terminal_id": terminal, "time": localtime.stamp(),
                "reference": f"TEST-{localtime.stamp(fmt='%Y%m%d%H%M%S')}", "lines": [["terminal", terminal]]}
        out = render_receipt("test", data, profile=str(getattr(printer, "profile", "") or "80mm"))
        printer.print_bytes(out)
        log.info("maintenance: receipt test page printed")
        return out

    def test_print_a4(self) -> str:
        """Print an A4 test page; returns the printer's job id. Raises DeviceError."""
        from print_templates.documents import render_pdf

        self._require()
        printer = self._device("a4_printer")
        terminal = self.runtime.config.terminal.id
        stamp = localtime.stamp()
        page = {"doc_type": "printer_test_page", "title_zh": "打印测试页", "title_en": "Printer test page",
                "verification_code": "TEST-PAGE", "issued_at": stamp,
                "qr_payload": json.dumps({"test": True, "terminal": terminal}, separators=(",", ":")),
                "signature": "", "content": {"terminal": terminal, "printed_at": stamp,
                                             "statement": "自助终端 A4 打印测试页 / A4 printer test page"}}
        folder = Path(self.runtime.state_dir) / "maintenance"
        folder.mkdir(parents=True, exist_ok=True)
        pdf = render_pdf(page, folder / "a4-test-page.pdf", terminal_id=terminal)
        job = printer.print_pdf(pdf, "test page")
        log.info("maintenance: A4 test page printed (job %s)", job)
        return str(job)

    def reset_paper(self, device: str = "receipt_printer") -> PaperCounter:
        """Record a paper refill of ``device`` (a simulator is refilled too); returns the counter."""
        self._require()
        printer = self._device(device)
        refill = getattr(printer, "refill", None)
        if callable(refill):  # simulators model their roll; a real printer's roll was just swapped by hand
            refill()
        counters = self.paper_counters()
        old = counters.get(device)
        counter = PaperCounter(device, (old.refills if old else 0) + 1, time.time())
        counters[device] = counter
        write_atomic(self._counter_path, json.dumps(
            {k: {"refills": v.refills, "refilled_at": v.refilled_at} for k, v in counters.items()}).encode())
        self.runtime.health.poll()
        log.info("maintenance: %s paper refilled (refill %d)", device, counter.refills)
        return counter

    def paper_counters(self) -> dict[str, PaperCounter]:
        """Refill counters per printer (empty before the first reset)."""
        try:
            raw = json.loads(self._counter_path.read_text())
            return {k: PaperCounter(k, int(v["refills"]), float(v["refilled_at"])) for k, v in raw.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    # -- unfinished transactions ------------------------------------------------------------
    def owed_prints(self) -> list[OwedPrint]:
        """Documents and receipts issued but never printed, oldest first."""
        out = []
        for e in self.runtime.journal.entries():
            if e.kind in (J.PRINT_A4, J.PRINT_RECEIPT) and e.state in (J.FAILED, J.BEGUN):
                out.append(OwedPrint(e.key, e.item_id, e.kind, str(e.refs.get("document_id", "")),
                                     str(e.refs.get("reference", "")), e.created_at))
        return out

    def reprint(self, key: str, card: IdentityCard | None = None) -> Produced:
        """Print an owed entry again through the engine; returns ``Produced``.

        A receipt prints at once, its result lines and QR asked again of the backend. An A4
        document is fetched again from the backend, which hands it out only against its
        holder's ID number: ``card`` (or the card on the reader) must be the holder's. Raises
        NothingOwed, ReprintNeedsHolder, BackendError, DeviceError.
        """
        owed = {p.key: p for p in self.owed_prints()}
        if key not in owed:
            raise NothingOwed(f"nothing owed under {key}")
        engine, journal = self.runtime.engine, self.runtime.journal
        entry = journal.get(key)
        assert entry is not None
        if entry.kind == J.PRINT_RECEIPT:
            return self._reprint_receipt(entry)
        if card is None:
            reader = self.runtime.devices.get("id_card")
            if reader is None or not reader.card_present():
                raise ReprintNeedsHolder("no ID card on the reader")
            card = reader.read_card(timeout=5.0)
        if journal.id_hash(card.id_number) != entry.id_hash:
            raise ReprintNeedsHolder("the card on the reader is not the document holder's")
        return engine.reprint(card)

    def reprint_document(self, document_id: str) -> list[Produced]:
        """The remote reprint: print the owed receipts of ``document_id`` now; returns their ``Produced``.

        Nobody on site vouches for who stands at the kiosk, so the card on the reader is never
        read for it: an owed A4 document stays owed to its holder (printed at their next card
        read) and ReprintNeedsHolder says so, and a receipt prints its reference and QR without
        the result lines, which can name people. Raises NothingOwed, KioskBusy (a resident is being
        served), ReprintNeedsHolder, BackendError, DeviceError.
        """
        owed = [p for p in self.owed_prints() if document_id and p.document_id == document_id]
        if not owed:
            raise NothingOwed(f"no owed print of document {document_id}")
        if self.runtime.engine.active():
            raise KioskBusy("a transaction is running")
        entries = [self.runtime.journal.get(p.key) for p in owed if p.kind == J.PRINT_RECEIPT]
        done = [self._reprint_receipt(entry, result_lines=False) for entry in entries if entry is not None]
        if any(p.kind == J.PRINT_A4 for p in owed):
            raise ReprintNeedsHolder(f"document {document_id} is printed at its holder's next card read",
                                     receipts_reprinted=len(done))
        return done

    def _reprint_receipt(self, entry: J.Entry, *, result_lines: bool = True) -> Produced:
        produced, err = reprint_entry(self.runtime.engine, entry, result_lines=result_lines)
        if err is not None:
            raise err
        return produced

    # -- logs -------------------------------------------------------------------------------
    def export_logs(self, dest: str | os.PathLike[str] | None = None) -> ExportResult:
        """Copy the kiosk's logs into a new folder under ``dest`` (the USB stick or export folder), masked again.

        Every line goes through kiosk.privacy masking once more, so a line that slipped past
        the log filter (or was written before it existed) leaves the terminal masked.
        """
        self._require()
        base = Path(dest) if dest is not None else self.export_dir
        if dest is None and self._default_export:
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not base.is_dir():
            raise MaintenanceOpError(f"export folder {base} does not exist (is the USB stick mounted?)",
                                     path=str(base))
        terminal = self.runtime.config.terminal.id
        target = base / f"kiosk-logs-{terminal}-{localtime.stamp(fmt='%Y%m%d-%H%M%S')}"
        target.mkdir()
        files = lines = 0
        for log_file in sorted((Path(self.runtime.state_dir) / "logs").glob("kiosk.log*")):
            with log_file.open(encoding="utf-8", errors="replace") as src, \
                    (target / log_file.name).open("w", encoding="utf-8") as out:
                for line in src:
                    out.write(mask_text(line))
                    lines += 1
                out.flush()
                os.fsync(out.fileno())  # on the stick before the technician is told to pull it
            files += 1
        fsync_dir(target)
        fsync_dir(base)
        log.info("maintenance: %d log files (%d lines) exported masked", files, lines)
        return ExportResult(target, files, lines)

    # -- restart ----------------------------------------------------------------------------
    def restart(self) -> None:
        """Ask the app to exit with RESTART_EXIT_STATUS so systemd starts it again."""
        log.warning("restart requested")
        if self.on_restart is None:
            raise MaintenanceOpError("no restart hook wired")
        self.on_restart()


def _config_export_dir(runtime: Any) -> str:
    section = getattr(runtime.config, "maintenance", None)
    return str(getattr(section, "export_dir", "") or "")


# --- remote commands --------------------------------------------------------------------------
@dataclass
class UiHooks:
    """What the UI does for a remote command (called from the heartbeat thread: schedule on the UI loop)."""

    restart: Callable[[], None]
    maintenance_changed: Callable[[bool], None] = lambda _on: None
    notice_changed: Callable[[str], None] = lambda _text: None


class KioskCommandHandler:
    """The heartbeat's CommandHandler: acts on the runtime, tells the UI through ``hooks``."""

    def __init__(self, service: MaintenanceService, hooks: UiHooks) -> None:
        self.service = service
        self.hooks = hooks

    def handle_command(self, command: RemoteCommand) -> None:
        """Run one verified remote command. Raises a KioskError when it cannot be done (acknowledged failed)."""
        kind, args = command.kind, command.args
        if kind == "restart":
            self.hooks.restart()
        elif kind == "enter_maintenance":
            self.service.enter_remote()
            self.hooks.maintenance_changed(True)
        elif kind == "leave_maintenance":
            self.service.leave()
            self.hooks.maintenance_changed(False)
            self.hooks.notice_changed("")
        elif kind == "out_of_service_notice":
            text = str(args.get("text", "")).strip()
            if text:
                self.service.runtime.health.set_out_of_service(text)
            else:
                self.service.runtime.health.clear_out_of_service()
            self.hooks.notice_changed(text)
        elif kind == "reprint":
            self.service.reprint_document(str(args.get("document_id", "")))
        elif kind == "update_now":
            # Kept for the updater (kiosk-update.path starts it): lifts the maintenance window, never a session.
            from kiosk.services.update_status import request_update_now

            try:
                request_update_now(self.service.runtime.state_dir, command.command_id, command.expires_at)
            except OSError as exc:
                raise MaintenanceOpError(f"update_now not kept: {exc.strerror}") from None
        else:  # the verifier refuses unknown kinds; this guards a kind added there but not here
            raise MaintenanceOpError(f"unhandled command kind {kind}")
