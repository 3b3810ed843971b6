"""What durability costs: one write_atomic of a small state file, one journal begin + complete with
``synchronous=FULL`` against the same two writes with NORMAL, and one statistics count.

The figures depend on the disk under the temporary folder (printed with its file system type:
on tmpfs an fsync costs nothing); run with TMPDIR on the kiosk's own state disk to see its cost.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.timing import ms, timed
from kiosk.durable import write_atomic
from kiosk.services import journal as J
from kiosk.services.stats import Stats

N = 200


def _fs_type(path: Path) -> str:
    best, kind = "", "?"
    for line in Path("/proc/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and str(path).startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return f"{kind} at {best}"


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print(f"temporary folder on {_fs_type(folder.resolve())}")
        target = folder / "maintenance.json"
        print(f"write_atomic 200 bytes: {ms(timed(lambda: write_atomic(target, b'x' * 200), N))}")
        journal = J.Journal(folder / "full")
        keys = iter(range(10 * N))

        def begin_complete(j: J.Journal) -> None:
            key = f"k{next(keys)}"
            j.begin(key, "t", "H01", "produce", J.OPERATE)
            j.complete(key, {"reference": "R1"})

        print(f"journal begin + complete, synchronous=FULL: {ms(timed(lambda: begin_complete(journal), N))}")
        journal._db.execute("PRAGMA synchronous=NORMAL")  # for comparison only: the kiosk never runs so
        print(f"journal begin + complete, synchronous=NORMAL: {ms(timed(lambda: begin_complete(journal), N))}")
        journal.close()
        stats = Stats(folder / "stats")
        print(f"stats record (FULL): {ms(timed(lambda: stats.record('H01', 'completed', 12.0), N))}")
        print(f"({os.cpu_count()} cores; n={N} each)")
