"""Operations figures: scrypt PIN check cost, metrics update and scrape size/time, selftest duration."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from kiosk.config import from_dict
from kiosk.hardware.factory import build_devices
from kiosk.services.maintenance import MaintenanceAccess, WrongPin, hash_pin, verify_pin
from kiosk.services.metrics import KioskMetrics
from benchmarks.timing import timed



def main() -> None:
    """Print the figures."""
    encoded = hash_pin("739148")
    checks = timed(lambda: verify_pin("739140", encoded), 5)
    print(f"scrypt PIN verify (n=2^15, r=8, p=1): median {statistics.median(checks) * 1000:.0f} ms; "
          f"an offline search of all 10^6 six-digit PINs on one such core: "
          f"{statistics.median(checks) * 1e6 / 86400:.1f} days")
    with tempfile.TemporaryDirectory() as tmp:
        access = MaintenanceAccess.for_state_dir(tmp)
        access.set_pin("739148")

        def wrong() -> None:
            try:
                access.check("739140")
            except WrongPin:
                pass
        first = timed(wrong, 1)
        print(f"MaintenanceAccess.check (wrong PIN, persisted counter): {first[0] * 1000:.0f} ms")

        cfg = from_dict({"paths": {"state_dir": tmp}})
        devices = build_devices(cfg)
        statuses = devices.statuses()
        metrics = KioskMetrics("JN-BENCH")
        for i in range(71):
            for outcome in ("completed", "refused", "cancelled", "failed"):
                metrics.record_transaction(f"I{i:02d}", outcome, 30.0)
        updates = timed(lambda: metrics.update_devices(statuses), 2000)
        print(f"metrics.update_devices (6 devices): median {statistics.median(updates) * 1e6:.0f} us")
        body = metrics.exposition()
        scrapes = timed(metrics.exposition, 200)
        print(f"scrape with 71 items x 4 outcomes: {len(body) / 1024:.1f} KiB, "
              f"median {statistics.median(scrapes) * 1000:.2f} ms")
        polls = timed(devices.statuses, 2000)
        print(f"Devices.statuses() on simulators: median {statistics.median(polls) * 1e6:.0f} us")

        from provisioning.selftest import run_selftest

        started = time.perf_counter()
        report = run_selftest(from_dict({"paths": {"state_dir": str(Path(tmp) / "st")}}))
        print(f"selftest (simulators + embedded backend started and stopped): "
              f"{time.perf_counter() - started:.2f} s, ok={report.ok}")


if __name__ == "__main__":
    main()
