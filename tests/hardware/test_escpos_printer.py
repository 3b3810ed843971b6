"""The real ESC/POS driver against the virtual printer: status, jobs, mid-job failures, connectors, CLI."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import given, strategies as st

from kiosk.cli import main as kiosk_main
from kiosk.config import DEMO_TERMINAL_ID, from_dict
from kiosk.errors import ConfigError, CoverOpen, DeviceOffline, DeviceOverrun, PaperOut
from kiosk.hardware.base import DeviceState, SupplyState
from kiosk.hardware.escpos_printer import EscposReceiptPrinter, parse_printer_spec, status_from_answers
from kiosk.hardware.simulators.escpos_network import VirtualEscposPrinter
from print_templates.escpos_decode import decode
from print_templates.receipts import render_receipt

from bounded import within
from cups_fixtures import cupsd  # noqa: F401  (fixture)

DATA = {"item_name_zh": "户籍证明开具", "item_name_en": "Household certificate", "terminal_id": "JN-TEST-0007",
        "time": "2026-11-29 12:00:00", "reference": "H01-0001", "lines": [["份数", "1"]],
        "verification_code": "7K3F9Q2M", "qr_payload": '{"d":"DOC-1"}', "signature": "c2ln"}


@pytest.fixture
def virtual() -> Iterator[VirtualEscposPrinter]:
    with VirtualEscposPrinter() as p:
        yield p


def _driver(spec: str, **options: object) -> EscposReceiptPrinter:
    return EscposReceiptPrinter("receipt_printer", {"printer": spec, "status_timeout_s": 0.5, **options})


def _wait_jobs(printer: VirtualEscposPrinter, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(printer.jobs) < count and time.monotonic() < deadline:
        time.sleep(0.01)


# --- specs and options ---------------------------------------------------------------------------
@pytest.mark.parametrize("spec,expected", [
    ("network:10.0.0.5:9100", {"driver": "network", "host": "10.0.0.5", "port": 9100}),
    ("network:printer.local", {"driver": "network", "host": "printer.local", "port": 9100}),
    ("usb:0416:5011", {"driver": "usb", "vendor_id": 0x0416, "product_id": 0x5011}),
    ("serial:/dev/ttyS1", {"driver": "serial", "device": "/dev/ttyS1"}),
    ("cups:receipt", {"driver": "cups", "queue": "receipt"}),
    ("file:/dev/usb/lp0", {"driver": "file", "path": "/dev/usb/lp0"}),
])
def test_printer_specs_parse(spec: str, expected: dict) -> None:
    assert parse_printer_spec(spec) == expected


@pytest.mark.parametrize("spec", ["network:", "usb:xyz:1", "bluetooth:aa", "network:h:port", "serial"])
def test_bad_printer_specs_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_printer_spec(spec)


def test_unknown_option_names_its_config_key() -> None:
    with pytest.raises(ConfigError) as err:
        EscposReceiptPrinter("receipt_printer", {"driver": "network", "host": "h", "paper_widht": 80})
    assert err.value.key == "devices.receipt_printer.options.paper_widht"
    with pytest.raises(ConfigError) as err:
        EscposReceiptPrinter("receipt_printer", {"driver": "network"})
    assert err.value.key == "devices.receipt_printer.options.host"


def test_profile_comes_from_options() -> None:
    p = EscposReceiptPrinter("r", {"driver": "network", "host": "h", "profile": "58mm", "chinese_mode": "raster"})
    assert p.profile == "58mm:raster:native"


def test_factory_builds_the_driver_from_config(virtual: VirtualEscposPrinter) -> None:
    from kiosk.hardware.factory import build_devices

    cfg = from_dict({"devices": {"receipt_printer": {"driver": "network", "options": {
        "host": "127.0.0.1", "port": virtual.port, "profile": "58mm"}}}})
    printer = build_devices(cfg).receipt_printer
    assert isinstance(printer, EscposReceiptPrinter)
    assert printer.status().state == DeviceState.ONLINE


# --- status ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("state,device_state,paper,cover", [
    ({}, DeviceState.ONLINE, SupplyState.OK, False),
    ({"paper": "near_end"}, DeviceState.ONLINE, SupplyState.LOW, False),
    ({"paper": "out"}, DeviceState.ONLINE, SupplyState.OUT, False),
    ({"cover_open": True}, DeviceState.USER_ERROR, SupplyState.OK, True),
    ({"error": True}, DeviceState.HARDWARE_ERROR, SupplyState.OK, False),
    ({"online": False}, DeviceState.OFFLINE, SupplyState.UNKNOWN, False),
])
def test_status_from_dle_eot(virtual: VirtualEscposPrinter, state: dict, device_state: DeviceState,
                             paper: SupplyState, cover: bool) -> None:
    virtual.set_state(**state)
    st = _driver(virtual.spec).status()
    assert st.state == device_state
    assert st.supplies["paper"] == paper
    assert ("cover_open" in st.conditions) == cover


def test_no_answer_is_never_adequate_paper() -> None:
    st = status_from_answers(None, None, None)
    assert st.state == DeviceState.OFFLINE and st.supplies["paper"] == SupplyState.UNKNOWN
    assert not st.usable


def test_a_garbled_answer_is_a_hardware_error_not_a_status() -> None:
    st = status_from_answers(0xFF, 0x00, 0x12)
    assert st.state == DeviceState.HARDWARE_ERROR and st.supplies["paper"] == SupplyState.UNKNOWN


def test_nothing_listening_is_offline() -> None:
    stopped = VirtualEscposPrinter().start()
    spec = stopped.spec
    stopped.stop()
    st = _driver(spec).status()
    assert st.state == DeviceState.OFFLINE and st.supplies["paper"] == SupplyState.UNKNOWN
    with pytest.raises(DeviceOffline):
        _driver(spec).open()


# --- printing -----------------------------------------------------------------------------------------
def test_prints_a_receipt_and_asks_before_and_after(virtual: VirtualEscposPrinter) -> None:
    data = render_receipt("transaction", DATA)
    _driver(virtual.spec).print_bytes(data)
    _wait_jobs(virtual, 1)
    assert virtual.jobs == [data]
    assert virtual.status_queries == [1, 2, 4, 1, 2, 4]
    out = decode(virtual.printed)
    assert "户籍证明开具" in out.lines and out.cuts == 1


@pytest.mark.parametrize("state,error", [
    ({"paper": "out"}, PaperOut), ({"cover_open": True}, CoverOpen), ({"online": False}, DeviceOffline)])
def test_refuses_to_send_when_the_printer_cannot_print(virtual: VirtualEscposPrinter, state: dict,
                                                       error: type) -> None:
    virtual.set_state(**state)
    with pytest.raises(error):
        _driver(virtual.spec).print_bytes(render_receipt("transaction", DATA))
    assert virtual.jobs == []


@pytest.mark.parametrize("change,error", [
    ({"paper": "out"}, PaperOut), ({"cover_open": True}, CoverOpen), ({"online": False}, DeviceOffline)])
def test_a_failure_mid_job_raises(virtual: VirtualEscposPrinter, change: dict, error: type) -> None:
    virtual.after_bytes(200, **change)
    with pytest.raises(error) as err:
        _driver(virtual.spec).print_bytes(render_receipt("transaction", DATA))
    assert "during the job" in err.value.detail


def test_the_low_paper_warning_still_prints(virtual: VirtualEscposPrinter) -> None:
    virtual.set_state(paper="near_end")
    _driver(virtual.spec).print_bytes(b"\x1b@ok\n")
    _wait_jobs(virtual, 1)
    assert decode(virtual.printed).lines == ("ok",)


def test_serial_connector_over_a_pseudo_terminal(virtual: VirtualEscposPrinter) -> None:
    device = virtual.attach_pty()
    printer = _driver(f"serial:{device}")
    with printer:
        assert printer.status().supplies["paper"] == SupplyState.OK
        printer.print_bytes(render_receipt("test", DATA))
    _wait_jobs(virtual, 1)
    assert "自助终端打印测试" in decode(virtual.printed).lines
    virtual.set_state(paper="out")
    with printer:
        assert printer.status().supplies["paper"] == SupplyState.OUT


# --- a printer that never stops talking -----------------------------------------------------------
@pytest.mark.parametrize("connector", ["network", "serial"])
def test_a_flooding_printer_is_cut_off_and_the_lock_released(virtual: VirtualEscposPrinter,
                                                              connector: str) -> None:
    spec = virtual.spec if connector == "network" else f"serial:{virtual.attach_pty()}"
    printer = _driver(spec)
    virtual.set_state(flood=True)
    st = within(10, printer.status)
    assert st.state == DeviceState.HARDWARE_ERROR and "cut off" in st.detail
    assert st.supplies["paper"] == SupplyState.UNKNOWN
    st = within(10, printer.status)  # the lock was released: a second caller gets through too
    assert st.state == DeviceState.HARDWARE_ERROR
    with pytest.raises(DeviceOverrun) as err:
        within(10, printer.open)
    assert err.value.device == "receipt_printer" and err.value.code == "device_overrun"
    with pytest.raises(DeviceOffline):  # print_bytes asks first and refuses a printer in that state
        within(10, printer.print_bytes, b"\x1b@x\n")
    virtual.set_state(flood=False)
    time.sleep(0.3)
    printer.close()
    deadline = time.monotonic() + 5
    while (st := within(10, printer.status)).state != DeviceState.ONLINE and time.monotonic() < deadline:
        time.sleep(0.1)  # what was already in flight gets drained away on the following queries
    assert st.state == DeviceState.ONLINE
    printer.close()


def test_a_printer_that_starts_flooding_mid_job_raises_a_typed_error(virtual: VirtualEscposPrinter) -> None:
    virtual.after_bytes(100, flood=True)
    printer = _driver(virtual.spec)
    with pytest.raises(DeviceOverrun):
        within(10, printer.print_bytes, render_receipt("transaction", DATA))
    assert within(10, printer.status).state == DeviceState.HARDWARE_ERROR


def test_missing_serial_device_is_no_device() -> None:
    st = _driver("serial:/dev/kiosk-no-such-tty").status()
    assert st.state == DeviceState.NO_DEVICE


def test_file_connector_appends_and_cannot_know_paper(tmp_path: Path) -> None:
    target = tmp_path / "spool.bin"
    printer = _driver(f"file:{target}")
    data = render_receipt("payment", DATA)
    printer.print_bytes(data)
    printer.print_bytes(data)
    assert target.read_bytes() == data + data
    st = printer.status()
    assert st.state == DeviceState.ONLINE and st.supplies["paper"] == SupplyState.UNKNOWN
    assert _driver(f"file:{tmp_path}/missing/x.bin").status().state == DeviceState.NO_DEVICE


def test_raw_cups_queue_delivers_the_exact_bytes(cupsd, virtual: VirtualEscposPrinter) -> None:  # noqa: F811
    queue = cupsd.raw_queue(f"socket://127.0.0.1:{virtual.port}")
    printer = _driver(f"cups:{queue}", server=cupsd.server)
    assert printer.status().state == DeviceState.ONLINE
    data = render_receipt("transaction", DATA)
    printer.print_bytes(data)
    _wait_jobs(virtual, 1)
    assert data in b"".join(virtual.jobs)
    cupsd.run("cupsdisable", queue)
    with pytest.raises(DeviceOffline):
        printer.print_bytes(data)


# --- command line -------------------------------------------------------------------------------------
def test_cli_print_test(virtual: VirtualEscposPrinter, capsys: pytest.CaptureFixture) -> None:
    assert kiosk_main(["hw", "receipt", "print-test", "--printer", virtual.spec, "--profile", "58mm"]) == 0
    _wait_jobs(virtual, 1)
    out = decode(virtual.printed)
    assert "自助终端打印测试" in out.lines
    assert f"终端编号：{DEMO_TERMINAL_ID}" in out.lines
    assert len(out.qr_codes) == 1 and DEMO_TERMINAL_ID in out.qr_codes[0]
    assert out.cuts == 1
    assert "test receipt printed" in capsys.readouterr().out


@pytest.mark.parametrize("state,expected,code", [
    ({}, {"online": True, "paper": "ok", "cover_open": False}, 0),
    ({"paper": "near_end"}, {"online": True, "paper": "low", "cover_open": False}, 0),
    ({"paper": "out"}, {"online": True, "paper": "out", "cover_open": False}, 1),
    ({"cover_open": True}, {"online": False, "paper": "ok", "cover_open": True}, 1),
    ({"online": False}, {"online": False, "paper": "unknown", "cover_open": None}, 1),
])
def test_cli_status_json(virtual: VirtualEscposPrinter, capsys: pytest.CaptureFixture, state: dict,
                         expected: dict, code: int) -> None:
    virtual.set_state(**state)
    assert kiosk_main(["hw", "receipt", "status", "--printer", virtual.spec, "--json"]) == code
    got = json.loads(capsys.readouterr().out)
    assert {k: got[k] for k in expected} == expected


def test_cli_print_test_without_paper_fails_clearly(virtual: VirtualEscposPrinter,
                                                    capsys: pytest.CaptureFixture) -> None:
    virtual.set_state(paper="out")
    assert kiosk_main(["hw", "receipt", "print-test", "--printer", virtual.spec]) == PaperOut.exit_status
    assert "paper_out" in capsys.readouterr().err
    assert virtual.jobs == []


def test_absent_usb_printer_is_no_device_not_an_exception() -> None:
    st = _driver("usb:0416:5011").status()  # no such device on a test machine
    assert st.state == DeviceState.NO_DEVICE and st.supplies["paper"] == SupplyState.UNKNOWN


_ANSWER = st.one_of(st.none(), st.integers(min_value=0, max_value=255))


@given(_ANSWER, _ANSWER, _ANSWER)
def test_any_status_answer_maps_without_raising_and_never_invents_paper(first, second, paper) -> None:
    st_ = status_from_answers(first, second, paper)
    if st_.supplies["paper"] == SupplyState.OK:
        assert first is not None and paper is not None and paper & 0x93 == 0x12 and not paper & 0x6C
    if first is None:
        assert st_.state == DeviceState.OFFLINE
