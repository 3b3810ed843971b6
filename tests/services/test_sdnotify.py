"""sd_notify: messages reach a real unix datagram socket, as systemd's would receive them."""
import os
import socket

import pytest

from kiosk.services import sdnotify


@pytest.fixture
def listener(tmp_path):
    path = tmp_path / "notify"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def test_ready_watchdog_status_and_stopping_arrive_as_datagrams(listener):
    sock, env = listener
    assert sdnotify.ready("serving 71 items", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving 71 items"
    assert sdnotify.watchdog(env=env)
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert sdnotify.status("receipt printer\nout of paper", env=env)
    assert sock.recv(4096) == "STATUS=receipt printer out of paper".encode()
    assert sdnotify.stopping(env=env)
    assert sock.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_socket(tmp_path):
    name = f"kiosk-test-{os.getpid()}-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify("READY=1", "STATUS=中文状态", env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=中文状态"


def test_the_process_environment_is_used_by_default(listener, monkeypatch):
    sock, env = listener
    monkeypatch.setenv("NOTIFY_SOCKET", env["NOTIFY_SOCKET"])
    assert sdnotify.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"


def test_without_systemd_every_call_is_a_no_op(tmp_path):
    assert sdnotify.ready(env={}) is False
    assert sdnotify.watchdog(env={"NOTIFY_SOCKET": "vsock:2:1234"}) is False
    # a socket path nobody listens on (manager restarting) is not an error either
    assert sdnotify.watchdog(env={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_fields_must_be_single_key_value_lines(listener):
    _, env = listener
    for bad in ("READY", "STATUS=a\nREADY=1"):
        with pytest.raises(ValueError):
            sdnotify.notify(bad, env=env)


def test_watchdog_interval_is_for_this_process_or_its_session_parent():
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getppid())}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(max(os.getpid(), os.getppid()) + 1)}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "junk"}) is None
    assert sdnotify.watchdog_interval({}) is None
