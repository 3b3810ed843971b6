"""Giving freed memory back between residents: a full garbage collection and glibc's ``malloc_trim``.

glibc keeps what the kiosk frees (label textures' pixels, speech buffers, a document's render) for later
allocations, in the main heap and in each thread's arena; over hours of sessions the resident set carries
tens of MiB that nothing alive holds: a UI soak's resident set read 802, 818, 861 and 840 MiB at sessions
100 to 400, and about 76 MiB of it came back on a trim. The home screen tidies a few seconds after a resident
has gone (``HomeScreen``); the soak's samples trim the same way before they read.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import logging
import os
import sys
import time
from typing import Any, Callable

log = logging.getLogger(__name__)


# glibc's mallopt parameters (malloc.h) and the kiosk's settings for them (settle_allocator).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 128 * 1024  # glibc's own starting value, kept fixed
ARENA_MAX = 2

# The strings interned and dropped once, at the first tidy at rest: every slot of a table of 2**17 (two thirds of
# them are usable), so that the interned-strings table resizes once then (settle_interned_strings).
INTERNED_CHURN = 2**17 * 2 // 3

# The allocator the kiosk's interpreter runs on: Python's small objects from glibc's heap, not pymalloc's arenas.
# PYTHONMALLOC is read once, before the interpreter starts: kiosk.service sets it (``Environment=``), and so do
# `make run` and the soak (which re-executes itself under it, to soak the kiosk as production runs it).
#
# pymalloc carves objects of up to 512 bytes from 1 MiB arenas and gives an arena back only once every object in
# it is gone; ``malloc_trim`` cannot reach inside one. Over a UI soak's sessions the live objects stayed at about
# 2.02 million while the arenas holding them went from 152 to 159 MiB (sessions 10 to 130): long-lived objects
# made mid-session pin arenas that are otherwise empty. On glibc's heap the pages freed around them go back at the
# home screen's trim. Two 1,000-session UI soaks: the resident set beyond what malloc holds rose 9.0 ± 0.5 MiB per
# 1,000 sessions on pymalloc and 2.5 ± 0.4 on glibc's heap; the whole resident set 16.8 ± 4.5 and 7.1 ± 1.5.
# The price is CPU in allocation-heavy work: about 20% (the pinyin index built from its sources, 3.0 -> 3.8 s).
PYTHON_ALLOCATOR = "malloc"


def python_allocator() -> str:
    """The allocator this interpreter runs its objects on: ``PYTHONMALLOC`` as it started, or ``pymalloc``."""
    return os.environ.get("PYTHONMALLOC") or "pymalloc"


@functools.lru_cache(maxsize=1)
def libc() -> Any:
    """The C library through ctypes (found once per process); None where there is none to find."""
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    return ctypes.CDLL(name) if name else None


def _malloc_trim() -> Any:
    return getattr(libc(), "malloc_trim", None)


def settle_allocator() -> bool:
    """Set glibc's allocator for a process that runs for months: every block of 128 KiB or more gets a mapping
    of its own, and threads share at most two arenas. False where the C library has no ``mallopt``.

    glibc starts by mapping blocks of 128 KiB and up on their own, but each time such a block is freed it raises
    that bound to the block's size (up to 32 MiB). The UI makes and frees large blocks all day (a label's pixels,
    a document's render, a spoken prompt), so after the first few they are carved from the heap, between the
    small blocks that live for hours, and the heap's pages stay resident around them. A fixed bound keeps them
    out of the heap: freeing one returns it to the system at once. Each thread that allocates otherwise gets an
    arena of its own (up to 8 per core), each with its free memory kept for that thread alone; the kiosk's
    threads mostly wait (the interpreter lock lets one run Python at a time), so two arenas cost no contention.
    Called before the window and the services start (``kiosk.app.prepare_kivy``)."""
    mallopt = getattr(libc(), "mallopt", None)
    if mallopt is None:
        return False
    done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(mallopt(M_ARENA_MAX, ARENA_MAX))
    log.debug("allocator settled: blocks from %d KiB mapped on their own, at most %d arenas: %s",
              MMAP_THRESHOLD_BYTES // 1024, ARENA_MAX, done)
    return done


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim(0)``, every arena); False where
    there is none (another C library)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def tidy(after_collect: Callable[[], object] | None = None, *, freeze: bool = False) -> float:
    """A full garbage collection over every object (those set aside by the last ``freeze`` included), then
    ``after_collect`` (what must let go of memory the collection freed before the trim can hand it back: the
    screens pass their renderer's), then the heap trimmed; the seconds it took.

    With ``freeze``, what survived is then set aside from the automatic collections (``gc.freeze``) until the
    next tidy (see :func:`set_aside`)."""
    started = time.perf_counter()
    gc.unfreeze()  # nothing stays out of the collection: cyclic garbage set aside last time is found now
    gc.collect()
    if after_collect is not None:
        after_collect()
    trimmed = trim_heap()
    if freeze:
        set_aside()
    took = time.perf_counter() - started
    log.debug("heap tidied in %.0f ms%s%s", took * 1000, "" if trimmed else " (no malloc_trim: collected only)",
              ", survivors set aside" if freeze else "")
    return took


def set_aside() -> int:
    """Move every object the collector tracks out of its automatic collections (``gc.freeze``); how many now are.

    The kiosk holds about 340,000 tracked objects once it has started (catalog, screens, kv rules, modules), and a
    full automatic collection walks them all: 140 ms on a quiet machine, 250-300 ms beside a soak, landing on
    whatever the resident is doing (two during the flagship flows of one benchmark run). Set aside after a full
    collection at rest, the objects that survived are skipped, and an automatic collection walks only what has
    been made since. Objects set aside are still freed when their last reference goes; one that becomes part of
    cyclic garbage waits for the next :func:`tidy`, which takes them all back first (``gc.unfreeze``). So does
    every census of live objects (``gc.get_objects`` does not list them while they are set aside)."""
    gc.freeze()
    return gc.get_freeze_count()


_interned_settled = False


def settle_interned_strings(churn: int = INTERNED_CHURN) -> bool:
    """Bring CPython's table of interned strings to the size it keeps for as long as the kiosk runs, once per
    process: intern ``churn`` temporary strings and drop each at once. True the first time; later calls do nothing.

    The interpreter interns identifiers, attribute names and pathlib's path parts in one dict. A string dropped
    leaves its slot used up until the dict next resizes, which it does when no slot is left, to the smallest power
    of two at least three times its live strings. The kiosk holds about 65,000 (the UI soak read 65,239-65,470
    from session 10 to 116): that table has 2**18 slots, 3.7 MiB. Started with fewer, the table had 2**17 (1.8 MiB)
    and went on filling with the strings each visit interns and drops, until near session 656 of the UI soak it
    resized to 2**18: a step of 1.8 MiB in the C heap's used memory that stayed for the rest of the run (a heap
    profile named the dict's keys; the same step fell at session 656-658 in three soaks of the same plan). That
    is no leak, but it came in the middle of the day, and in the soak's figure for growth. Filling every slot of
    a 2**17 table forces the resize now, with no one at the kiosk; the live strings then keep it at 2**18."""
    global _interned_settled
    if _interned_settled:
        return False
    _interned_settled = True
    started = time.perf_counter()
    for n in range(churn):
        sys.intern(f"\x00kiosk-settle-{n}")  # dropped at once: its slot is used up, the string gone
    log.debug("interned strings settled: %d interned and dropped in %.0f ms", churn,
              (time.perf_counter() - started) * 1000)
    return True
