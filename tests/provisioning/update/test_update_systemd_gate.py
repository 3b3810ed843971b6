"""The health gate's systemd side, against a stand-in `systemctl` (no systemd runs as PID 1 on the test machine):
a restart is asked without blocking, READY is the Type=notify unit turning active/running, a second new main PID is
a second restart, and health is the run status the new kiosk writes."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from provisioning.update.gate import SystemdGate

SYSTEMCTL = """#!/bin/sh
echo "$*" >> "{calls}"
[ "$1" = show ] && cat "{show}"
exit 0
"""


def _gate(tmp_path: Path, gate_s: float = 20) -> tuple[SystemdGate, Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    fake = tmp_path / "systemctl"
    fake.write_text(SYSTEMCTL.format(calls=tmp_path / "calls", show=tmp_path / "show"))
    fake.chmod(0o755)
    _unit(tmp_path, "active", "running", 100)
    gate = SystemdGate(tmp_path / "state", gate_s)
    gate.systemctl = str(fake)
    (tmp_path / "state").mkdir()
    return gate, tmp_path / "show"


def _unit(tmp_path: Path, active: str, sub: str, pid: int) -> None:
    (tmp_path / "show.new").write_text(f"ActiveState={active}\nSubState={sub}\nMainPID={pid}\nNRestarts=0\n")
    (tmp_path / "show.new").replace(tmp_path / "show")


def _later(*steps) -> threading.Thread:
    def run() -> None:
        for delay, step in steps:
            time.sleep(delay)
            step()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _status(state: Path, version: str, serving: bool = True) -> None:
    (state / "run-status.json").write_text(json.dumps({"version": version, "pid": 200, "started_at": time.time(),
                                                       "at": time.time(), "serving": serving}))


def test_a_unit_that_turns_active_and_reports_serving_passes(tmp_path):
    gate, _show = _gate(tmp_path)
    _status(gate.state_dir, "2.0.0")  # the old kiosk's status: older than the restart, another version
    _later((0.5, lambda: _unit(tmp_path, "activating", "start", 200)),
           (0.5, lambda: _unit(tmp_path, "active", "running", 200)),
           (0.5, lambda: _status(gate.state_dir, "2.1.0")))
    seen: list[int] = []
    verdict = gate.watch("2.1.0", on_started=seen.append)
    assert verdict.ok and verdict.restarts == 0 and verdict.ready_s is not None and seen == [200]
    assert "restart --no-block kiosk.service" in (tmp_path / "calls").read_text().splitlines()


def test_a_unit_restarting_twice_or_failed_is_kiosk_exited(tmp_path):
    gate, _show = _gate(tmp_path)
    _later((0.5, lambda: _unit(tmp_path, "activating", "start", 201)),
           (0.7, lambda: _unit(tmp_path, "activating", "auto-restart", 202)),
           (0.7, lambda: _unit(tmp_path, "activating", "start", 203)))
    verdict = gate.watch("2.1.0")
    assert (verdict.ok, verdict.reason, verdict.restarts) == (False, "kiosk_exited", 2)
    gate, _show = _gate(tmp_path / "failed")
    _later((0.5, lambda: _unit(tmp_path / "failed", "failed", "failed", 0)))
    assert gate.watch("2.1.0").reason == "kiosk_exited"


def test_ready_without_a_serving_status_is_not_healthy_after_gate_s(tmp_path):
    gate, _show = _gate(tmp_path, gate_s=3)
    _later((0.3, lambda: _unit(tmp_path, "active", "running", 300)),
           (0.3, lambda: _status(gate.state_dir, "2.1.0", serving=False)))
    verdict = gate.watch("2.1.0")
    assert (verdict.ok, verdict.reason) == (False, "not_healthy") and verdict.seconds >= 3
    gate, _show = _gate(tmp_path / "never", gate_s=2)
    assert gate.watch("2.1.0").reason == "not_ready"  # never turned active with a new main PID
