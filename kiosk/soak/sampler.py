"""What the soak samples of its own process: resident memory, open descriptors, threads, Kivy widgets and textures."""
from __future__ import annotations

import collections
import ctypes
import functools
import gc
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from kiosk.services.heap import libc, tidy  # the samples tidy as the kiosk does at home


READ_EVERY = 10  # sessions between the RSS readings the growth is fitted on (samples come every 100)


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
        objects = tracked_objects()
        kinds = collections.Counter(map(type, objects))  # not isinstance: a dead weak proxy raises when asked
        del objects
    return kinds


def tracked_objects() -> list[Any]:
    """Every object the garbage collector tracks, those the home screen's tidy set aside included (they are taken
    back first: ``gc.get_objects`` does not list them, see kiosk.services.heap.set_aside)."""
    gc.unfreeze()
    return gc.get_objects()


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


def rss_reading() -> float:
    """The resident set in MiB after a full garbage collection (the GL textures it freed deleted) and with the C heap
    trimmed: what the process holds.

    Cheaper than :func:`sample` (no object census), so the soak reads it every few sessions for its fit."""
    release = None
    if "kivy.base" in sys.modules:  # the UI soak: textures the collection freed let go of their pixels now
        from kiosk.screens.base import release_graphics as release
    tidy(after_collect=release)
    return round(_status_field("VmRSS") / 1024, 2)


def sample(session: int) -> Sample:
    """Measure now, after a full garbage collection (so the counts are what is still alive) and with the C heap
    trimmed (so the RSS is what the process holds, not what the allocator kept for later)."""
    rss = rss_reading()
    widgets, textures = kivy_objects()
    return Sample(session=session, rss_mib=rss, fds=len(os.listdir("/proc/self/fd")),
                  threads=_status_field("Threads"), widgets=widgets, textures=textures)


def memory_map() -> dict[str, float]:
    """Resident MiB by kind of mapping (/proc/self/smaps): ``heap`` (the main C heap), ``stacks`` (threads' stacks:
    anonymous read-write mappings of exactly the default stack size, whatever pages of them are resident), ``anon``
    (other anonymous mappings: glibc's thread arenas, Python's object arenas, the renderer's buffers), ``files``
    (mapped files)."""
    kinds = {"heap": 0, "stacks": 0, "anon": 0, "files": 0}
    stack_kib = _stack_kib()
    kind = "anon"
    with open("/proc/self/smaps", encoding="ascii", errors="replace") as fh:
        for line in fh:
            first = line.split(maxsplit=6)
            if not first:
                continue
            if "-" in first[0] and not first[0].endswith(":"):  # a mapping's header: range perms offset dev inode path
                path = first[5] if len(first) > 5 else ""
                start, end = (int(edge, 16) for edge in first[0].split("-"))
                kind = ("heap" if path == "[heap]" else "files" if path.startswith("/")
                        else "stacks" if not path and first[1] == "rw-p" and (end - start) // 1024 == stack_kib
                        else "anon")
            elif first[0] == "Rss:":
                kinds[kind] += int(first[1])
    return {k: round(v / 1024, 1) for k, v in kinds.items()}


def _stack_kib() -> int:
    """A new thread's stack size in KiB (Python's ``threading.stack_size()``, else the stack limit glibc uses)."""
    import resource
    import threading

    size = threading.stack_size()
    if not size:
        soft = resource.getrlimit(resource.RLIMIT_STACK)[0]
        size = soft if soft != resource.RLIM_INFINITY else 2 * 2**20  # glibc's default without a limit
    return size // 1024


def python_arenas_mib() -> float:
    """MiB of Python's own object arenas (pymalloc, mapped 1 MiB at a time outside the C heap): arenas that rise
    while ``python_blocks`` stays flat are arenas kept alive by a few blocks each (fragmentation)."""
    import tempfile

    with tempfile.TemporaryFile() as out:  # sys._debugmallocstats writes to the C stderr
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    for line in text.splitlines():
        if " arenas * " in line and "bytes/arena" in line:  # "N arenas * 1048576 bytes/arena = ..."
            arenas, _, rest = line.partition(" arenas * ")
            return round(int(arenas) * int(rest.split()[0]) / 2**20, 1)
    return 0.0


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


@functools.lru_cache(maxsize=1)
def _mallinfo2() -> Any:
    call = getattr(libc(), "mallinfo2", None)  # glibc 2.33 and later
    if call is not None:
        call.restype = _MallInfo2
    return call


def malloc_mib() -> dict[str, float]:
    """What the C allocator holds, every arena (glibc ``mallinfo2``), in MiB: ``used`` (allocated and not freed,
    large blocks mapped on their own included) and ``free`` (kept for later inside the arenas); empty where the C
    library has no ``mallinfo2``.

    Besides the resident set this tells a leak from fragmentation: C code (SDL, FreeType, Mesa) and Python's
    larger objects allocate here, so ``used`` rising with the resident set is memory something holds, while a
    resident set that rises with ``free`` is freed memory the heap cannot give back."""
    call = _mallinfo2()
    if call is None:
        return {}
    info = call()
    return {"used": round((info.uordblks + info.hblkhd) / 2**20, 1), "free": round(info.fordblks / 2**20, 1)}


@functools.lru_cache(maxsize=1)
def _sqlite_memory_used() -> Any:
    try:
        call = ctypes.CDLL("libsqlite3.so.0").sqlite3_memory_used
    except (OSError, AttributeError):
        return None
    call.restype = ctypes.c_int64
    return call


def sqlite_mib() -> float | None:
    """MiB SQLite holds (its page caches above all; ``sqlite3_memory_used``), a part of the C heap's ``used``; None
    where the library cannot be asked."""
    call = _sqlite_memory_used()
    return None if call is None else round(call() / 2**20, 2)


def python_blocks() -> int:
    """Memory blocks Python's own allocator has handed out and not had back (``sys.getallocatedblocks``): a
    count that rises steadily is Python objects piling up, whatever their type."""
    return sys.getallocatedblocks()


def texture_mib() -> float:
    """MiB of pixels held by the live Kivy textures (width × height × 4, regions aside; 0 without Kivy)."""
    if "kivy.graphics.texture" not in sys.modules:
        return 0.0
    from kivy.graphics.texture import Texture

    with others_parked():
        objects = tracked_objects()
        # Not regions: they share a parent's pixels.
        total = sum(o.width * o.height * 4 for o in objects if type(o) is Texture)
        del objects
    return round(total / 2**20, 1)


def open_descriptors() -> collections.Counter[str]:
    """What this process's descriptors point at, counted: a file's path, or ``socket`` and ``pipe`` (their inode
    numbers dropped, so one kind adds up), or the anonymous inode's kind (``anon_inode:[eventfd]``)."""
    kinds: collections.Counter[str] = collections.Counter()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # closed since the listing (the listing's own descriptor among them)
            continue
        kind, bracket, _inode = target.partition(":[")
        kinds[kind if bracket and kind in ("socket", "pipe") else target] += 1
    return kinds


def _rises(before: collections.Counter[Any], after: collections.Counter[Any]) -> list[tuple[Any, int]]:
    """The keys counted more often in ``after`` than in ``before`` (key, rise), the largest rise first."""
    rises = ((key, n - before.get(key, 0)) for key, n in after.items())
    return sorted((r for r in rises if r[1] > 0), key=lambda r: -r[1])


def opened(before: collections.Counter[str], after: collections.Counter[str]) -> list[tuple[str, int]]:
    """The descriptor kinds more of which are open in ``after`` than in ``before`` (kind, rise), most first."""
    return sorted(_rises(before, after), key=lambda r: (-r[1], r[0]))


def grown(before: collections.Counter[type], after: collections.Counter[type], top: int = 8) -> list[tuple[str, int]]:
    """The ``top`` types whose live count rose most from ``before`` to ``after`` (name, rise), rises only."""
    return [(f"{kind.__module__}.{kind.__qualname__}", n) for kind, n in _rises(before, after)[:top]]
