"""The interpreter's table of interned strings brought to its lasting size at the first tidy at rest
(kiosk.services.heap.settle_interned_strings): strings interned and dropped afterwards do not grow it."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a child (the table is process-wide): 60,000 live interned strings, about the kiosk's working set, then
# optionally the settling, then 200,000 strings interned and dropped, as a day of visits does (paths' parts,
# attribute names). Reports the C heap's used memory (mallinfo2, large blocks included) at each step.
SCRIPT = """
import json, sys
from kiosk.services import heap
from kiosk.soak.sampler import malloc_mib

live = [sys.intern(f"kiosk-live-{n}") for n in range(60_000)]
start = malloc_mib()["used"]
settled = heap.settle_interned_strings() if sys.argv[1] == "settled" else None
again = heap.settle_interned_strings() if sys.argv[1] == "settled" else None
before = malloc_mib()["used"]
for n in range(200_000):
    sys.intern(f"visit-{n}")
after = malloc_mib()["used"]
print(json.dumps({"settled": settled, "again": again, "settling_mib": before - start, "day_mib": after - before,
                  "live": len(live)}))
"""


def _child(mode: str) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, mode], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_after_the_settling_a_day_of_interned_strings_does_not_grow_the_table() -> None:
    child = _child("settled")
    assert child["settled"] is True and child["again"] is False  # once per process
    assert child["settling_mib"] >= 1.5  # the table's resize from 2**17 to 2**18 slots (1.8 MiB) happens here
    assert abs(child["day_mib"]) < 0.5


def test_without_it_the_table_grows_during_the_day() -> None:
    # The check above can fail: unsettled, the same day resizes the table once it has used up its slots.
    assert _child("plain")["day_mib"] >= 1.5
