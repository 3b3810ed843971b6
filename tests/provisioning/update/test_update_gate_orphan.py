"""The trial kiosk never outlives the gate unwatched: when the updater is killed between the fork and the request
for a death signal, the child ends itself before it runs anything."""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from pathlib import Path

from provisioning.update.gate import _die_with_parent


def _spawn(marker: Path, parent: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", f"open({str(marker)!r}, 'w').close()"],
                            preexec_fn=functools.partial(_die_with_parent, parent))


def test_a_child_whose_parent_is_already_gone_ends_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    # The parent the child was started for is not the one it has: as when the updater died right after the fork.
    proc = _spawn(marker, parent=os.getpid() + 1_000_000)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert not marker.exists()


def test_a_child_whose_parent_lives_runs(tmp_path):
    marker = tmp_path / "ran"
    proc = _spawn(marker, parent=os.getpid())
    assert proc.wait(timeout=30) == 0
    assert marker.exists()
