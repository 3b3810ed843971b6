"""The factory picks each device's driver by config and never falls back to a simulator."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from kiosk.config import DEVICE_NAMES, KioskConfig, from_dict
from kiosk.errors import ConfigError, NoDevice, PaperOut
from kiosk.hardware import factory
from kiosk.hardware.base import DeviceState, SupplyState
from kiosk.hardware.factory import DRIVERS, Devices, build_devices
from kiosk.hardware.simulators.a4 import SimA4Printer
from kiosk.hardware.simulators.camera import SimCamera
from kiosk.hardware.simulators.idcard import SimIdCardReader
from kiosk.hardware.simulators.pcsc import SimChipReader
from kiosk.hardware.simulators.receipt import SimReceiptPrinter
from kiosk.hardware.simulators.scanner import SimScanner
from kiosk.hardware.simulators.speaker import SimSpeaker

SIM_CLASSES = {"id_card": SimIdCardReader, "pcsc": SimChipReader, "receipt_printer": SimReceiptPrinter,
               "a4_printer": SimA4Printer, "scanner": SimScanner, "camera": SimCamera,
               "speaker": SimSpeaker}


def test_demo_config_builds_a_simulator_for_every_device(make_config):
    devices = build_devices(make_config())
    assert [name for name, _ in devices.all()] == list(DEVICE_NAMES)
    for name, device in devices.all():
        assert type(device) is SIM_CLASSES[name]
        assert device.name == name
        assert device.status().state == DeviceState.ONLINE
    assert set(devices.statuses()) == set(DEVICE_NAMES)


def test_disabled_device_is_none_and_left_out(make_config):
    devices = build_devices(make_config(devices={"camera": {"enabled": False}, "pcsc": {"enabled": False}}))
    assert devices.camera is None and devices.pcsc is None
    assert devices.get("camera") is None
    assert [n for n, _ in devices.all()] == ["id_card", "receipt_printer", "a4_printer", "scanner", "speaker"]
    with pytest.raises(KeyError):
        devices.get("fax")


def test_options_and_faults_reach_the_simulator(make_config):
    cfg = make_config(devices={
        "id_card": {"options": {"card": "370104199001013459"}},
        "receipt_printer": {"faults": {"paper_out": True}},
    })
    devices = build_devices(cfg)
    assert devices.id_card.read_card(timeout=1).name == "张伟"
    assert devices.receipt_printer.status().supplies["paper"] == SupplyState.OUT
    with pytest.raises(PaperOut):
        devices.receipt_printer.print_bytes(b"x\n")


def test_a4_paper_tray_defaults_under_state_dir(make_config, make_pdf, tmp_path):
    devices = build_devices(make_config())
    job = devices.a4_printer.print_pdf(make_pdf(1), "t")
    assert (tmp_path / "state" / "paper_tray" / f"{job}.pdf").is_file()


def test_a4_explicit_output_dir_wins(make_config, make_pdf, tmp_path):
    out = tmp_path / "elsewhere"
    devices = build_devices(make_config(devices={"a4_printer": {"options": {"output_dir": str(out)}}}))
    job = devices.a4_printer.print_pdf(make_pdf(1), "t")
    assert (out / f"{job}.pdf").is_file()
    assert not (tmp_path / "state" / "paper_tray").exists()


def test_unknown_driver_names_key_and_value(make_config):
    with pytest.raises(ConfigError) as err:
        build_devices(make_config(devices={"scanner": {"driver": "laser"}}))
    assert err.value.key == "devices.scanner.driver"
    assert err.value.value == "laser"
    assert "devices.scanner.driver" in str(err.value) and "'laser'" in str(err.value)


def test_bad_simulator_option_and_fault_name_their_key(make_config):
    with pytest.raises(ConfigError) as err:
        build_devices(make_config(devices={"receipt_printer": {"options": {"paper_lenght_mm": 5}}}))
    assert err.value.key == "devices.receipt_printer.options.paper_lenght_mm"
    with pytest.raises(ConfigError) as err:
        build_devices(make_config(devices={"a4_printer": {"faults": {"on_fire": True}}}))
    assert err.value.key == "devices.a4_printer.faults.on_fire"


# What `kiosk-provision enroll` writes; the production profile refuses a config without it.
ENROLLED_BACKEND = {"public_key": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=",
                    "ca_file": "/etc/kiosk/credentials/backend-ca.pem",
                    "client_cert_file": "/etc/kiosk/credentials/terminal.crt",
                    "client_key_file": "/etc/kiosk/credentials/terminal.key"}


def _production(devices: dict) -> dict:
    off = {name: {"enabled": False} for name in DEVICE_NAMES}
    return {"profile": "production", "backend": {"url": "https://backend.example", "hmac_secret": "enrolled",
                                                 **ENROLLED_BACKEND}, "devices": {**off, **devices}}


def test_production_profile_refuses_a_simulator_in_config():
    with pytest.raises(ConfigError) as err:
        from_dict(_production({"id_card": {"driver": "sim"}}))
    assert err.value.key == "devices.id_card.driver"
    assert err.value.value == "sim"


def _complete_production_toml(tmp_path: Path, pcsc_options: str) -> Path:
    """A production config otherwise whole (enrolled credentials on disk, https, its own backend key)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.services.signing import public_key_b64

    creds = tmp_path / "credentials"
    creds.mkdir()
    for name in ("hmac.secret", "backend-ca.pem", "terminal.crt", "terminal.key"):
        (creds / name).write_text("x\n")
    off = "\n".join(f"[devices.{name}]\nenabled = false" for name in DEVICE_NAMES if name != "pcsc")
    config = tmp_path / "kiosk.toml"
    config.write_text(
        'profile = "production"\n[backend]\nurl = "https://backend.example"\n'
        f'hmac_secret_file = "{creds / "hmac.secret"}"\nca_file = "{creds / "backend-ca.pem"}"\n'
        f'client_cert_file = "{creds / "terminal.crt"}"\nclient_key_file = "{creds / "terminal.key"}"\n'
        f'public_key = "{public_key_b64(Ed25519PrivateKey.generate())}"\n'
        f'{off}\n[devices.pcsc]\ndriver = "pcsc"\noptions = {{ reader = "OMNIKEY"{pcsc_options} }}\n',
        encoding="utf-8")
    return config


def test_production_chip_reader_needs_a_csca_trust_store(tmp_path):
    import subprocess

    with pytest.raises(ConfigError) as err:
        from_dict(_production({"pcsc": {"driver": "pcsc", "options": {"reader": "OMNIKEY"}}}))
    assert err.value.key == "devices.pcsc.options.trust_store"
    cfg = from_dict(_production({"pcsc": {"driver": "pcsc", "options": {"trust_store": "/etc/kiosk/csca"}}}))
    assert cfg.devices["pcsc"].options["trust_store"] == "/etc/kiosk/csca"
    assert from_dict(_production({})).devices["pcsc"].enabled is False  # no chip reader, nothing to trust

    def kiosk_config(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(path), "config"],
                              capture_output=True, text=True, timeout=60)

    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    proc = kiosk_config(_complete_production_toml(tmp_path / "without", ""))
    assert proc.returncode == 78 and "devices.pcsc.options.trust_store" in proc.stdout + proc.stderr, proc.stderr
    proc = kiosk_config(_complete_production_toml(tmp_path / "with", ', trust_store = "/etc/kiosk/csca"'))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_factory_refuses_a_simulator_in_production_even_when_config_checks_are_bypassed(tmp_path):
    cfg = KioskConfig.model_construct(**{**from_dict({}).__dict__, "profile": "production"})
    with pytest.raises(ConfigError) as err:
        build_devices(cfg)
    assert err.value.key == "devices.id_card.driver"


def test_real_driver_is_built_in_production_with_the_driver_name_in_options(fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["receipt_printer"], "fake", f"{fake_drivers}:FakeReceiptDriver")
    cfg = from_dict(_production({"receipt_printer": {"driver": "fake", "options": {"port": "/dev/usb/lp0"}}}))
    devices = build_devices(cfg)
    printer = devices.receipt_printer
    assert type(printer).__name__ == "FakeReceiptDriver"
    assert printer.options == {"port": "/dev/usb/lp0", "driver": "fake"}
    devices.open()
    assert printer.status().state == DeviceState.ONLINE
    devices.close()
    assert printer.closed


def test_missing_real_driver_module_is_no_device_not_a_fallback(make_config, monkeypatch):
    monkeypatch.setitem(DRIVERS["camera"], "opencv", "kiosk.hardware.no_such_camera_driver:OpenCvCamera")
    with pytest.raises(NoDevice) as err:
        build_devices(make_config(devices={"camera": {"driver": "opencv"}}))
    assert "devices.camera.driver" in str(err.value)
    assert "kiosk.hardware.no_such_camera_driver" in str(err.value)
    assert err.value.device == "camera"


def test_registered_class_that_is_not_a_driver_is_refused(make_config, fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["scanner"], "odd", f"{fake_drivers}:NotADriver")
    with pytest.raises(NoDevice, match="not a Scanner driver"):
        build_devices(make_config(devices={"scanner": {"driver": "odd"}}))


def test_driver_constructor_failure_is_no_device(make_config, fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["scanner"], "serial", f"{fake_drivers}:FakeScannerDriver")
    with pytest.raises(NoDevice, match="could not be set up .FileNotFoundError"):
        build_devices(make_config(devices={"scanner": {"driver": "serial", "options": {"port": "/dev/missing"}}}))


def test_absent_device_fails_open_and_closes_the_ones_already_opened(make_config, fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["receipt_printer"], "fake", f"{fake_drivers}:FakeReceiptDriver")
    monkeypatch.setitem(DRIVERS["scanner"], "fake", f"{fake_drivers}:FakeScannerDriver")
    devices = build_devices(make_config(devices={
        "receipt_printer": {"driver": "fake", "options": {"present": False}},
        "scanner": {"driver": "fake"},
    }))
    closed = []
    monkeypatch.setattr(devices.id_card, "close", lambda: closed.append("id_card"))
    monkeypatch.setattr(devices.pcsc, "close", lambda: closed.append("pcsc"))
    with pytest.raises(NoDevice, match="no printer"):
        devices.open()
    assert closed == ["pcsc", "id_card"]  # opened before the printer, closed in reverse


def test_faults_on_a_real_driver_are_a_config_error(make_config, fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["receipt_printer"], "fake", f"{fake_drivers}:FakeReceiptDriver")
    with pytest.raises(ConfigError) as err:
        build_devices(make_config(devices={"receipt_printer": {"driver": "fake", "faults": {"paper_out": True}}}))
    assert err.value.key == "devices.receipt_printer.faults"


def test_status_that_raises_reads_as_hardware_error(make_config, fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["scanner"], "fake", f"{fake_drivers}:FakeScannerDriver")
    devices = build_devices(make_config(devices={"scanner": {"driver": "fake"}}))
    assert devices.statuses()["scanner"].state == DeviceState.HARDWARE_ERROR
    assert devices.statuses()["id_card"].state == DeviceState.ONLINE


def test_failed_build_closes_devices_already_built(make_config, fake_drivers, monkeypatch):
    monkeypatch.setitem(DRIVERS["receipt_printer"], "fake", f"{fake_drivers}:FakeReceiptDriver")
    with pytest.raises(ConfigError):
        build_devices(make_config(devices={"receipt_printer": {"driver": "fake"}, "scanner": {"driver": "nope"}}))
    (printer,) = sys.modules[fake_drivers].FakeReceiptDriver.instances
    assert printer.closed


def test_pre_registered_real_driver_names():
    assert DRIVERS["id_card"]["serial"] == DRIVERS["id_card"]["usb"] == "kiosk.hardware.idcard_sam:SamIdCardReader"
    assert DRIVERS["pcsc"]["pcsc"] == "kiosk.hardware.pcsc_reader:PcscChipReader"
    assert DRIVERS["camera"]["opencv"] == "kiosk.hardware.camera_opencv:OpenCvCamera"
    for name in ("network", "usb", "serial", "cups", "file"):
        assert DRIVERS["receipt_printer"][name] == "kiosk.hardware.escpos_printer:EscposReceiptPrinter"
    assert DRIVERS["a4_printer"]["cups"] == "kiosk.hardware.cups_printer:CupsA4Printer"
    assert DRIVERS["speaker"]["sdl"] == "kiosk.hardware.speaker_sdl:SdlSpeaker"
    assert all(DRIVERS[name]["sim"].startswith("kiosk.hardware.simulators.") for name in DEVICE_NAMES)


def test_register_driver_checks_its_arguments(monkeypatch):
    monkeypatch.setitem(DRIVERS, "scanner", dict(DRIVERS["scanner"]))
    factory.register_driver("scanner", "hid", "some.module:HidScanner")
    assert DRIVERS["scanner"]["hid"] == "some.module:HidScanner"
    with pytest.raises(KeyError):
        factory.register_driver("fax", "x", "m:C")
    with pytest.raises(ValueError):
        factory.register_driver("scanner", "x", "no_colon")


def test_devices_is_frozen(make_config):
    devices = build_devices(make_config())
    with pytest.raises(AttributeError):
        devices.camera = None  # type: ignore[misc]
    assert isinstance(devices, Devices)


def test_describe_status_in_both_languages():
    from kiosk.hardware.simulators.a4 import SimA4Printer

    printer = SimA4Printer("a4_printer", faults={"jam": True, "paper_low": True})
    assert factory.describe_status("a4_printer", printer.status(), "en") == "A4 printer: Needs attention, Paper jam, Paper low"
    assert factory.describe_status("a4_printer", printer.status(), "zh_CN") == "A4打印机：需人工处理，卡纸，纸张将尽"


def test_every_device_text_has_a_chinese_translation():
    import polib

    po = polib.pofile(str(Path(factory.__file__).parent.parent / "locale/zh_CN/LC_MESSAGES/hardware.po"))
    translated = {e.msgid: e.msgstr for e in po if e.msgstr}
    wanted = set(factory.DEVICE_TITLES.values()) | set(factory._STATE_TEXT.values()) | set(factory._PROBLEM_TEXT.values())
    assert wanted - set(translated) == set()


def test_the_documented_example_config_loads_and_builds(tmp_path) -> None:
    from kiosk.config import load

    example = Path(__file__).resolve().parents[2] / "docs" / "config.example.toml"
    cfg = load(example)
    cfg = cfg.model_copy(update={"paths": cfg.paths.model_copy(update={"state_dir": str(tmp_path)})})
    devices = build_devices(cfg)
    try:
        assert {name for name, _device in devices.all()} >= {"id_card", "a4_printer", "scanner"}
    finally:
        devices.close()
