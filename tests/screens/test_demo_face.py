"""`kiosk demo` on the face step: S01 and E07 captured with no touch, a printed photo refused, a far resident guided.

One demo process (as an operator runs it) plays four visits on the simulated camera
(flow option ``face=``); the tests read summary.json.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kiosk.i18n import translate
from kiosk.services.face.guide import GUIDANCE_TEXTS

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(900)]

FLOWS = ["S01", "S01:face=photo", "S01:face=far", "E07"]


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("demo-face") / "out"
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    done = subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--out", str(out), "--screenshots", "ends",
                           "--flow", *FLOWS], cwd=out.parent, env=env, capture_output=True, text=True, timeout=840)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    records = json.loads((out / "summary.json").read_text(encoding="utf-8"))["flows"]
    assert [f["item"] for f in records] == ["S01", "S01", "S01", "E07"]
    return records


def said(code: str) -> str:
    return translate(GUIDANCE_TEXTS[code], "zh_CN")


@pytest.mark.parametrize("n", [0, 3])
def test_s01_and_e07_capture_the_face_with_no_touch(flows: list[dict[str, Any]], n: int) -> None:
    record = flows[n]
    assert record["outcome"] == "completed", record
    assert "face" not in record["touches_by_screen"], record["touches_by_screen"]
    assert sum(record["touches_by_screen"].values()) == record["touches"]
    # Guided and asked to hold still, in the screen's own words.
    assert any(said("hold_still") in text for text in record["spoken"]), record["spoken"]


def test_a_printed_photo_is_refused_liveness_failed(flows: list[dict[str, Any]]) -> None:
    record = flows[1]
    assert (record["outcome"], record["reason"]) == ("refused", "liveness_failed"), record
    assert "face" not in record["touches_by_screen"]
    failed = translate("The camera could not tell that you are there in person. "
                       "Please blink slowly when asked. Tries left: {n}", "zh_CN")
    assert any(failed.format(n=2) in text for text in record["spoken"]), record["spoken"]
    assert not record["documents"] and not record["receipts"]


def test_a_far_resident_hears_move_closer_before_the_capture(flows: list[dict[str, Any]]) -> None:
    record = flows[2]
    assert record["outcome"] == "completed", record
    assert "face" not in record["touches_by_screen"]
    spoken = record["spoken"]
    closer = [n for n, text in enumerate(spoken) if said("move_closer") in text]
    form = [n for n, text in enumerate(spoken) if text.startswith(translate("Fill in", "zh_CN"))]
    assert closer and form and closer[0] < form[0], spoken
