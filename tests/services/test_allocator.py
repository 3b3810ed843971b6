"""The allocator settled for a long-lived process (kiosk.services.heap.settle_allocator): large blocks keep a
mapping of their own even after large blocks were freed, which by default moves the bound up to their size. And
full garbage collections between residents (heap.defer_full_collections): a visit's allocations set off no
automatic full collection, and the home screen's tidy still collects fully. (The kiosk's start sets it:
tests/screens/test_home.py.)"""
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


def _child(mode: str, script: str = SCRIPT) -> dict:
    done = subprocess.run([sys.executable, "-c", script, mode], cwd=ROOT, capture_output=True, text=True,
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


# In a child: the collector's thresholds are process-wide. Holds 300,000 small objects (the kiosk's screens and
# catalogue stand in), then makes and drops 400 batches of cyclic garbage, 2,000 objects each, some of which
# stay alive (a visit's long-lived objects), and counts the collections of each generation; then one tidy.
COLLECTIONS_SCRIPT = """
import gc, json, sys
from kiosk.services import heap

thresholds = heap.defer_full_collections() if sys.argv[1] == "deferred" else gc.get_threshold()
held = [[n] for n in range(300_000)]
gc.collect()
counts = {0: 0, 1: 0, 2: 0}
gc.callbacks.append(lambda phase, info: phase == "stop" and counts.__setitem__(info["generation"],
                                                                               counts[info["generation"]] + 1))
kept = []
for batch in range(400):
    nodes = [{} for _ in range(2_000)]
    for a, b in zip(nodes, nodes[1:] + nodes[:1]):
        a["next"] = b
    kept.append(nodes[batch % 7])
    del nodes
during = dict(counts)
heap.tidy()
print(json.dumps({"thresholds": thresholds, "during": during, "after_tidy": counts}))
"""


def test_a_visits_allocations_set_off_no_full_collection_and_the_tidy_still_collects_fully() -> None:
    from kiosk.services.heap import FULL_COLLECTION_AFTER

    deferred = _child("deferred", COLLECTIONS_SCRIPT)
    young, middle, full = deferred["thresholds"]
    default = _child("default", COLLECTIONS_SCRIPT)
    assert full == FULL_COLLECTION_AFTER and (young, middle) == tuple(default["thresholds"][:2])
    assert deferred["during"]["2"] == 0
    assert deferred["during"]["0"] > 100 and deferred["during"]["1"] > 10  # the young ones still run
    assert deferred["after_tidy"]["2"] == 1


def test_without_it_the_same_allocations_set_off_full_collections() -> None:
    # The check above can fail: with Python's thresholds these allocations run full collections mid-visit.
    assert _child("default", COLLECTIONS_SCRIPT)["during"]["2"] >= 2

