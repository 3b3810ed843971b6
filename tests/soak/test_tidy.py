"""The UI soak's round every 50 sessions empties what the demo's resident and driver keep."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest


def test_the_round_empties_the_copies_and_the_drivers_touch_timings(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from kiosk.soak import ui_soak

    topped: list[object] = []
    monkeypatch.setattr(ui_soak, "top_up", topped.append)
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "H01.pdf").write_bytes(b"%PDF")
    soak = SimpleNamespace(demo_out=tmp_path, runtime="runtime", driver=SimpleNamespace(response_ms=[40.0] * 500))
    ui_soak.UiSoak.tidy(soak)  # type: ignore[arg-type]
    assert soak.driver.response_ms == []  # growth (about 0.4 KiB a session) the kiosk itself does not have
    assert not (tmp_path / "documents").exists()
    assert topped == ["runtime"]
