"""QR/barcode scanner: the interface."""
from __future__ import annotations

import abc

from kiosk.hardware.base import Device


class Scanner(Device):
    """Reads one QR code or barcode (or an MRZ line) presented by the resident."""

    kind = "scanner"

    @abc.abstractmethod
    def scan(self, timeout: float = 20.0) -> str:
        """Wait up to ``timeout`` s for a code; returns its text. Raises DeviceTimeout, DeviceOffline."""
