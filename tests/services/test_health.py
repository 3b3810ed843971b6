"""Health monitor: which items a broken device or a down backend disables, out of service, recovery, metrics, CLI."""
from __future__ import annotations

import json
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import polib
import pytest
import tomli_w

from kiosk.hardware.base import DeviceState, SupplyState, status
from kiosk.i18n import LOCALE_DIR
from kiosk.services import health as H
from kiosk.services.catalog import Catalog
from kiosk.services.metrics import KioskMetrics

CATALOG = Catalog.load()
DEVICES = ("id_card", "pcsc", "receipt_printer", "a4_printer", "scanner", "camera", "speaker")
OK = status(DeviceState.ONLINE, {"paper": SupplyState.OK})


class FakeDevices:
    """Devices.statuses() stand-in whose states a test sets directly."""

    def __init__(self) -> None:
        self.states = {name: OK for name in DEVICES}

    def statuses(self) -> dict[str, Any]:
        return dict(self.states)


class Backend:
    def __init__(self) -> None:
        self.up = True

    def __call__(self) -> bool:
        return self.up


def fake_statvfs(free_mb: float, total_mb: float = 10_000) -> Any:
    return lambda _path: types.SimpleNamespace(f_bavail=int(free_mb * 256), f_frsize=4096,
                                               f_blocks=int(total_mb * 256))


@pytest.fixture
def world(tmp_path: Path) -> Any:
    devices, backend = FakeDevices(), Backend()
    monitor = H.HealthMonitor(CATALOG, devices, backend, backend_url="http://backend.test", terminal_id="T1",
                              disk=H.DiskGuard(tmp_path, 100, 150, statvfs=fake_statvfs(5000)))
    return types.SimpleNamespace(devices=devices, backend=backend, monitor=monitor)


def test_needed_devices_follow_identity_and_outputs() -> None:
    got = {i: set(H.needed_devices(CATALOG.get(i))) for i in ("H01", "T03", "S17", "S01", "E01")}
    h01 = CATALOG.get("H01")
    assert h01.identity == "id_card" and "a4_document" in h01.outputs
    assert {"id_card", "a4_printer"} <= got["H01"] and "camera" not in got["H01"]
    assert "receipt_printer" in got["T03"] and "a4_printer" not in got["T03"]
    assert got["S17"] == set()  # a guide needs nothing
    assert CATALOG.get("S01").identity == "id_card_and_face" and {"id_card", "camera"} <= got["S01"]
    assert CATALOG.get("E01").identity == "travel_document" and "pcsc" in got["E01"]
    # The scanner only saves typing: the resident can type the details that open the chip.
    assert "id_card" not in got["E01"] and "scanner" not in got["E01"]
    # A query shows its results; its slip is offered only when the printer can print it.
    assert CATALOG.get("T01").slip_on_request and "receipt_printer" not in H.needed_devices(CATALOG.get("T01"))


def test_everything_runs_when_all_is_well(world: Any) -> None:
    snap = world.monitor.poll()
    assert snap.unavailable == {} and not snap.out_of_service and snap.healthy
    assert all(world.monitor.item_available(item) for item in CATALOG.items)


def test_a_broken_device_disables_only_the_items_that_need_it(world: Any) -> None:
    world.devices.states["a4_printer"] = status(DeviceState.ONLINE, {"paper": SupplyState.OUT})
    snap = world.monitor.poll()
    needing = {i.id for i in CATALOG.items if "a4_printer" in H.needed_devices(i)}
    assert needing and set(snap.unavailable) == needing
    assert set(snap.unavailable.values()) == {"a4_printer_unavailable"}
    ok, reason = world.monitor.item_available(CATALOG.get("H01"))
    assert (ok, reason) == (False, "a4_printer_unavailable")
    assert world.monitor.item_available(CATALOG.get("T03"))
    assert not snap.out_of_service and not snap.healthy
    # Paper low is a warning, not a stop.
    world.devices.states["a4_printer"] = status(DeviceState.ONLINE, {"paper": SupplyState.LOW})
    assert world.monitor.poll().unavailable == {}


def test_backend_down_disables_backend_items_keeps_guides_and_recovers(world: Any) -> None:
    world.backend.up = False
    snap = world.monitor.poll()
    guides = [i for i in CATALOG.items if i.kind == "guide"]
    assert guides and all(snap.availability(g) for g in guides)
    assert {i.id for i in CATALOG.items if i.needs_backend} == set(snap.unavailable)
    assert set(snap.unavailable.values()) == {"backend_unavailable"}
    assert snap.to_dict()["backend"] == {"up": False, "url": "http://backend.test"}
    world.backend.up = True
    assert world.monitor.poll().unavailable == {}


def test_device_reason_wins_over_backend(world: Any) -> None:
    world.backend.up = False
    world.devices.states["id_card"] = status(DeviceState.OFFLINE)
    assert world.monitor.poll().unavailable["H01"] == "id_card_unavailable"


def test_a_disabled_device_counts_as_missing(world: Any) -> None:
    del world.devices.states["camera"]
    snap = world.monitor.poll()
    assert snap.unavailable["S01"] == "camera_unavailable" and "H01" not in snap.unavailable


def test_nothing_usable_is_out_of_service_and_comes_back_by_itself(world: Any) -> None:
    no_guides = types.SimpleNamespace(items=tuple(i for i in CATALOG.items if i.kind != "guide"))
    monitor = H.HealthMonitor(no_guides, world.devices, world.backend)
    world.backend.up = False
    for name in DEVICES:
        world.devices.states[name] = status(DeviceState.NO_DEVICE)
    assert monitor.out_of_service() is True
    assert monitor.out_of_service_reason() == H.NOTHING_USABLE
    world.backend.up = True
    world.devices.states.update({name: OK for name in DEVICES})
    monitor.poll()
    assert monitor.out_of_service() is False and monitor.out_of_service_reason() == ""


def test_operator_notice_takes_the_kiosk_out_of_service_until_lifted(world: Any) -> None:
    world.monitor.set_out_of_service("remote_notice")
    assert world.monitor.out_of_service() and world.monitor.out_of_service_reason() == "remote_notice"
    assert world.monitor.item_available(CATALOG.get("S17")).reason == "remote_notice"
    world.monitor.clear_out_of_service()
    assert not world.monitor.out_of_service() and world.monitor.item_available(CATALOG.get("S17"))


def test_listeners_hear_changes_only(world: Any) -> None:
    heard: list[Any] = []
    world.monitor.listeners.append(heard.append)
    world.monitor.poll()
    world.monitor.poll()
    assert len(heard) == 1  # the first answer, then nothing changed
    world.devices.states["receipt_printer"] = status(DeviceState.USER_ERROR, {"paper": SupplyState.OK},
                                                     {"cover_open"})
    world.monitor.poll()
    assert len(heard) == 2 and heard[-1].unavailable["T03"] == "receipt_printer_unavailable"


def test_snapshot_is_reused_until_it_is_older_than_max_age(world: Any) -> None:
    now = [1000.0]
    world.monitor.clock = lambda: now[0]
    first = world.monitor.poll()
    world.devices.states["id_card"] = status(DeviceState.OFFLINE)
    assert world.monitor.snapshot() is first  # within max_age: no new poll
    now[0] += world.monitor.max_age_s + 0.1
    assert world.monitor.snapshot().unavailable["H01"] == "id_card_unavailable"


def test_a_probe_that_raises_counts_as_backend_down(world: Any) -> None:
    def probe() -> bool:
        raise RuntimeError("boom")

    monitor = H.HealthMonitor(CATALOG, world.devices, probe)
    assert monitor.poll().backend_up is False


def test_metrics_show_devices_supplies_and_service_state(world: Any) -> None:
    metrics = KioskMetrics("T1")
    world.monitor.attach_metrics(metrics)
    world.devices.states["receipt_printer"] = status(DeviceState.ONLINE, {"paper": SupplyState.OUT})
    world.backend.up = False
    world.monitor.poll()
    text = metrics.exposition().decode()
    assert 'kiosk_device_up{device="receipt_printer"} 1.0' in text
    assert 'kiosk_supply_state{state="out",supply="receipt_printer_paper"} 1.0' in text
    assert "kiosk_backend_up 0.0" in text and "kiosk_out_of_service 0.0" in text
    assert f"kiosk_items_unavailable {float(len(world.monitor.unavailable_items()))}" in text
    world.devices.states["receipt_printer"] = OK
    world.backend.up = True
    world.monitor.poll()
    text = metrics.exposition().decode()
    assert 'kiosk_supply_state{state="ok",supply="receipt_printer_paper"} 1.0' in text
    assert "kiosk_backend_up 1.0" in text and "kiosk_items_unavailable 0.0" in text
    # A second monitor on the same metrics reuses the gauges instead of registering them twice.
    H.HealthMonitor(CATALOG, world.devices, world.backend, metrics=metrics).poll()


def test_health_json_shape(world: Any) -> None:
    world.devices.states["a4_printer"] = status(DeviceState.USER_ERROR, {"paper": SupplyState.OK}, {"jam"})
    data = json.loads(json.dumps(world.monitor.poll().to_dict()))
    assert set(data) >= {"devices", "backend", "disk", "out_of_service", "unavailable_items"}
    assert data["devices"]["a4_printer"] == {"state": "user_error", "supplies": {"paper": "ok"},
                                             "conditions": ["jam"], "usable": False}
    assert data["unavailable_items"]["H01"] == "a4_printer_unavailable"
    assert data["disk"]["low"] is False and data["terminal"] == "T1"


def test_every_notice_is_translated() -> None:
    po = {e.msgid: e.msgstr for e in polib.pofile(str(LOCALE_DIR / "zh_CN" / "LC_MESSAGES" / "health.po"))}
    reasons = [f"{d}_unavailable" for d in DEVICES] + [H.BACKEND_UNAVAILABLE, H.DISK_FULL, H.NOTHING_USABLE]
    english = {H.notice(r, "en") for r in reasons}
    assert len(english) == len(reasons)  # each reason says its own thing
    for text in english | {H.DiskFull.message_en}:
        assert po.get(text), text
    assert H.notice("a4_printer_unavailable", "zh_CN") == po[H.notice("a4_printer_unavailable", "en")]
    assert H.Availability(True).notice() == "" and H.Availability(False, "camera_unavailable").notice("zh_CN")


# --- against the simulated devices, through the runtime ------------------------------------
def test_runtime_availability_follows_the_simulator_and_recovers(runtime: Any) -> None:
    a4 = runtime.devices.a4_printer
    a4.inject("paper_out", True)
    runtime.health.poll()
    assert tuple(runtime.item_available(runtime.catalog.get("H01"))) == (False, "a4_printer_unavailable")
    a4.clear("paper_out")
    runtime.health.poll()
    assert runtime.item_available(runtime.catalog.get("H01"))
    assert runtime.out_of_service() is False


def test_a_missing_speaker_disables_no_item_but_is_a_fault_the_operator_sees(runtime: Any) -> None:
    metrics = KioskMetrics(runtime.config.terminal.id)
    runtime.attach_metrics(metrics)
    runtime.devices.speaker.inject("no_device", True)
    snap = runtime.health.poll()
    assert snap.devices["speaker"].state == DeviceState.NO_DEVICE
    assert snap.unavailable == {} and not snap.out_of_service
    assert not snap.healthy and snap.to_dict()["devices"]["speaker"]["usable"] is False
    text = metrics.exposition().decode()
    assert 'kiosk_device_up{device="speaker"} 0.0' in text
    assert 'kiosk_device_state{device="speaker",state="no_device"} 1.0' in text
    runtime.devices.speaker.clear("no_device")
    assert runtime.health.poll().healthy or runtime.health.poll().devices["speaker"].usable


def test_background_thread_sees_a_fault_and_the_recovery(runtime: Any) -> None:
    metrics = KioskMetrics(runtime.config.terminal.id)
    runtime.attach_metrics(metrics)
    runtime.health.interval_s = 0.05
    reader = runtime.devices.id_card
    runtime.start_monitoring()
    assert runtime.health.running

    def wait(cond: Any, what: str) -> None:
        deadline = time.monotonic() + 20
        while not cond():
            assert time.monotonic() < deadline, f"health thread never saw {what}"
            time.sleep(0.02)

    reader.inject("offline", True)
    wait(lambda: 'kiosk_device_up{device="id_card"} 0.0' in metrics.exposition().decode(), "the reader offline")
    assert runtime.health.snapshot(max_age_s=60).unavailable.get("H01") == "id_card_unavailable"
    reader.clear("offline")
    wait(lambda: 'kiosk_device_up{device="id_card"} 1.0' in metrics.exposition().decode(), "the reader back")
    assert "H01" not in runtime.health.snapshot(max_age_s=60).unavailable
    runtime.health.stop()
    assert not runtime.health.running


# --- `kiosk health --json` ------------------------------------------------------------------
def _kiosk(args: list[str], config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120)


def test_cli_health_json_demo_is_healthy(tmp_path: Path) -> None:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n[upkeep]\nmin_free_mb = 1\nresume_free_mb = 1\n')
    out = _kiosk(["health", "--json"], cfg)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert set(data["devices"]) == set(DEVICES)
    assert all(d["state"] == "online" for d in data["devices"].values())
    assert data["devices"]["receipt_printer"]["supplies"] == {"paper": "ok"}
    assert data["backend"]["up"] is True and data["backend"]["url"] == "embedded"
    assert data["disk"]["low"] is False and data["disk"]["free_mb"] > 1
    assert data["out_of_service"] is False and data["unavailable_items"] == {}


def test_cli_health_exits_non_zero_when_a_device_is_down(tmp_path: Path) -> None:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(f'[paths]\nstate_dir = "{tmp_path / "state"}"\n'
                   '[upkeep]\nmin_free_mb = 1\nresume_free_mb = 1\n'
                   '[devices.a4_printer.faults]\noffline = true\n')
    out = _kiosk(["health", "--json"], cfg)
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert data["devices"]["a4_printer"]["state"] == "offline"
    assert data["unavailable_items"]["H01"] == "a4_printer_unavailable"
    assert "T03" not in data["unavailable_items"]
    table = _kiosk(["health"], cfg)
    assert table.returncode == 1 and "DOWN a4_printer" in table.stdout


# --- production: a device the catalog needs, disabled or missing, is a failure ----------------
PRODUCTION_ALL_OFF = {
    "profile": "production", "terminal": {"id": "JN-LX-0042"},
    "backend": {"url": "https://127.0.0.1:9", "public_key": "bnoc3Smwt4/ROvTFWY/v9O8qlxZuPKby5Pv8zYBQW/E=",
                "hmac_secret": "enrolled-secret", "ca_file": "/nonexistent/backend-ca.pem",
                "client_cert_file": "/nonexistent/terminal.crt", "client_key_file": "/nonexistent/terminal.key",
                "retries": 0, "connect_timeout_s": 1},
    "devices": {name: {"enabled": False} for name in DEVICES}}


def test_production_with_needed_devices_disabled_is_not_healthy_even_when_all_else_is(tmp_path: Path) -> None:
    from kiosk.config import from_dict
    from kiosk.services.catalog import Catalog
    from kiosk.services.health import HealthSnapshot
    from kiosk.services.health_cli import report

    catalog = Catalog.load()
    snap = HealthSnapshot({}, True, "https://backend.example", None, {}, False, "", 0.0)
    assert snap.healthy  # the snapshot alone sees nothing wrong: no device configured, backend up
    prod = report(from_dict({**PRODUCTION_ALL_OFF, "paths": {"state_dir": str(tmp_path)}}), snap, catalog)
    assert prod["healthy"] is False and prod["profile"] == "production"
    lacking = {d["device"]: d for d in prod["devices_lacking"]}
    assert set(lacking) == {"id_card", "camera", "pcsc", "a4_printer", "receipt_printer"}
    assert lacking["id_card"]["why"] == "disabled" and "H01" in lacking["id_card"]["items"]
    assert "G02" not in {i for d in lacking.values() for i in d["items"]}  # guides need no device
    demo = report(from_dict({"devices": {name: {"enabled": False} for name in DEVICES}}), snap, catalog)
    assert demo["healthy"] is True and demo["devices_lacking"] == []


def test_cli_health_in_production_lists_the_items_that_cannot_run_and_why(tmp_path: Path) -> None:
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(tomli_w.dumps({**PRODUCTION_ALL_OFF, "paths": {"state_dir": str(tmp_path / "state")},
                                  "upkeep": {"min_free_mb": 1, "resume_free_mb": 1}}))
    out = _kiosk(["health"], cfg)
    assert out.returncode == 1, out.stderr
    assert "(production): PROBLEM" in out.stdout
    assert "id_card is disabled in the config ([devices.id_card] enabled = false)" in out.stdout
    assert "H01 Household registration certificate: id_card_unavailable" in out.stdout
    assert "run `kiosk-provision init --detect` or set each device's driver" in out.stdout
    # the backend is down too, and the report says why (here: the pinned CA file is missing)
    backend_line = next(line for line in out.stdout.splitlines() if "backend" in line and "DOWN" in line)
    assert "/nonexistent/backend-ca.pem" in backend_line
    data = json.loads(_kiosk(["health", "--json"], cfg).stdout)
    assert data["healthy"] is False and data["backend"]["reason"]
    assert {d["device"] for d in data["devices_lacking"]} >= {"id_card", "receipt_printer"}
