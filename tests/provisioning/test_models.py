"""The supported-model table: matching found devices and suggesting the [devices] section."""
import tomllib

from kiosk import config as kconfig
from kiosk.hardware.factory import DRIVERS
from provisioning.detect import suggested_toml
from provisioning.models import SUPPORTED_MODELS, match_cups, match_pcsc, match_usb, recognise, suggest_devices


def test_every_row_serves_a_known_device_with_a_registered_driver_or_is_marked_driverless():
    for m in SUPPORTED_MODELS:
        assert m.device in DRIVERS, m
        assert m.vendor_id is not None or m.pcsc_name or m.cups_uri, m


def test_usb_ids_match_exact_products_before_whole_vendors():
    assert match_usb("04b8:0202").model.startswith("TM-T88")
    assert match_usb("0400:c35a").device == "id_card"
    assert match_usb("05e0:1200").device == "scanner"  # Symbol: any product of the vendor
    assert match_usb("1d6b:0002") is None  # a root hub is nobody's device
    assert match_usb("garbage") is None


def test_pcsc_and_cups_names_are_recognised():
    assert match_pcsc("ACS ACR1252 Dual Reader [ACR1252 Dual Reader PICC] 00 00").model == "ACR1252U"
    assert match_pcsc("HID Global OMNIKEY 5422 Smartcard Reader 01 00").maker == "HID Global"
    assert match_pcsc("Some Unknown Reader") is None
    assert match_cups("usb://HP/LaserJet%20Pro%20M404?serial=X").maker == "HP"
    assert match_cups("cups-pdf:/").device == "a4_printer"
    assert match_cups("file:///dev/null") is None


def test_a_serial_bridge_is_recognised_through_its_port_not_as_a_bare_usb_device():
    assert recognise("usb", "1a86:7523", "bus 1").model is None
    port = recognise("serial", "/dev/ttyUSB0", "USB Serial", usb_id="1a86:7523")
    assert port.model is not None and port.model.device == "id_card"


def test_suggestion_prefers_usb_sam_and_disables_what_is_missing_and_validates_as_config():
    findings = [
        recognise("serial", "/dev/ttyUSB0", "USB Serial", usb_id="1a86:7523"),
        recognise("usb", "0400:c35a", "bus 1 address 4"),
        recognise("usb", "04b8:0202", "bus 1 address 5"),
        recognise("pcsc", "Identiv uTrust 3700 F CL Reader [uTrust 3700 F CL Reader] (1) 00 00", "PC/SC reader"),
        recognise("cups", "office_a4", "usb://Brother/HL-L5100DN?serial=1"),
        recognise("usb", "05e0:1200", "bus 1 address 6"),
    ]
    s = suggest_devices(findings)
    assert s.devices["id_card"] == {"driver": "usb", "options": {"vendor_id": "0x0400", "product_id": "0xc35a"}}
    assert s.devices["receipt_printer"]["driver"] == "usb"
    assert s.devices["pcsc"]["options"]["reader"].startswith("Identiv")
    assert s.devices["a4_printer"] == {"driver": "cups", "options": {"queue": "office_a4"}}
    # scanners have no real driver registered yet: disabled, with a note saying why
    assert s.devices["scanner"] == {"enabled": False}
    assert "no 'hid' driver" in s.notes["scanner"]
    assert s.devices["camera"] == {"enabled": False}
    text = suggested_toml(findings)
    parsed = tomllib.loads(text)
    cfg = kconfig.from_dict({"profile": "production", "backend": {"url": "https://backend.example",
                                                                   "hmac_secret_file": "/etc/kiosk/secret"},
                             **parsed}, before_enrollment=True)  # init writes it before enrollment
    assert cfg.devices["id_card"].driver == "usb" and not cfg.devices["camera"].enabled


def test_serial_bridge_is_used_when_no_usb_sam_is_present():
    s = suggest_devices([recognise("serial", "/dev/ttyUSB1", "CP2102", usb_id="10c4:ea60")])
    assert s.devices["id_card"] == {"driver": "serial", "options": {"port": "/dev/ttyUSB1", "baud": 115200}}


def test_a_scanner_in_usb_serial_mode_gets_the_serial_driver_and_one_in_keyboard_mode_a_hint():
    cdc = recognise("serial", "/dev/ttyACM0", "Honeywell 1900 CDC", usb_id="0c2e:0b6a")
    assert cdc.model is not None and (cdc.model.device, cdc.model.driver) == ("scanner", "serial")
    s = suggest_devices([cdc, recognise("usb", "0c2e:0b6a", "bus 1")])
    assert s.devices["scanner"] == {"driver": "serial", "options": {"port": "/dev/ttyACM0"}}
    cfg = kconfig.from_dict({"devices": dict(s.devices)})
    assert cfg.devices["scanner"].driver == "serial"
    # Keyboard mode: only the USB device is seen; the note tells the technician what to change.
    hid = suggest_devices([recognise("usb", "1eab:0d10", "Newland NLS-EM20")])
    assert hid.devices["scanner"] == {"enabled": False}
    assert "USB serial (CDC/COM) mode" in hid.notes["scanner"]
