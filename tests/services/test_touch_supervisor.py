"""The touch supervisor: a touch screen that vanishes, returns or stalls, and a deaf kiosk that restarts.

There is no /dev/input here, so the supervisor gets a fake kernel: a controller whose
capabilities and events the test sets, that can be unplugged (ENODEV on every read and
probe of the old descriptor, no node to open), plugged back (a new node) or stalled (the
node is there but its capability ioctl no longer answers). The restart is shown the way
systemd sees it: WATCHDOG=1 datagrams on a NOTIFY_SOCKET the test binds, and then none.
The real evdev opener is run against what this machine has (no node, a non-input node).
"""
from __future__ import annotations

import errno
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from evdev import ecodes

from kiosk.errors import DeviceOffline, NoDevice
from kiosk.hardware.base import DeviceState
from kiosk.hardware.touch import EvdevOpener, EvdevTouchNode, is_touchscreen
from kiosk.services.health import HealthMonitor
from kiosk.services.metrics import KioskMetrics
from kiosk.services.touch_supervisor import DEAF, NAME, TouchSupervisor
from kiosk.services.watchdog import WatchdogFeeder

TOUCH_CAPS = {ecodes.EV_KEY: [ecodes.BTN_TOUCH], ecodes.EV_ABS: [ecodes.ABS_MT_POSITION_X, ecodes.ABS_MT_POSITION_Y,
                                                                  ecodes.ABS_X, ecodes.ABS_Y]}
KEYPAD_CAPS = {ecodes.EV_KEY: [ecodes.KEY_KP0, ecodes.KEY_KP1, ecodes.KEY_KPENTER]}


class FakeController:
    """The kernel's view of one touch controller, as the test drives it."""

    def __init__(self, capabilities: dict[int, list[int]] | None = None) -> None:
        self.capabilities = capabilities if capabilities is not None else TOUCH_CAPS
        self.present = True
        self.stalled = False
        self.number = 5  # /dev/input/eventN; a power cycle may give another
        self.generation = 0  # bumped by an unplug: descriptors of an older generation are dead
        self.pending = 0
        self.opened = 0
        self.closed = 0

    @property
    def path(self) -> str:
        return f"/dev/input/event{self.number}"

    def unplug(self) -> None:
        self.present = False
        self.generation += 1

    def plug(self, number: int | None = None) -> None:
        self.number = self.number if number is None else number
        self.present = True

    def touch(self, events: int = 6) -> None:
        self.pending += events

    def open(self) -> "FakeNode":
        """The opener the supervisor is given: as EvdevOpener, NoDevice when no touch screen is there."""
        if not self.present:
            raise NoDevice(f"no touch node {self.path}", device="touchscreen")
        if not is_touchscreen(self.capabilities):
            raise NoDevice(f"{self.path} is not a touch screen", device="touchscreen")
        self.opened += 1
        return FakeNode(self)


class FakeNode:
    """One open descriptor on the fake controller."""

    def __init__(self, controller: FakeController) -> None:
        self.controller = controller
        self.generation = controller.generation
        self.path = controller.path

    def _alive(self) -> None:
        c = self.controller
        if not c.present or c.generation != self.generation:
            raise OSError(errno.ENODEV, "No such device")

    def probe(self) -> str:
        self._alive()
        if self.controller.stalled:
            raise OSError(errno.ETIMEDOUT, "Connection timed out")  # the ioctl does not answer
        return "Fake touch (0eef:0001)"

    def drain(self) -> int:
        self._alive()
        count, self.controller.pending = self.controller.pending, 0
        return count

    def close(self) -> None:
        self.controller.closed += 1


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NotifySocket:
    """A real AF_UNIX datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path, watchdog_usec: int = 30_000_000) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setblocking(False)
        self.env = {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": str(watchdog_usec)}

    def __enter__(self) -> "NotifySocket":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.sock.close()

    def received(self) -> list[bytes]:
        got = []
        while True:
            try:
                got.append(self.sock.recv(4096))
            except BlockingIOError:
                return got


@pytest.fixture
def notify_socket(tmp_path: Path) -> Any:
    ns = NotifySocket(tmp_path / "notify")
    yield ns
    ns.sock.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


def supervisor(controller: FakeController, clock: Clock, watchdog: Any = None) -> TouchSupervisor:
    sup = TouchSupervisor(controller.open, watchdog=watchdog, reopen_timeout_s=60, poll_s=1, clock=clock)
    assert sup.check().state is DeviceState.ONLINE
    return sup


def test_a_resident_who_does_not_touch_is_not_a_fault(controller: FakeController, clock: Clock,
                                                      notify_socket: NotifySocket) -> None:
    feeder = WatchdogFeeder(notify_socket.env)
    sup = supervisor(controller, clock, feeder)
    for _hour in range(12):  # a night without a single touch, checked every hour
        clock.now += 3600
        assert sup.check().state is DeviceState.ONLINE
        assert feeder.ping()
        assert notify_socket.received() == [b"WATCHDOG=1"]
    assert sup.events == 0 and controller.opened == 1 and sup.reopens == 0
    assert "last event none yet" in sup.status().detail
    controller.touch(4)
    clock.now += 1
    sup.check()
    assert sup.events == 4 and "last event 0 s ago" in sup.status().detail


def test_unplugged_then_back_is_reopened_and_kivy_told_the_new_node(controller: FakeController, clock: Clock) -> None:
    sup = supervisor(controller, clock)
    returned: list[str] = []
    sup.on_return.append(returned.append)
    controller.unplug()
    clock.now += 1
    lost = sup.check()
    assert lost.state is DeviceState.NO_DEVICE
    assert lost.detail == "lost: /dev/input/event5: No such device; no touch node /dev/input/event5 (for 0 s)"
    assert controller.closed == 1  # the dead descriptor is released
    clock.now += 10
    assert sup.check().state is DeviceState.NO_DEVICE  # still away: asked again, not found
    controller.plug(number=7)  # re-enumerated under another number
    clock.now += 1
    back = sup.check()
    assert back.state is DeviceState.ONLINE and "/dev/input/event7" in back.detail
    assert returned == ["/dev/input/event7"] and sup.reopens == 1 and controller.opened == 2
    controller.touch()
    sup.check()
    assert sup.events == 6  # the new descriptor reads


def test_a_stalled_controller_is_told_apart_from_silence_and_reopened(controller: FakeController, clock: Clock) -> None:
    sup = supervisor(controller, clock)
    controller.stalled = True  # the node is there, nothing is read, and the capability ioctl times out
    clock.now += 1
    stalled = sup.check()
    assert stalled.state is DeviceState.OFFLINE and "does not answer" in stalled.detail
    assert controller.opened == 2  # closed and opened again at once; the new descriptor does not answer either
    controller.stalled = False  # the controller recovers (or is power-cycled)
    clock.now += 1
    assert sup.check().state is DeviceState.ONLINE and sup.reopens == 1


def test_a_keypad_is_not_taken_for_the_touch_screen(clock: Clock) -> None:
    keypad = FakeController(KEYPAD_CAPS)
    sup = TouchSupervisor(keypad.open, reopen_timeout_s=60, clock=clock)
    st = sup.check()
    assert st.state is DeviceState.NO_DEVICE and "not a touch screen" in st.detail and keypad.opened == 0


def test_gone_past_the_timeout_stops_the_watchdog_pings_until_it_returns(controller: FakeController, clock: Clock,
                                                                        notify_socket: NotifySocket) -> None:
    feeder = WatchdogFeeder(notify_socket.env)
    sup = supervisor(controller, clock, feeder)
    assert feeder.ping()
    controller.unplug()
    clock.now += 1
    sup.check()
    clock.now += 30
    sup.check()
    assert feeder.ping() and not sup.deaf  # within reopen_timeout_s: still fed, still reopening
    assert notify_socket.received() == [b"WATCHDOG=1", b"WATCHDOG=1"]
    clock.now += 31  # 61 s away, past the 60 s allowed
    deaf = sup.check()
    assert sup.deaf and DEAF in deaf.conditions and feeder.holds.keys() == {NAME}
    status = notify_socket.received()
    assert len(status) == 1 and status[0].startswith(b"STATUS=restart pending: touch screen gone for 60 s")
    for _tick in range(5):  # the UI clock keeps asking; systemd hears nothing and restarts the kiosk
        assert feeder.ping() is False
    assert notify_socket.received() == []
    controller.plug()  # back before systemd acted: the hold is lifted and the pings resume
    clock.now += 1
    assert sup.check().state is DeviceState.ONLINE and not sup.deaf and feeder.holds == {}
    assert feeder.ping()
    assert notify_socket.received() == [b"STATUS=serving", b"WATCHDOG=1"]


def test_a_kiosk_started_without_a_touch_screen_reports_it_and_does_not_restart_in_a_loop(
        clock: Clock, notify_socket: NotifySocket) -> None:
    controller = FakeController()
    controller.unplug()
    feeder = WatchdogFeeder(notify_socket.env)
    sup = TouchSupervisor(controller.open, watchdog=feeder, reopen_timeout_s=60, clock=clock)
    for _ in range(3):
        clock.now += 3600
        assert sup.check().state is DeviceState.NO_DEVICE
    assert not sup.deaf and feeder.ping()
    assert notify_socket.received() == [b"WATCHDOG=1"]


def test_the_touch_screen_is_in_health_and_metrics_like_any_device(controller: FakeController, clock: Clock) -> None:
    sup = supervisor(controller, clock)
    metrics = KioskMetrics("T-1")
    monitor = HealthMonitor(None, None, lambda: True, metrics=metrics)
    monitor.sources[NAME] = sup
    snap = monitor.poll()
    assert snap.to_dict()["devices"][NAME]["state"] == "online" and snap.healthy
    assert b'kiosk_device_up{device="touchscreen"} 1.0' in metrics.exposition()
    controller.unplug()
    clock.now += 1
    sup.check()
    snap = monitor.poll()
    assert snap.to_dict()["devices"][NAME] == {"state": "no_device", "supplies": {}, "conditions": [],
                                                 "usable": False}
    assert not snap.healthy
    text = metrics.exposition()
    assert b'kiosk_device_up{device="touchscreen"} 0.0' in text
    assert b'kiosk_device_state{device="touchscreen",state="no_device"} 1.0' in text


def test_the_thread_notices_by_itself(controller: FakeController) -> None:
    sup = TouchSupervisor(controller.open, reopen_timeout_s=60, poll_s=0.05)
    returned = threading.Event()
    sup.on_return.append(lambda _path: returned.set())
    sup.start()
    try:
        controller.unplug()
        controller.plug()
        assert returned.wait(30), "the supervisor's thread never reopened the touch screen"
        assert sup.status().state is DeviceState.ONLINE
    finally:
        sup.stop()
    assert not sup._thread


# --- the real evdev opener, on what this machine has ---------------------------------------
def test_evdev_opener_without_a_node_is_no_device(tmp_path: Path) -> None:
    with pytest.raises(NoDevice, match="no touch node"):
        EvdevOpener(str(tmp_path / "event9"))()
    with pytest.raises(NoDevice, match="no touch screen among"):
        EvdevOpener("")()  # this machine has no /dev/input at all


def test_evdev_opener_refuses_a_node_that_is_not_an_input_device(tmp_path: Path) -> None:
    with pytest.raises(DeviceOffline, match="not an input event node"):
        EvdevTouchNode("/dev/null")  # a character device of another kind: refused before an ioctl
    plain = tmp_path / "event3"
    plain.write_bytes(b"")
    with pytest.raises(DeviceOffline, match="not an input event node"):
        EvdevOpener(str(plain))()


def test_is_touchscreen_reads_capabilities_with_or_without_absinfo() -> None:
    assert is_touchscreen(TOUCH_CAPS)
    assert is_touchscreen({ecodes.EV_KEY: [ecodes.BTN_TOUCH], ecodes.EV_ABS: [(ecodes.ABS_X, object())]})
    assert not is_touchscreen(KEYPAD_CAPS)
    assert not is_touchscreen({ecodes.EV_ABS: [ecodes.ABS_X]})  # a joystick axis without touches


# --- wired into the runtime -----------------------------------------------------------------
def test_runtime_with_touch_enabled_reports_it_and_feeds_the_watchdog_through_one_feeder(
        sim: Any, tmp_path: Path, flows: Any) -> None:
    from kiosk.services.runtime import Runtime

    node = tmp_path / "by-id" / "usb-touch-event-if00"  # as configured on site; absent on this machine
    cfg = flows.config_for(sim.url, tmp_path / "state",
                           touch={"enabled": True, "device": str(node), "reopen_timeout_s": 5})
    rt = Runtime.from_config(cfg)
    try:
        assert rt.touch is not None and rt.touch.opener.path == str(node)
        assert rt.touch.watchdog is rt.watchdog and rt.touch.reopen_timeout_s == 5
        rt.start_monitoring()
        assert rt.touch._thread is not None and rt.touch._thread.is_alive()
        touch = rt.health.poll().to_dict()["devices"][NAME]
        assert touch["state"] == "no_device" and touch["usable"] is False
    finally:
        rt.stop()
    assert rt.touch._thread is None


def test_runtime_without_touch_config_has_no_supervisor(runtime: Any) -> None:
    assert runtime.touch is None and NAME not in runtime.health.poll().devices


def test_kiosk_health_checks_the_touch_screen_when_configured(tmp_path: Path, flows: Any, sim: Any) -> None:
    from kiosk.services.health_cli import check_config

    cfg = flows.config_for(sim.url, tmp_path / "state", touch={"enabled": True, "device": str(tmp_path / "event4")})
    touch = check_config(cfg).to_dict()["devices"][NAME]
    assert touch["state"] == "no_device" and touch["usable"] is False
    plain = flows.config_for(sim.url, tmp_path / "state2")
    assert NAME not in check_config(plain).to_dict()["devices"]


def test_heartbeats_carry_the_touch_screen_for_the_fleet_page(sim: Any, tmp_path: Path, flows: Any) -> None:
    from kiosk.services.heartbeat import HeartbeatSender
    from kiosk.services.runtime import Runtime

    cfg = flows.config_for(sim.url, tmp_path / "state", touch={"enabled": True, "device": str(tmp_path / "event4")})
    rt = Runtime.from_config(cfg)
    try:
        rt.touch.check()
        devices = HeartbeatSender.from_runtime(rt).snapshot()["devices"]
        assert devices[NAME] == {"state": "no_device", "supplies": {}, "conditions": []}
        assert "receipt_printer" in devices  # beside the configured devices
    finally:
        rt.stop()
