"""Pinyin keyboard figures: building the index from pypinyin's and jieba's data (once per
process, in a fresh interpreter so nothing is cached), its size, and candidate lookups for
what residents type (one syllable, a name, a word, a half-typed syllable).
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLES = ("w", "wang", "wangxiaoming", "shenfenzheng", "quanchenglu", "zh", "xiaoming", "jinanshilixiaqu")
LOAD = ("import sys, time; from pathlib import Path; t = time.perf_counter(); from kiosk.services import pinyin; "
        "pinyin.load_index(Path(sys.argv[1]) if sys.argv[1] else None); print(time.perf_counter() - t)")


def _fresh(cache: str) -> float:
    """Seconds to import and get the index in a new interpreter (cache folder, or '' for none)."""
    done = subprocess.run([sys.executable, "-c", LOAD, cache], check=True, capture_output=True, text=True)
    return float(done.stdout)


def main() -> None:
    """Print the figures."""
    builds = [_fresh("") for _ in range(3)]
    print(f"index build from the libraries' data (fresh process, no cache): median {statistics.median(builds):.2f} s, "
          f"max {max(builds):.2f} s")
    with tempfile.TemporaryDirectory() as cache:
        _fresh(cache)  # writes the cache file
        loads = [_fresh(cache) for _ in range(3)]
        size = sum(f.stat().st_size for f in Path(cache).iterdir())
    print(f"index load from the marshal cache ({size / 1e6:.1f} MB, fresh process): "
          f"median {statistics.median(loads):.2f} s, max {max(loads):.2f} s")
    from kiosk.services import pinyin

    idx = pinyin.index()
    print(f"index: {len(idx.chars)} syllables, {sum(map(len, idx.chars.values()))} character readings, "
          f"{len(idx.phrases)} word readings, {sum(map(len, idx.phrases.values()))} words")
    for name in (False, True):
        times = []
        for text in SAMPLES:
            t0 = time.perf_counter()
            for _ in range(50):
                pinyin.candidates(text, name=name)
            times.append((time.perf_counter() - t0) / 50)
        worst = SAMPLES[times.index(max(times))]
        print(f"candidates ({'name field' if name else 'free text'}): median {statistics.median(times) * 1000:.2f} ms, "
              f"max {max(times) * 1000:.2f} ms ({worst!r})")
    t0 = time.perf_counter()
    for _ in range(200):
        pinyin.segment("jinanshilixiaququanchenglu")
    print(f"segment 26 letters: {(time.perf_counter() - t0) / 200 * 1000:.3f} ms")


if __name__ == "__main__":
    main()
