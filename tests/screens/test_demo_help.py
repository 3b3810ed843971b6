"""`kiosk demo --flow S01:help=identify`: the resident calls the duty officer on the identify screen.

Run as a user runs it (a separate process). The scripted officer answers through the simulator;
the resident reads the reply on the screen, acknowledges it and finishes S01. summary.json
flows always carry ``help_ticket`` ("" when no help was asked).
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from PIL import Image

from kiosk.demo.helpcall import OFFICER_REPLIES
from tests.screens.test_demo import kiosk

pytestmark = pytest.mark.ui


def test_demo_s01_with_a_call_for_help_on_the_identify_screen(tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    result = kiosk("demo", "--out", str(out), "--state", str(state), "--flow", "S01:help=identify", "H01",
                   cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    s01, h01 = json.loads((out / "summary.json").read_text(encoding="utf-8"))["flows"]
    assert s01["item"] == "S01" and s01["outcome"] == "completed", s01
    assert s01["help_ticket"].isdigit() and s01["help_reply"] == OFFICER_REPLIES["identify"]
    assert h01["help_ticket"] == "" and h01["help_reply"] == ""
    # The question, the ticket line and the reply banner were photographed on the identify screen.
    shots = [s for s in s01["screenshots"] if s.endswith("-identify.png")]
    assert len(shots) == 4
    with Image.open(out / shots[-1]) as banner:  # the reply banner's light paper across the screen
        r, g, b = banner.convert("RGB").getpixel((80, 520))
        assert r > 230 and g > 220 and b > 150
    # The backend kept the request answered, with the masked screen and nothing personal.
    db = sqlite3.connect(state / "backend-sim.sqlite3")
    row = db.execute("SELECT status, screen, item_id, step, identity_masked, reply, screenshots FROM help_requests"
                     " WHERE ticket = ?", (s01["help_ticket"],)).fetchone()
    assert row[:5] == ("answered", "identify", "S01", "identify", "") and row[5] == OFFICER_REPLIES["identify"]
    assert row[6] >= 1
    journal = sqlite3.connect(state / "journal.sqlite3")
    kinds = journal.execute("SELECT kind, state, refs FROM effects WHERE kind = 'help_request'").fetchall()
    assert len(kinds) == 1 and kinds[0][1] == "resolved" and '"answered"' in kinds[0][2]
