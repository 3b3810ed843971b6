"""`kiosk ui-audit` figures: wall time of a whole audit, renders drawn, seconds a render.

The audit opens its own offscreen window, so it runs as a child process, as a user runs it.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time


def main() -> None:
    """Run one whole audit and print how long it took."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    with tempfile.TemporaryDirectory(prefix="bench-ui-audit-") as cwd:
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "kiosk.cli", "ui-audit", "--json"], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=3600)
        wall = time.perf_counter() - started
    report = json.loads(result.stdout)
    renders = len(report["screens"])
    scenes = len({(r["screen"], r["item"], r["state"]) for r in report["screens"]})
    print(f"ui-audit: {renders} renders of {scenes} scenes in {wall:.1f} s wall "
          f"({wall / max(1, renders):.2f} s a render, start-up included), {report['violations']} violations, "
          f"exit {result.returncode}")


if __name__ == "__main__":
    main()
