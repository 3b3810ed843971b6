"""The soak's residents do not pause (issue 18): the card goes down, and the phone pays, at once."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any


def _resident(cls: Any, tmp_path: Path, waits: list[float], placed: list[str]) -> Any:
    reader = SimpleNamespace(place=placed.append)
    runtime = SimpleNamespace(devices=SimpleNamespace(all=lambda: [], get=lambda name: reader))
    driver = SimpleNamespace(wait_seconds=waits.append)
    if cls.__name__ == "SoakResident":
        resident = cls(driver, runtime, tmp_path, station=None, injector=None)
    else:
        resident = cls(driver, runtime, tmp_path)
    resident.person = "WANG"
    return resident


def test_the_soaks_resident_lays_the_card_down_without_the_demo_residents_pause(tmp_path: Path) -> None:
    from kiosk.demo.resident import RESIDENT_PAUSE_S, Resident
    from kiosk.soak.ui_soak import SoakResident

    item = SimpleNamespace(id="H01", identity="id_card")
    for cls, pause in ((Resident, RESIDENT_PAUSE_S), (SoakResident, 0.0)):
        waits: list[float] = []
        placed: list[str] = []
        _resident(cls, tmp_path, waits, placed).present_identity(item)
        assert waits == [pause] and len(placed) == 1, (cls.__name__, waits, placed)
    assert RESIDENT_PAUSE_S > 0
