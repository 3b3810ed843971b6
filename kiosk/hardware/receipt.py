"""Thermal receipt printer (ESC/POS): the interface, and the paper profiles printers are set up with.

As in python-escpos, the high-level operations live here and a driver implements one
primitive: ``_raw`` sends bytes. A printer takes bytes already rendered for its paper
profile (:class:`PaperProfile`: paper width, Font A columns, how it prints Chinese and QR
codes); the receipt templates (print_templates.receipts) read the profile to render for it.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass, replace
from typing import Mapping

from kiosk.hardware.base import Device

CHINESE_MODES = ("fs_and", "raster")
QR_MODES = ("native", "raster")


@dataclass(frozen=True)
class PaperProfile:
    """What one printer model can do: paper width, columns of Font A, Chinese and QR support."""

    name: str
    width_dots: int
    columns: int
    chinese_mode: str = "fs_and"
    qr_mode: str = "native"
    qr_module_dots: int = 6
    text_px: int = 24  # height of one raster text line at normal size (Font A is 12x24)

    @property
    def spec(self) -> str:
        """The profile as a string that :func:`paper_profile` turns back into it."""
        return f"{self.name}:{self.chinese_mode}:{self.qr_mode}"


PAPER_PROFILES: Mapping[str, PaperProfile] = {
    "80mm": PaperProfile("80mm", width_dots=576, columns=48, qr_module_dots=6),
    "58mm": PaperProfile("58mm", width_dots=384, columns=32, qr_module_dots=4),
}


def paper_profile(spec: "str | PaperProfile", *, chinese_mode: str | None = None,
                  qr_mode: str | None = None) -> PaperProfile:
    """A profile from ``"80mm"``, ``"58mm:raster"`` or ``"80mm:fs_and:raster"``. Raises ValueError."""
    if isinstance(spec, PaperProfile):
        profile = spec
    else:
        name, *modes = str(spec).split(":")
        if name not in PAPER_PROFILES:
            raise ValueError(f"unknown receipt profile {name!r}; known: {', '.join(PAPER_PROFILES)}")
        profile = PAPER_PROFILES[name]
        if modes:
            profile = replace(profile, chinese_mode=modes[0])
        if len(modes) > 1:
            profile = replace(profile, qr_mode=modes[1])
    if chinese_mode:
        profile = replace(profile, chinese_mode=chinese_mode)
    if qr_mode:
        profile = replace(profile, qr_mode=qr_mode)
    if profile.chinese_mode not in CHINESE_MODES:
        raise ValueError(f"chinese_mode must be one of {', '.join(CHINESE_MODES)}; got {profile.chinese_mode!r}")
    if profile.qr_mode not in QR_MODES:
        raise ValueError(f"qr_mode must be one of {', '.join(QR_MODES)}; got {profile.qr_mode!r}")
    return profile


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
