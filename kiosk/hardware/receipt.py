"""Thermal receipt printer (ESC/POS): the interface.

As in python-escpos, the high-level operations live here and a driver implements one
primitive: ``_raw`` sends bytes. Real connectors (USB, serial, network, CUPS) come with
the printing issue.
"""
from __future__ import annotations

import abc

from kiosk.hardware.base import Device


class ReceiptPrinter(Device):
    """Prints ESC/POS receipts; ``paper`` is its supply."""

    kind = "receipt_printer"

    @abc.abstractmethod
    def _raw(self, data: bytes) -> None:
        """Send bytes to the printer. Raises PaperOut, CoverOpen, DeviceOffline."""

    def print_bytes(self, data: bytes) -> None:
        """Print one already encoded receipt, checking status first.

        Raises PaperOut, CoverOpen, DeviceOffline, PrintFailed.
        """
        from kiosk.errors import CoverOpen, DeviceOffline, PaperOut
        from kiosk.hardware.base import DeviceState, SupplyState

        with self._lock:
            st = self.status()
            if st.supplies.get("paper") == SupplyState.OUT:
                raise PaperOut("receipt paper out", device=self.name)
            if "cover_open" in st.conditions:
                raise CoverOpen("receipt cover open", device=self.name)
            if st.state not in (DeviceState.ONLINE, DeviceState.BUSY):
                raise DeviceOffline(f"receipt printer {st.state.value}", device=self.name)
            self._raw(data)
