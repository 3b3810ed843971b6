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

pytestmark = [pytest.mark.ui, pytest.mark.slow]

# H01 is a home tile: home → guide in one touch, no category list on the way.
SCREENS_OF_H01 = {"home", "guide", "identify", "form", "confirm", "printing", "done"}


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
    assert flow["mode"] in ("normal", "care")
    assert flow["outcome"] == "completed", flow
    assert 1 <= flow["touches_after_identity"] <= 4
    # The tile and 开始办理 before the card (and, in care mode, the touch on the 关怀模式 switch first).
    assert flow["touches"] == flow["touches_after_identity"] + 2 + (flow["mode"] == "care")
    # Each touch timed from the finger lifting to the first frame drawn after it was handled.
    times = flow["touch_ms"]
    assert list(times) == ["p50", "p95", "max"]
    assert 0 < times["p50"] <= times["p95"] <= times["max"], times
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


def test_demo_h01_in_care_mode_turns_it_on_by_touch(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = kiosk("demo", "--out", str(out), "--flow", "H01:mode=care", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    flow = check_h01(out)
    assert flow["mode"] == "care"
    plain = kiosk("demo", "--out", str(tmp_path / "plain"), "--flow", "H01", cwd=tmp_path)
    assert plain.returncode == 0, plain.stdout + plain.stderr[-3000:]
    normal = check_h01(tmp_path / "plain")
    assert normal["mode"] == "normal"
    assert flow["touches"] == normal["touches"] + 1  # the one touch on the care switch
    # The care-mode guide is drawn in larger type: its frame differs from the normal one.
    shot = next(s for s in flow["screenshots"] if s.endswith("guide.png"))
    plain_shot = next(s for s in normal["screenshots"] if s.endswith("guide.png"))
    with Image.open(out / shot) as care_image, Image.open(tmp_path / "plain" / plain_shot) as normal_image:
        assert care_image.tobytes() != normal_image.tobytes()


def test_run_without_display_runs_the_demo_and_says_where(tmp_path: Path) -> None:
    result = kiosk("run", "--out", "shown-here", cwd=tmp_path, drop_display=True)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert "no display" in result.stdout and str(tmp_path / "shown-here") in result.stdout
    assert " INFO " not in result.stderr, result.stderr[-2000:]  # the demo's progress, not the simulator's log
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


# --- scripted faults, a kept state folder, recovery --------------------------------------------------------
def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text(encoding="utf-8"))


def _ledger(state: Path) -> tuple[list[str], list[tuple[str, str | None]]]:
    """The simulator's effects (``operation`` as ``operation:<name>``) and its orders (status, consumed_by)."""
    import sqlite3

    db = sqlite3.connect(state / "backend-sim.sqlite3")
    try:
        kinds = [f"{k}:{op}" if k == "operation" else k
                 for k, op in db.execute("SELECT kind, operation FROM effects ORDER BY seq")]
        orders = list(db.execute("SELECT status, consumed_by FROM orders"))
    finally:
        db.close()
    return kinds, orders


def test_demo_lost_answers_are_asked_for_again_and_a_fault_that_cannot_fire_counts_zero(tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    result = kiosk("demo", "--out", str(out), "--state", str(state), "--screenshots", "ends",
                   "--flow", "H13:fault=answer_lost", "G02:fault=answer_lost", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    h13, g02 = _summary(out)["flows"]
    assert (h13["outcome"], h13["reason"]) == ("completed", "") and h13["receipts"], h13
    # Counted by the backend simulator each time it lost an answer, not copied from the flow.
    assert h13["faults"] == [{"kind": "answer_lost", "count": 2}]
    assert g02["faults"] == [{"kind": "answer_lost", "count": 0}]  # a guide runs no operation: it never fired
    kinds, orders = _ledger(state)
    assert [k for k in kinds if k.startswith("payment")] == ["payment_order", "payment_paid"]  # no refund
    assert kinds.count("operation:id_card_damaged_replacement") == 1
    assert len(orders) == 1 and orders[0][0] == "paid" and orders[0][1] == h13["reference"]  # consumed once
    # the demo's statistics stay in its state folder: `kiosk stats --state DIR` shows them after the demo
    shown = kiosk("stats", "--state", str(state), "--json", cwd=tmp_path)
    counts = {i["item_id"]: i["counts"]["completed"] for i in json.loads(shown.stdout)["items"]}
    assert counts == {"H13": 1}, shown.stdout + shown.stderr  # a guide (G02) is read, not counted


def test_demo_outcome_unknown_then_the_next_run_recovers_and_prints_the_owed_slip(tmp_path: Path) -> None:
    from print_templates.escpos_decode import decode

    config = tmp_path / "kiosk.toml"
    config.write_text("[backend]\nunknown_outcome_s = 3\n", encoding="utf-8")
    state = tmp_path / "state"
    first = kiosk("--config", str(config), "demo", "--out", str(tmp_path / "one"), "--state", str(state),
                  "--screenshots", "ends", "--flow", "H13:fault=answer_lost:lost=all", cwd=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr[-3000:]
    (h13,) = _summary(tmp_path / "one")["flows"]
    assert (h13["outcome"], h13["reason"]) == ("failed", "outcome_unknown") and h13["receipts"] == []
    assert h13["faults"][0]["kind"] == "answer_lost" and h13["faults"][0]["count"] >= 2
    reference = h13["message"].rsplit(" ", 1)[-1].rstrip(".")
    assert reference.startswith("JN-DEMO-0001-")
    assert any(reference in text and "服务窗口" not in text for text in h13["shown"])  # the number on screen
    assert any("服务窗口" in text for text in h13["shown"])  # and where to collect the slip
    kinds, _ = _ledger(state)
    assert "payment_refund" not in kinds  # nothing refunded while the outcome is unknown

    second = kiosk("--config", str(config), "demo", "--out", str(tmp_path / "two"), "--state", str(state),
                   "--screenshots", "ends", "--flow", "H01", cwd=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    summary = _summary(tmp_path / "two")
    assert summary["flows"][0]["outcome"] == "completed"
    (owed,) = summary["recovered"]
    assert (owed["item"], owed["reference"], owed["refunded"]) == ("H13", reference, "")
    (slip,) = owed["printed"]
    assert reference in decode((tmp_path / "two" / slip).read_bytes()).text
    kinds, orders = _ledger(state)
    assert kinds.count("operation:id_card_damaged_replacement") == 1  # done once, in the first run
    assert "payment_refund" not in kinds and orders[0][0] == "paid"


@pytest.mark.parametrize("flow, named", [
    ("H01:bogus=1", "bogus"),
    ("E01:document_number=C1", "document_number"),  # a travel-entry field, but not under mrz=typed
    ("H01:lost=3", "lost="),
    ("H01:fault=meteor", "meteor"),
    ("H01:chip=cloned", "chip=cloned"),
])
def test_demo_refuses_a_flow_option_it_does_not_know_and_names_it(tmp_path: Path, flow: str, named: str) -> None:
    result = kiosk("demo", "--out", str(tmp_path / "out"), "--flow", flow, cwd=tmp_path)
    assert result.returncode == 78, result.stdout + result.stderr[-2000:]
    assert named in result.stderr + result.stdout
    assert not (tmp_path / "out" / "summary.json").exists()  # refused before anything ran


def test_demo_a_forged_chip_is_refused_and_a_genuine_one_completes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = kiosk("demo", "--out", str(out), "--screenshots", "ends",
                   "--flow", "E01", "E01:chip=tampered", "E01:chip=cloned", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    genuine, tampered, cloned = _summary(out)["flows"]
    assert genuine["outcome"] == "completed" and genuine["receipts"], genuine
    for forged, kind in ((tampered, "tampered"), (cloned, "cloned")):
        assert (forged["outcome"], forged["reason"]) == ("refused", "chip_not_authentic"), forged
        assert "counter" in forged["where"] and forged["message"]
        assert forged["faults"] == [{"kind": kind, "count": 1}]  # the chip reader served the forged chip once
        assert forged["receipts"] == [] and forged["documents"] == []
