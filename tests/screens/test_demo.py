"""`kiosk demo` and `kiosk run` without a display, as separate processes, as a user runs them."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

from kiosk.hardware.simulators.cards import DEMO_CARDS

pytestmark = pytest.mark.ui

SCREENS_OF_H01 = {"home", "category", "guide", "identify", "form", "confirm", "printing", "done"}


def kiosk(*args: str, cwd: Path, drop_display: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not (drop_display and k in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER"))}
    env.pop("KIOSK_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "kiosk.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=240)


def check_h01(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (flow,) = summary["flows"]
    assert flow["item"] == "H01"
    assert flow["outcome"] == "completed", flow
    assert 1 <= flow["touches_after_identity"] <= 4
    assert flow["touches"] > flow["touches_after_identity"]
    (pdf,) = flow["documents"]
    text = "".join(page.extract_text() for page in PdfReader(out / pdf).pages)
    assert "户籍证明" in text and DEMO_CARDS[0].name in text
    (receipt,) = flow["receipts"]
    data = (out / receipt).read_bytes()
    assert data.startswith(b"\x1b@") and len(data) > 100  # ESC @ resets the printer first
    shown = set()
    for shot in flow["screenshots"]:
        with Image.open(out / shot) as image:
            assert image.format == "PNG" and image.size == (1080, 1920)
            assert len(image.convert("L").resize((54, 96)).getcolors(5000) or ()) > 4  # not a blank frame
        shown.add(Path(shot).stem.split("-", 2)[2])
    assert SCREENS_OF_H01 <= shown
    return flow


def test_demo_h01_end_to_end(tmp_path: Path) -> None:
    result = kiosk("demo", "--out", str(tmp_path / "out"), "--flow", "H01", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    check_h01(tmp_path / "out")


def test_run_without_display_runs_the_demo_and_says_where(tmp_path: Path) -> None:
    result = kiosk("run", "--out", "shown-here", cwd=tmp_path, drop_display=True)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "no display" in result.stdout and str(tmp_path / "shown-here") in result.stdout
    check_h01(tmp_path / "shown-here")


def test_a_demo_stopped_by_sigterm_exits_and_leaves_no_state_behind(tmp_path: Path) -> None:
    import signal
    import time

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    env["TMPDIR"] = str(scratch)  # where the demo keeps its state (the simulator's residents)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "kiosk.cli", "demo", "--out", str(out), "--screenshots", "ends",
                             "--flow", "H01", "H01", "H01", "H01"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not (out / "summary.json").exists():  # the first flow is done: the demo is mid-run
            assert proc.poll() is None and time.monotonic() < deadline, "the demo ended or never got going"
            time.sleep(0.2)
        assert list(scratch.glob("kiosk-demo-*"))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(scratch.glob("kiosk-demo-*"))  # the state folder went with it
