"""The switch-over end to end against a served repository: a release that passes the health gate and serves,
one whose kiosk crashes at start and one that never reports healthy (both rolled back by themselves, marked bad
and reported in the next heartbeat), deferral while a resident's session is open or outside the maintenance
window, and a signed update_now lifting the window.

No systemd runs here, so with ``--root`` the gate starts the new release's ``kiosk run --headless`` itself with
a NOTIFY_SOCKET it owns. Timings of the switch-over and of the rollback are printed (run with -s), never asserted.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator
from zoneinfo import ZoneInfo

import pytest
import requests
from prometheus_client import CollectorRegistry, generate_latest

from gate_fixtures import CRASH, HANG, add_update_keys, pid_gone
from release_fixtures import CODE_ONLY, FULL, write_config
from kiosk import config as kconfig
from kiosk.backend_sim.server import SimServer, serve
from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.services.backend import BackendClient
from kiosk.services.heartbeat import HeartbeatSender
from kiosk.services.maintenance_ops import KioskCommandHandler, MaintenanceService, UiHooks
from kiosk.services.update_status import UPDATE_NOW_FILE, SessionMarker, UpdateCollector

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
TERMINAL = "JN-TEST-0001"
SECRET = b"gate-test-terminal-secret"


@pytest.fixture
def backend() -> Iterator[SimServer]:
    """The backend simulator on loopback, knowing the test terminal."""
    server = serve("127.0.0.1", 0, terminals={TERMINAL: SECRET})
    try:
        yield server
    finally:
        server.stop()


def _sender(backend: SimServer, term: Any) -> HeartbeatSender:
    """The terminal's heartbeat, with the kiosk's own command handler."""
    cfg = kconfig.load(str(term.config))
    service = MaintenanceService(SimpleNamespace(state_dir=term.state, config=cfg), export_dir=term.base / "exports")
    client = BackendClient(backend.url, TERMINAL, SECRET, DEMO_BACKEND_PUBLIC_KEY, 1.0, 5.0, 0, 0.0)
    return HeartbeatSender(client, term.state, TERMINAL, DEMO_BACKEND_PUBLIC_KEY, lambda: {},
                           handler=KioskCommandHandler(service, UiHooks(restart=lambda: None)))


def _last_heartbeat(backend: SimServer) -> dict[str, Any]:
    stored = requests.get(f"{backend.url}/api/v1/sim/heartbeats", params={"terminal_id": TERMINAL}, timeout=5).json()
    return stored[-1]["heartbeat"]


def _window_away_from_now() -> str:
    """A one-hour maintenance window twelve hours from now, station time."""
    hour = (datetime.now(ZoneInfo("Asia/Shanghai")).hour + 12) % 24
    return f"{hour:02d}:00-{(hour + 1) % 24:02d}:00"


def _gate_starts(term: Any) -> int:
    log = term.state / "update" / "gate.log"
    return sum(1 for line in log.read_text().splitlines() if line.startswith("--- ")) if log.exists() else 0


def test_outside_the_window_update_now_lets_a_release_switch_pass_the_gate_and_serve(terminal, backend):
    terminal.publish(CODE_ONLY)
    write_config(terminal.config, terminal.state, terminal.server.url, window=_window_away_from_now())
    proc, answer = terminal.apply()
    assert proc.returncode == 0  # a deferred run is a successful run for systemd
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("deferred", CODE_ONLY, "outside_window")
    assert terminal.server.wheel_requests() == [] and terminal.releases() == [FULL]

    sender = _sender(backend, terminal)
    command = requests.post(f"{backend.url}/api/v1/sim/terminals/{TERMINAL}/commands",
                            json={"kind": "update_now", "ttl_s": 3600}, timeout=5).json()["command_id"]
    sender.beat()
    assert json.loads((terminal.state / UPDATE_NOW_FILE).read_text())["command_id"] == command

    proc, answer = terminal.apply()
    assert proc.returncode == 0, answer
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("installed", CODE_ONLY, None)
    assert terminal.current == f"releases/{CODE_ONLY}" and terminal.releases() == [FULL, CODE_ONLY]
    assert not (terminal.state / UPDATE_NOW_FILE).exists()  # used up
    assert not (terminal.state / "update" / "pending.json").exists()
    status = json.loads((terminal.state / "run-status.json").read_text())
    assert status["version"] == CODE_ONLY and status["serving"] is True  # the new kiosk itself said so
    assert pid_gone(status["pid"])  # the trial run was stopped once judged
    assert _gate_starts(terminal) == 1
    timings = answer["timings"]
    assert timings["gate_s"] >= timings["ready_s"] > 0
    print(f"\nswitch-over: rename {timings['switch_ms']} ms, READY after {timings['ready_s']} s, "
          f"serving after {timings['gate_s']} s")

    sender.beat()
    beat = _last_heartbeat(backend)
    assert beat["update"]["version"] == CODE_ONLY and beat["update"]["last_outcome"] == "installed"
    assert beat["update"]["reason"] is None and beat["update"]["at"]
    acks = dict(backend.app.db.conn.execute("SELECT command_id, ack_status FROM commands WHERE terminal_id = ?",
                                            (TERMINAL,)).fetchall())
    assert acks == {command: "accepted"}


def test_a_release_whose_kiosk_crashes_at_start_is_rolled_back_marked_bad_and_reported(terminal, gate_releases,
                                                                                      backend):
    terminal.publish(CRASH)
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("rolled_back", CRASH, "kiosk_exited")
    assert "crashes at start" in answer["detail"]
    assert terminal.current == f"releases/{FULL}" and terminal.releases() == [FULL]  # back, and the bad one gone
    assert _gate_starts(terminal) == 2  # one restart allowed, no more
    assert json.loads((terminal.state / "update" / "bad_versions.json").read_text()) == [CRASH]
    timings = answer["timings"]
    print(f"\nrollback (crash at start): judged after {timings['gate_s']} s, switched back in "
          f"{timings['rollback_ms']} ms")

    fetched = len(terminal.server.wheel_requests())
    proc, again = terminal.apply()  # the bad version is skipped from now on
    assert proc.returncode == 0 and (again["outcome"], again["version"], again["reason"]) == (
        "up_to_date", CRASH, "bad_version")
    assert len(terminal.server.wheel_requests()) == fetched
    assert json.loads((terminal.state / "update" / "last.json").read_text())["outcome"] == "rolled_back"
    _proc, seen = terminal.check()
    assert seen["bad_versions"] == [CRASH]

    _sender(backend, terminal).beat()
    update = _last_heartbeat(backend)["update"]
    assert (update["version"], update["last_outcome"], update["reason"]) == (CRASH, "rolled_back", "kiosk_exited")
    registry = CollectorRegistry()
    registry.register(UpdateCollector(terminal.state, FULL))
    text = generate_latest(registry).decode()
    assert 'kiosk_update_last_outcome{outcome="rolled_back"} 1.0' in text
    assert 'kiosk_update_last_outcome{outcome="installed"} 0.0' in text
    assert f'kiosk_release_info{{version="{FULL}"}} 1.0' in text
    page = requests.get(f"{backend.url}/fleet", params={"lang": "en"}, timeout=5).text
    assert "rolled_back" in page and CRASH in page


def test_a_release_that_never_reports_healthy_is_rolled_back_after_gate_s(terminal, gate_releases):
    add_update_keys(terminal.config, gate_s=15)
    terminal.publish(HANG)
    proc, answer = terminal.apply()
    assert proc.returncode == 1
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("rolled_back", HANG, "not_healthy")
    assert answer["timings"]["ready_s"] < 15 <= answer["timings"]["gate_s"]  # READY came; serving never did
    assert terminal.current == f"releases/{FULL}" and terminal.releases() == [FULL]
    assert _gate_starts(terminal) == 1
    assert json.loads((terminal.state / "update" / "bad_versions.json").read_text()) == [HANG]
    print(f"\nrollback (never healthy, gate_s 15): judged after {answer['timings']['gate_s']} s, switched back in "
          f"{answer['timings']['rollback_ms']} ms")


def test_an_open_session_defers_even_with_force_and_outside_the_window_defers_without_downloading(terminal):
    terminal.publish(CODE_ONLY)
    marker = SessionMarker(terminal.state)
    marker.open()  # as the kiosk does while a resident's transaction is open
    try:
        for extra in ((), ("--force",)):
            proc, answer = terminal.apply(*extra)
            assert proc.returncode == 0
            assert (answer["outcome"], answer["version"], answer["reason"]) == ("deferred", CODE_ONLY, "session_open")
    finally:
        marker.close()
    write_config(terminal.config, terminal.state, terminal.server.url, window=_window_away_from_now())
    proc, answer = terminal.apply()
    assert proc.returncode == 0 and (answer["outcome"], answer["reason"]) == ("deferred", "outside_window")
    assert terminal.server.wheel_requests() == []  # nothing fetched while it may not switch
    assert terminal.current == f"releases/{FULL}" and terminal.releases() == [FULL]
    last = json.loads((terminal.state / "update" / "last.json").read_text())
    assert (last["outcome"], last["reason"]) == ("deferred", "outside_window")
    assert datetime.fromisoformat(last["at"]) > datetime.now(ZoneInfo("UTC")) - timedelta(minutes=5)
