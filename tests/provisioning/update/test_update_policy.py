"""When an update may switch: never under an open session; inside the window in station time, or when a technician's
--force or an operator's update_now lifts the window."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from kiosk.services.update_status import SessionMarker, pending_update_now, request_update_now
from provisioning.update.policy import StationPolicy

# 19:30 UTC is 03:30 the next morning in Beijing: inside the default window, 02:00-05:00 station time
NIGHT_IN_BEIJING = datetime(2026, 12, 5, 19, 30, tzinfo=timezone.utc)
NOON_IN_BEIJING = datetime(2026, 12, 5, 4, 0, tzinfo=timezone.utc)


def _policy(tmp_path, at, window="02:00-05:00", zone="Asia/Shanghai"):
    return StationPolicy(tmp_path, window, zone, now=lambda: at)


def test_the_window_is_read_in_station_time(tmp_path):
    assert _policy(tmp_path, NIGHT_IN_BEIJING).deferral(False) is None
    assert _policy(tmp_path, NOON_IN_BEIJING).deferral(False) == "outside_window"
    assert _policy(tmp_path, NIGHT_IN_BEIJING, zone="UTC").deferral(False) == "outside_window"


def test_force_and_update_now_lift_the_window(tmp_path):
    policy = _policy(tmp_path, NOON_IN_BEIJING)
    assert policy.deferral(True) is None and policy.lifted_by == "force"
    request_update_now(tmp_path, "Cnow00001", NOON_IN_BEIJING + timedelta(hours=1))
    policy = _policy(tmp_path, NOON_IN_BEIJING)
    assert policy.deferral(False) is None and policy.lifted_by == "update_now"
    policy.done()  # a run got past the window: the request is used up
    assert pending_update_now(tmp_path, NOON_IN_BEIJING) is None
    assert _policy(tmp_path, NOON_IN_BEIJING).deferral(False) == "outside_window"
    request_update_now(tmp_path, "Cnow00002", NOON_IN_BEIJING - timedelta(minutes=1))  # expired
    assert _policy(tmp_path, NOON_IN_BEIJING).deferral(False) == "outside_window"


def test_nothing_lifts_an_open_session(tmp_path):
    SessionMarker(tmp_path).open()
    request_update_now(tmp_path, "Cnow00003", NOON_IN_BEIJING + timedelta(hours=1))
    for at in (NIGHT_IN_BEIJING, NOON_IN_BEIJING):
        for force in (False, True):
            assert _policy(tmp_path, at).deferral(force) == "session_open"
