"""The switch-over's bookkeeping on a staging root: after a pass only the running and the previous release stay;
after a failed gate the version is marked bad first, `current` goes back and the failed folder goes; a pending
record is finished or dropped by the next run. (The gates themselves run end to end in test_update_gate.py.)"""
from __future__ import annotations

import hashlib
import json
import os

from provisioning.release.manifest import Manifest
from provisioning.update.gate import GateResult
from provisioning.update.layout import ReleaseLayout, UpdateState
from provisioning.update.switch import Switchover, read_pending


def _release(layout: ReleaseLayout, version: str) -> None:
    data = f"kiosk {version}".encode()
    manifest = Manifest.from_dict({"version": version, "requires_python": ">=3.11",
                                   "built_at": "2026-12-01T00:00:00+00:00", "min_from_version": None,
                                   "wheels": [{"file": f"police_kiosk-{version}-py3-none-any.whl",
                                               "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}]})
    layout.release_dir(version).mkdir(parents=True)
    layout.mark_complete(manifest)


class _Verdict:
    """A gate that answers what it is told and counts the restarts it is asked for."""

    def __init__(self, verdict: GateResult) -> None:
        self.verdict = verdict
        self.watched: list[str] = []
        self.restarts = 0

    def watch(self, version, on_started=None):
        self.watched.append(version)
        if on_started:
            on_started(4242)
        return self.verdict

    def restart(self) -> None:
        self.restarts += 1


def _setup(tmp_path):
    layout, state = ReleaseLayout(tmp_path / "root"), UpdateState(tmp_path / "state" / "update")
    state.dir.mkdir(parents=True)
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        _release(layout, version)
    layout.switch_current("1.1.0")
    return layout, state


def test_a_passed_gate_keeps_the_running_and_the_previous_release_only(tmp_path):
    layout, state = _setup(tmp_path)
    gate = _Verdict(GateResult(True, seconds=2.5, ready_s=1.0))
    result = Switchover(layout, state, gate).switch("1.2.0", (3, 1000))
    assert (result.outcome, result.version, result.downloaded_files) == ("installed", "1.2.0", 3)
    assert result.timings["gate_s"] == 2.5 and "switch_ms" in result.timings
    assert gate.watched == ["1.2.0"] and os.readlink(layout.current) == "releases/1.2.0"
    assert sorted(p.name for p in layout.releases.iterdir()) == ["1.1.0", "1.2.0"]
    assert read_pending(state) is None


def test_a_failed_gate_marks_bad_switches_back_restarts_and_removes_the_release(tmp_path):
    layout, state = _setup(tmp_path)
    gate = _Verdict(GateResult(False, "not_ready", "never said READY", seconds=120.0))
    result = Switchover(layout, state, gate).switch("1.2.0")
    assert (result.outcome, result.version, result.reason, result.detail) == (
        "rolled_back", "1.2.0", "not_ready", "never said READY")
    assert os.readlink(layout.current) == "releases/1.1.0" and gate.restarts == 1
    assert state.bad_versions() == ("1.2.0",)
    assert sorted(p.name for p in layout.releases.iterdir()) == ["1.0.0", "1.1.0"]
    assert read_pending(state) is None and "rollback_ms" in result.timings


def test_the_next_run_finishes_a_rollback_or_a_gate_and_drops_a_switch_that_never_happened(tmp_path):
    layout, state = _setup(tmp_path)
    pending = state.dir / "pending.json"
    # killed mid-rollback: marked bad already, current still on the failed release
    layout.switch_current("1.2.0")
    pending.write_text(json.dumps({"version": "1.2.0", "previous": "1.1.0", "phase": "rollback", "trial_pid": None,
                                   "reason": "kiosk_exited", "detail": "exited twice"}))
    gate = _Verdict(GateResult(True))
    result = Switchover(layout, state, gate).resume()
    assert (result.outcome, result.reason) == ("rolled_back", "kiosk_exited") and gate.watched == []
    assert os.readlink(layout.current) == "releases/1.1.0" and state.bad_versions() == ("1.2.0",)
    # killed before the rename: nothing to finish, the run starts over
    _release(layout, "1.3.0")
    pending.write_text(json.dumps({"version": "1.3.0", "previous": "1.1.0", "phase": "gate", "trial_pid": None}))
    assert Switchover(layout, state, gate).resume() is None and not pending.exists()
    # killed after the rename: the gate runs again
    layout.switch_current("1.3.0")
    pending.write_text(json.dumps({"version": "1.3.0", "previous": "1.1.0", "phase": "gate", "trial_pid": None}))
    result = Switchover(layout, state, gate).resume()
    assert (result.outcome, result.version) == ("installed", "1.3.0") and gate.watched == ["1.3.0"]
    assert sorted(p.name for p in layout.releases.iterdir()) == ["1.1.0", "1.3.0"]


def test_a_first_install_that_fails_its_gate_leaves_no_current(tmp_path):
    layout, state = ReleaseLayout(tmp_path / "root"), UpdateState(tmp_path / "state" / "update")
    state.dir.mkdir(parents=True)
    _release(layout, "1.0.0")
    result = Switchover(layout, state, _Verdict(GateResult(False, "kiosk_exited", "boom"))).switch("1.0.0")
    assert result.outcome == "rolled_back" and not os.path.lexists(layout.current)
    assert layout.installed_version() is None and state.bad_versions() == ("1.0.0",)
