"""The touch screen's input node, as the touch supervisor sees it: opened, probed, drained.

The kiosk does not take its touches from here: Kivy (or the compositor) reads them. This
module opens the same evdev node as a second, non-grabbing reader, so the supervisor
(kiosk.services.touch_supervisor) can tell whether the touch screen is still there. A
:class:`TouchNode` answers two questions:

- ``probe()``: a live question to the kernel about the device (the node still names the
  device that was opened, and an EVIOCGBIT capability ioctl on the open descriptor answers).
  Unplugged, the ioctl fails with ENODEV; re-enumerated after a controller power cycle, the
  path names another device number. Raises OSError either way.
- ``drain()``: reads what is waiting without blocking (so our reader's kernel buffer never
  fills) and says how many events came. Raises OSError (ENODEV) once the device is gone.

A resident who does not touch the screen for hours is not a fault: silence alone never
counts as a stall. A stall is a node that is still there but no longer answers the probe.

The real opener uses python-evdev (docs/ARCHITECTURE.md, "Libraries and why"); tests hand
the supervisor their own opener. No Kivy here.
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Any, Callable, Protocol

from kiosk.errors import DeviceOffline, NoDevice

INPUT_MAJOR = 13  # the kernel's input subsystem: /dev/input/event* are char devices 13:64+


class TouchNode(Protocol):
    """One opened touch input node."""

    path: str

    def probe(self) -> str:
        """Ask the device now; its identity (name and USB ids). Raises OSError when gone or not answering."""

    def drain(self) -> int:
        """Read what is waiting without blocking; the number of events. Raises OSError when gone."""

    def close(self) -> None:
        """Release the descriptor; safe to call twice."""


TouchOpener = Callable[[], TouchNode]  # raises NoDevice (no touch node), DeviceOffline (it does not answer)


def is_touchscreen(capabilities: dict[int, list[Any]]) -> bool:
    """True for an absolute-position device that reports touches (BTN_TOUCH and an X axis)."""
    from evdev import ecodes

    axes = {a[0] if isinstance(a, tuple) else a for a in capabilities.get(ecodes.EV_ABS, [])}
    keys = set(capabilities.get(ecodes.EV_KEY, []))
    return ecodes.BTN_TOUCH in keys and bool(axes & {ecodes.ABS_X, ecodes.ABS_MT_POSITION_X})


def _input_node(path: str) -> os.stat_result:
    """The stat of ``path`` when it is an evdev node. Raises NoDevice (absent), DeviceOffline (not an input node)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise NoDevice(f"no touch node {path}", device="touchscreen") from None
    except OSError as exc:
        raise DeviceOffline(f"touch node {path}: {exc.strerror}", device="touchscreen") from None
    if not stat.S_ISCHR(st.st_mode) or os.major(st.st_rdev) != INPUT_MAJOR:
        # checked before evdev opens it: its constructor leaks the descriptor when the ioctl fails
        raise DeviceOffline(f"{path} is not an input event node", device="touchscreen")
    return st


class EvdevTouchNode:
    """A touch screen's event node opened read-only through python-evdev (never grabbed)."""

    def __init__(self, path: str) -> None:
        import evdev

        st = _input_node(path)
        try:
            self._dev = evdev.InputDevice(path, readonly=True)
        except FileNotFoundError:
            raise NoDevice(f"no touch node {path}", device="touchscreen") from None
        except OSError as exc:
            raise DeviceOffline(f"touch node {path} does not answer: {exc.strerror}", device="touchscreen") from None
        self.path = path
        self._rdev = st.st_rdev
        info = self._dev.info
        self.identity = f"{self._dev.name} ({info.vendor:04x}:{info.product:04x})"
        try:
            caps = self._dev.capabilities(absinfo=False)
        except OSError as exc:
            self.close()
            raise DeviceOffline(f"touch node {path} does not answer: {exc.strerror}", device="touchscreen") from None
        if not is_touchscreen(caps):
            self.close()
            raise NoDevice(f"{path} ({self.identity}) is not a touch screen", device="touchscreen")

    def probe(self) -> str:
        """The node still names this device and its capability ioctl answers. Raises OSError."""
        if os.stat(self.path).st_rdev != self._rdev:
            raise OSError(errno.ENODEV, f"{self.path} now names another device")
        self._dev.capabilities(absinfo=False)
        return self.identity

    def drain(self) -> int:
        """Read the waiting events; how many. Raises OSError (ENODEV when unplugged)."""
        count = 0
        try:
            for _event in self._dev.read():
                count += 1
        except BlockingIOError:
            pass
        return count

    def close(self) -> None:
        """Release the descriptor; safe to call twice."""
        try:
            self._dev.close()
        except OSError:  # the device is already gone
            pass


class EvdevOpener:
    """Opens the configured touch node, or (``path`` empty) the first touch screen among /dev/input/event*."""

    def __init__(self, path: str = "") -> None:
        self.path = path

    def __call__(self) -> TouchNode:
        """The opened node. Raises NoDevice (none found), DeviceOffline (found, does not answer)."""
        if self.path:
            return EvdevTouchNode(self.path)
        import evdev

        offline: DeviceOffline | None = None
        for candidate in sorted(evdev.list_devices()):
            try:
                return EvdevTouchNode(candidate)
            except NoDevice:
                continue  # a keyboard, the keypad, a mouse: not ours
            except DeviceOffline as err:
                offline = err
        if offline is not None:
            raise offline
        raise NoDevice("no touch screen among /dev/input/event*", device="touchscreen")
