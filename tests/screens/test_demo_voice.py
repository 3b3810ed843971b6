"""`kiosk demo` speaks: every screen of H01, S01, T02 and T03 says its title; summary.json's spoken and audio."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.hardware.speaker import Audio
from kiosk.i18n import translate

pytestmark = [pytest.mark.ui, pytest.mark.slow, pytest.mark.timeout(1200)]  # six flows of the real UI in one process

# The title each screen's header shows (msgids): what the screen's first utterance starts with.
TITLES = {"home": "24-hour Self-service Police Station", "category": "Choose a service", "guide": "Service guide",
          "identify": "Identity check", "travel_entry": "Identity check", "face": "Face check", "form": "Fill in",
          "confirm": "Please confirm", "payment": "Payment", "printing": "Printing", "done": "Finished",
          "error": "Service not completed", "reprint": "Documents to print"}


def demo(out: Path, *flows: str) -> subprocess.CompletedProcess[str]:
    """`kiosk demo` in its own process (six flows take longer than test_demo's one-flow limit)."""
    env = {k: v for k, v in os.environ.items() if k != "KIOSK_CONFIG"}
    return subprocess.run([sys.executable, "-m", "kiosk.cli", "demo", "--out", str(out), "--flow", *flows],
                          cwd=out.parent, env=env, capture_output=True, text=True, timeout=900)


def screens_of(flow: dict) -> list[str]:
    return [Path(shot).stem.split("-", 2)[2] for shot in flow["screenshots"]]


def audio(path: Path) -> Audio:
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        return Audio(w.readframes(w.getnframes()), w.getframerate())


def test_demo_flows_speak_every_screen_and_keep_personal_data_for_private_listening(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = demo(out, "H01", "S01", "T02", "T03", "H01:private=yes", "H01:voice=full")
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    flows = json.loads((out / "summary.json").read_text(encoding="utf-8"))["flows"]
    assert [f["item"] for f in flows] == ["H01", "S01", "T02", "T03", "H01", "H01"]
    for flow in flows:
        assert flow["outcome"] == "completed", flow
        screens = screens_of(flow)
        assert {"home", "guide", "done"} <= set(screens)
        for screen in screens:
            title = translate(TITLES[screen], "zh_CN")
            assert any(title in text for text in flow["spoken"]), (flow["item"], screen, title)
        # The WAVs are the engine's real speech as the card got it, under audio/.
        assert flow["audio"] and all(path.startswith("audio/") for path in flow["audio"])
        for path in flow["audio"]:
            sound = audio(out / path)
            assert sound.duration_s > 0.5 and -45 < sound.rms_dbfs() < -10, path
    name, number = DEMO_CARDS[0].name, DEMO_CARDS[0].id_number
    plain, private, full = flows[0], flows[4], flows[5]
    said = "\n".join(plain["spoken"])
    assert name not in said and number not in said
    assert translate("Personal details shown on the screen", "zh_CN") in said
    owed = "\n".join(flows[3]["spoken"])  # T03: a fine to pay
    assert translate("Amount shown on the screen", "zh_CN") in owed and "100.00" not in owed
    assert any(name in text and number in text for text in private["spoken"])
    # Full read-out reads every control with its role; the default reads the main prompts only.
    button = translate("button", "zh_CN")
    assert any(f"{translate('Voice guidance', 'zh_CN')}，{button}，{translate('on', 'zh_CN')}" in text
               for text in full["spoken"])
    assert not any(f"，{button}" in text for text in plain["spoken"])
    assert full["touches"] == plain["touches"] + 1  # the one touch on 语音引导
