"""Every device driver opens its device again after it vanished and came back, without a restart.

Each test plugs the device in, pulls it (the driver reports it gone), plugs it back and
shows the same driver object working again: status online and a real operation through
it. Real local parts where they run here: pseudo-terminals behind a /dev/serial/by-id style
link for the serial devices, the virtual ESC/POS printer on a real socket, a private cupsd
stopped and started again by PID, OpenCV reading a real image sequence. The chip reader's
return (pcscd restarted under a live reader) is tests/hardware/test_pcsc_reader.py's
``test_reader_survives_a_pcscd_restart`` and the QR scanner's is
tests/hardware/test_serial_scanner.py's ``test_unplugged_then_back``; the touch screen's is
tests/services/test_touch_supervisor.py.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from cups_fixtures import CupsServer, cupsd  # noqa: F401  (fixture)
from kiosk.errors import DeviceOffline, NoDevice
from kiosk.hardware.base import DeviceState
from kiosk.hardware.camera_opencv import OpenCvCamera
from kiosk.hardware.cups_printer import CupsA4Printer
from kiosk.hardware.escpos_printer import EscposReceiptPrinter
from kiosk.hardware.idcard_sam import SamIdCardReader
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.hardware.simulators.escpos_network import PrinterState, VirtualEscposPrinter
from kiosk.hardware.simulators.sam_device import EP_IN, EP_OUT, PtySam, SamUsbBackend, VirtualSam
from kiosk.hardware.speaker import Audio
from kiosk.hardware.speaker_sdl import SdlSpeaker

FAST_SAM = {"poll_interval": 0.01, "debounce": 2, "command_timeout": 0.3}
GONE = (DeviceState.NO_DEVICE, DeviceState.OFFLINE)


def _wait_jobs(printer: VirtualEscposPrinter, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(printer.jobs) < count and time.monotonic() < deadline:
        time.sleep(0.01)


# --- ID card reader (GA 467 SAM) on a serial port ------------------------------------------
def test_id_card_reader_comes_back_on_its_serial_link(tmp_path: Path) -> None:
    link = tmp_path / "usb-Synjones_SS628-if00-port0"  # as /dev/serial/by-id/... names the reader
    first = PtySam(VirtualSam()).start()
    link.symlink_to(first.port)
    reader = SamIdCardReader("id_card", {"port": str(link), **FAST_SAM})
    second: PtySam | None = None
    try:
        reader.open()
        assert reader.status().state is DeviceState.ONLINE
        first.stop()  # unplugged: the tty and its by-id link go
        link.unlink()
        assert reader.status().state in GONE
        assert reader.status().state is DeviceState.NO_DEVICE
        second = PtySam(VirtualSam()).start()  # plugged back: a new tty behind the same link
        link.symlink_to(second.port)
        assert reader.status().state is DeviceState.ONLINE
        assert reader.read_card(timeout=2).id_number == DEMO_CARDS[0].id_number
    finally:
        reader.close()
        if second is not None:
            second.stop()


def test_id_card_reader_comes_back_on_usb() -> None:
    backend = SamUsbBackend(VirtualSam())  # the pyusb backend the SAM tests use: no USB bus here
    reader = SamIdCardReader("id_card", {"vendor_id": "0400", "product_id": "C35A", "backend": backend, **FAST_SAM})
    try:
        reader.open()
        assert reader.status().state is DeviceState.ONLINE
        backend.unplugged = True
        assert reader.status().state in GONE
        assert reader.status().state is DeviceState.NO_DEVICE
        backend.unplugged = False
        assert reader.status().state is DeviceState.ONLINE
        assert reader.read_card(timeout=2).id_number == DEMO_CARDS[0].id_number
    finally:
        reader.close()


# --- receipt printer: network, serial, usb, file ---------------------------------------------
class _EscposAnswers:
    """An ESC/POS printer's side of a USB link: keeps what it is sent, answers DLE EOT n."""

    def __init__(self) -> None:
        self.state = PrinterState()
        self.received = bytearray()

    def receive(self, data: bytes) -> bytes:
        self.received += data
        return b"".join(self.state.answer(data[i + 2]) for i in range(len(data) - 2) if data[i:i + 2] == b"\x10\x04")


def test_usb_receipt_printer_comes_back_after_it_was_unplugged() -> None:
    answers = _EscposAnswers()
    backend = SamUsbBackend(answers, vendor_id=0x0416, product_id=0x5011)  # its descriptors, an ESC/POS printer's answers
    printer = EscposReceiptPrinter("receipt_printer", {"driver": "usb", "vendor_id": 0x0416, "product_id": 0x5011,
                                                       "in_ep": EP_IN, "out_ep": EP_OUT, "backend": backend,
                                                       "status_timeout_s": 0.3})
    try:
        assert printer.status().state is DeviceState.ONLINE
        backend.unplugged = True
        assert printer.status().state in GONE
        assert printer.status().state is DeviceState.NO_DEVICE
        backend.unplugged = False
        assert printer.status().state is DeviceState.ONLINE
        printer.print_bytes(b"after the replug\n")
        assert b"after the replug" in answers.received
    finally:
        printer.close()


# --- receipt printer: network, serial, file ------------------------------------------------
def test_network_receipt_printer_comes_back_after_a_power_cycle() -> None:
    first = VirtualEscposPrinter().start()
    port = first.port
    printer = EscposReceiptPrinter("receipt_printer", {"driver": "network", "host": "127.0.0.1", "port": port,
                                                       "status_timeout_s": 0.5})
    second: VirtualEscposPrinter | None = None
    try:
        assert printer.status().state is DeviceState.ONLINE
        first.stop()  # switched off
        assert printer.status().state is DeviceState.OFFLINE
        with pytest.raises(DeviceOffline):
            printer.print_bytes(b"lost\n")
        second = VirtualEscposPrinter(port=port).start()  # on again, same address
        assert printer.status().state is DeviceState.ONLINE
        printer.print_bytes(b"after the power cycle\n")
        _wait_jobs(second, 1)
        assert b"after the power cycle" in second.received
    finally:
        printer.close()
        first.stop()
        if second is not None:
            second.stop()


def test_serial_receipt_printer_reopens_when_plugged_back_even_before_a_status_poll(tmp_path: Path) -> None:
    first = VirtualEscposPrinter().start()
    link = tmp_path / "usb-printer-if00-port0"
    link.symlink_to(first.attach_pty())
    printer = EscposReceiptPrinter("receipt_printer", {"driver": "serial", "device": str(link),
                                                       "status_timeout_s": 0.5})
    second = VirtualEscposPrinter().start()
    try:
        printer.open()
        assert printer.status().state is DeviceState.ONLINE
        first.stop()  # unplugged...
        link.unlink()
        link.symlink_to(second.attach_pty())  # ...and plugged back (a new tty) while nobody asked
        # The first job after the return goes out on a fresh descriptor, not the dead one.
        printer.print_bytes(b"first job after the replug\n")
        _wait_jobs(second, 1)
        assert b"first job after the replug" in second.received
        assert printer.status().state is DeviceState.ONLINE
        second.stop()  # and a plain unplug reads as gone
        link.unlink()
        assert printer.status().state in GONE
        assert printer.status().state is DeviceState.NO_DEVICE
    finally:
        printer.close()
        first.stop()
        second.stop()


def test_file_receipt_printer_comes_back_when_its_device_folder_does(tmp_path: Path) -> None:
    folder = tmp_path / "usb"  # as /dev/usb/ holds lp0 while the printer is plugged in
    folder.mkdir()
    printer = EscposReceiptPrinter("receipt_printer", {"driver": "file", "path": str(folder / "lp0")})
    assert printer.status().state is DeviceState.ONLINE
    folder.rename(tmp_path / "away")
    assert printer.status().state is DeviceState.NO_DEVICE
    with pytest.raises(DeviceOffline, match="no_device"):
        printer.print_bytes(b"lost\n")
    folder.mkdir()
    assert printer.status().state is DeviceState.ONLINE
    printer.print_bytes(b"back\n")
    assert (folder / "lp0").read_bytes() == b"back\n"


# --- A4 printer: the CUPS it prints through restarts -----------------------------------------
def _stop_cupsd(server: CupsServer) -> None:
    os.kill(server.proc.pid, signal.SIGTERM)
    server.proc.wait(timeout=20)


def _start_cupsd_again(server: CupsServer) -> None:
    """The same cupsd (folder, socket, queues) started again; the fixture stops it by its new PID."""
    log = (server.root / "log" / "stdout").open("ab")
    server.proc = subprocess.Popen(server.proc.args, stdout=log, stderr=subprocess.STDOUT)


def test_a4_printer_comes_back_after_cups_restarts(cupsd: CupsServer, tmp_path: Path) -> None:  # noqa: F811
    from reportlab.pdfgen import canvas

    queue = cupsd.fake_queue("ok")
    printer = CupsA4Printer("a4_printer", {"queue": queue, "server": cupsd.server})
    printer.open()
    assert printer.status().state is DeviceState.ONLINE
    _stop_cupsd(cupsd)
    gone = printer.status()
    assert gone.state is DeviceState.OFFLINE and "CUPS" in gone.detail
    _start_cupsd_again(cupsd)
    deadline = time.monotonic() + 20
    while printer.status().state is not DeviceState.ONLINE:  # cupsd takes a moment to listen again
        assert time.monotonic() < deadline, "the A4 printer never came back after cupsd did"
        time.sleep(0.2)
    pdf = tmp_path / "page.pdf"
    page = canvas.Canvas(str(pdf))
    page.drawString(72, 720, "after the restart")
    page.save()
    assert printer.print_pdf(pdf, "after-restart", timeout=60)


# --- camera ---------------------------------------------------------------------------------
@pytest.fixture
def camera_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "video0"  # stands for the node a USB camera brings and takes away
    folder.mkdir()
    for i, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        Image.new("RGB", (64, 48), colour).save(folder / f"frame_{i:03d}.png")
    return folder


def test_camera_comes_back_after_it_was_unplugged(camera_folder: Path, tmp_path: Path) -> None:
    camera = OpenCvCamera("camera", {"device": str(camera_folder / "frame_%03d.png"), "warmup": 0})
    try:
        assert camera.status().state is DeviceState.ONLINE
        assert Image.open(io.BytesIO(camera.capture(timeout=2))).size == (64, 48)
        camera_folder.rename(tmp_path / "unplugged")
        assert camera.status().state is DeviceState.NO_DEVICE
        assert camera._cap is None  # the old capture is released, not kept for a device that is gone
        (tmp_path / "unplugged").rename(camera_folder)
        assert camera.status().state is DeviceState.ONLINE
        assert Image.open(io.BytesIO(camera.capture(timeout=2))).size == (64, 48)
    finally:
        camera.close()


# --- speaker --------------------------------------------------------------------------------
def test_speaker_output_that_went_away_is_opened_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    # SDL's disk output into a pipe whose reader goes away: the next write fails and SDL
    # reports the output stopped, as it does for a USB speaker pulled out.
    pipe = tmp_path / "speaker.fifo"
    os.mkfifo(pipe)
    reader = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)  # there, so SDL's open for writing does not block
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(pipe))
    speaker = SdlSpeaker("speaker", {})
    tone = Audio((np.sin(np.arange(2205) / 5) * 8000).astype("<i2").tobytes(), 22050)
    try:
        speaker.open()
        assert speaker.status().state in (DeviceState.ONLINE, DeviceState.BUSY)
        os.close(reader)  # unplugged: the next write fails...
        reader = -1
        pipe.unlink()
        pipe.mkdir()  # ...and opening the output again fails too, until it is back
        deadline = time.monotonic() + 10
        while speaker.status().state is not DeviceState.OFFLINE:
            assert time.monotonic() < deadline, "SDL never reported the output stopped"
            time.sleep(0.05)
        out = tmp_path / "speaker.raw"
        monkeypatch.setenv("SDL_DISKAUDIOFILE", str(out))  # plugged back in
        assert speaker.status().state in (DeviceState.ONLINE, DeviceState.BUSY)
        assert speaker.play(tone, label="tone")
        deadline = time.monotonic() + 10
        while not (out.exists() and out.stat().st_size > 0):
            assert time.monotonic() < deadline, "nothing reached the output after it came back"
            time.sleep(0.05)
    finally:
        speaker.close()
        if reader >= 0:
            os.close(reader)


def test_speaker_absent_at_start_is_used_once_plugged_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    nowhere = tmp_path / "not-yet"
    nowhere.mkdir()  # SDL's disk output cannot open a folder: no sound card yet
    monkeypatch.setenv("SDL_AUDIODRIVER", "disk")
    monkeypatch.setenv("SDL_DISKAUDIOFILE", str(nowhere))
    speaker = SdlSpeaker("speaker", {})
    tone = Audio((np.sin(np.arange(2205) / 5) * 8000).astype("<i2").tobytes(), 22050)
    try:
        with pytest.raises(NoDevice):
            speaker.open()  # the runtime opens every device at start and carries on
        assert speaker.status().state is DeviceState.NO_DEVICE
        out = tmp_path / "speaker.raw"
        monkeypatch.setenv("SDL_DISKAUDIOFILE", str(out))  # plugged in
        assert speaker.status().state in (DeviceState.ONLINE, DeviceState.BUSY)
        assert speaker.play(tone, label="tone")
    finally:
        speaker.close()
    assert out.stat().st_size > 0


def test_camera_preview_stream_resumes_when_the_camera_comes_back(camera_folder: Path, tmp_path: Path) -> None:
    camera = OpenCvCamera("camera", {"device": str(camera_folder / "frame_%03d.png"), "warmup": 0, "fps": 20})
    try:
        camera.start_stream()
        first = camera.next_frame(-1, timeout=5)
        camera_folder.rename(tmp_path / "unplugged")
        assert camera.status().state is DeviceState.NO_DEVICE  # the health poll, while the face step previews
        (tmp_path / "unplugged").rename(camera_folder)
        assert camera.status().state is DeviceState.ONLINE
        later = camera.next_frame(first.seq + 3, timeout=10)  # the same stream, still running, frames again
        assert later.seq > first.seq + 3 and camera.streaming
    finally:
        camera.close()
