"""`kiosk-provision`: the technician's command for setting up a terminal on site.

This first version lists the hardware a technician has to wire into the config; enrolment,
self-test and installation come with the operations issue.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from typing import Sequence


@dataclass(frozen=True)
class FoundDevice:
    """One device seen on this machine."""

    bus: str  # usb, serial, pcsc, cups
    address: str
    description: str


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

    return [FoundDevice("serial", p.device, p.description or "") for p in list_ports.comports()]


def _pcsc() -> list[FoundDevice]:
    try:
        from smartcard.System import readers

        return [FoundDevice("pcsc", str(r), "PC/SC reader") for r in readers()]
    except Exception as exc:  # pcscd not running is a finding, not a failure
        return [FoundDevice("pcsc", "-", f"PC/SC not available: {exc}")]


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
        rows.append(FoundDevice("cups", "-", (proc.stderr.strip() or "no CUPS scheduler")[:200]))
    return rows


def detect() -> list[FoundDevice]:
    """Every USB device, serial port, PC/SC reader and CUPS queue this machine shows."""
    return _usb() + _serial() + _pcsc() + _cups()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of kiosk-provision."""
    p = argparse.ArgumentParser(prog="kiosk-provision", description="provision a kiosk terminal")
    sub = p.add_subparsers(dest="command", required=True)
    d = sub.add_parser("detect", help="list USB devices, serial ports, PC/SC readers and CUPS queues")
    d.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the kiosk-provision console script."""
    args = build_parser().parse_args(argv)
    if args.command == "detect":
        found = detect()
        if args.json:
            print(json.dumps([asdict(f) for f in found], ensure_ascii=False, indent=2))
        else:
            for f in found:
                print(f"{f.bus:7} {f.address:24} {f.description}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
