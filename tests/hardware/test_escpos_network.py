"""The virtual ESC/POS network printer: what it stores, decodes and answers, on a real socket."""
from __future__ import annotations

import socket
import time
from typing import Iterator

import pytest

from kiosk.hardware.simulators.escpos_network import VirtualEscposPrinter
from print_templates.escpos_decode import decode
from print_templates.qr import qr_text
from print_templates.receipts import render_receipt

DATA = {"item_name_zh": "无犯罪记录证明开具", "item_name_en": "No criminal record certificate",
        "terminal_id": "JN-TEST-0007", "time": "2026-11-29 12:00:00", "reference": "P01-0001",
        "lines": [["份数", "1"]], "verification_code": "Q8W2E4R6", "qr_payload": '{"d":"DOC-9"}',
        "signature": "c2ln"}


@pytest.fixture
def printer() -> Iterator[VirtualEscposPrinter]:
    with VirtualEscposPrinter() as p:
        yield p


def _ask(port: int, n: int, timeout: float = 0.5) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"\x10\x04" + bytes((n,)))
        try:
            return s.recv(16)
        except socket.timeout:
            return b""


def _wait_jobs(printer: VirtualEscposPrinter, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(printer.jobs) < count and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize("state,expected", [
    ({}, {1: 0x12, 2: 0x12, 4: 0x12}),
    ({"paper": "near_end"}, {1: 0x12, 2: 0x12, 4: 0x1E}),
    ({"paper": "out"}, {1: 0x1A, 2: 0x32, 4: 0x7E}),
    ({"cover_open": True}, {1: 0x1A, 2: 0x16, 4: 0x12}),
    ({"error": True}, {1: 0x1A, 2: 0x52, 4: 0x12}),
])
def test_answers_dle_eot_per_state(printer: VirtualEscposPrinter, state: dict, expected: dict) -> None:
    printer.set_state(**state)
    assert {n: _ask(printer.port, n)[0] for n in expected} == expected


def test_offline_printer_stays_silent_and_takes_nothing_in(printer: VirtualEscposPrinter) -> None:
    printer.set_state(online=False)
    assert _ask(printer.port, 1) == b""
    with socket.create_connection(("127.0.0.1", printer.port)) as s:
        s.sendall(b"hello\n")
    time.sleep(0.3)
    assert b"hello" not in printer.received


def test_stores_and_decodes_a_receipt_sent_in_small_pieces(printer: VirtualEscposPrinter) -> None:
    data = render_receipt("transaction", DATA, profile="58mm:raster")
    with socket.create_connection(("127.0.0.1", printer.port)) as s:
        for i in range(0, len(data), 7):
            s.sendall(data[i:i + 7])
    _wait_jobs(printer, 1)
    assert printer.jobs == [data]
    out = decode(printer.printed)
    assert out.cuts == 1
    assert len(out.images) >= 6
    assert "No criminal record" in out.text
    assert out.qr_codes == (qr_text(DATA["qr_payload"], DATA["signature"]),)


def test_status_queries_inside_a_stream_are_answered_and_kept_out_of_the_job(printer: VirtualEscposPrinter) -> None:
    data = render_receipt("transaction", DATA)
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as s:
        s.sendall(b"\x10\x04\x04" + data + b"\x10\x04\x01")
        assert s.recv(1) + s.recv(1) == b"\x12\x12"
    _wait_jobs(printer, 1)
    assert printer.jobs == [data]
    assert printer.status_queries == [4, 1]
    assert "核验码：Q8W2E4R6" in decode(printer.printed).lines


def test_after_bytes_changes_state_mid_job(printer: VirtualEscposPrinter) -> None:
    printer.after_bytes(100, paper="out")
    data = render_receipt("transaction", DATA)
    with socket.create_connection(("127.0.0.1", printer.port), timeout=2) as s:
        s.sendall(data[:50] + b"\x10\x04\x04")
        assert s.recv(1) == b"\x12"
        s.sendall(data[50:] + b"\x10\x04\x04")
        assert s.recv(1) == b"\x7e"
    assert printer.state.paper == "out"


def test_refused_connection_once_stopped() -> None:
    printer = VirtualEscposPrinter().start()
    port = printer.port
    printer.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
