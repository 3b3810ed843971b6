"""The systemd watchdog's feeder: pings while the kiosk can serve, stops when a part says it cannot.

The UI loop calls :meth:`WatchdogFeeder.ping` from its clock (kiosk.app), so a frozen loop
stops the pings. A part that knows the kiosk is useless although the loop runs (the touch
screen gone and not coming back: a deaf kiosk) *holds* the feeder: while any hold is on,
``ping`` sends nothing, the ``STATUS=`` line says why, and systemd's ``WatchdogSec`` later
restarts the kiosk (kiosk.service has ``Restart=on-failure``), which reopens every device
from scratch. Releasing the last hold (the part recovered in time) lets the pings resume.
No Kivy here.
"""
from __future__ import annotations

import logging
import threading
from typing import Mapping

from kiosk.services import sdnotify

log = logging.getLogger(__name__)


class WatchdogFeeder:
    """WATCHDOG=1 on request unless a part holds it; ``env`` stands in for os.environ in tests."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self.env = env
        self._holds: dict[str, str] = {}
        self._lock = threading.Lock()

    @property
    def holds(self) -> dict[str, str]:
        """Part -> why, for every hold now on (empty while the kiosk is fed)."""
        with self._lock:
            return dict(self._holds)

    def hold(self, part: str, why: str) -> None:
        """Stop pinging on behalf of ``part`` until it releases; says ``why`` in systemd's status line."""
        with self._lock:
            new = part not in self._holds
            self._holds[part] = why
        if new:
            log.error("watchdog pings stopped by %s: %s; systemd restarts the kiosk after WatchdogSec", part, why)
            sdnotify.status(f"restart pending: {why}", env=self.env)

    def release(self, part: str) -> None:
        """Lift ``part``'s hold; pings resume when no other hold is on."""
        with self._lock:
            was = self._holds.pop(part, None)
            left = bool(self._holds)
        if was is not None:
            log.info("watchdog hold by %s lifted%s", part, "" if left else "; pings resume")
            if not left:
                sdnotify.status("serving", env=self.env)

    def ping(self, env: Mapping[str, str] | None = None) -> bool:
        """Send WATCHDOG=1 unless held; True when a service manager took it."""
        with self._lock:
            if self._holds:
                return False
        return sdnotify.watchdog(env=self.env if env is None else env)

    def tick(self, env: Mapping[str, str] | None = None) -> None:
        """``ping`` for a clock callback: returns None, because Kivy drops an interval callback that returns False
        (a held feeder, or a manager restarting, would otherwise end the pings for good)."""
        self.ping(env)
