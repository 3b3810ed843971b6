"""The real thermal receipt printer: ESC/POS over network, USB, serial, a raw CUPS queue or a file.

One class serves every connector (the factory registers it as network, usb, serial, cups and
file); a small link object per connector moves the bytes. Status comes from DLE EOT real-time
queries (n = 1 printer, 2 offline cause, 4 roll paper sensor). Unlike python-escpos, whose
paper check reports "adequate" when the printer says nothing, no answer here means offline
with paper unknown. After a job the printer is asked again, so paper running out, a cover
opened or the printer dropping off half way surface as errors instead of a silent loss.

Options (``devices.receipt_printer.options``): ``printer`` (a spec as on the command line:
network:HOST:PORT | usb:VVVV:PPPP | serial:DEV | cups:QUEUE | file:PATH) or per connector
host/port, vendor_id/product_id/in_ep/out_ep, device/baudrate, queue/server, path; and
profile (80mm | 58mm), chinese_mode (fs_and | raster), qr_mode (native | raster), timeout_s,
status_timeout_s, verify_after_job.
"""
from __future__ import annotations

import abc
import logging
import os
import select
import socket
import time
from pathlib import Path
from typing import Any, Mapping

from kiosk.errors import ConfigError, CoverOpen, DeviceOffline, DeviceOverrun, NoDevice, PaperOut, PrintFailed
from kiosk.hardware.base import DeviceState, DeviceStatus, SupplyState, status
from kiosk.hardware.receipt import PaperProfile, ReceiptPrinter, paper_profile

log = logging.getLogger(__name__)

DLE_EOT = b"\x10\x04"
# A status answer is one byte; a few late answers or an automatic status block may wait in
# the link. More than this, or talk that never pauses, is a printer out of control.
MAX_STRAY_BYTES = 1024
CONNECTORS = ("network", "usb", "serial", "cups", "file")

_OPTIONS: Mapping[str, type | tuple[type, ...]] = {
    "driver": str, "printer": str, "host": str, "port": int, "vendor_id": (str, int), "product_id": (str, int),
    "in_ep": int, "out_ep": int, "device": str, "baudrate": int, "queue": str, "server": str, "path": str,
    "profile": str, "chinese_mode": str, "qr_mode": str, "timeout_s": (int, float),
    "status_timeout_s": (int, float), "verify_after_job": bool,
    "backend": object,  # usb: a pyusb backend object (tests; the SAM reader takes the same option)
}


def parse_printer_spec(spec: str) -> dict[str, Any]:
    """Options from ``network:HOST[:PORT]``, ``usb:VVVV:PPPP``, ``serial:DEV``, ``cups:QUEUE``, ``file:PATH``.

    Raises ConfigError for anything else.
    """
    kind, _, rest = spec.partition(":")
    bad = ConfigError(f"printer spec {spec!r}: expected network:HOST:PORT, usb:VVVV:PPPP, serial:DEV, "
                      "cups:QUEUE or file:PATH", key="printer", value=spec)
    if not rest:
        raise bad
    if kind == "network":
        host, _, port = rest.rpartition(":") if rest.count(":") == 1 else (rest, "", "9100")
        if not host or not port.isdigit():
            raise bad
        return {"driver": "network", "host": host, "port": int(port)}
    if kind == "usb":
        vid, _, pid = rest.partition(":")
        try:
            return {"driver": "usb", "vendor_id": int(vid, 16), "product_id": int(pid, 16)}
        except ValueError:
            raise bad from None
    if kind == "serial":
        return {"driver": "serial", "device": rest}
    if kind == "cups":
        return {"driver": "cups", "queue": rest}
    if kind == "file":
        return {"driver": "file", "path": rest}
    raise bad


# --- links: one per connector ------------------------------------------------------------------
class _Link(abc.ABC):
    """Moves bytes to and from one printer."""

    readable = True  # can the printer answer status queries over this link?
    persistent = False  # keep it open between operations?

    @abc.abstractmethod
    def open(self) -> None:
        """Connect. Raises NoDevice, DeviceOffline."""

    @abc.abstractmethod
    def close(self) -> None:
        """Disconnect; safe to call twice."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send bytes. Raises OSError."""

    def read(self, timeout: float) -> bytes:
        """Bytes the printer sent within ``timeout`` seconds (b"" when none)."""
        return b""

    def stale(self) -> bool:
        """True when the open connection is to a device that went away (it is then opened afresh)."""
        return False

    def drain(self, limit_s: float) -> None:
        """Throw away answers nobody waited for (late replies to an earlier query).

        Raises DeviceOverrun when more than MAX_STRAY_BYTES wait, or the printer is still
        talking after ``limit_s`` seconds: a flooding printer must not hold the caller for good.
        """
        deadline = time.monotonic() + limit_s
        dropped = 0
        while True:
            got = self.read(0.0)
            if not got:
                return
            dropped += len(got)
            if dropped > MAX_STRAY_BYTES or time.monotonic() >= deadline:
                raise DeviceOverrun(f"printer sent {dropped} bytes nobody asked for; link cut off")


class _NetworkLink(_Link):
    def __init__(self, host: str, port: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.sock: socket.socket | None = None

    def open(self) -> None:
        try:
            self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            raise DeviceOffline(f"cannot connect to {self.host}:{self.port}: {exc.strerror or exc}") from None

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is None:
            return
        try:
            sock.shutdown(socket.SHUT_WR)  # FIN after the data, so nothing queued is reset away
            sock.settimeout(0.2)
            # Wait briefly for the printer's FIN; a printer that keeps talking is not waited for.
            deadline, left = time.monotonic() + 0.5, 64 * 1024
            while left > 0 and time.monotonic() < deadline:
                got = sock.recv(4096)
                if not got:
                    break
                left -= len(got)
        except OSError:
            pass
        sock.close()

    def write(self, data: bytes) -> None:
        assert self.sock is not None
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def read(self, timeout: float) -> bytes:
        assert self.sock is not None
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return b""
        try:
            return self.sock.recv(64)
        except OSError:
            return b""


class _SerialLink(_Link):
    persistent = True

    def __init__(self, device: str, baudrate: int, timeout: float) -> None:
        self.device, self.baudrate, self.timeout = device, baudrate, timeout
        self.port: Any = None

    def open(self) -> None:
        import serial

        if not os.path.exists(self.device):
            raise NoDevice(f"no serial device {self.device}")
        try:
            self.port = serial.Serial(self.device, self.baudrate, timeout=0, write_timeout=self.timeout)
        except serial.SerialException as exc:
            raise DeviceOffline(f"cannot open {self.device}: {exc}") from None

    def close(self) -> None:
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except OSError:  # the tty vanished with the printer
                pass

    def stale(self) -> bool:
        """The port was unplugged, or its path (a /dev/serial/by-id link) now names another tty."""
        if self.port is None or getattr(self.port, "fd", None) is None:
            return False
        try:
            return os.stat(self.device).st_rdev != os.fstat(self.port.fd).st_rdev
        except OSError:
            return True

    def write(self, data: bytes) -> None:
        import serial

        try:
            self.port.write(data)
            self.port.flush()
        except serial.SerialException as exc:
            raise OSError(str(exc)) from None

    def read(self, timeout: float) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            got = self.port.read(64)
            if got or time.monotonic() >= deadline:
                return bytes(got)
            time.sleep(0.01)


class _UsbLink(_Link):
    persistent = True

    def __init__(self, vendor_id: int, product_id: int, in_ep: int, out_ep: int, timeout: float,
                 backend: Any = None) -> None:
        self.ids = (vendor_id, product_id)
        self.in_ep, self.out_ep, self.timeout = in_ep, out_ep, timeout
        self.backend = backend
        self.printer: Any = None

    def open(self) -> None:
        from escpos.exceptions import DeviceNotFoundError
        from escpos.printer import Usb

        printer = Usb(self.ids[0], self.ids[1], timeout=int(self.timeout * 1000), in_ep=self.in_ep,
                      out_ep=self.out_ep, usb_args={"backend": self.backend} if self.backend is not None else {})
        try:
            printer.open()
        except DeviceNotFoundError:
            raise NoDevice("no USB printer %04x:%04x" % self.ids) from None
        except (ValueError, OSError) as exc:  # pyusb: NoBackendError (a ValueError) without libusb
            raise NoDevice(f"USB not usable: {exc}") from None
        self.printer = printer

    def close(self) -> None:
        printer, self.printer = self.printer, None
        if printer is not None:
            try:
                printer.close()
            except Exception:  # pyusb raises its own types on a device already gone
                pass

    def write(self, data: bytes) -> None:
        import usb.core

        try:
            self.printer.device.write(self.out_ep, data, int(self.timeout * 1000))
        except usb.core.USBError as exc:
            raise OSError(str(exc)) from None

    def read(self, timeout: float) -> bytes:
        import usb.core

        try:
            return bytes(self.printer.device.read(self.in_ep, 64, max(1, int(timeout * 1000))))
        except usb.core.USBError:  # includes USBTimeoutError: no answer (an unplug fails the query's write first)
            return b""


class _FileLink(_Link):
    readable = False

    def __init__(self, path: str) -> None:
        self.path = path
        self.fh: Any = None

    def open(self) -> None:
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise NoDevice(f"no folder for {self.path}")
        try:
            self.fh = open(self.path, "ab", buffering=0)
        except OSError as exc:
            raise DeviceOffline(f"cannot open {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        fh, self.fh = self.fh, None
        if fh is not None:
            fh.close()

    def write(self, data: bytes) -> None:
        self.fh.write(data)
        if os.path.isfile(self.path):  # a spool file must survive a power cut; a device node has no fsync
            os.fsync(self.fh.fileno())


class _CupsRawLink(_Link):
    """Submits each job to a raw CUPS queue and follows it to completion."""

    readable = False

    def __init__(self, queue: str, server: str, timeout: float, device_name: str) -> None:
        from kiosk.hardware.cups_printer import CupsA4Printer

        self.queue = CupsA4Printer(device_name, {"queue": queue, "server": server})
        self.timeout = timeout

    def open(self) -> None:
        self.queue.open()

    def close(self) -> None:
        self.queue.close()

    def write(self, data: bytes) -> None:
        self.queue.print_raw(data, "receipt", timeout=max(self.timeout, 30.0))


# --- status decoding -----------------------------------------------------------------------------
def _valid(answer: int | None) -> bool:
    """A real-time status byte has bits 1 and 4 set and bits 0 and 7 clear."""
    return answer is not None and answer & 0x93 == 0x12


def status_from_answers(printer: int | None, offline_cause: int | None, paper: int | None) -> DeviceStatus:
    """The status model from the answers to DLE EOT 1, 2 and 4 (None = no answer)."""
    if printer is None:
        return status(DeviceState.OFFLINE, {"paper": SupplyState.UNKNOWN}, detail="no answer to a status query")
    if not _valid(printer) or (offline_cause is not None and not _valid(offline_cause)) \
            or (paper is not None and not _valid(paper)):
        return status(DeviceState.HARDWARE_ERROR, {"paper": SupplyState.UNKNOWN},
                      detail="status answer is not ESC/POS")
    if paper is None:
        supply = SupplyState.UNKNOWN
    elif paper & 0x60 or (offline_cause or 0) & 0x20:
        supply = SupplyState.OUT
    elif paper & 0x0C:
        supply = SupplyState.LOW
    else:
        supply = SupplyState.OK
    cause = offline_cause or 0
    conditions = set()
    if cause & 0x04:
        conditions.add("cover_open")
        return status(DeviceState.USER_ERROR, {"paper": supply}, conditions, detail="cover open")
    if cause & 0x40:
        return status(DeviceState.HARDWARE_ERROR, {"paper": supply}, {"error"}, detail="printer error")
    if printer & 0x08 and supply != SupplyState.OUT:
        return status(DeviceState.OFFLINE, {"paper": supply}, detail="printer reports offline")
    return status(DeviceState.ONLINE, {"paper": supply}, detail="")


class EscposReceiptPrinter(ReceiptPrinter):
    """A real ESC/POS printer behind one connector; it prints bytes rendered for its ``paper`` profile."""

    paper: PaperProfile

    def __init__(self, name: str, options: Mapping[str, Any]) -> None:
        super().__init__(name)
        opts = dict(options)
        for key, value in opts.items():
            where = f"devices.{name}.options.{key}"
            if key not in _OPTIONS:
                raise ConfigError(f"{where}: unknown option; known: {', '.join(sorted(_OPTIONS))}",
                                  key=where, value=value)
            if not isinstance(value, _OPTIONS[key]) or isinstance(value, bool) != (_OPTIONS[key] is bool):
                raise ConfigError(f"{where}: wrong type {type(value).__name__}", key=where, value=value)
        if "printer" in opts:
            opts = {**opts, **parse_printer_spec(str(opts.pop("printer")))}
        self.driver = str(opts.get("driver") or "")
        if self.driver not in CONNECTORS:
            raise ConfigError(f"devices.{name}.driver: receipt connector must be one of {', '.join(CONNECTORS)}",
                              key=f"devices.{name}.driver", value=self.driver)
        try:
            self.paper = paper_profile(str(opts.get("profile", "80mm")), chinese_mode=opts.get("chinese_mode"),
                                       qr_mode=opts.get("qr_mode"))
        except ValueError as exc:
            raise ConfigError(f"devices.{name}.options.profile: {exc}", key=f"devices.{name}.options.profile",
                              value=opts.get("profile")) from None
        self.timeout = float(opts.get("timeout_s", 5.0))
        self.status_timeout = float(opts.get("status_timeout_s", 1.0))
        self.verify_after_job = bool(opts.get("verify_after_job", True))
        self._link = self._make_link(opts)
        self._open = False

    @property
    def profile(self) -> str:
        """The paper profile's spec, for the templates to render for (e.g. "58mm:raster:native")."""
        return self.paper.spec

    def _make_link(self, opts: Mapping[str, Any]) -> _Link:
        where = f"devices.{self.name}.options"
        try:
            if self.driver == "network":
                return _NetworkLink(str(opts["host"]), int(opts.get("port", 9100)), self.timeout)
            if self.driver == "serial":
                return _SerialLink(str(opts["device"]), int(opts.get("baudrate", 19200)), self.timeout)
            if self.driver == "usb":
                vid, pid = (int(v, 16) if isinstance(v, str) else int(v)
                            for v in (opts["vendor_id"], opts["product_id"]))
                return _UsbLink(vid, pid, int(opts.get("in_ep", 0x82)), int(opts.get("out_ep", 0x01)), self.timeout,
                                opts.get("backend"))
            if self.driver == "cups":
                return _CupsRawLink(str(opts["queue"]), str(opts.get("server", "")), self.timeout, self.name)
            return _FileLink(str(opts["path"]))
        except KeyError as missing:
            raise ConfigError(f"{where}.{missing.args[0]}: required by the {self.driver} connector",
                              key=f"{where}.{missing.args[0]}", value=None) from None
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}", key=where, value=None) from None

    # --- life cycle ---------------------------------------------------------------------------
    def open(self) -> None:
        """Connect and check the printer answers. Raises NoDevice, DeviceOffline, DeviceOverrun."""
        with self._lock:
            self._connect()
            try:
                answer = self._query(1) if self._link.readable else 0
            except (OSError, DeviceOverrun) as exc:
                self._disconnect()
                if isinstance(exc, DeviceOverrun):
                    exc.device = self.name
                    raise
                raise DeviceOffline(f"link lost: {exc}", device=self.name) from None
            if answer is None:
                self._disconnect()
                raise DeviceOffline("printer does not answer status queries", device=self.name)
            if not self._link.persistent:
                self._disconnect()

    def close(self) -> None:
        """Disconnect; safe to call twice."""
        with self._lock:
            self._disconnect()

    def _connect(self) -> None:
        if self._open and self._link.stale():  # plugged in again since: the old descriptor is dead
            log.info("receipt printer %s: device changed under the open connection; opening it again", self.name)
            self._disconnect()
        if not self._open:
            try:
                self._link.open()
            except (NoDevice, DeviceOffline) as exc:
                exc.device = self.name
                raise
            self._open = True

    def _disconnect(self) -> None:
        if self._open:
            self._open = False
            self._link.close()

    # --- status -----------------------------------------------------------------------------------
    def _query(self, n: int) -> int | None:
        """Send DLE EOT n and return the answer byte, or None when the printer stays silent.

        Raises OSError (link lost), DeviceOverrun (the printer will not stop talking).
        """
        self._link.drain(self.status_timeout)
        self._link.write(DLE_EOT + bytes((n,)))
        answer = self._link.read(self.status_timeout)
        if len(answer) > 1:  # the answer is one byte: more is late answers, or a printer that will not stop
            self._link.drain(self.status_timeout)
        return answer[-1] if answer else None

    def _query_all(self) -> DeviceStatus:
        first = self._query(1)
        if first is None:
            return status_from_answers(None, None, None)
        return status_from_answers(first, self._query(2), self._query(4))

    def status(self) -> DeviceStatus:
        """Online, paper ok/low/out/unknown, cover open, from DLE EOT. Never raises."""
        try:
            return self._status()
        except Exception as exc:  # a connector library raising something undocumented
            self._disconnect()
            return status(DeviceState.HARDWARE_ERROR, {"paper": SupplyState.UNKNOWN},
                          detail=f"status failed: {type(exc).__name__}")

    def _status(self) -> DeviceStatus:
        with self._lock:
            if not self._link.readable:
                return self._unreadable_status()
            try:
                self._connect()
            except NoDevice as exc:
                return status(DeviceState.NO_DEVICE, {"paper": SupplyState.UNKNOWN}, detail=exc.detail)
            except DeviceOffline as exc:
                return status(DeviceState.OFFLINE, {"paper": SupplyState.UNKNOWN}, detail=exc.detail)
            try:
                return self._query_all()
            except OSError as exc:
                self._disconnect()
                return status(DeviceState.OFFLINE, {"paper": SupplyState.UNKNOWN}, detail=f"link lost: {exc}")
            except DeviceOverrun as exc:
                self._disconnect()
                log.warning("receipt printer %s: %s", self.name, exc.detail)
                return status(DeviceState.HARDWARE_ERROR, {"paper": SupplyState.UNKNOWN}, {"error"},
                              detail=exc.detail)
            finally:
                if not self._link.persistent:
                    self._disconnect()

    def _unreadable_status(self) -> DeviceStatus:
        if isinstance(self._link, _CupsRawLink):
            return self._link.queue.status()
        link = self._link
        assert isinstance(link, _FileLink)
        path = Path(link.path)
        if not path.parent.is_dir() or (path.exists() and not os.access(path, os.W_OK)):
            return status(DeviceState.NO_DEVICE, {"paper": SupplyState.UNKNOWN}, detail="cannot write there")
        return status(DeviceState.ONLINE, {"paper": SupplyState.UNKNOWN}, detail="a file cannot report paper")

    # --- printing ---------------------------------------------------------------------------------
    def _raw(self, data: bytes) -> None:
        """Send one job, then ask the printer how it went.

        Raises PaperOut, CoverOpen, DeviceOffline, DeviceOverrun, PrintFailed.
        """
        with self._lock:
            self._connect()
            try:
                self._link.write(data)
                after = self._query_all() if self._link.readable and self.verify_after_job else None
            except OSError as exc:
                self._disconnect()
                log.warning("receipt printer %s: connection lost during a job", self.name)
                raise DeviceOffline(f"connection lost during the job: {exc}", device=self.name) from None
            except DeviceOverrun as exc:
                self._disconnect()
                log.warning("receipt printer %s: %s", self.name, exc.detail)
                exc.device = self.name
                raise
            finally:
                if not self._link.persistent:
                    self._disconnect()
            if after is None:
                return
            if after.state == DeviceState.OFFLINE and after.supplies.get("paper") == SupplyState.UNKNOWN:
                raise DeviceOffline("printer stopped answering during the job", device=self.name)
            if "cover_open" in after.conditions:
                raise CoverOpen("cover opened during the job", device=self.name)
            if after.supplies.get("paper") == SupplyState.OUT:
                raise PaperOut("paper ran out during the job", device=self.name)
            if after.state not in (DeviceState.ONLINE, DeviceState.BUSY):
                raise PrintFailed(f"printer reports {after.state.value} after the job", device=self.name)
