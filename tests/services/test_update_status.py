"""What the kiosk and its updater tell each other: the maintenance window, the session marker, update_now, the
heartbeat's update block and the update metrics (checked by promtool)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from kiosk.services.update_status import (SESSION_MARKER, SessionMarker, UpdateCollector, clear_update_now,
                                          in_window, parse_window, pending_update_now, request_update_now,
                                          update_report)

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def _at(hh: int, mm: int) -> datetime:
    return datetime(2026, 12, 5, hh, mm)


@pytest.mark.parametrize("window, inside, outside", [
    ("02:00-05:00", [(2, 0), (4, 59)], [(1, 59), (5, 0), (14, 0)]),
    ("22:30-01:15", [(22, 30), (23, 59), (0, 0), (1, 14)], [(22, 29), (1, 15), (12, 0)]),  # across midnight
    ("00:00-00:00", [(0, 0), (12, 0), (23, 59)], []),  # ends where it starts: the whole day
])
def test_a_window_includes_its_start_excludes_its_end_and_may_cross_midnight(window, inside, outside):
    assert all(in_window(window, _at(*t)) for t in inside)
    assert not any(in_window(window, _at(*t)) for t in outside)


@given(st.text(max_size=20))
def test_a_window_is_exactly_hh_mm_hh_mm_or_refused(text):
    try:
        start, end = parse_window(text)
    except ValueError as exc:
        assert "HH:MM-HH:MM" in str(exc)
    else:
        assert 0 <= start < 1440 and 0 <= end < 1440 and text == f"{start // 60:02d}:{start % 60:02d}-" \
                                                                  f"{end // 60:02d}:{end % 60:02d}"


@pytest.mark.parametrize("bad", ["2:00-05:00", "24:00-01:00", "02:00 - 05:00", "02:60-03:00", "", "02:00-"])
def test_config_refuses_a_malformed_window(bad):
    from kiosk.config import from_dict
    from kiosk.errors import ConfigError

    with pytest.raises(ConfigError) as err:
        from_dict({"update": {"window": bad}})
    assert "update.window" in str(err.value.key)


def test_config_defaults_of_the_update_table():
    from kiosk.config import from_dict

    update = from_dict({}).update
    assert (update.window, update.gate_s, update.check_interval_h, update.repo, update.tuf_root) == (
        "02:00-05:00", 120.0, 6.0, "", "")


def test_the_session_marker_counts_only_while_its_kiosk_lives(tmp_path):
    marker = SessionMarker(tmp_path)
    assert not marker.is_open()
    marker.open()
    assert marker.is_open() and json.loads((tmp_path / SESSION_MARKER).read_text())["pid"] == os.getpid()
    marker.close()
    assert not marker.is_open() and not (tmp_path / SESSION_MARKER).exists()
    # a kiosk that crashed mid-session left its marker: a dead process never blocks updates
    child = subprocess.Popen(["true"])
    child.wait()
    (tmp_path / SESSION_MARKER).write_text(json.dumps({"pid": child.pid, "boot_id": _boot_id(), "since": "x"}))
    assert not marker.is_open()
    # nor does one from before a reboot whose pid happens to be alive now
    (tmp_path / SESSION_MARKER).write_text(json.dumps({"pid": os.getpid(), "boot_id": "another-boot"}))
    assert not marker.is_open()


def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def test_the_workflow_engine_keeps_the_marker_while_a_transaction_is_open(runtime):
    marker = SessionMarker(runtime.state_dir)
    assert not marker.is_open()
    txn = runtime.engine.start(runtime.catalog.items[0].id)
    assert marker.is_open()
    txn.cancel()
    txn.finish()
    assert not marker.is_open()


def test_an_update_now_request_holds_until_it_expires_or_is_used(tmp_path):
    now = datetime.now(timezone.utc)
    assert pending_update_now(tmp_path, now) is None
    request_update_now(tmp_path, "Cupdate0001", now + timedelta(hours=1))
    assert pending_update_now(tmp_path, now)["command_id"] == "Cupdate0001"
    assert pending_update_now(tmp_path, now + timedelta(hours=2)) is None  # expired
    clear_update_now(tmp_path)
    assert pending_update_now(tmp_path, now) is None


def test_the_heartbeats_update_block_follows_the_updaters_last_outcome(tmp_path):
    assert update_report(tmp_path, "1.0.0") == {"version": "1.0.0", "last_outcome": None, "reason": None, "at": None}
    (tmp_path / "update").mkdir()
    (tmp_path / "update" / "last.json").write_text(json.dumps(
        {"outcome": "rolled_back", "version": "1.0.3", "reason": "kiosk_exited", "at": "2026-12-05T03:01:00+00:00"}))
    assert update_report(tmp_path, "1.0.0") == {"version": "1.0.3", "last_outcome": "rolled_back",
                                                "reason": "kiosk_exited", "at": "2026-12-05T03:01:00+00:00"}
    (tmp_path / "update" / "last.json").write_text('{"outcome": "exploded", "version": 7}')  # garbage is no outcome
    assert update_report(tmp_path, "1.0.0")["last_outcome"] is None


def test_update_metrics_pass_promtool_and_set_one_outcome(tmp_path):
    registry = CollectorRegistry()
    registry.register(UpdateCollector(tmp_path, "1.0.1"))
    text = generate_latest(registry).decode()
    assert 'kiosk_release_info{version="1.0.1"} 1.0' in text
    assert text.count("kiosk_update_last_outcome{") == 6 and 'outcome="installed"} 0.0' in text
    (tmp_path / "update").mkdir()
    (tmp_path / "update" / "last.json").write_text('{"outcome": "installed", "version": "1.0.1"}')
    text = generate_latest(registry).decode()
    assert 'kiosk_update_last_outcome{outcome="installed"} 1.0' in text
    assert sum(line.endswith(" 1.0") for line in text.splitlines() if line.startswith("kiosk_update_last")) == 1
    check = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True, timeout=60)
    assert check.returncode == 0 and check.stdout + check.stderr == b"", check.stdout + check.stderr
