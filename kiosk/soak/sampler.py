"""What the soak samples of its own process: resident memory, open descriptors, threads, Kivy widgets and textures."""
from __future__ import annotations

import collections
import ctypes
import ctypes.util
import functools
import gc
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Sample:
    """The process after ``session`` sessions (soak.json ``samples``)."""

    session: int
    rss_mib: float
    fds: int
    threads: int
    widgets: int
    textures: int

    def to_dict(self) -> dict[str, float | int]:
        """The sample as soak.json writes it."""
        return asdict(self)


def _status_field(name: str) -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(name + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {name}")


def kivy_objects() -> tuple[int, int]:
    """(live Kivy widgets, live textures) in this process, found by the garbage collector; (0, 0) without Kivy."""
    if "kivy.uix.widget" not in sys.modules:
        return 0, 0
    from kivy.graphics.texture import Texture
    from kivy.uix.widget import Widget

    kinds = live_types()
    widgets = sum(n for kind, n in kinds.items() if issubclass(kind, Widget))
    textures = sum(n for kind, n in kinds.items() if issubclass(kind, Texture))
    return widgets, textures


def live_types() -> collections.Counter[type]:
    """How many objects the garbage collector tracks, by exact type (other threads parked meanwhile)."""
    with others_parked():
        objects = gc.get_objects()
        kinds = collections.Counter(map(type, objects))  # not isinstance: a dead weak proxy raises when asked
        del objects
    return kinds


@contextmanager
def others_parked(hold_s: float = 5.0, settle_s: float = 0.05) -> Any:
    """No other Python thread is switched in while the block runs, and none was switched out mid-statement.

    ``gc.get_objects()`` hands out every object, tuples still being filled by other threads among them: a
    thread switched out inside ``tuple(<generator>)`` comes back to find its tuple referenced twice, and
    CPython's resize fails with ``SystemError: bad argument to internal function`` (it killed the pinyin
    index's warm-up thread under a sample). So: no thread may ask for the interpreter by timeout (a long
    switch interval), each gets a turn first and runs until it blocks by itself, and the list is gone
    before the interval is restored. A thread that computes for longer than ``hold_s`` without blocking is
    still switched out (the sample would otherwise wait for it without end): none of the kiosk's does.
    """
    old = sys.getswitchinterval()
    sys.setswitchinterval(hold_s)
    try:
        time.sleep(settle_s)  # threads waiting with the old interval run now, until they block
        yield
    finally:
        sys.setswitchinterval(old)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``); False where there is none.

    glibc keeps what was freed for later allocations: between two samples the resident set rose and fell by
    tens of MiB with nothing alive to show for it (a UI soak's RSS read 802, 818, 861, 840 MiB at sessions 100
    to 400; ~76 MiB of it came back on a trim). Trimmed first, RSS is what the process holds.
    """
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def sample(session: int) -> Sample:
    """Measure now, after a full garbage collection (so the counts are what is still alive) and with the C heap
    trimmed (so the RSS is what the process holds, not what the allocator kept for later)."""
    gc.collect()
    trim_heap()
    widgets, textures = kivy_objects()
    return Sample(session=session, rss_mib=round(_status_field("VmRSS") / 1024, 2),
                  fds=len(os.listdir("/proc/self/fd")), threads=_status_field("Threads"),
                  widgets=widgets, textures=textures)
