"""Health and statistics figures: one health poll over the simulated devices (backend probe
answered from its cache, as in the running kiosk), availability of all 71 items from one
snapshot, and statistics writes and a month's report from SQLite.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

from kiosk.config import from_dict
from kiosk.hardware.factory import build_devices
from kiosk.services.catalog import Catalog
from kiosk.services.health import DiskGuard, HealthMonitor
from kiosk.services.stats import Stats


def _per_op(label: str, fn: Callable[[], object], n: int) -> None:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    elapsed = time.perf_counter() - started
    print(f"{label}: {elapsed / n * 1000:.3f} ms each ({n} runs)")


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = from_dict({"paths": {"state_dir": tmp}})
        devices = build_devices(cfg)
        devices.open()
        catalog = Catalog.load()
        monitor = HealthMonitor(catalog, devices, lambda: True, disk=DiskGuard.from_config(cfg))
        _per_op("health poll (6 simulated devices, disk, 71 items)", monitor.poll, 500)
        items = catalog.items
        _per_op("availability of all 71 items from one snapshot",
                lambda: [monitor.item_available(i) for i in items], 500)
        devices.close()
        stats = Stats(Path(tmp))
        day0 = time.time() - 30 * 24 * 3600
        counter = iter(range(10**9))
        _per_op("stats record (one committed upsert)",
                lambda: stats.record(items[next(counter) % 71].id, "completed", 42.0,
                                     at=day0 + (next(counter) % 30) * 24 * 3600), 2000)
        _per_op("stats report over 30 days", stats.report, 200)
        stats.close()


if __name__ == "__main__":
    main()
