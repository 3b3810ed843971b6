"""Builds the terminal's devices from config: one driver per device, chosen by name.

``DRIVERS`` maps each device to its driver names and a ``"module:Class"`` string, imported
only when chosen, so a real driver is added by writing its module (the names below are
already registered) and no factory logic changes. The contract for a class behind a name:

- ``"sim"``: ``Class(name: str, options: dict, faults: dict)`` (see kiosk.hardware.simulators).
- any other name: ``Class(name: str, options: dict)``; ``options`` is the device's
  ``options`` table plus ``"driver"`` = the configured driver name, so one class can serve
  several connectors (serial and usb, network and cups...). The constructor must not
  block; it may raise NoDevice or ConfigError. ``open()`` raises NoDevice when the device
  is absent and DeviceOffline when it does not answer.

Nothing here ever falls back to a simulator: an unknown name is a ConfigError naming
``devices.<name>.driver``; a driver that cannot be loaded or whose device is absent is a
NoDevice error. The production profile refuses simulators (config.py, and again here).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, fields
from typing import Any, Iterator

from kiosk.config import DEVICE_NAMES, KioskConfig
from kiosk.errors import ConfigError, KioskError, NoDevice
from kiosk.hardware.a4 import A4Printer
from kiosk.hardware.base import Device, DeviceState, DeviceStatus, status
from kiosk.hardware.camera import Camera
from kiosk.hardware.idcard import IdCardReader
from kiosk.hardware.pcsc import ChipReader
from kiosk.hardware.receipt import ReceiptPrinter
from kiosk.hardware.scanner import Scanner
from kiosk.hardware.speaker import Speaker

_SAM = "kiosk.hardware.idcard_sam:SamIdCardReader"
_ESCPOS = "kiosk.hardware.escpos_printer:EscposReceiptPrinter"

DRIVERS: dict[str, dict[str, str]] = {
    "id_card": {"sim": "kiosk.hardware.simulators.idcard:SimIdCardReader", "serial": _SAM, "usb": _SAM},
    "pcsc": {"sim": "kiosk.hardware.simulators.pcsc:SimChipReader",
             "pcsc": "kiosk.hardware.pcsc_reader:PcscChipReader"},
    "receipt_printer": {"sim": "kiosk.hardware.simulators.receipt:SimReceiptPrinter",
                        "network": _ESCPOS, "usb": _ESCPOS, "serial": _ESCPOS, "cups": _ESCPOS, "file": _ESCPOS},
    "a4_printer": {"sim": "kiosk.hardware.simulators.a4:SimA4Printer",
                   "cups": "kiosk.hardware.cups_printer:CupsA4Printer"},
    "scanner": {"sim": "kiosk.hardware.simulators.scanner:SimScanner",
                "serial": "kiosk.hardware.serial_scanner:SerialScanner"},
    "camera": {"sim": "kiosk.hardware.simulators.camera:SimCamera",
               "opencv": "kiosk.hardware.camera_opencv:OpenCvCamera"},
    "speaker": {"sim": "kiosk.hardware.simulators.speaker:SimSpeaker",
                "sdl": "kiosk.hardware.speaker_sdl:SdlSpeaker"},
}

INTERFACES: dict[str, type[Device]] = {
    "id_card": IdCardReader, "pcsc": ChipReader, "receipt_printer": ReceiptPrinter,
    "a4_printer": A4Printer, "scanner": Scanner, "camera": Camera, "speaker": Speaker,
}

# English msgids (translated in locale/zh_CN/LC_MESSAGES/hardware.po) for the technician's
# health view and the "out of service" notices; the status model itself stays language-free.
DEVICE_TITLES: dict[str, str] = {
    "id_card": "ID card reader", "pcsc": "Passport and permit reader", "receipt_printer": "Receipt printer",
    "a4_printer": "A4 printer", "scanner": "QR code scanner", "camera": "Camera", "speaker": "Speaker",
    "touchscreen": "Touch screen",  # not a configured device: the touch supervisor reports it
}
_STATE_TEXT = {
    DeviceState.ONLINE: "Ready", DeviceState.OFFLINE: "Not responding",
    DeviceState.HARDWARE_ERROR: "Hardware fault", DeviceState.USER_ERROR: "Needs attention",
    DeviceState.BUSY: "Busy", DeviceState.NO_DEVICE: "Not installed",
}
_PROBLEM_TEXT = {"cover_open": "Cover open", "jam": "Paper jam", "paper:low": "Paper low", "paper:out": "Paper out"}


def describe_status(name: str, st: DeviceStatus, lang: str = "zh_CN") -> str:
    """One line for people: the device's title, its state and any problem, in ``lang``."""
    from kiosk.i18n import translate

    parts = [translate(_STATE_TEXT[st.state], lang)]
    problems = sorted(st.conditions) + [f"{k}:{v.value}" for k, v in sorted(st.supplies.items())]
    parts += [translate(_PROBLEM_TEXT[p], lang) for p in problems if p in _PROBLEM_TEXT]
    colon, sep = ("：", "，") if lang.startswith("zh") else (": ", ", ")
    return f"{translate(DEVICE_TITLES.get(name, name), lang)}{colon}{sep.join(parts)}"


@dataclass(frozen=True)
class Devices:
    """The terminal's devices; a disabled device is None."""

    id_card: IdCardReader | None = None
    pcsc: ChipReader | None = None
    receipt_printer: ReceiptPrinter | None = None
    a4_printer: A4Printer | None = None
    scanner: Scanner | None = None
    camera: Camera | None = None
    speaker: Speaker | None = None

    def all(self) -> Iterator[tuple[str, Device]]:
        """Yield (config name, device) for every enabled device, in DEVICE_NAMES order."""
        for f in fields(self):
            device = getattr(self, f.name)
            if device is not None:
                yield f.name, device

    def get(self, name: str) -> Device | None:
        """The device configured as ``name`` (None when disabled). Raises KeyError for an unknown name."""
        if name not in DEVICE_NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def statuses(self) -> dict[str, DeviceStatus]:
        """Status of every enabled device; a driver that breaks its never-raise promise reads as hardware_error."""
        out: dict[str, DeviceStatus] = {}
        for name, device in self.all():
            try:
                out[name] = device.status()
            except Exception as exc:  # status() must not take the health check down with it
                out[name] = status(DeviceState.HARDWARE_ERROR, detail=f"status failed: {type(exc).__name__}")
        return out

    def open(self) -> None:
        """Open every device; if one fails, close those already opened and re-raise. Raises NoDevice, DeviceOffline."""
        opened: list[Device] = []
        try:
            for _, device in self.all():
                device.open()
                opened.append(device)
        except BaseException:
            for device in reversed(opened):
                _close_quietly(device)
            raise

    def close(self) -> None:
        """Close every device; never raises."""
        for _, device in self.all():
            _close_quietly(device)


def _close_quietly(device: Device) -> None:
    try:
        device.close()
    except Exception:  # closing is best effort: one stuck device must not keep others open
        pass


def register_driver(device: str, driver: str, target: str) -> None:
    """Register ``"module:Class"`` as ``driver`` for ``device`` (plugins, tests). Raises KeyError, ValueError."""
    if device not in DRIVERS:
        raise KeyError(device)
    if ":" not in target:
        raise ValueError("target must be 'module:Class'")
    DRIVERS[device][driver] = target


def load_driver_class(device: str, driver: str) -> type[Device]:
    """Import the class registered as ``driver`` for ``device``. Raises ConfigError, NoDevice."""
    key = f"devices.{device}.driver"
    choices = DRIVERS.get(device, {})
    if driver not in choices:
        known = ", ".join(sorted(choices)) or "none"
        raise ConfigError(f"{key}: unknown driver {driver!r}; known: {known}", key=key, value=driver)
    module_name, _, class_name = choices[driver].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NoDevice(f"{key} = {driver!r}: its driver module {module_name} cannot be loaded ({exc})",
                       device=device) from exc
    cls = getattr(module, class_name, None)
    if not isinstance(cls, type) or not issubclass(cls, INTERFACES[device]):
        raise NoDevice(f"{key} = {driver!r}: {choices[driver]} is not a {INTERFACES[device].__name__} driver",
                       device=device)
    return cls


def build_device(cfg: KioskConfig, name: str) -> Device | None:
    """Construct the one device configured as ``name`` (None when disabled). Raises ConfigError, NoDevice."""
    dev = cfg.device(name)
    if not dev.enabled:
        return None
    key = f"devices.{name}.driver"
    if dev.driver == "sim":
        if cfg.profile == "production":  # config.py refuses this too; a hand-built config must not slip by
            raise ConfigError(f"{key}: the production profile never uses a simulator", key=key, value="sim")
        options: dict[str, Any] = dict(dev.options)
        if name == "a4_printer" and not options.get("output_dir"):
            options["output_dir"] = str(cfg.paths.root() / "paper_tray")
        if name == "speaker" and not options.get("output_dir"):
            options["output_dir"] = str(cfg.paths.root() / "speaker")
        cls = load_driver_class(name, "sim")
        return cls(name, options, dict(dev.faults))  # type: ignore[call-arg]
    if dev.faults:
        where = f"devices.{name}.faults"
        raise ConfigError(f"{where}: only simulators take faults, not driver {dev.driver!r}",
                          key=where, value=dict(dev.faults))
    cls = load_driver_class(name, dev.driver)
    try:
        return cls(name, {**dev.options, "driver": dev.driver})  # type: ignore[call-arg]
    except KioskError:
        raise
    except Exception as exc:  # a driver failing in its constructor means the device is not usable
        raise NoDevice(f"{key} = {dev.driver!r}: the driver could not be set up ({type(exc).__name__}: {exc})",
                       device=name) from exc


def build_devices(cfg: KioskConfig) -> Devices:
    """Construct every configured device (not opened: call ``Devices.open()``). Raises ConfigError, NoDevice."""
    built: dict[str, Device | None] = {}
    try:
        for name in DEVICE_NAMES:
            built[name] = build_device(cfg, name)
    except BaseException:
        for device in built.values():
            if device is not None:
                _close_quietly(device)
        raise
    return Devices(**built)  # type: ignore[arg-type]
