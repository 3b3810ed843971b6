"""The touch screen's supervisor: notices it gone or stalled, reopens it, restarts a deaf kiosk.

Operators of Kivy kiosks report touch dying after days: the hidinput thread ends on ENODEV
and mtdev does not reopen after the touch controller is power-cycled. The supervisor keeps
its own non-grabbing reader on the touch node (kiosk.hardware.touch) and, every ``poll_s``:

- drains and probes the open node; an OSError (ENODEV after an unplug, a node that now
  names another device after a power cycle, a capability ioctl that no longer answers: a
  stall) closes it and marks the touch screen lost;
- while lost, asks the opener again; when it opens, the screen is back: the listeners in
  ``on_return`` get the new node's path (the UI re-creates its input provider there);
- lost longer than ``reopen_timeout_s``: holds the watchdog feeder, so systemd restarts the
  kiosk instead of leaving it deaf; a return after that lifts the hold. Only a touch screen
  this process had open is waited for so: a kiosk that starts without one reports it in
  health (no_device) and keeps serving the keypad, rather than restarting in a loop that
  cannot bring back a screen that is not there.

Silence is never a fault: nobody touching the screen at 3 a.m. reads no events and still
answers the probe. ``status()`` reports the touch screen like any device (health, metrics).
No Kivy here; the opener and the clock are injectable.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from kiosk.errors import DeviceError
from kiosk.hardware.base import DeviceState, DeviceStatus, status
from kiosk.hardware.touch import TouchNode, TouchOpener

log = logging.getLogger(__name__)

NAME = "touchscreen"  # its name in health, metrics and `kiosk health --json`
DEAF = "watchdog_stopped"  # the condition while the supervisor holds the watchdog


class TouchSupervisor:
    """Watches one touch screen through ``opener``; holds ``watchdog`` (a WatchdogFeeder) when it stays gone."""

    def __init__(self, opener: TouchOpener, *, watchdog: Any = None, reopen_timeout_s: float = 60.0,
                 poll_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.opener = opener
        self.watchdog = watchdog
        self.reopen_timeout_s = float(reopen_timeout_s)
        self.poll_s = float(poll_s)
        self.clock = clock
        self.on_return: list[Callable[[str], None]] = []  # called with the node's path after a reopen
        self._node: TouchNode | None = None
        self._lost_since: float | None = clock()  # not open yet: the first check opens it
        self._ever_open = False
        self._deaf = False
        self._why = "not opened yet"
        self._lost_why = ""  # what ended the last open (ENODEV, a stall): kept in the status beside the retries
        self._state = DeviceState.NO_DEVICE
        self._events = 0
        self._last_event_at: float | None = None
        self.reopens = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_config(cls, touch: Any, watchdog: Any = None) -> "TouchSupervisor":
        """The supervisor for a ``[touch]`` config on the real evdev node."""
        from kiosk.hardware.touch import EvdevOpener

        return cls(EvdevOpener(touch.device), watchdog=watchdog, reopen_timeout_s=touch.reopen_timeout_s,
                   poll_s=touch.poll_s)

    # --- one round ----------------------------------------------------------------------
    def check(self) -> DeviceStatus:
        """Drain and probe the node (or try to reopen it), hold or release the watchdog; the new status."""
        returned: str | None = None
        with self._lock:
            if self._node is not None:
                try:
                    count = self._node.drain()
                    self._node.probe()
                except OSError as exc:
                    self._lose(f"{self._node.path}: {exc.strerror or exc}")
                else:
                    if count:
                        self._events += count
                        self._last_event_at = self.clock()
            if self._node is None:
                returned = self._try_open()
            if self._node is None and self._ever_open and self._lost_since is not None and not self._deaf \
                    and self.clock() - self._lost_since >= self.reopen_timeout_s:
                self._deaf = True
                if self.watchdog is not None:
                    self.watchdog.hold(NAME, f"touch screen gone for {self.reopen_timeout_s:g} s ({self._why})")
            snapshot = self._status()
        if returned is not None:
            for listener in list(self.on_return):
                try:
                    listener(returned)
                except Exception:  # a broken listener must not stop supervising
                    log.exception("touch return listener failed")
        return snapshot

    def _lose(self, why: str) -> None:
        node, self._node = self._node, None
        if node is not None:
            node.close()
        self._lost_since = self.clock()
        self._why = self._lost_why = why
        self._state = DeviceState.NO_DEVICE
        log.error("touch screen lost: %s; reopening (watchdog held after %g s)", why, self.reopen_timeout_s)

    def _try_open(self) -> str | None:
        """Open the node; its path when that brought the touch screen back (None while it stays away)."""
        try:
            node = self.opener()
        except DeviceError as err:
            self._note_absent(err.detail, DeviceState.OFFLINE if err.code == "device_offline" else DeviceState.NO_DEVICE)
            return None
        except OSError as exc:  # e.g. /dev/input not readable: nothing opened
            self._note_absent(f"touch node not opened: {exc.strerror or exc}", DeviceState.OFFLINE)
            return None
        try:
            identity = node.probe()
        except OSError as exc:  # opened, but the device does not answer: still stalled
            node.close()
            self._note_absent(f"{node.path} does not answer: {exc.strerror or exc}", DeviceState.OFFLINE)
            return None
        self._node = node
        self._state = DeviceState.ONLINE
        away = self.clock() - self._lost_since if self._lost_since is not None else 0.0
        self._lost_since = None
        first = not self._ever_open
        self._ever_open = True
        if self._deaf:
            self._deaf = False
            if self.watchdog is not None:
                self.watchdog.release(NAME)
        if first:
            log.info("touch screen %s open at %s", identity, node.path)
            return None
        self.reopens += 1
        log.warning("touch screen back after %.0f s: %s at %s", away, identity, node.path)
        return node.path

    def _note_absent(self, why: str, state: DeviceState) -> None:
        if why != self._why or state != self._state:
            log.warning("touch screen not reopened: %s", why)
        self._why, self._state = why, state

    # --- reporting ----------------------------------------------------------------------
    def status(self) -> DeviceStatus:
        """The last check's verdict (the health monitor asks this; the thread keeps it fresh). Never raises."""
        with self._lock:
            return self._status()

    def _status(self) -> DeviceStatus:
        conditions = {DEAF} if self._deaf else set()
        if self._node is not None:
            ago = "none yet" if self._last_event_at is None else f"{self.clock() - self._last_event_at:.0f} s ago"
            return status(DeviceState.ONLINE, detail=f"{self._node.path}; last event {ago}")
        away = self.clock() - self._lost_since if self._lost_since is not None else 0.0
        lost = f"lost: {self._lost_why}; " if self._lost_why and self._lost_why != self._why else ""
        return status(self._state, conditions=conditions, detail=f"{lost}{self._why} (for {away:.0f} s)")

    @property
    def deaf(self) -> bool:
        """True while the supervisor holds the watchdog (gone longer than ``reopen_timeout_s``)."""
        return self._deaf

    @property
    def events(self) -> int:
        """Events read from the node since start (a sign of life, never a verdict)."""
        return self._events

    # --- thread -------------------------------------------------------------------------
    def start(self) -> None:
        """Check every ``poll_s`` in a daemon thread; idempotent."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="kiosk-touch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception:  # the supervisor must outlive any surprise from a driver
                log.exception("touch check failed")
            self._stop.wait(self.poll_s)

    def stop(self) -> None:
        """Stop the thread and close the node; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._node is not None:
                self._node.close()
                self._node = None
