"""All 71 items through the touch UI: `kiosk demo --all`, with figures per item kind.

The full run is a benchmark, not a test: it takes many minutes on a small machine. Per
flow it reports machine time (wall time less the scripted resident's pauses, screenshots
and simulated device delays), wall time and touches after the identity step; then per
kind the count, how many completed, and the median and worst machine time. For bench.json:
``demo_all_s``, the wall seconds of the whole `kiosk demo --all` child (null when it wrote no
summary or stopped before its last flow); completed/total are printed and returned beside it.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

TIMEOUT_S = 3600
FLAGSHIPS = ("H01", "H02", "H03", "H04", "H16", "S01", "T01", "T02", "T03", "H19", "H20", "H21", "S05", "E01",
             "S09", "G05")


def run_all(out: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """`kiosk demo --all --out OUT` in a child process: the finished child and its wall seconds."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--all", "--out", str(out)],
                            env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    return result, time.monotonic() - started


def main() -> dict[str, Any]:
    """Run `kiosk demo --all` in a child process, print its figures; return bench.json's ``demo_all_s`` and
    ``demo_all_completed`` / ``demo_all_flows`` beside it (all null when the run did not go through every item)."""
    from kiosk.services.catalog import Catalog

    kinds = {item.id: item.kind for item in Catalog.load().items}
    out = Path(tempfile.mkdtemp(prefix="kiosk-bench-demo-all-"))
    result, wall_s = run_all(out)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        print(f"demo --all wrote no summary (exit {result.returncode}): {result.stderr[-2000:]}")
        return {"demo_all_s": None, "demo_all_completed": None, "demo_all_flows": None}
    flows = json.loads(summary_path.read_text(encoding="utf-8"))["flows"]
    by_kind: dict[str, list[dict]] = defaultdict(list)
    for flow in flows:
        by_kind[kinds.get(flow["item"], "?")].append(flow)
    done = sum(f["outcome"] == "completed" for f in flows)
    whole = len(flows) == len(kinds)  # one flow per item: a run cut short (a crash, the timeout) has fewer
    print(f"demo --all: {done}/{len(flows)} completed (exit {result.returncode}) in {wall_s:.0f} s wall"
          f"{'' if whole else f', stopped after {len(flows)} of {len(kinds)} items'}; output in {out}")
    for flow in flows:
        if flow["outcome"] != "completed":
            print(f"  not completed: {flow['item']} {flow['outcome']} {flow['reason']}")
    print(f"{'kind':<12} {'flows':>5} {'done':>5} {'median s':>9} {'max s':>7} {'median wall s':>14} "
          f"{'median touches':>15}")
    for kind, items in sorted(by_kind.items()):
        machine = [f["seconds"] for f in items]
        wall = [f.get("wall_seconds", 0.0) for f in items]
        touches = [f["touches_after_identity"] for f in items]
        print(f"{kind:<12} {len(items):>5} {sum(f['outcome'] == 'completed' for f in items):>5} "
              f"{statistics.median(machine):>9.2f} {max(machine):>7.2f} {statistics.median(wall):>14.2f} "
              f"{statistics.median(touches):>15.1f}")
    print("flagships: item, touches from home to the end, touches after identity, machine s, wall s, paused s")
    for flow in flows:
        if flow["item"] in FLAGSHIPS:
            print(f"  {flow['item']}  {flow['touches']:>2}  {flow['touches_after_identity']:>2}  "
                  f"{flow['seconds']:>6.2f}  "
                  f"{flow.get('wall_seconds', 0.0):>6.2f}  {flow.get('pause_seconds', 0.0):>6.2f}")
    total = sum(f["seconds"] for f in flows)
    print(f"total machine time {total:.1f} s over {len(flows)} flows")
    if not whole:
        return {"demo_all_s": None, "demo_all_completed": None, "demo_all_flows": None}
    return {"demo_all_s": round(wall_s, 1), "demo_all_completed": done, "demo_all_flows": len(flows)}


if __name__ == "__main__":
    main()
