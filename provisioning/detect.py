"""What `kiosk-provision detect` finds: USB devices, serial ports, PC/SC readers and CUPS queues.

Each one seen is matched against the table of supported models (provisioning.models), and
the matches become a suggested [devices] section. Used by the CLI's ``detect`` and by
``init --detect`` (provisioning.init_config).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Sequence

from provisioning.models import Finding, recognise, suggest_devices

# What to do when the service behind a bus is not running (a systemd machine, else by hand as root).
PCSCD_HINT = ("start pcscd: `systemctl start pcscd.socket` (or `pcscd --foreground &` as root without systemd), "
              "then run detect again")
CUPSD_HINT = ("start CUPS: `systemctl start cups` (or `cupsd` as root without systemd), then run detect again")


@dataclass(frozen=True)
class FoundDevice:
    """One device seen on this machine (``usb_id``: the USB device behind a serial port, if any)."""

    bus: str  # usb, serial, pcsc, cups
    address: str
    description: str
    usb_id: str = ""


def _usb() -> list[FoundDevice]:
    try:
        import usb.core

        found = usb.core.find(find_all=True) or []
        return [FoundDevice("usb", f"{d.idVendor:04x}:{d.idProduct:04x}",
                            f"bus {d.bus} address {d.address}") for d in found]
    except Exception as exc:  # no libusb backend or no permission: say so, don't crash
        return [FoundDevice("usb", "-", f"USB not readable: {exc}")]


def _serial() -> list[FoundDevice]:
    from serial.tools import list_ports

    return [FoundDevice("serial", p.device, p.description or "",
                        f"{p.vid:04x}:{p.pid:04x}" if p.vid is not None and p.pid is not None else "")
            for p in list_ports.comports()]


def _pcsc() -> list[FoundDevice]:
    try:
        from smartcard.System import readers

        return [FoundDevice("pcsc", str(r), "PC/SC reader") for r in readers()]
    except Exception as exc:  # pcscd not running is a finding, not a failure
        return [FoundDevice("pcsc", "-", f"PC/SC not available ({type(exc).__name__}): {PCSCD_HINT}")]


def _cups() -> list[FoundDevice]:
    if not shutil.which("lpstat"):
        return [FoundDevice("cups", "-", "CUPS client (lpstat) not installed")]
    proc = subprocess.run(["lpstat", "-v"], capture_output=True, text=True, timeout=10)
    rows = []
    for line in proc.stdout.splitlines():
        # "device for QUEUE: URI"
        if line.startswith("device for ") and ":" in line:
            queue, uri = line[len("device for "):].split(":", 1)
            rows.append(FoundDevice("cups", queue.strip(), uri.strip()))
    if proc.returncode != 0 and not rows:
        said = (proc.stderr.strip() or "no CUPS scheduler")[:120].rstrip(".")
        rows.append(FoundDevice("cups", "-", f"{said}: {CUPSD_HINT}"))
    return rows


def detect() -> list[FoundDevice]:
    """Every USB device, serial port, PC/SC reader and CUPS queue this machine shows."""
    return _usb() + _serial() + _pcsc() + _cups()


def detect_findings() -> list[Finding]:
    """What `detect` finds, each matched against the supported models."""
    return [recognise(f.bus, f.address, f.description, f.usb_id) for f in detect()]


def suggested_toml(findings: Sequence[Finding]) -> str:
    """The [devices] section for ``findings`` as TOML, with a comment per device."""
    import tomli_w

    suggestion = suggest_devices(findings)
    out = ["# Suggested by kiosk-provision detect; paste into the config or use `init --detect`."]
    for name, table in suggestion.devices.items():
        out.append("")
        out.append(f"# {name}: {suggestion.notes.get(name, '')}")
        out.append(tomli_w.dumps({"devices": {name: dict(table)}}).strip())
    return "\n".join(out) + "\n"
