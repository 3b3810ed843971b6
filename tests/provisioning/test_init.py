"""kiosk-provision init: flags or answers → validated config, written atomically or not at all."""
import io
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from kiosk import config as kconfig
from kiosk.errors import ConfigError
from provisioning import init_config
from provisioning.cli import build_parser, main
from provisioning.errors import ConfigExists

ROOT = Path(__file__).resolve().parents[2]


DEVICES = ("--device", "id_card=usb,vendor_id=0x0400,product_id=0xc35a",
           "--device", "receipt_printer=network,host=10.0.0.9,port=9100",
           "--device", "a4_printer=cups,queue=a4", "--device", "pcsc=pcsc,trust_store=/etc/kiosk/csca",
           "--device", "scanner=off", "--device", "camera=off", "--device", "speaker=sdl")


def _run(*argv):
    return subprocess.run([sys.executable, "-m", "provisioning.cli", *argv], capture_output=True, text=True,
                          timeout=60)


def test_init_from_flags_writes_a_config_kiosk_loads(tmp_path):
    target = tmp_path / "etc" / "kiosk.toml"
    proc = _run("init", "--config", str(target), "--profile", "production", "--terminal-id", "JN-LX-0042",
                "--terminal-name", "历下区 \"泉城路\" 警局", "--backend-url", "https://backend.example/",
                "--hmac-secret-file", "/etc/kiosk/hmac.key", "--state-dir", "/var/lib/kiosk",
                "--ca-file", "/etc/kiosk/ca.pem", "--client-cert-file", "/etc/kiosk/t.crt",
                "--client-key-file", "/etc/kiosk/t.key",
                "--public-key", "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=", *DEVICES)
    assert proc.returncode == 0, proc.stderr
    assert "next: kiosk-provision enroll" not in proc.stderr  # everything enrollment would write is given
    cfg = kconfig.load(target)
    assert cfg.profile == "production" and cfg.terminal.id == "JN-LX-0042"
    assert cfg.terminal.name == "历下区 \"泉城路\" 警局"
    assert cfg.backend.url == "https://backend.example"
    assert cfg.devices["receipt_printer"].options == {"host": "10.0.0.9", "port": 9100}
    assert cfg.devices["id_card"].options["vendor_id"] == "0x0400"
    assert not cfg.devices["scanner"].enabled
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in target.parent.iterdir()] == ["kiosk.toml"]  # no temp file left


def test_a_production_config_written_before_enrollment_says_enrollment_comes_next(tmp_path):
    target = tmp_path / "kiosk.toml"
    proc = _run("init", "--config", str(target), "--profile", "production", "--terminal-id", "JN-LX-0043",
                "--backend-url", "https://backend.example", *DEVICES)
    assert proc.returncode == 0, proc.stderr
    assert "next: kiosk-provision enroll" in proc.stderr and "backend.hmac_secret is not set" in proc.stderr
    with pytest.raises(ConfigError) as err:  # the kiosk itself refuses it until then
        kconfig.load(target)
    assert err.value.key in kconfig.ENROLLED_KEYS
    plain = tmp_path / "plain.toml"  # what enrollment would not fix is refused at once
    proc = _run("init", "--config", str(plain), "--profile", "production", "--backend-url", "http://backend.example",
                *DEVICES)
    assert proc.returncode == 78 and "backend.url" in proc.stderr and not plain.exists()


def test_invalid_values_write_nothing_and_name_the_key(tmp_path):
    target = tmp_path / "kiosk.toml"
    proc = _run("init", "--config", str(target), "--profile", "production", "--backend-url", "https://b.example",
                "--hmac-secret-file", "/x")  # devices default to sim: production refuses them
    assert proc.returncode == 78
    assert "devices.id_card.driver" in proc.stderr
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_an_existing_config_is_kept_without_force_and_replaced_with_it(tmp_path):
    target = tmp_path / "kiosk.toml"
    target.write_text('profile = "demo"\n')
    with pytest.raises(ConfigExists):
        init_config.run(build_parser().parse_args(["init", "--config", str(target), "--terminal-id", "A1"]))
    assert target.read_text() == 'profile = "demo"\n'
    init_config.run(build_parser().parse_args(["init", "--config", str(target), "--terminal-id", "A1", "--force"]))
    assert kconfig.load(target).terminal.id == "A1"


def test_a_bad_value_with_force_leaves_the_old_config_whole(tmp_path):
    target = tmp_path / "kiosk.toml"
    target.write_text('profile = "demo"\n')
    assert main(["init", "--config", str(target), "--force", "--terminal-id", "bad id!"]) == 78
    assert target.read_text() == 'profile = "demo"\n'
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk.toml"]


def test_a_crash_during_the_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "kiosk.toml"
    target.write_text('profile = "demo"\n')

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        init_config.write_config(target, {"terminal": {"id": "NEW-1"}}, force=True)
    assert target.read_text() == 'profile = "demo"\n'
    assert [p.name for p in tmp_path.iterdir()] == ["kiosk.toml"]


def test_interactive_answers_with_defaults_and_device_specs(tmp_path):
    target = tmp_path / "kiosk.toml"
    answers = "\n".join([
        "",  # profile: keep demo
        "JN-TEST-7",  # terminal id
        "",  # name: default
        "Jinan",  # location
        "",  # backend url: embedded
        "",  # hmac secret file: none
        str(tmp_path / "state"),
        "en",
        "sim",  # id_card
        "off",  # pcsc
        "sim,paper_length_mm=100.0",  # receipt_printer
        "", "", "", "",  # a4, scanner, camera, speaker: keep
    ]) + "\n"
    args = build_parser().parse_args(["init", "--config", str(target), "--interactive"])
    prompts = io.StringIO()
    cfg = init_config.run(args, stdin=io.StringIO(answers), out=prompts)
    assert cfg.terminal.id == "JN-TEST-7" and cfg.terminal.location == "Jinan" and cfg.ui.language == "en"
    assert not cfg.devices["pcsc"].enabled
    assert cfg.devices["receipt_printer"].options == {"paper_length_mm": 100.0}
    assert "Terminal id [JN-DEMO-0001]" in prompts.getvalue()
    assert kconfig.load(target) == cfg


def test_answers_that_stop_early_write_nothing(tmp_path):
    target = tmp_path / "kiosk.toml"
    args = build_parser().parse_args(["init", "--config", str(target), "--interactive"])
    with pytest.raises(ConfigError):
        init_config.run(args, stdin=io.StringIO("demo\nJN-1\n"), out=io.StringIO())
    assert not target.exists()


def test_device_spec_errors_are_config_errors():
    for bad in ("printer=usb", "receipt_printer", "receipt_printer=", "receipt_printer=usb,novalue"):
        with pytest.raises(ConfigError):
            init_config.parse_device_spec(bad)
    assert init_config.parse_device_spec("camera=opencv,index=0,mirror=true") == (
        "camera", {"driver": "opencv", "options": {"index": 0, "mirror": True}})


def test_interactive_production_init_before_enrollment_rechecks_each_answer(tmp_path):
    """No secret yet is fine; a typo is refused and asked again; sim is refused; detected devices are defaults."""
    from provisioning.models import recognise

    target = tmp_path / "kiosk.toml"
    findings = [recognise("usb", "04b8:0202", "bus 1 address 5")]  # what detect reports for an Epson TM-T88
    answers = "\n".join([
        "prod",  # typo: refused, asked again
        "production",
        "JN LX 42",  # a space: refused
        "JN-LX-0042",
        "", "",  # name, location: defaults
        "http://backend.example",  # production: https only
        "https://backend.example",
        "",  # no secret yet
        "/var/lib/kiosk",
        "",  # language
        "sim",  # id_card: refused in production
        "usb,vendor_id=0x0400,product_id=0xc35a",
        "pcsc",  # refused: no trust store
        "pcsc,trust_store=/etc/kiosk/csca",
        "",  # receipt_printer: the detected Epson, offered as default
        "cups,queue=a4",
        "", "", "",  # scanner, camera, speaker: default off (nothing detected)
    ]) + "\n"
    args = build_parser().parse_args(["init", "--config", str(target), "--interactive"])
    prompts = io.StringIO()
    cfg = init_config.run(args, stdin=io.StringIO(answers), out=prompts, findings=findings)
    said = prompts.getvalue()
    assert said.count("not accepted:") == 5
    assert "not accepted: profile: must be demo or production; got 'prod'" in said
    assert "not accepted: terminal.id: must be 1-32 letters" in said
    assert "https only" in said and "never uses a simulator" in said and "trust_store=/etc/kiosk/csca" in said
    assert "Device receipt_printer: DRIVER[,key=value...] or off [usb,vendor_id=0x04b8,product_id=0x0202]" in said
    assert "Device scanner: DRIVER[,key=value...] or off [off]" in said
    assert cfg.profile == "production" and cfg.terminal.id == "JN-LX-0042"
    assert cfg.devices["receipt_printer"].options == {"vendor_id": "0x04b8", "product_id": "0x0202"}
    assert not cfg.devices["scanner"].enabled and cfg.backend.hmac_secret_file == ""
    assert target.is_file()  # written before enrollment
    assert init_config.still_to_enroll(tomllib.loads(target.read_text())) == "backend.hmac_secret"


def test_the_docs_placeholder_paths_are_what_enroll_writes():
    """Every credentials path the docs show is one `enroll` writes (credentials/ beside the config)."""
    import re

    from provisioning import enroll

    docs = "".join(p.read_text() for p in (ROOT / "docs").glob("*.md")) + (ROOT / "README.md").read_text()
    written = {enroll.KEY_FILE, enroll.CERT_FILE, enroll.CA_FILE, enroll.SECRET_FILE}
    shown = set(re.findall(r"/etc/kiosk/credentials/([\w.-]+)", docs))
    assert shown and shown <= written, shown - written
    assert "hmac.key" not in docs  # the old placeholder, which enroll never writes
    for flag in re.findall(r"--hmac-secret-file (\S+)", docs):
        assert flag == f"/etc/kiosk/credentials/{enroll.SECRET_FILE}", flag
