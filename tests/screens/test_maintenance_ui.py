"""Maintenance mode and remote commands through the real UI: corner gesture, PIN pad, menu, notices."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from kiosk.services.heartbeat import HeartbeatSender

pytestmark = pytest.mark.ui

PIN = "735190"
CORNER_INSET = 5  # px from the window's edges: inside the corner, outside the header's buttons


def corners(ui: Any, order: tuple[str, ...] = ("top_left", "top_right", "bottom_right", "bottom_left")) -> None:
    """Touch the window's corners in ``order``, as the technician does."""
    from kivy.core.window import Window

    w, h = Window.size
    points = {"top_left": (CORNER_INSET, h - CORNER_INSET), "top_right": (w - CORNER_INSET, h - CORNER_INSET),
              "bottom_right": (w - CORNER_INSET, CORNER_INSET), "bottom_left": (CORNER_INSET, CORNER_INSET)}
    for name in order:
        ui.tap_at(*points[name])


def type_pin(ui: Any, pin: str) -> None:
    for digit in pin:
        ui.tap_id(f"key_{digit}")
    ui.tap_id("pin_ok")


def pin_message(ui: Any) -> str:
    return ui.find("pin_message", "maintenance_pin").text


@pytest.fixture
def tech(ui: Any) -> Any:
    """The shared UI with a known technician PIN and a fresh attempt counter."""
    ui.app.maintenance.access.set_pin(PIN)
    yield ui
    ui.app.maintenance.access.set_pin(PIN)  # lifts a lockout a test left behind
    if ui.app.maintenance.active:
        ui.app.leave_maintenance()


def test_corners_out_of_order_do_not_open_maintenance(tech: Any) -> None:
    corners(tech, ("top_left", "bottom_right", "top_right", "bottom_left"))
    tech.wait_seconds(0.3)
    assert tech.current == "home"


def test_gesture_pin_menu_test_print_and_back_to_service(tech: Any) -> None:
    app = tech.app
    corners(tech)
    tech.wait_screen("maintenance_pin")
    type_pin(tech, "111222")
    tech.wait_until(lambda: "4" in pin_message(tech), "the attempts left")
    assert tech.current == "maintenance_pin"
    type_pin(tech, PIN)
    tech.wait_screen("maintenance")
    assert app.maintenance.active and app.runtime.health.out_of_service_reason() == "maintenance"
    tech.wait_until(lambda: "receipt_printer" in tech.find("device_status").text, "the device status")
    printer = app.runtime.devices.receipt_printer
    jobs = len(printer.jobs)
    tech.tap_id("test_receipt")
    tech.wait_until(lambda: len(printer.jobs) == jobs + 1, "the receipt test page")
    tech.wait_until(lambda: tech.find("maintenance_message").text == app.tr("Receipt test page printed"),
                    "the printed message")
    tech.tap_id("reset_paper")
    tech.wait_until(lambda: "凭条打印机" in tech.find("paper_counter").text, "the paper counter")
    tech.tap_id("export_logs")
    tech.wait_until(lambda: "exports" in tech.find("maintenance_detail").text, "the export")  # the path: data
    assert tech.find("maintenance_message").text == "日志已导出到："
    exported = [p for d in (app.runtime.state_dir / "exports").iterdir() for p in d.iterdir()]
    assert exported and all(p.name.startswith("kiosk.log") for p in exported)
    tech.tap_id("leave_button")
    tech.wait_screen("home")
    assert not app.maintenance.active
    tech.wait_until(lambda: not app.runtime.out_of_service(), "back in service")


def test_a_technician_who_walks_away_is_timed_out_back_into_service(tech: Any) -> None:
    app = tech.app
    corners(tech)
    tech.wait_screen("maintenance_pin")
    type_pin(tech, PIN)
    tech.wait_screen("maintenance")
    assert app.runtime.out_of_service()
    tech.wait_screen("home", timeout=45)  # the idle timeout (30 s here) ends the visit
    assert not app.maintenance.active
    tech.wait_until(lambda: not app.runtime.out_of_service(), "back in service")


def test_five_wrong_pins_lock_and_say_until_when(tech: Any) -> None:
    corners(tech)
    tech.wait_screen("maintenance_pin")
    for left in (4, 3, 2, 1):
        type_pin(tech, "9")  # any wrong entry counts, however short
        tech.wait_until(lambda: str(left) in pin_message(tech), f"{left} attempts left")
    type_pin(tech, "9")  # any wrong entry counts, however short
    tech.wait_until(lambda: "locked until" in pin_message(tech).lower() or "锁定" in pin_message(tech),
                    "the lockout message")
    assert tech.find("pin_ok").disabled
    tech.tap_id("pin_cancel")
    tech.wait_screen("home")
    corners(tech)  # the lock holds across visits to the pad
    tech.wait_screen("maintenance_pin")
    assert tech.find("pin_ok").disabled and pin_message(tech)
    tech.tap_id("pin_cancel")
    tech.wait_screen("home")


def test_remote_notice_reaches_the_screen_and_a_replay_is_ignored(tech: Any, tmp_path: Path) -> None:
    app = tech.app
    runtime = app.runtime
    terminal = runtime.config.terminal.id
    text = "设备检修，请到一楼窗口办理"
    r = requests.post(f"{runtime.sim.url}/api/v1/sim/terminals/{terminal}/commands",
                      json={"kind": "out_of_service_notice", "args": {"text": text}}, timeout=5)
    r.raise_for_status()
    sender = HeartbeatSender.from_runtime(runtime, app.command_handler())
    first = sender.beat()
    assert [(o.kind, o.status) for o in first.commands] == [("out_of_service_notice", "accepted")]
    tech.wait_screen("out_of_service")
    tech.wait_until(lambda: tech.find("notice").text == text, "the operator's notice")
    # The operator lifts it (leave_maintenance), then the notice comes again with its acknowledgement lost.
    requests.post(f"{runtime.sim.url}/api/v1/sim/terminals/{terminal}/commands",
                  json={"kind": "leave_maintenance"}, timeout=5).raise_for_status()
    (runtime.state_dir / "heartbeat" / "acks.json").unlink()
    second = sender.beat()
    outcomes = {o.kind: (o.status, o.reason) for o in second.commands}
    assert outcomes == {"out_of_service_notice": ("rejected", "replayed"), "leave_maintenance": ("accepted", "")}
    tech.wait_screen("home")
    tech.wait_seconds(0.5)
    assert tech.current == "home" and not runtime.out_of_service() and app.oos_notice == ""
