"""SamIdCardReader against the virtual SAM, over a pseudo-terminal and over a pyusb backend."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiosk.errors import CardRemoved, ConfigError, DeviceOverrun, DeviceProtocolError, NoCard, NoDevice
from kiosk.hardware import ga467
from kiosk.hardware.idcard import IdentityCard
from kiosk.hardware.idcard_sam import SamIdCardReader
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.hardware.simulators.sam_device import PtySam, SamUsbBackend, VirtualSam

from bounded import within

ROOT = Path(__file__).resolve().parents[2]
FAST = {"poll_interval": 0.01, "debounce": 2, "command_timeout": 0.3}


@pytest.fixture
def pty_sam():
    sim = PtySam(VirtualSam()).start()
    yield sim
    sim.stop()


@pytest.fixture
def reader(pty_sam):
    r = SamIdCardReader("id_card", {"port": pty_sam.port, **FAST})
    yield r
    r.close()


def test_reads_the_demo_card_over_serial(pty_sam, reader):
    card = reader.read_card(timeout=2)
    expected = DEMO_CARDS[0]
    assert (card.name, card.id_number, card.sex, card.birth_date) == \
        (expected.name, expected.id_number, "male", "1985-03-15")
    assert (card.address, card.issuer, card.valid_to) == (expected.address, expected.issuer, "2035-03-15")
    assert len(card.photo) == 1024 and card.photo.startswith(b"WLf")
    # what crossed the wire: status at open, finds until debounced, select, read base info
    cmds = pty_sam.sam.commands
    assert cmds[0] == b"\x11\xFF" and cmds[-2:] == [b"\x20\x02", b"\x30\x01"]
    assert cmds.count(b"\x20\x01") >= 2


def test_card_must_leave_before_the_next_read(pty_sam, reader):
    reader.read_card(timeout=2)
    with pytest.raises(NoCard):
        reader.read_card(timeout=0.2)  # same card still lying there: not read again
    pty_sam.sam.remove()
    assert reader.wait_for_removal(timeout=1)
    pty_sam.sam.place(3)
    card = reader.read_card(timeout=2)
    assert card.id_number == DEMO_CARDS[3].id_number and card.valid_to == "long-term"


def test_no_card_fault_times_out_with_no_card(pty_sam, reader):
    pty_sam.sam.inject("no_card")
    with pytest.raises(NoCard):
        reader.read_card(timeout=0.2)
    assert not reader.card_present()


def test_checksum_error_fault_is_a_protocol_error(pty_sam, reader):
    pty_sam.sam.inject("checksum_error")
    with pytest.raises(DeviceProtocolError):
        reader.read_card(timeout=2)
    pty_sam.sam.inject("checksum_error", False)
    pty_sam.sam.remove()
    reader.wait_for_removal(1)
    pty_sam.sam.place(0)
    assert reader.read_card(timeout=2).id_number == DEMO_CARDS[0].id_number  # resynced


def test_truncated_frame_fault_is_a_protocol_error(pty_sam, reader):
    pty_sam.sam.inject("truncated_frame")
    with pytest.raises(DeviceProtocolError):
        reader.read_card(timeout=2)


def test_card_pulled_after_select_is_card_removed(pty_sam, reader):
    pty_sam.sam.inject("card_pulled")
    with pytest.raises(CardRemoved):
        reader.read_card(timeout=2)


def test_a_flooding_sam_is_cut_off_with_a_typed_error_and_the_lock_released(pty_sam, reader):
    reader.open()
    pty_sam.sam.inject("flood")
    with pytest.raises(DeviceOverrun) as err:
        within(10, reader.read_card, 2)
    assert err.value.device == "id_card" and err.value.code == "device_overrun"
    st = within(10, reader.status)  # the lock is free again, and the flood shows as a fault
    assert st.state.value == "hardware_error" and "cut off" in st.detail
    with pytest.raises(DeviceOverrun):
        within(10, reader.open)  # opening meets the flood too, instead of waiting for silence
    pty_sam.sam.inject("flood", False)
    card = within(10, reader.read_card, 3)
    assert card.id_number == DEMO_CARDS[0].id_number


def test_a_sam_flooding_from_the_start_fails_open_in_bounded_time():
    with PtySam(VirtualSam(faults={"flood": True})) as sim:
        r = SamIdCardReader("id_card", {"port": sim.port, **FAST})
        with pytest.raises(DeviceOverrun):
            within(10, r.open)
        assert within(10, r.status).state.value == "hardware_error"
        r.close()


def test_foreign_and_hkmt_cards_round_trip():
    first17 = "81000019900101001"
    cards = [
        IdentityCard("foreign_permanent", "史密斯", "USA110085061703", "male", birth_date="1985-08-01",
                     valid_from="2017-06-01", valid_to="2027-06-01",
                     extra={"name_en": "SMITH JOHN", "nationality": "USA", "card_version": "02",
                            "issuer_code": "1100"}),
        IdentityCard("hkmt_residence", "陈大文", first17 + ga467.id_check_character(first17), "male",
                     birth_date="1990-01-01", address="深圳", issuer="深圳市公安局",
                     valid_from="2018-09-01", valid_to="2023-09-01",
                     extra={"pass_number": "H12345678", "issue_count": "3"}),
    ]
    with PtySam(VirtualSam(cards)) as sim:
        r = SamIdCardReader("id_card", {"port": sim.port, **FAST})
        got = [r.read_card(2)]
        sim.sam.remove()
        assert r.wait_for_removal(1)
        sim.sam.place(1)
        got.append(r.read_card(2))
        r.close()
    assert got[0].card_type == "foreign_permanent" and got[0].extra["name_en"] == "SMITH JOHN"
    assert got[1].card_type == "hkmt_residence" and got[1].extra["issue_count"] == "3"


def test_reads_over_usb_through_a_pyusb_backend():
    backend = SamUsbBackend(VirtualSam())
    r = SamIdCardReader("id_card", {"vendor_id": "0400", "product_id": "C35A", "backend": backend, **FAST})
    card = r.read_card(timeout=2)
    assert card.id_number == DEMO_CARDS[0].id_number
    assert r.sam_id() == bytes.fromhex("05010000000000000000000000000001")
    assert backend.configuration == 1 and 0 in backend.claimed  # endpoints found from descriptors
    r.close()


def test_usb_device_missing_is_no_device():
    backend = SamUsbBackend(VirtualSam(), vendor_id=0x1234)
    r = SamIdCardReader("id_card", {"vendor_id": 0x0400, "product_id": 0xC35A, "backend": backend})
    with pytest.raises(NoDevice):
        r.open()
    assert r.status().state.value == "no_device"


@pytest.mark.parametrize("options", [{}, {"driver": "usb", "port": "/dev/ttyS0"},
                                     {"driver": "serial", "vendor_id": 1, "product_id": 2},
                                     {"driver": "bluetooth", "port": "x"}])
def test_missing_or_mismatched_options_are_a_config_error(options):
    with pytest.raises(ConfigError):
        SamIdCardReader("id_card", options)


def test_photo_decoder_option_plugs_in_a_decoder(pty_sam):
    try:
        SamIdCardReader("id_card", {"port": pty_sam.port, "photo_decoder": "binascii:hexlify"})
        assert ga467.decode_photo(b"ab") == b"6162"
        with pytest.raises(ConfigError):
            SamIdCardReader("id_card", {"port": pty_sam.port, "photo_decoder": "binascii:nothing"})
    finally:
        ga467.register_photo_decoder(None)


def test_without_require_removal_the_same_card_reads_again(pty_sam):
    reader = SamIdCardReader("id_card", {"driver": "serial", "port": pty_sam.port,
                                         "require_removal": False, **FAST})
    assert reader.read_card(2).id_number == reader.read_card(2).id_number == DEMO_CARDS[0].id_number
    reader.close()


def test_garbage_before_the_answer_is_skipped(pty_sam, reader):
    reader.open()
    os.write(pty_sam._master, b"\x00\x13\xAA\x37")  # line noise before the SAM speaks
    assert reader.card_present()


# --- the command line ------------------------------------------------------------------------
def _kiosk(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_cli_reads_a_card_as_json(pty_sam):
    out = _kiosk("hw", "idcard", "read", "--device", f"serial:{pty_sam.port}", "--timeout", "3", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    card = DEMO_CARDS[0]
    assert data == {"card_type": "resident", "name": card.name, "sex": "male", "ethnicity": "汉",
                    "ethnicity_code": "01", "birth_date": "1985-03-15", "address": card.address,
                    "id_number": card.id_number, "issuer": card.issuer, "valid_from": "2015-03-15",
                    "valid_to": "2035-03-15", "photo": {"format": "wlt", "size": 1024}}


def test_cli_failure_is_a_json_error_and_non_zero(pty_sam):
    pty_sam.sam.inject("no_card")
    out = _kiosk("hw", "idcard", "read", "--device", f"serial:{pty_sam.port}", "--timeout", "0.5", "--json")
    assert out.returncode != 0
    assert json.loads(out.stdout)["error"]["code"] == "no_card"
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("device, code", [("serial:/dev/does-not-exist", "no_device"),
                                          ("bluetooth:1", "config_invalid")])
def test_cli_bad_device_is_a_json_error(device, code):
    out = _kiosk("hw", "idcard", "read", "--device", device, "--json")
    assert out.returncode != 0 and "Traceback" not in out.stderr
    err = json.loads(out.stdout)["error"]
    assert err["code"] == code and err["message"]
