"""Power cuts: `update apply` SIGKILLed mid-download, mid-virtual-environment, right after the switch and mid-gate
always leaves a whole release in `current`, and the next run cleans up or finishes the job."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from gate_fixtures import kill_when, pid_gone, stalling_terminal, start_apply
from release_fixtures import CODE_ONLY, FULL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


def _running_from(root: Path) -> list[int]:
    """PIDs of live processes whose command line names a path under ``root`` (zombies are not running)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().split(")")[-1].split()[0]
        except OSError:
            continue
        if state != "Z" and str(root).encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def no_kiosk_left(tmp_path):
    """After the test, nothing runs from its terminal's folders: what does is stopped by PID, and the test fails."""
    yield
    left = _running_from(tmp_path)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, f"processes left running from the test's terminal: {left}"


def test_sigkill_at_each_step_leaves_a_release_running_and_the_next_run_finishes(first_install, tmp_path,
                                                                                 stalling_server, wheelhouse,
                                                                                 no_kiosk_left):
    term = stalling_terminal(first_install, tmp_path, stalling_server)
    term.publish(CODE_ONLY)
    new = wheelhouse.project_wheel(CODE_ONLY)
    server = term.server
    releases = term.root / "opt/police-kiosk/releases"
    update_dir = term.state / "update"
    pending = update_dir / "pending.json"

    # 1. mid-download: the project's wheel is half sent when the power goes
    server.stall_prefix = f"/targets/wheels/{new['sha256']}/"
    proc = start_apply(term.config, term.root)
    kill_when(proc, server.stalled.is_set, "the wheel's download")
    assert term.current == f"releases/{FULL}" and term.releases() == [FULL]
    assert not (update_dir / "wheels" / new["sha256"]).exists()  # half a wheel is never kept
    server.stall_prefix = ""
    server.release.set()

    # 2. mid-virtual-environment: the release folder exists, its completion marker does not
    proc = start_apply(term.config, term.root)
    kill_when(proc, lambda: (releases / CODE_ONLY / "pyvenv.cfg").exists(), "the virtual environment")
    assert term.current == f"releases/{FULL}"
    assert not (releases / CODE_ONLY / "police-kiosk-release.json").exists()

    # 3. right after the switch: current names the new release, whose gate has not passed
    proc = start_apply(term.config, term.root)
    kill_when(proc, lambda: term.current == f"releases/{CODE_ONLY}", "the switch", timeout_s=900)
    assert "removed what an interrupted apply left: 1.0.1" in proc.stderr.read()  # step 2's half-built folder
    record = json.loads(pending.read_text())
    assert (record["version"], record["previous"], record["phase"]) == (CODE_ONLY, FULL, "gate")
    assert (releases / CODE_ONLY / "police-kiosk-release.json").exists()  # a whole release, switched to

    # 4. mid-gate: the new kiosk has been started and is being watched
    proc = start_apply(term.config, term.root)
    kill_when(proc, lambda: json.loads(pending.read_text()).get("trial_pid") is not None, "the gate's kiosk start")
    trial = json.loads(pending.read_text())["trial_pid"]
    assert pid_gone(trial)  # the trial kiosk goes down with the gate that watched it
    assert term.current == f"releases/{CODE_ONLY}"

    # 5. the next run finishes the job: the gate runs again and passes
    proc, answer = term.apply()
    assert proc.returncode == 0, answer
    assert (answer["outcome"], answer["version"], answer["reason"]) == ("installed", CODE_ONLY, None)
    assert "running its health gate again" in proc.stderr
    assert term.current == f"releases/{CODE_ONLY}" and term.releases() == [FULL, CODE_ONLY]
    assert not pending.exists() and not list((update_dir / "downloads").glob("**/*"))
    assert json.loads((update_dir / "last.json").read_text())["outcome"] == "installed"
    proc, again = term.apply()
    assert proc.returncode == 0 and again["outcome"] == "up_to_date" and again["version"] == CODE_ONLY
