"""Fixtures for the device layer: configs pointing at a temporary state folder, a small PDF,
and a stand-in "real" driver module registered the way helpers' real drivers are."""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any, Callable

import pytest

from kiosk.config import KioskConfig, from_dict
from kiosk.errors import NoDevice
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.receipt import ReceiptPrinter
from kiosk.hardware.scanner import Scanner


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., KioskConfig]:
    """Build a demo config whose state lives in tmp_path; keyword args are top-level sections."""

    def make(**sections: Any) -> KioskConfig:
        data: dict[str, Any] = {"paths": {"state_dir": str(tmp_path / "state")}}
        data.update(sections)
        return from_dict(data)

    return make


@pytest.fixture
def make_pdf(tmp_path: Path) -> Callable[[int], Path]:
    """Write a PDF with ``pages`` pages and return its path."""
    from reportlab.pdfgen import canvas

    counter = iter(range(1_000_000))

    def make(pages: int = 1) -> Path:
        path = tmp_path / f"doc-{next(counter)}.pdf"
        c = canvas.Canvas(str(path))
        for i in range(pages):
            c.drawString(72, 720, f"page {i + 1}")
            c.showPage()
        c.save()
        return path

    return make


class FakeReceiptDriver(ReceiptPrinter):
    """A stand-in real driver: ``present = false`` in options makes open() fail as an absent device would."""

    instances: list["FakeReceiptDriver"] = []

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name)
        self.options = options
        self.opened = False
        self.closed = False
        FakeReceiptDriver.instances.append(self)

    def open(self) -> None:
        if not self.options.get("present", True):
            raise NoDevice("no printer on the port", device=self.name)
        self.opened = True

    def close(self) -> None:
        self.closed = True

    def _raw(self, data: bytes) -> None:
        pass

    def status(self) -> DeviceStatus:
        return status(DeviceState.ONLINE if self.opened else DeviceState.NO_DEVICE)


class FakeScannerDriver(Scanner):
    """A stand-in real scanner whose constructor fails like a driver hitting a missing port."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        super().__init__(name)
        if options.get("port") == "/dev/missing":
            raise OSError(2, "No such file or directory")
        self.opened = False

    def open(self) -> None:
        self.opened = True

    def scan(self, timeout: float = 20.0) -> str:
        return ""

    def status(self) -> DeviceStatus:
        raise RuntimeError("a driver breaking its never-raise promise")


class NotADriver:
    """Registered by mistake: not a device class."""

    def __init__(self, name: str, options: dict[str, Any]) -> None:
        pass


@pytest.fixture
def fake_drivers(monkeypatch: pytest.MonkeyPatch) -> str:
    """Install a module of stand-in real drivers in sys.modules; returns its name."""
    module = types.ModuleType("kiosk_test_fake_drivers")
    module.FakeReceiptDriver = FakeReceiptDriver  # type: ignore[attr-defined]
    module.FakeScannerDriver = FakeScannerDriver  # type: ignore[attr-defined]
    module.NotADriver = NotADriver  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module.__name__, module)
    FakeReceiptDriver.instances = []
    return module.__name__
