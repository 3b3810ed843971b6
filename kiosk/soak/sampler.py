"""What the soak samples of its own process: resident memory, open descriptors, threads, Kivy widgets and textures."""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import os
import sys
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

    widgets = textures = 0
    for obj in gc.get_objects():
        kind = type(obj)  # not isinstance: a dead weak proxy among the objects raises when asked its class
        if issubclass(kind, Widget):
            widgets += 1
        elif issubclass(kind, Texture):
            textures += 1
    return widgets, textures


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
