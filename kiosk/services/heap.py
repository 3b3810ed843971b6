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
import time
from typing import Any

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")  # runs ldconfig: once per process
    return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None


def trim_heap() -> bool:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim(0)``, every arena); False where
    there is none (another C library)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def tidy() -> float:
    """A full garbage collection, then the heap trimmed; the seconds it took."""
    started = time.perf_counter()
    gc.collect()
    trimmed = trim_heap()
    took = time.perf_counter() - started
    log.debug("heap tidied in %.0f ms%s", took * 1000, "" if trimmed else " (no malloc_trim: collected only)")
    return took
