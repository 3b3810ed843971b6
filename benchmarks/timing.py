"""Small timing helpers shared by the bench modules."""
from __future__ import annotations

import statistics
import time
from typing import Any, Callable


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    """Call ``fn`` ``n`` times; the wall time of each call in seconds."""
    out = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def ms(values: list[float]) -> str:
    """'median X ms, max Y ms (n=N)' for a list of seconds."""
    return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms (n={len(values)})"
