"""Run every benchmarks/bench_*.py module's main() and print its figures.

`python -m benchmarks` runs all; `python -m benchmarks backend printing` runs those named.
Figures are printed, never asserted: a slow day must not fail a build.
"""
from __future__ import annotations

import importlib
import pkgutil
import sys
import time
import traceback

import benchmarks


def main(argv: list[str]) -> int:
    """Import and run the selected bench modules; exit non-zero if one of them crashed."""
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    wanted = [f"bench_{a.removeprefix('bench_')}" for a in argv]
    failed = 0
    for name in names:
        if wanted and name not in wanted:
            continue
        print(f"== {name}", flush=True)
        started = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception:  # report and go on: one broken bench must not hide the others
            traceback.print_exc()
            failed += 1
        print(f"   ({time.perf_counter() - started:.1f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
