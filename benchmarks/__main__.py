"""Run every benchmarks/bench_*.py module's main(), print its figures and write bench-out/bench.json.

`python -m benchmarks` runs all; `python -m benchmarks backend printing` runs those named. Either
way bench-out/bench.json is written afresh with the fields of issue 19 (benchmarks/results.py):
those of the benches that ran, null for the rest. Figures are printed, never asserted: a slow day
must not fail a build.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
import traceback
from typing import Any

import benchmarks
from benchmarks.results import write_bench_json


def main(argv: list[str]) -> int:
    """Import and run the selected bench modules, write bench.json; exit non-zero if one of them crashed."""
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    wanted = [f"bench_{a.removeprefix('bench_')}" for a in argv]
    failed = 0
    results: dict[str, Any] = {}
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            figures = importlib.import_module(f"benchmarks.{name}").main()
            if isinstance(figures, dict):
                results[name.removeprefix("bench_")] = figures
        except Exception:  # report and go on: one broken bench must not hide the others
            traceback.print_exc()
            failed += 1
        print(f"   ({time.perf_counter() - started:.1f} s)\n", flush=True)
    path = write_bench_json(results)
    print("== bench.json")
    for field, value in json.loads(path.read_text(encoding="utf-8")).items():
        print(f"   {field:<26} {json.dumps(value, ensure_ascii=False)}")
    print(f"bench.json written to {path.resolve()}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
