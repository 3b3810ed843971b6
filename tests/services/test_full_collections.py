"""Full garbage collections between residents (kiosk.services.heap.defer_full_collections): a visit's allocations
set off no automatic full collection, and the home screen's tidy still collects fully. (The kiosk's start sets
it: tests/screens/test_home.py.)"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a child: the collector's thresholds are process-wide. Holds 300,000 small objects (the kiosk's screens and
# catalogue stand in), then makes and drops 400 batches of cyclic garbage, 2,000 objects each, some of which
# stay alive (a visit's long-lived objects), and counts the collections of each generation; then one tidy.
SCRIPT = """
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


def _child(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_visits_allocations_set_off_no_full_collection_and_the_tidy_still_collects_fully() -> None:
    from kiosk.services.heap import FULL_COLLECTION_AFTER

    deferred = _child("deferred")
    young, middle, full = deferred["thresholds"]
    assert full == FULL_COLLECTION_AFTER and (young, middle) == tuple(_child("default")["thresholds"][:2])
    assert deferred["during"]["2"] == 0
    assert deferred["during"]["0"] > 100 and deferred["during"]["1"] > 10  # the young ones still run
    assert deferred["after_tidy"]["2"] == 1


def test_without_it_the_same_allocations_set_off_full_collections() -> None:
    # The check above can fail: with Python's thresholds these allocations run full collections mid-visit.
    assert _child("default")["during"]["2"] >= 2

