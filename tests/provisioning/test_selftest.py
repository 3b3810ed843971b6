"""kiosk-provision selftest: devices, backend and clock; non-zero exit when anything fails."""
import json
import socket
import subprocess
import sys
import time

import pytest

from kiosk import config as kconfig
from kiosk.backend_sim.server import serve
from provisioning.init_config import write_config
from provisioning.selftest import run_selftest


@pytest.fixture(scope="module")
def backend():
    sim = serve("127.0.0.1", 0)
    yield sim
    sim.stop()


def _cfg(tmp_path, url, **devices):
    return kconfig.from_dict({"backend": {"url": url}, "paths": {"state_dir": str(tmp_path / "state")},
                              "devices": devices})


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_all_good_passes_with_every_device_and_a_signed_health(tmp_path, backend):
    report = run_selftest(_cfg(tmp_path, backend.url))
    names = [c.name for c in report.checks]
    assert names == ["device:id_card", "device:pcsc", "device:receipt_printer", "device:a4_printer",
                     "device:scanner", "device:camera", "device:speaker", "catalog", "backend", "clock"]
    assert report.ok, report.human()
    backend_check = next(c for c in report.checks if c.name == "backend")
    assert backend_check.data["signed"] is True
    clock = next(c for c in report.checks if c.name == "clock")
    assert abs(clock.data["skew_s"]) < 5


def test_cli_json_and_exit_status_when_a_printer_is_out_of_paper(tmp_path, backend):
    path = tmp_path / "kiosk.toml"
    write_config(path, {"backend": {"url": backend.url}, "paths": {"state_dir": str(tmp_path / "state")},
                        "devices": {"receipt_printer": {"faults": {"paper_out": True}},
                                    "a4_printer": {"faults": {"paper_low": True}},
                                    "camera": {"enabled": False}}})
    proc = subprocess.run([sys.executable, "-m", "provisioning.cli", "selftest", "--config", str(path), "--json"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert report["ok"] is False
    assert checks["device:receipt_printer"]["ok"] is False
    assert checks["device:receipt_printer"]["data"]["supplies"] == {"paper": "out"}
    assert checks["device:a4_printer"]["ok"] is True and checks["device:a4_printer"]["warning"] is True
    assert "device:camera" not in checks  # disabled devices are not tested
    assert checks["backend"]["ok"] and checks["clock"]["ok"]


def test_human_report_marks_failures_and_backend_down_fails(tmp_path):
    url = f"http://127.0.0.1:{_closed_port()}"
    cfg = kconfig.from_dict({"backend": {"url": url, "retries": 0, "connect_timeout_s": 1},
                             "paths": {"state_dir": str(tmp_path / "state")}})
    report = run_selftest(cfg)
    assert not report.ok
    failed = {c.name for c in report.checks if not c.ok}
    assert failed == {"backend", "clock"}
    text = report.human()
    assert "[FAIL] backend" in text and "backend_unavailable" in text and text.endswith("selftest FAILED")


def test_clock_drift_beyond_half_the_allowed_skew_fails(tmp_path, backend):
    cfg = _cfg(tmp_path, backend.url)
    skewed = run_selftest(cfg, now=lambda: time.time() + 600)
    clock = next(c for c in skewed.checks if c.name == "clock")
    assert not clock.ok and 595 < clock.data["skew_s"] < 605 and "ahead of" in clock.summary
    behind = run_selftest(cfg, now=lambda: time.time() - 100)  # within 150 s (half of 300)
    assert next(c for c in behind.checks if c.name == "clock").ok


def test_a_device_that_cannot_be_built_fails_the_device_check(tmp_path, backend):
    cfg = _cfg(tmp_path, backend.url, receipt_printer={"driver": "network", "options": {}})
    report = run_selftest(cfg)
    assert not report.ok
    assert report.checks[0].name == "devices" and "config_invalid" in report.checks[0].summary


def test_embedded_backend_is_started_and_checked(tmp_path):
    report = run_selftest(_cfg(tmp_path, "embedded"))
    assert report.ok, report.human()
    assert "127.0.0.1" in next(c for c in report.checks if c.name == "backend").summary


def test_a_real_driver_whose_device_is_absent_fails_alone(tmp_path, backend):
    cfg = _cfg(tmp_path, backend.url,
               receipt_printer={"driver": "network", "options": {"host": "127.0.0.1", "port": _closed_port()}})
    report = run_selftest(cfg)
    checks = {c.name: c for c in report.checks}
    assert not report.ok
    assert not checks["device:receipt_printer"].ok
    assert checks["device:receipt_printer"].summary.startswith("cannot open: device_offline")
    assert all(c.ok for name, c in checks.items() if name != "device:receipt_printer")


PRODUCTION_ALL_OFF = {
    "profile": "production", "terminal": {"id": "JN-LX-0042"},
    "backend": {"url": "https://127.0.0.1:9", "public_key": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=",
                "hmac_secret_file": "/nonexistent/hmac.secret", "ca_file": "/nonexistent/backend-ca.pem",
                "client_cert_file": "/nonexistent/terminal.crt", "client_key_file": "/nonexistent/terminal.key",
                "retries": 0, "connect_timeout_s": 1},
    "devices": {name: {"enabled": False} for name in kconfig.DEVICE_NAMES}}


def test_production_with_needed_devices_disabled_fails_and_names_the_items(tmp_path):
    path = tmp_path / "kiosk.toml"
    write_config(path, {**PRODUCTION_ALL_OFF, "paths": {"state_dir": str(tmp_path / "state")}})
    proc = subprocess.run([sys.executable, "-m", "provisioning.cli", "selftest", "--config", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "selftest passed" not in proc.stdout and proc.stdout.rstrip().endswith("selftest FAILED")
    assert "[FAIL] catalog" in proc.stdout and "65 of 71 items cannot run" in proc.stdout
    assert "H01 Household registration certificate: id_card_unavailable" in proc.stdout
    assert "run `kiosk-provision init --detect` or set each device's driver" in proc.stdout
    data = json.loads(subprocess.run([sys.executable, "-m", "provisioning.cli", "selftest", "--config", str(path),
                                      "--json"], capture_output=True, text=True, timeout=120).stdout)
    catalog = next(c for c in data["checks"] if c["name"] == "catalog")
    assert catalog["ok"] is False and "H01" in catalog["data"]["items_unavailable"]


def test_demo_with_a_device_disabled_warns_but_passes_the_catalog_check(tmp_path, backend):
    report = run_selftest(_cfg(tmp_path, backend.url, camera={"enabled": False}))
    catalog = next(c for c in report.checks if c.name == "catalog")
    assert catalog.ok and catalog.warning and "S01" in catalog.data["items_unavailable"]
