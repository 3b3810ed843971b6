"""Simulated QR/barcode scanner: delivers queued codes in order, one per scan.

``feed(text)`` is a resident holding a code under the scanner; ``options.codes`` preloads
the queue. A scan with nothing queued waits for a feed up to its timeout.

Options: codes (list of strings), delay_s. Faults: timeout, offline.
"""
from __future__ import annotations

import collections
import time
from typing import Any, Mapping

from kiosk.errors import DeviceOffline, DeviceTimeout
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.scanner import Scanner
from kiosk.hardware.simulators.faults import SimulatedDevice


class SimScanner(SimulatedDevice, Scanner):
    """QR/barcode scanner simulator, a first-class driver chosen by ``driver = "sim"``."""

    FAULTS = frozenset({"timeout", "offline"})
    OPTIONS: Mapping[str, Any] = {"delay_s": 0.0, "codes": []}

    def __init__(self, name: str, options: Mapping[str, Any] | None = None,
                 faults: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, options, faults)
        self._queue: collections.deque[str] = collections.deque(str(c) for c in self.options["codes"])
        self.scans = 0

    def feed(self, text: str) -> None:
        """Queue one code for the next scan."""
        with self._changed:
            self._queue.append(text)
            self._changed.notify_all()

    def pending(self) -> int:
        """How many codes wait to be scanned."""
        with self._sim_lock:
            return len(self._queue)

    def scan(self, timeout: float = 20.0) -> str:
        """Wait up to ``timeout`` s for a code; returns its text. Raises DeviceTimeout, DeviceOffline."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._changed:
            while True:
                if self._hit("offline"):
                    raise DeviceOffline("scanner does not answer", device=self.name)
                if self._take("timeout"):
                    raise DeviceTimeout("no code scanned in time", device=self.name)
                if self._queue:
                    code = self._queue.popleft()
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise DeviceTimeout("no code scanned in time", device=self.name)
                self._changed.wait(left)
        self._pause()
        with self._sim_lock:
            self.scans += 1
        return code

    def status(self) -> DeviceStatus:
        """Offline, hardware error while timing out, else online. Never raises."""
        with self._sim_lock:
            if self._on("offline"):
                return status(DeviceState.OFFLINE, detail="scanner does not answer")
            if self._on("timeout"):
                return status(DeviceState.HARDWARE_ERROR, detail="scanner does not decode")
            return status(DeviceState.ONLINE)
