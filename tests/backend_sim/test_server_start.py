"""The simulator bound before it is built (kiosk.backend_sim.server.bind), and the runtime that defers it.

The kiosk binds its embedded simulator's port at once and builds the simulator off its first
frame: a call made meanwhile must wait for it and be answered, never fail or be lost.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests

from kiosk.backend_sim.server import bind
from kiosk.config import from_dict
from kiosk.errors import BackendUnavailable, ConfigError
from kiosk.services.runtime import Runtime


def test_a_request_sent_before_the_build_is_answered_once_built() -> None:
    sim = bind("127.0.0.1", 0)
    try:
        assert sim.url.startswith("http://127.0.0.1:") and sim._app is None  # the port first, the simulator later
        answers: list[int] = []
        asker = threading.Thread(target=lambda: answers.append(
            requests.get(f"{sim.url}/api/v1/health", timeout=30).status_code))
        asker.start()
        time.sleep(0.3)
        assert not answers  # queued in the listener, not refused
        sim.build_in_background()
        asker.join(timeout=30)
        assert answers == [200]
        assert sim.app.db is not None
    finally:
        sim.stop()


def test_the_app_is_built_on_first_use() -> None:
    sim = bind("127.0.0.1", 0)
    try:
        assert sim.app.faults is not None  # asking for it builds it
        assert requests.get(f"{sim.url}/api/v1/health", timeout=10).status_code == 200
    finally:
        sim.stop()


def test_a_sim_stopped_before_its_build_stops_at_once_and_says_so() -> None:
    sim = bind("127.0.0.1", 0)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 2
    with pytest.raises(ConfigError):
        sim.app  # noqa: B018 - the property raises


def test_a_build_that_fails_closes_the_port_and_says_why(tmp_path: Path) -> None:
    sim = bind("127.0.0.1", 0, db_path=str(tmp_path / "no such folder" / "sim.sqlite3"))
    try:
        sim.ensure_started(timeout=30)
        with pytest.raises(ConfigError):
            sim.wait_ready()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{sim.url}/api/v1/health", timeout=5)  # refused, not left waiting in a queue
    finally:
        sim.stop()


def _embedded(tmp_path: Path) -> Runtime:
    cfg = from_dict({"paths": {"state_dir": str(tmp_path / "state")}, "speech": {"enabled": False}})
    assert cfg.backend.url == "embedded"
    return Runtime.from_config(cfg, defer_sim=True)


def test_a_deferred_simulator_is_built_by_the_first_backend_call(tmp_path: Path) -> None:
    rt = _embedded(tmp_path)
    try:
        assert rt.sim is not None and rt.sim._builder is None  # nothing built during from_config
        assert rt.backend.health()["status"] == "ok"  # waits for the build, then is answered
        assert rt.backend_up(fresh=True)
        assert rt.sim._app is not None
    finally:
        rt.stop()


def test_a_failed_simulator_is_a_backend_down_for_the_runtime(tmp_path: Path) -> None:
    rt = _embedded(tmp_path)
    try:
        assert rt.sim is not None
        rt.sim._pending = ("127.0.0.1", {"db_path": str(tmp_path / "missing" / "sim.sqlite3")})
        with pytest.raises(BackendUnavailable):
            rt.backend.health()
        assert not rt.backend_up(fresh=True)
    finally:
        rt.stop()
