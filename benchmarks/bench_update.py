"""Fleet update figures: the size of a release, what a first install and a code-only update download, and how
long an apply takes (download, virtual environment from verified wheels, self-test, switch).

Builds two releases with kiosk-release into a temporary wheelhouse, publishes them in a TUF
repository served by the backend simulator's /updates route on loopback, and applies them
to a staging root as `kiosk-provision update apply --root` does.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from kiosk.backend_sim.server import serve
from provisioning.release.build import build_release
from provisioning.release.repository import Publisher
from provisioning.update.apply import UpdateRequest, apply
from provisioning.update.layout import ReleaseLayout, UpdateState
from provisioning.update.release_env import build_release_env, run_release_selftest

FIRST, SECOND = "90.0.0", "90.0.1"


class _Phases:
    """Times the build and self-test phases of one apply."""

    def __init__(self) -> None:
        self.build_s = 0.0
        self.selftest_s = 0.0

    def builder(self, *args: Any) -> None:
        started = time.perf_counter()
        build_release_env(*args)
        self.build_s = time.perf_counter() - started

    def selftest(self, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return run_release_selftest(*args)
        finally:
            self.selftest_s = time.perf_counter() - started


def _apply(req: UpdateRequest, label: str) -> None:
    phases = _Phases()
    started = time.perf_counter()
    result = apply(req, builder=phases.builder, selftest=phases.selftest)
    total = time.perf_counter() - started
    other = total - phases.build_s - phases.selftest_s
    print(f"{label}: {result.outcome} {result.version}; downloaded {result.downloaded_files} files, "
          f"{result.downloaded_bytes / 1e6:.2f} MB; apply {total:.1f} s (virtual environment {phases.build_s:.1f} s, "
          f"self-test {phases.selftest_s:.1f} s, metadata + download + switch {other:.1f} s)")


def main() -> None:
    """Print the figures."""
    with tempfile.TemporaryDirectory(prefix="bench-update-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        full, full_path = build_release(tmp / "wheelhouse", version=FIRST)
        print(f"kiosk-release build (full, pip cache warm): {time.perf_counter() - started:.1f} s; "
              f"{len(full.wheels)} wheels, {full.total_size / 1e6:.1f} MB")
        started = time.perf_counter()
        _, second_path = build_release(tmp / "wheelhouse", version=SECOND)
        print(f"kiosk-release build (code-only): {time.perf_counter() - started:.1f} s")
        publisher = Publisher.init(tmp / "repo", tmp / "keys")
        publisher.publish(full_path)
        with serve("127.0.0.1", 0, update_repo=str(tmp / "repo")) as sim:
            req = UpdateRequest(repo_url=f"{sim.url}/updates", terminal_id="JN-BENCH-0001",
                                state=UpdateState(tmp / "state" / "update"), layout=ReleaseLayout(tmp / "root"),
                                tuf_root=tmp / "repo" / "metadata" / "root.json")
            _apply(req, "first install")
            Publisher(tmp / "repo", tmp / "keys").publish(second_path)
            _apply(req, "code-only update")
            started = time.perf_counter()
            result = apply(req)
            print(f"apply with nothing new ({result.outcome}): {(time.perf_counter() - started) * 1000:.0f} ms")
        size = sum(f.stat().st_size for f in (tmp / "root").rglob("*") if f.is_file() and not f.is_symlink())
        print(f"disk: two release folders {size / 1e6:.0f} MB, wheel cache "
              f"{sum(f.stat().st_size for f in (tmp / 'state').rglob('*.whl')) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
