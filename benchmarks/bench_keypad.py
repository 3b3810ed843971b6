"""The tactile keypad: H01 keypad-only, machine time and key count (and S01, T02, T03's key counts).

`kiosk demo` runs in a child process (Kivy opens one window per process): the flows with
``input=keypad`` (keys through the window's key events, no touch) and H01 by touch beside
them for comparison (after a first, warm-up H01). Machine time is the flow's wall time less
the resident's pauses, as summary.json's ``seconds``; speech is not part of it. Figures are
printed, never asserted. For bench.json: ``keypad_h01`` {machine_s, keys} of the keypad-only H01
(null when it did not complete).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# The first flow of a run pays for first-time work (pinyin index, screens built, prompts rendered): a touch H01
# goes first to warm up, and again last, warm, to compare with.
FLOWS = ("H01", "H01:input=keypad", "S01:input=keypad", "T02:input=keypad", "T03:input=keypad", "H01")


def figures() -> list[dict[str, object]]:
    """Run the demo's flows once; per flow: item, input, outcome, keys, touches, machine seconds."""
    out = Path(tempfile.mkdtemp(prefix="kiosk-bench-keypad-"))
    env = {**os.environ, "SDL_VIDEODRIVER": "offscreen", "KIVY_HOME": str(out / "kivy"), "KIVY_NO_ARGS": "1",
           "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1", "KIVY_LOG_MODE": "PYTHON"}
    env.pop("KIOSK_CONFIG", None)
    child = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--out", str(out / "out"),
                            "--screenshots", "ends", "--flow", *FLOWS],
                           env=env, capture_output=True, text=True, timeout=1200)
    summary = out / "out" / "summary.json"
    if not summary.is_file():
        raise RuntimeError(f"the keypad demo wrote no summary: {child.stderr[-2000:]}")
    flows = json.loads(summary.read_text(encoding="utf-8"))["flows"]
    return [{"item": f["item"], "input": f["input"], "outcome": f["outcome"], "keys": f["keys"],
             "touches": f["touches"], "seconds": f["seconds"]} for f in flows]


def main() -> dict[str, Any]:
    """Print the figures; return bench.json's ``keypad_h01`` {machine_s, keys} and every flow's row."""
    rows = figures()
    keypad_h01 = None
    for row in rows:
        if row["item"] == "H01" and row["input"] == "keypad":
            print(f"keypad: H01 keypad-only: machine time {row['seconds']} s, {row['keys']} keys, "
                  f"{row['touches']} touches ({row['outcome']})")
            if row["outcome"] == "completed":
                keypad_h01 = {"machine_s": row["seconds"], "keys": row["keys"]}
    for row in rows:
        print(f"   {row['item']} {row['input']}: {row['outcome']}, {row['keys']} keys, {row['touches']} touches, "
              f"{row['seconds']} s machine")
    print("keypad_flows " + json.dumps(rows))
    return {"keypad_h01": keypad_h01, "keypad_flows": rows}


if __name__ == "__main__":
    main()
