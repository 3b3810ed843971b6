"""A4 document printer: the interface. The CUPS driver comes with the printing issue."""
from __future__ import annotations

import abc
from pathlib import Path

from kiosk.hardware.base import Device


class A4Printer(Device):
    """Prints PDF documents and reports the job through to completion."""

    kind = "a4_printer"

    @abc.abstractmethod
    def print_pdf(self, pdf: Path, title: str, timeout: float = 60.0) -> str:
        """Print ``pdf`` and wait until the job completes; returns the job id.

        Raises PaperOut, CoverOpen, DeviceOffline, DeviceTimeout, PrintFailed. A job that
        failed half way leaves nothing printed that the caller believes was printed.
        """
