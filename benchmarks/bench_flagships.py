"""The flagship flows: touch → response drawn, H01's machine time, and the kiosk's peak RSS after one H01.

One child process (Kivy opens one window per process) assembles the kiosk as ``kiosk run --headless``
does (:func:`benchmarks.bench_startup.kiosk_as_run`, with the demo's card-in-hand and paper-tray
settings, ``kiosk.demo.command.demo_config``) and the demo's :class:`UiDriver` and :class:`Resident`
walk the flagship flows in-process: H01 (the first flow of a run, cold), H01 again (warm: its machine
time is ``h01_machine_s``), the other home tiles (``runtime.home_items``) and H01 by keypad. Every
touch and key of every flow is pooled (``UiDriver.response_ms``) into ``touch_ms`` {p50, p95, max},
the cold first flow included: a resident after a restart meets it too. The warm-only figures are
printed beside. ``peak_rss_mib`` is VmHWM after the first frame and the first H01. Printed, never asserted.

The printers take their own time (:data:`PRINTERS_AT_WORK`), as real ones do: the simulators' ``delay_s``, which the
demo's machine time leaves out with the card's wire time. With instant printers the printing screen's minimum display
(``kiosk.screens.printing.MIN_SHOWN_S``, 1 s) would stand in for a print no real printer makes that fast, and H01's
machine time would carry it.
"""
from __future__ import annotations

import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHILD_TIMEOUT_S = 1200
# Each simulated printer's own time per job (``delay_s``): an office A4 laser's first page out (vendors give 5-8 s),
# an 80 mm thermal receipt of about 200 mm at 250 mm/s. Both outlast the printing screen's 1 s minimum.
PRINTERS_AT_WORK: dict[str, Any] = {"a4_printer": {"options": {"delay_s": 6.0}},
                                    "receipt_printer": {"options": {"delay_s": 1.0}}}


def _child(workdir: Path) -> None:
    """In the child: walk the flagship flows and print one JSON line of figures."""
    from benchmarks.bench_startup import kiosk_as_run, peak_rss_mib
    from kiosk.demo.command import demo_config
    from kiosk.demo.driver import UiDriver
    from kiosk.demo.resident import Resident
    from kiosk.demo.summary import response_figures

    from kiosk.config import from_dict

    state = workdir / "state"
    runtime, app, heartbeat = kiosk_as_run(demo_config(from_dict({"devices": PRINTERS_AT_WORK}), state))
    from kiosk.screens.home import TIDY_AFTER_S  # a screen module: only once kiosk_as_run has set Kivy up
    driver = UiDriver(app)
    driver.start()
    pauses = CollectorPauses()
    try:
        driver.wait_until(lambda: app.availability > 0, "the first availability check")
        first_frame_rss = peak_rss_mib()
        # The first resident comes to a kiosk that has stood on its home screen a moment, long enough for home's
        # tidy (TIDY_AFTER_S after it showed), as after a restart at night, not within half a second of it.
        driver.wait_seconds(TIDY_AFTER_S + 1.0)
        pauses.start()
        resident = Resident(driver, runtime, workdir / "out", shots="ends")
        others = [item.id for item in runtime.home_items if item.id != "H01"]
        flows = ["H01", "H01", *others, "H01:input=keypad"]
        records = []
        after_h01_rss = None
        warm_from = 0
        for n, flow in enumerate(flows):
            if n == 1:
                warm_from = len(driver.response_ms)
            records.append(resident.run(flow))
            if n == 0:
                after_h01_rss = peak_rss_mib()
        figure = {
            "flows": [{"flow": flow, "outcome": r.outcome, "seconds": r.seconds, "touches": r.touches, "keys": r.keys,
                       "touch_ms": r.touch_ms, **({"reason": r.reason} if r.outcome != "completed" else {})}
                      for flow, r in zip(flows, records)],
            "touch_ms": response_figures(driver.response_ms),
            "touch_ms_warm": response_figures(driver.response_ms[warm_from:]),
            "responses": len(driver.response_ms),
            "h01_machine_s": records[1].seconds if records[1].outcome == "completed" else None,
            "first_frame_peak_rss_mib": first_frame_rss,
            "peak_rss_mib": after_h01_rss,
            "collections": pauses.figures(),
        }
        print(json.dumps(figure), flush=True)
    finally:
        pauses.stop()
        driver.stop()
        heartbeat.stop()
        runtime.close()


class CollectorPauses:
    """The garbage collector's automatic collections while the flows run (``gc.callbacks``), by generation: how
    many and the longest, in ms. A full (generation 2) collection stops every thread while it walks the objects."""

    def __init__(self) -> None:
        self._began = 0.0
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses[info["generation"]].append((time.perf_counter() - self._began) * 1000)

    def start(self) -> None:
        gc.callbacks.append(self._callback)

    def stop(self) -> None:
        if self._callback in gc.callbacks:
            gc.callbacks.remove(self._callback)

    def figures(self) -> dict[str, Any]:
        return {f"gen{g}": {"count": len(p), "max_ms": round(max(p), 1) if p else 0.0} for g, p in self.pauses.items()}


def figures() -> dict[str, Any]:
    """Run the flagship flows in a child; its figures (``touch_ms``, ``h01_machine_s``, ``peak_rss_mib``, ...)."""
    from benchmarks.bench_startup import KIVY_ENV

    workdir = Path(tempfile.mkdtemp(prefix="kiosk-bench-flagships-"))
    env = {**{k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}, **KIVY_ENV,
           "KIVY_HOME": str(workdir / "kivy")}
    try:
        child = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_flagships", "--child", str(workdir)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = child.communicate(timeout=CHILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.kill()  # SDL turns SIGTERM into a window close, which the kiosk refuses
            child.communicate()
            raise RuntimeError(f"the flagship flows did not finish in {CHILD_TIMEOUT_S} s") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"the flagship child reported nothing (exit {child.returncode}): {err[-2000:]}")
    figure = lines[-1]
    if any(f["outcome"] != "completed" for f in figure["flows"]):
        figure["touch_ms"] = None  # a broken flow's touches are not the flagships' (h01_machine_s has its own check)
    if figure["flows"][0]["outcome"] != "completed":
        figure["peak_rss_mib"] = None  # the peak after one H01, and that H01 did not run through
    return figure


def main() -> dict[str, Any]:
    """Print the flagship figures; return them for bench.json."""
    f = figures()
    for flow in f["flows"]:
        print(f"   {flow['flow']:<18} {flow['outcome']:<10} {flow['seconds']:6.2f} s machine, {flow['touches']:>2} "
              f"touches, {flow['keys']:>2} keys, touch_ms {flow['touch_ms']}")
    print(f"flagships: touch → response drawn over {f['responses']} touches and keys: {f['touch_ms']} "
          f"(warm flows only: {f['touch_ms_warm']})")
    print(f"flagships: H01 machine time, warm: {f['h01_machine_s']} s; peak RSS {f['first_frame_peak_rss_mib']} MiB "
          f"at the first frame, {f['peak_rss_mib']} MiB after the first H01")
    print(f"flagships: the garbage collector's automatic collections during the flows: {f['collections']}")
    return f


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        _child(Path(sys.argv[2]))
    else:
        main()
