"""A deaf kiosk restarts: the UI loop keeps running, but its watchdog pings stop while the
touch supervisor holds the runtime's feeder, and resume when the touch screen is back.

The UI clock pings through ``runtime.watchdog`` (KioskApp.start_watchdog) onto a
NOTIFY_SOCKET the test binds; the touch screen is the fake controller of
tests/services/test_touch_supervisor.py (there is no /dev/input here).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from kiosk.services.touch_supervisor import TouchSupervisor
from tests.services.test_touch_supervisor import Clock, FakeController, NotifySocket


def test_the_ui_loops_pings_stop_while_the_touch_screen_stays_away(ui: Any, tmp_path: Path) -> None:
    with NotifySocket(tmp_path / "notify", watchdog_usec=400_000) as notify:  # a ping due every 0.2 s of UI loop
        env = notify.env
        feeder = ui.app.runtime.watchdog
        feeder.env = env  # its STATUS= lines go to the test's socket too
        controller, clock = FakeController(), Clock()
        touch = TouchSupervisor(controller.open, watchdog=feeder, reopen_timeout_s=60, clock=clock)
        touch.check()
        event = ui.app.start_watchdog(env)
        try:
            ui.wait_seconds(0.6)
            assert set(notify.received()) == {b"WATCHDOG=1"}
            controller.unplug()
            touch.check()  # lost
            clock.now += 61
            touch.check()  # still away past reopen_timeout_s: held
            assert touch.deaf
            ui.wait_seconds(1.0)  # the UI loop runs on, and says nothing to systemd
            held = notify.received()
            assert len(held) == 1 and held[0].startswith(b"STATUS=restart pending: touch screen gone")
            controller.plug()
            clock.now += 1
            touch.check()
            ui.wait_seconds(0.6)
            back = notify.received()
            assert back[0] == b"STATUS=serving" and set(back[1:]) == {b"WATCHDOG=1"} and len(back) > 1
        finally:
            event.cancel()
            feeder.release("touchscreen")
            feeder.env = None
            touch.stop()
