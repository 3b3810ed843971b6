"""The allocator settled for a long-lived process (kiosk.services.heap.settle_allocator): large blocks keep a
mapping of their own even after large blocks were freed, which by default moves the bound up to their size."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a child: mallopt is process-wide. Frees an 8 MiB block (glibc would raise its bound to 8 MiB), then asks for
# 2 MiB and reports whether it was mapped on its own (mallinfo2's hblkhd grew by it).
SCRIPT = """
import ctypes, json, sys
from kiosk.services import heap
from kiosk.soak.sampler import _mallinfo2

settled = heap.settle_allocator() if sys.argv[1] == "settled" else None
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
libc.free(libc.malloc(8 * 2**20))
before = _mallinfo2()().hblkhd
block = libc.malloc(2 * 2**20)
mapped = _mallinfo2()().hblkhd - before
libc.free(block)
print(json.dumps({"settled": settled, "mapped_mib": mapped / 2**20}))
"""


def _child(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_large_block_is_mapped_on_its_own_after_a_larger_one_was_freed() -> None:
    settled = _child("settled")
    assert settled["settled"] is True
    assert settled["mapped_mib"] >= 2  # returned to the system the moment it is freed


def test_without_it_glibc_carves_the_block_from_the_heap() -> None:
    # The check above can fail: glibc's default moves the bound to the freed block's size.
    assert _child("default")["mapped_mib"] == 0
