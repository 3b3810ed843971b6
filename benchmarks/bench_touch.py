"""Touch supervisor figures: what one check costs (it runs every `[touch] poll_s` for the
kiosk's whole life), and whether 10,000 unplug/return cycles leave descriptors or threads
behind. The controller is the tests' kind of fake (no /dev/input here); the lost-screen
figure runs the real evdev opener, which scans /dev/input/event* every check while the
screen is away.
"""
from __future__ import annotations

import errno
import logging
import os
import threading
import time
from typing import Callable

from kiosk.errors import NoDevice
from kiosk.hardware.touch import EvdevOpener
from kiosk.services.touch_supervisor import TouchSupervisor


class _Controller:
    def __init__(self) -> None:
        self.present, self.generation = True, 0

    def open(self) -> "_Node":
        if not self.present:
            raise NoDevice("no touch node", device="touchscreen")
        return _Node(self, os.open("/dev/null", os.O_RDONLY))  # a real descriptor, as evdev holds one


class _Node:
    path = "/dev/input/event5"

    def __init__(self, controller: _Controller, fd: int) -> None:
        self.controller, self.fd, self.generation = controller, fd, controller.generation

    def probe(self) -> str:
        if not self.controller.present or self.generation != self.controller.generation:
            raise OSError(errno.ENODEV, "No such device")
        return "bench touch"

    def drain(self) -> int:
        self.probe()
        return 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _per_op(label: str, fn: Callable[[], object], n: int) -> None:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    print(f"{label}: {(time.perf_counter() - started) / n * 1e6:.1f} µs each ({n} runs)")


def main() -> None:
    """Print the figures."""
    logging.getLogger("kiosk.services.touch_supervisor").setLevel(logging.CRITICAL)  # 20,000 lost/back lines
    controller = _Controller()
    sup = TouchSupervisor(controller.open, reopen_timeout_s=3600)
    sup.check()
    _per_op("check, touch screen present (drain + probe)", sup.check, 20000)
    lost = TouchSupervisor(EvdevOpener(""), reopen_timeout_s=3600)
    _per_op("check, touch screen lost (real evdev opener scanning /dev/input)", lost.check, 2000)
    fds = len(os.listdir("/proc/self/fd"))
    threads = threading.active_count()
    started = time.perf_counter()
    for _ in range(10000):
        controller.present = False
        controller.generation += 1
        sup.check()
        controller.present = True
        sup.check()
    print(f"10,000 unplug/return cycles: {time.perf_counter() - started:.2f} s, reopens {sup.reopens}, "
          f"descriptors {fds} -> {len(os.listdir('/proc/self/fd'))}, threads {threads} -> {threading.active_count()}")
    sup.stop()


if __name__ == "__main__":
    main()
