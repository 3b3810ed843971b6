"""When an update may switch: no resident's session open, and inside the station's maintenance window.

An open session always defers (``session_open``): a restart would throw the resident out
mid-transaction. Outside ``update.window`` (station time, ``terminal.timezone``) a run is
deferred (``outside_window``) unless the technician passed ``--force`` or the kiosk holds
a verified ``update_now`` remote command (kiosk/services/update_status.py), which lift the
window and nothing else. A deferred run exits 0: systemd's timer simply tries again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from kiosk.services.update_status import SessionMarker, clear_update_now, in_window, pending_update_now

SESSION_OPEN, OUTSIDE_WINDOW = "session_open", "outside_window"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class StationPolicy:
    """The ApplyPolicy of a terminal: its state folder (session marker, update_now), window and zone."""

    state_dir: Path
    window: str
    zone: str = "Asia/Shanghai"
    now: Callable[[], datetime] = field(default=_utc_now)
    lifted_by: str | None = field(default=None, init=False)  # "force" | "update_now" once the window was lifted

    def deferral(self, force: bool) -> str | None:
        """``session_open``, ``outside_window`` or None (go ahead)."""
        from kiosk.localtime import zone_for

        if SessionMarker(self.state_dir).is_open():
            return SESSION_OPEN
        at = self.now()
        if in_window(self.window, at.astimezone(zone_for(self.zone))):
            return None
        if force:
            self.lifted_by = "force"
            return None
        if pending_update_now(self.state_dir, at) is not None:
            self.lifted_by = "update_now"
            return None
        return OUTSIDE_WINDOW

    def done(self) -> None:
        """A run got past the window (whatever came of it): an update_now request is used up."""
        if self.lifted_by == "update_now" or pending_update_now(self.state_dir, self.now()) is not None:
            clear_update_now(self.state_dir)
