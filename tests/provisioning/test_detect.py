"""kiosk-provision detect: lists what the machine shows, as JSON a technician's tools can read."""
import json
import subprocess
import sys


def test_detect_json_reports_every_bus_even_when_a_service_is_absent():
    out = subprocess.run([sys.executable, "-m", "provisioning.cli", "detect", "--json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    rows = json.loads(out)
    assert isinstance(rows, list) and rows
    assert all({"bus", "address", "description"} <= set(r) for r in rows)
    assert {r["bus"] for r in rows} >= {"pcsc", "cups"}  # each source reports, even when absent


def test_detect_toml_is_a_devices_section_the_config_accepts():
    import tomllib

    from kiosk import config

    out = subprocess.run([sys.executable, "-m", "provisioning.cli", "detect", "--toml"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    devices = tomllib.loads(out)["devices"]
    assert set(devices) == set(config.DEVICE_NAMES)
    cfg = config.from_dict({"devices": devices})
    # this machine has none of the supported devices plugged in, so each is disabled, never a simulator
    assert all(not d.enabled or d.driver != "sim" for d in cfg.devices.values())


def test_init_detect_writes_what_detect_suggests(tmp_path):
    import tomllib

    from kiosk import config

    suggested = subprocess.run([sys.executable, "-m", "provisioning.cli", "detect", "--toml"],
                               capture_output=True, text=True, timeout=60, check=True).stdout
    target = tmp_path / "kiosk.toml"
    proc = subprocess.run([sys.executable, "-m", "provisioning.cli", "init", "--config", str(target), "--detect"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    written = tomllib.loads(target.read_text(encoding="utf-8"))["devices"]
    assert written == tomllib.loads(suggested)["devices"]
    assert set(config.load(target).devices) == set(config.DEVICE_NAMES)


def test_detect_without_pcscd_or_cupsd_says_how_to_start_them(tmp_path):
    """libpcsclite and the CUPS client are pointed at sockets nobody listens on: the real 'not running' answers."""
    import os

    env = {**os.environ, "PCSCLITE_CSOCK_NAME": str(tmp_path / "pcscd.comm"),
           "CUPS_SERVER": str(tmp_path / "cups.sock")}
    proc = subprocess.run([sys.executable, "-m", "provisioning.cli", "detect", "--json"], capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    found = {f["bus"]: f for f in json.loads(proc.stdout) if f["address"] == "-"}
    assert "start pcscd: `systemctl start pcscd.socket`" in found["pcsc"]["description"]
    assert "pcscd --foreground" in found["pcsc"]["description"]
    assert "Scheduler is not running" in found["cups"]["description"]
    assert "start CUPS: `systemctl start cups` (or `cupsd`" in found["cups"]["description"]
