"""bench.json (issue 19): the writer in benchmarks/results.py, fed fake figures (no bench runs, no Kivy)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import results
from benchmarks.__main__ import main as bench_main

CONTRACT = ("start_s", "bare_kivy_start_s", "peak_rss_mib", "touch_ms", "h01_machine_s", "demo_all_s",
            "card_to_identity_ms", "card_wire_ms", "apdu_overhead_ms", "certificate_render_ms",
            "speech_first_sample_ms", "keypad_h01", "rss_growth_mib_per_1000")

FAKE = {
    "startup": {"start_s": 2.4, "bare_kivy_start_s": 0.4, "start_rounds_s": {"kiosk": [2.4], "bare": [0.4]}},
    "flagships": {"peak_rss_mib": 512.6, "touch_ms": {"p50": 12.6, "p95": 87.0, "max": 190.6},
                  "h01_machine_s": 2.2, "flows": []},
    "demo_all": {"demo_all_s": 1500.0, "demo_all_completed": 71, "demo_all_flows": 71},
    "identity": {"card_to_identity_ms": 260.1, "card_wire_ms": 112.4, "apdu_overhead_ms": 1.25},
    "printing": {"certificate_render_ms": {"cold": 900.0, "warm": 45.0}},
    "speech": {"speech_first_sample_ms": {"cached": 30.0, "uncached": 120.0}, "sdl_buffer_ms": 23.2},
    "keypad": {"keypad_h01": {"machine_s": 2.6, "keys": 13}, "keypad_flows": []},
}


def _soak(tmp_path: Path, growth: object) -> Path:
    path = tmp_path / "soak-out" / "soak.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"sessions": 1000, "rss_growth_mib_per_1000": growth, "crashes": 0}), encoding="utf-8")
    return path


def test_every_figure_lands_in_its_field_and_nothing_else(tmp_path: Path) -> None:
    path = results.write_bench_json(FAKE, tmp_path / "bench-out", _soak(tmp_path, 3.25))
    assert path == tmp_path / "bench-out" / "bench.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert tuple(data) == CONTRACT  # exactly the contract's fields, in its order: no helper figure leaks in
    assert data == {"start_s": 2.4, "bare_kivy_start_s": 0.4, "peak_rss_mib": 512.6,
                    "touch_ms": {"p50": 12.6, "p95": 87.0, "max": 190.6}, "h01_machine_s": 2.2, "demo_all_s": 1500.0,
                    "card_to_identity_ms": 260.1, "card_wire_ms": 112.4, "apdu_overhead_ms": 1.25,
                    "certificate_render_ms": {"cold": 900.0, "warm": 45.0},
                    "speech_first_sample_ms": {"cached": 30.0, "uncached": 120.0},
                    "keypad_h01": {"machine_s": 2.6, "keys": 13}, "rss_growth_mib_per_1000": 3.25}


def test_a_bench_that_failed_or_was_not_run_leaves_its_fields_null(tmp_path: Path) -> None:
    partial = {"identity": {"card_to_identity_ms": 260.1, "card_wire_ms": 112.4},  # no pcscd: no APDU figure
               "speech": {"speech_first_sample_ms": {"cached": float("nan"), "uncached": 120.0}},
               "printing": None}  # crashed
    data = json.loads(results.write_bench_json(partial, tmp_path, tmp_path / "no-soak.json").read_text("utf-8"))
    assert tuple(data) == CONTRACT
    assert data["card_to_identity_ms"] == 260.1
    assert data["apdu_overhead_ms"] is None
    assert data["speech_first_sample_ms"] == {"cached": None, "uncached": 120.0}  # NaN: not heard, not a number
    assert [f for f, v in data.items() if v is None] == [
        "start_s", "bare_kivy_start_s", "peak_rss_mib", "touch_ms", "h01_machine_s", "demo_all_s",
        "apdu_overhead_ms", "certificate_render_ms", "keypad_h01", "rss_growth_mib_per_1000"]


@pytest.mark.parametrize("text", ["{not json", json.dumps({"sessions": 3}),
                                  json.dumps({"rss_growth_mib_per_1000": None}),
                                  json.dumps({"rss_growth_mib_per_1000": "5"}), json.dumps([1, 2])])
def test_the_soak_figure_is_null_unless_soak_json_holds_a_number(tmp_path: Path, text: str) -> None:
    soak = tmp_path / "soak.json"
    soak.write_text(text, encoding="utf-8")
    assert results.soak_growth(soak) is None
    assert results.bench_json({}, soak)["rss_growth_mib_per_1000"] is None


def test_the_soak_figure_is_read_as_written(tmp_path: Path) -> None:
    assert results.soak_growth(_soak(tmp_path, 0.7)) == 0.7
    assert results.soak_growth(tmp_path / "missing.json") is None


def test_a_run_writes_bench_out_afresh_with_the_selected_benches_only(tmp_path: Path, monkeypatch,
                                                                      capsys) -> None:
    # `python -m benchmarks NAME`: the selected bench's main() figures reach bench-out/bench.json under the
    # working directory; a field from an earlier file is not carried over, the soak figure is read again.
    monkeypatch.chdir(tmp_path)
    _soak(tmp_path, 1.5)
    (tmp_path / "bench-out").mkdir()
    (tmp_path / "bench-out" / "bench.json").write_text(json.dumps({"start_s": 9.9}), encoding="utf-8")
    import benchmarks.bench_identity as identity

    monkeypatch.setattr(identity, "main", lambda: dict(FAKE["identity"]))
    assert bench_main(["identity"]) == 0
    data = json.loads((tmp_path / "bench-out" / "bench.json").read_text(encoding="utf-8"))
    assert data["card_wire_ms"] == 112.4 and data["apdu_overhead_ms"] == 1.25
    assert data["start_s"] is None
    assert data["rss_growth_mib_per_1000"] == 1.5
    assert "bench.json written to" in capsys.readouterr().out


def test_a_crashing_bench_fails_the_run_and_leaves_its_fields_null(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    import benchmarks.bench_printing as printing

    def crash() -> dict:
        raise RuntimeError("cupsd gone")
    monkeypatch.setattr(printing, "main", crash)
    assert bench_main(["printing"]) == 1
    data = json.loads((tmp_path / "bench-out" / "bench.json").read_text(encoding="utf-8"))
    assert data["certificate_render_ms"] is None and tuple(data) == CONTRACT


@pytest.mark.parametrize("cut_short", [False, True])
def test_demo_all_returns_its_wall_time_only_for_a_run_through_every_item(tmp_path: Path, monkeypatch,
                                                                          cut_short: bool) -> None:
    # A fake `kiosk demo --all` child (the real one takes 25 minutes): its summary, its wall time.
    import subprocess

    import benchmarks.bench_demo_all as demo_all
    from kiosk.services.catalog import Catalog

    items = [item.id for item in Catalog.load().items]
    ran = items[:3] if cut_short else items

    def fake_run(out: Path) -> tuple[subprocess.CompletedProcess[str], float]:
        flows = [{"item": i, "outcome": "failed" if i == ran[1] else "completed", "reason": "", "seconds": 1.0,
                  "wall_seconds": 2.0, "pause_seconds": 1.0, "touches": 5, "touches_after_identity": 3} for i in ran]
        (out / "summary.json").write_text(json.dumps({"flows": flows}), encoding="utf-8")
        return subprocess.CompletedProcess(["kiosk"], 1, "", ""), 1534.56
    monkeypatch.setattr(demo_all, "run_all", fake_run)
    monkeypatch.setattr(demo_all.tempfile, "mkdtemp", lambda prefix="": str(tmp_path))
    figures = demo_all.main()
    if cut_short:
        assert figures == {"demo_all_s": None, "demo_all_completed": None, "demo_all_flows": None}
    else:
        assert figures == {"demo_all_s": 1534.6, "demo_all_completed": len(items) - 1, "demo_all_flows": len(items)}
