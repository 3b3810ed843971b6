"""bench.json (issue 19): the bench modules' figures mapped onto one fixed set of fields, in one place.

Each bench module's ``main()`` returns a dict of its figures (keys named as the bench.json fields they
fill, and others it only prints); :data:`BENCH_FIELDS` says which bench fills which field. A field whose
bench failed, was not selected or did not measure it is null; nothing is carried over from an earlier
run (every figure in the file comes from the same run). ``rss_growth_mib_per_1000`` is read from the
last soak's ``soak.json`` when there is one.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

# bench.json field → the bench (module name without ``bench_``) whose main() returns it under that key.
BENCH_FIELDS: dict[str, str] = {
    "start_s": "startup",
    "bare_kivy_start_s": "startup",
    "peak_rss_mib": "flagships",
    "touch_ms": "flagships",
    "h01_machine_s": "flagships",
    "demo_all_s": "demo_all",
    "card_to_identity_ms": "identity",
    "card_wire_ms": "identity",
    "apdu_overhead_ms": "identity",
    "certificate_render_ms": "printing",
    "speech_first_sample_ms": "speech",
    "keypad_h01": "keypad",
}
SOAK_FIELD = "rss_growth_mib_per_1000"
FIELDS: tuple[str, ...] = (*BENCH_FIELDS, SOAK_FIELD)
BENCH_OUT = Path("bench-out")
SOAK_JSON = Path("soak-out") / "soak.json"


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinity (a figure not measured) made None, so the file stays JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def soak_growth(soak_json: Path) -> float | None:
    """The last soak's ``rss_growth_mib_per_1000`` from its soak.json; None when there is no readable one."""
    try:
        data = json.loads(soak_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get(SOAK_FIELD) if isinstance(data, dict) else None
    return _finite(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def bench_json(results: Mapping[str, Mapping[str, Any] | None], soak_json: Path = SOAK_JSON) -> dict[str, Any]:
    """The bench.json fields, in contract order, from ``results`` {bench name: the figures its main() returned}."""
    out: dict[str, Any] = {}
    for field, bench in BENCH_FIELDS.items():
        figures = results.get(bench) or {}
        out[field] = _finite(figures.get(field))
    out[SOAK_FIELD] = soak_growth(soak_json)
    return out


def write_bench_json(results: Mapping[str, Mapping[str, Any] | None], out_dir: Path = BENCH_OUT,
                     soak_json: Path = SOAK_JSON) -> Path:
    """Write ``out_dir``/bench.json (the run's figures, null where none) and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "bench.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(bench_json(results, soak_json), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
