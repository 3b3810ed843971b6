"""QR code, barcode and MRZ scanners in serial mode (USB CDC-ACM virtual COM port, or RS-232).

Kiosk scan engines (Newland, Honeywell, Zebra) and passport MRZ readers can present
themselves as a serial port instead of a keyboard; in that mode nothing they read
reaches the touch UI as keystrokes, and the kiosk user only needs the dialout group (the
udev rules from ``kiosk-provision install``). A code arrives as a burst of bytes, an
MRZ as two or three lines separated by CR or LF; the burst ends when the line has been
quiet for ``gap_s``. Lines come back joined with "\\n", surrounding blanks removed.

Options: ``port`` (required, e.g. /dev/ttyACM0 or /dev/serial/by-id/...), ``baud``
(9600; a CDC port ignores it), ``encoding`` (utf-8; gb18030 for engines set to GBK),
``gap_s`` (0.15), ``max_bytes`` (4096), ``stale_s`` (5: bytes that were waiting longer
than this before anyone asked are a code scanned for nobody, e.g. by the previous
resident, and are dropped).
"""
from __future__ import annotations

import time
from typing import Any, Mapping

from kiosk.errors import ConfigError, DeviceOffline, DeviceOverrun, DeviceProtocolError, DeviceTimeout, NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.scanner import Scanner

_CONTROL = {c: None for c in range(32) if c != 10}  # every C0 control but the line feed
_CONTROL[127] = None


class SerialScanner(Scanner):
    """A scanner on a serial port, read with pyserial."""

    def __init__(self, name: str, options: Mapping[str, Any] | None = None) -> None:
        super().__init__(name)
        self.options = dict(options or {})
        if not self.options.get("port"):
            raise ConfigError("a serial scanner needs options.port (e.g. /dev/ttyACM0)",
                              key=f"devices.{name}.options.port")
        self.port = str(self.options["port"])
        self.baud = int(self.options.get("baud", 9600))
        self.encoding = str(self.options.get("encoding", "utf-8"))
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ConfigError(f"unknown encoding {self.encoding!r}", key=f"devices.{name}.options.encoding",
                              value=self.encoding) from None
        self.gap_s = float(self.options.get("gap_s", 0.15))
        self.max_bytes = int(self.options.get("max_bytes", 4096))
        self.stale_s = float(self.options.get("stale_s", 5.0))
        self._serial: Any = None
        self._last_asked = time.monotonic()

    # --- the port ---------------------------------------------------------------------
    def open(self) -> None:
        """Open the port, dropping whatever was scanned before. Raises NoDevice."""
        import serial

        with self._lock:
            if self._serial is not None:
                return
            try:
                self._serial = serial.Serial(self.port, self.baud, timeout=self.gap_s)
                self._serial.reset_input_buffer()
            except (serial.SerialException, OSError, ValueError) as exc:
                self._serial = None
                raise NoDevice(f"cannot open scanner port {self.port}: {exc}", device=self.name) from None
            self._last_asked = time.monotonic()

    def close(self) -> None:
        """Close the port; safe to call twice."""
        with self._lock:
            if self._serial is not None:
                try:
                    self._serial.close()
                except Exception:  # closing a vanished port must not raise
                    pass
                self._serial = None

    def _lost(self, exc: BaseException) -> DeviceOffline:
        self.close()  # the next scan opens the port again (the scanner re-plugged)
        return DeviceOffline(f"scanner port {self.port} failed: {exc}", device=self.name)

    # --- reading ----------------------------------------------------------------------
    def scan(self, timeout: float = 20.0) -> str:
        """Wait up to ``timeout`` s for one code; returns its text.

        Raises DeviceTimeout (nothing scanned), DeviceProtocolError (bytes that are not a
        code: undecodable, empty or over ``max_bytes``; the burst is consumed, so the next
        scan starts clean), DeviceOverrun (a burst that does not end), DeviceOffline (the
        port failed), NoDevice (no such port).
        """
        import serial

        with self._lock:
            self.open()
            port = self._serial
            try:
                if time.monotonic() - self._last_asked > self.stale_s and port.in_waiting:
                    port.reset_input_buffer()  # scanned while nobody was asking: not this resident's
                data = self._burst(port, timeout)
            except (serial.SerialException, OSError) as exc:
                raise self._lost(exc) from None
            finally:
                self._last_asked = time.monotonic()
        if len(data) > self.max_bytes:
            raise DeviceProtocolError(f"scanner sent more than {self.max_bytes} bytes at once", device=self.name)
        try:
            text = data.decode(self.encoding)
        except UnicodeDecodeError:
            raise DeviceProtocolError(f"scanner sent bytes that are not {self.encoding}", device=self.name) from None
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        lines = [line.translate(_CONTROL).strip() for line in text.split("\n")]
        code = "\n".join(line for line in lines if line)
        if not code:
            raise DeviceProtocolError("scanner sent only blanks and control characters", device=self.name)
        return code

    def _burst(self, port: Any, timeout: float) -> bytes:
        """The bytes of one burst: wait for the first up to ``timeout``, then read until quiet."""
        deadline = time.monotonic() + max(0.0, timeout)
        port.timeout = min(self.gap_s, max(0.0, timeout))
        first = b""
        while not first:
            first = port.read(1)
            if first:
                break
            if time.monotonic() >= deadline:
                raise DeviceTimeout("no code scanned in time", device=self.name)
            port.timeout = min(self.gap_s, max(0.0, deadline - time.monotonic()))
        data = bytearray(first)
        port.timeout = self.gap_s
        # A burst that never goes quiet (a jammed trigger, a wrong baud rate) is cut off: past
        # twice max_bytes, or twice the wire time of max_bytes plus two seconds.
        cut_at = time.monotonic() + 2.0 + 2 * self.max_bytes * 10 / max(self.baud, 1)
        seen = len(first)
        while True:
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                return bytes(data)  # quiet for gap_s: the burst is over
            seen += len(chunk)
            if len(data) <= self.max_bytes:
                data += chunk  # past the limit the rest is drained, not kept
            if seen > 2 * self.max_bytes or time.monotonic() > cut_at:
                port.reset_input_buffer()
                raise DeviceOverrun(f"scanner kept sending ({seen} bytes without a pause); cut off",
                                    device=self.name)

    def status(self) -> DeviceStatus:
        """Online when the port is open or opens; no device when it is gone. Never raises or waits.

        A scan in progress holds the port: the scanner is then reported online as it is.
        """
        import os

        if not self._lock.acquire(blocking=False):
            return status(DeviceState.ONLINE, detail="scanning")
        try:
            if not os.path.exists(self.port):
                self.close()  # unplugged: the old descriptor is dead
                return status(DeviceState.NO_DEVICE, detail=f"no port {self.port}")
            try:
                self.open()
            except NoDevice as exc:
                return status(DeviceState.OFFLINE, detail=exc.detail)
            return status(DeviceState.ONLINE)
        finally:
            self._lock.release()
