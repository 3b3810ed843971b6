"""Serial-mode scanner driver over a real pseudo-terminal: the kernel's tty layer between
the test (the scanner's end) and pyserial (the kiosk's end), as with a CDC-ACM port."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest

from kiosk.config import from_dict
from kiosk.errors import ConfigError, DeviceOffline, DeviceOverrun, DeviceProtocolError, DeviceTimeout, NoDevice
from kiosk.hardware.base import DeviceState
from kiosk.hardware.factory import build_devices
from kiosk.hardware.icao.mrz import parse_mrz
from kiosk.hardware.serial_scanner import SerialScanner
from kiosk.hardware.simulators.vicc import DemoDocument


class Pty:
    """A pseudo-terminal: ``write`` is the scanner sending, ``link`` the port path the kiosk opens."""

    def __init__(self, tmp_path: Path) -> None:
        self.master, slave = os.openpty()
        self.slave_name = os.ttyname(slave)
        os.close(slave)  # pyserial opens it by name; the master keeps the pair alive
        self.link = tmp_path / "ttyACM-scanner"  # as /dev/serial/by-id/... links to /dev/ttyACM0
        self.link.symlink_to(self.slave_name)

    def write(self, data: bytes, *, pause: float = 0.0) -> None:
        if not pause:
            os.write(self.master, data)
            return
        for byte in data:  # a slow engine: one byte at a time
            os.write(self.master, bytes([byte]))
            time.sleep(pause)

    def unplug(self) -> None:
        self.link.unlink()
        os.close(self.master)
        self.master = -1

    def close(self) -> None:
        if self.master >= 0:
            os.close(self.master)


@pytest.fixture
def pty(tmp_path: Path) -> Iterator[Pty]:
    p = Pty(tmp_path)
    yield p
    p.close()


@pytest.fixture
def scanner(pty: Pty) -> Iterator[SerialScanner]:
    s = SerialScanner("scanner", {"port": str(pty.link), "gap_s": 0.1, "stale_s": 0.5})
    s.open()
    yield s
    s.close()


def later(delay: float, fn, *args, **kwargs) -> threading.Thread:
    t = threading.Thread(target=lambda: (time.sleep(delay), fn(*args, **kwargs)), daemon=True)
    t.start()
    return t


def test_a_qr_code_ended_by_cr(pty: Pty, scanner: SerialScanner) -> None:
    later(0.1, pty.write, b"KV:3701-2026-000123:9f2c\r")
    assert scanner.scan(timeout=5) == "KV:3701-2026-000123:9f2c"
    assert scanner.status().state is DeviceState.ONLINE


def test_an_mrz_arrives_as_lines_and_parses(pty: Pty, scanner: SerialScanner) -> None:
    mrz = DemoDocument("P", "GBR", "SMITH", "JOHN", "533401987", "GBR", "800101", "M", "310101").mrz()
    lines = [mrz[:44], mrz[44:]]
    # A passport reader sends line, CR LF, line, CR LF, slowly enough to cross several reads.
    later(0.1, pty.write, ("\r\n".join(lines) + "\r\n").encode(), pause=0.001)
    text = scanner.scan(timeout=5)
    assert text.split("\n") == lines
    assert parse_mrz(text).access_data() == ("533401987", "800101", "310101")


def test_nothing_scanned_is_a_timeout(scanner: SerialScanner) -> None:
    started = time.monotonic()
    with pytest.raises(DeviceTimeout):
        scanner.scan(timeout=0.3)
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("garbage", [b"\xff\xfe\x80abc\r", b"\x00\x1b\x07\r\n", b"A" * 5000 + b"\r"])
def test_garbage_is_a_protocol_error_and_the_next_code_reads_clean(pty: Pty, scanner: SerialScanner,
                                                                   garbage: bytes) -> None:
    pty.write(garbage)
    with pytest.raises(DeviceProtocolError):
        scanner.scan(timeout=5)
    later(0.1, pty.write, b"NEXT-CODE\r")
    assert scanner.scan(timeout=5) == "NEXT-CODE"


def test_a_scanner_that_never_stops_sending_is_cut_off(pty: Pty, scanner: SerialScanner) -> None:
    from bounded import within

    stop = threading.Event()

    def flood() -> None:  # a jammed trigger: the same code over and over, without a pause
        os.set_blocking(pty.master, False)
        while not stop.is_set():
            try:
                os.write(pty.master, b"ABC123\r" * 512)
            except BlockingIOError:
                time.sleep(0.001)
        os.set_blocking(pty.master, True)

    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    try:
        with pytest.raises(DeviceOverrun) as err:
            within(30, scanner.scan, 2)
        assert err.value.device == "scanner"
    finally:
        stop.set()
        flooder.join(5)
    time.sleep(0.3)
    scanner.close()  # opening again drops what the flood left in the line
    later(0.2, pty.write, b"NEXT-CODE\r")
    assert scanner.scan(timeout=5) == "NEXT-CODE"


def test_a_gbk_engine_with_the_encoding_option(pty: Pty) -> None:
    s = SerialScanner("scanner", {"port": str(pty.link), "gap_s": 0.1, "encoding": "gb18030"})
    try:
        later(0.1, pty.write, "鲁A12345\r".encode("gb18030"))
        assert s.scan(timeout=5) == "鲁A12345"
    finally:
        s.close()


def test_a_code_scanned_while_nobody_asked_is_not_handed_to_the_next_resident(pty: Pty,
                                                                             scanner: SerialScanner) -> None:
    pty.write(b"PREVIOUS-RESIDENT\r")
    time.sleep(0.8)  # longer than stale_s with no scan waiting
    with pytest.raises(DeviceTimeout):
        scanner.scan(timeout=0.3)
    # Asked again right away (the identify screen polls): a fresh code is taken.
    later(0.05, pty.write, b"THIS-RESIDENT\r")
    assert scanner.scan(timeout=5) == "THIS-RESIDENT"


def test_unplugged_then_back(tmp_path: Path, pty: Pty, scanner: SerialScanner) -> None:
    pty.unplug()
    assert scanner.status().state is DeviceState.NO_DEVICE
    with pytest.raises((NoDevice, DeviceOffline)):
        scanner.scan(timeout=0.3)
    # Plugged in again (a new tty behind the same by-id link).
    again = Pty(tmp_path)
    try:
        assert scanner.status().state is DeviceState.ONLINE
        later(0.1, again.write, b"AFTER-REPLUG\r")
        assert scanner.scan(timeout=5) == "AFTER-REPLUG"
    finally:
        again.close()


def test_a_status_poll_during_a_scan_does_not_wait_for_it(pty: Pty, scanner: SerialScanner) -> None:
    t = threading.Thread(target=lambda: pytest.raises(DeviceTimeout, scanner.scan, timeout=3), daemon=True)
    t.start()
    time.sleep(0.2)
    assert scanner.status().state is DeviceState.ONLINE
    assert t.is_alive()  # answered while the scan still holds the port, not after it
    t.join()


def test_config_picks_the_serial_driver_and_checks_its_options(pty: Pty) -> None:
    cfg = from_dict({"devices": {"scanner": {"driver": "serial", "options": {"port": str(pty.link)}}}})
    devices = build_devices(cfg)
    try:
        assert isinstance(devices.get("scanner"), SerialScanner)
    finally:
        devices.close()
    with pytest.raises(ConfigError) as err:
        SerialScanner("scanner", {})
    assert err.value.key == "devices.scanner.options.port"
    with pytest.raises(ConfigError):
        SerialScanner("scanner", {"port": str(pty.link), "encoding": "no-such-codec"})
    with pytest.raises(NoDevice):
        SerialScanner("scanner", {"port": "/dev/ttyNOPE9"}).open()


def test_cli_reads_a_code_and_reports_an_mrz_by_kind_only(pty: Pty, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from kiosk.cli import main

    later(0.3, pty.write, b"KV:3701-2026-000123:9f2c\r")
    assert main(["hw", "scanner", "read", "--port", str(pty.link), "--timeout", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"length": 24, "kind": "code", "text": "KV:3701-2026-000123:9f2c"}
    mrz = DemoDocument("P", "GBR", "SMITH", "JOHN", "533401987", "GBR", "800101", "M", "310101").mrz()
    later(0.3, pty.write, (mrz[:44] + "\r" + mrz[44:] + "\r").encode())
    assert main(["hw", "scanner", "read", "--port", str(pty.link), "--timeout", "5", "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == {"length": 89, "kind": "mrz", "document_code": "P", "issuing_state": "GBR",
                               "checks_ok": True}
    assert "SMITH" not in out and "533401987" not in out
    assert main(["hw", "scanner", "read", "--port", str(pty.link), "--timeout", "0.3", "--json"]) != 0
    assert json.loads(capsys.readouterr().out)["error"]["code"] == "device_timeout"
