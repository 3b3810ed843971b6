"""Fleet update figures: the size of a release, what a first install and a code-only update download, how
long an apply takes (download, virtual environment from verified wheels, self-test, switch), and how long a
switch-over (rename, READY, serving) and a rollback (a release whose kiosk crashes at start) take.

Builds two releases with kiosk-release into a temporary wheelhouse, publishes them in a TUF
repository served by the backend simulator's /updates route on loopback, and applies them
to a staging root as `kiosk-provision update apply --root` does: the health gate starts the
new release's `kiosk run --headless` itself and watches it.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from kiosk.backend_sim.server import serve
from provisioning.release.build import build_release
from provisioning.release.repository import Publisher
from provisioning.update.apply import UpdateRequest, apply
from provisioning.update.gate import TrialRunGate
from provisioning.update.layout import ReleaseLayout, UpdateState
from provisioning.update.release_env import build_release_env, run_release_selftest

FIRST, SECOND, CRASHING = "90.0.0", "90.0.1", "90.0.2"
PROJECT = Path(__file__).resolve().parents[1]


def _crashing_source(dest: Path) -> Path:
    """A copy of the project whose `kiosk run` raises at start (its self-test still passes)."""
    dest.mkdir(parents=True)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "kiosk", "provisioning", "print_templates"):
        src = PROJECT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / name)
    run = dest / "kiosk" / "run.py"
    run.write_text(run.read_text().replace("    prepare_kivy(cfg.ui, headless=headless)\n",
                                           "    raise RuntimeError('crashes at start')\n", 1))
    return dest


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
    gate = result.timings.get("gate_s", 0.0)
    print(f"{label}: {result.outcome} {result.version} {result.reason or ''}; downloaded {result.downloaded_files} "
          f"files, {result.downloaded_bytes / 1e6:.2f} MB; apply {total:.1f} s (virtual environment "
          f"{phases.build_s:.1f} s, self-test {phases.selftest_s:.1f} s, health gate {gate:.1f} s, metadata + "
          f"download + switch + clean-up {other - gate:.1f} s)")
    if result.outcome == "refused":
        print(f"  {result.detail}")
    if result.outcome == "installed":
        print(f"  switch-over: rename {result.timings.get('switch_ms')} ms, READY after "
              f"{result.timings.get('ready_s')} s, serving after {gate:.2f} s")
    elif result.outcome == "rolled_back":
        print(f"  rollback: failure judged after {gate:.2f} s, previous release back in "
              f"{result.timings.get('rollback_ms')} ms; from the switch to the old release back "
              f"{gate + (result.timings.get('switch_ms', 0) + result.timings.get('rollback_ms', 0)) / 1000:.2f} s")


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
        _, crashing_path = build_release(tmp / "wheelhouse", version=CRASHING,
                                         source=_crashing_source(tmp / "crashing-source"))
        config = tmp / "kiosk.toml"
        config.write_text(f'[paths]\nstate_dir = "{tmp / "state"}"\n[update]\nwindow = "00:00-00:00"\n')
        publisher = Publisher.init(tmp / "repo", tmp / "keys")
        publisher.publish(full_path)
        with serve("127.0.0.1", 0, update_repo=str(tmp / "repo")) as sim:
            layout = ReleaseLayout(tmp / "root")
            req = UpdateRequest(repo_url=f"{sim.url}/updates", terminal_id="JN-BENCH-0001",
                                state=UpdateState(tmp / "state" / "update"), layout=layout,
                                tuf_root=tmp / "repo" / "metadata" / "root.json", config_path=str(config),
                                gate=TrialRunGate(layout, tmp / "state", tmp / "state" / "update", 120, str(config)))
            _apply(req, "first install")
            Publisher(tmp / "repo", tmp / "keys").publish(second_path)
            _apply(req, "code-only update")
            started = time.perf_counter()
            result = apply(req)
            print(f"apply with nothing new ({result.outcome}): {(time.perf_counter() - started) * 1000:.0f} ms")
            Publisher(tmp / "repo", tmp / "keys").publish(crashing_path)
            _apply(req, "a release whose kiosk crashes at start")
        size = sum(f.stat().st_size for f in (tmp / "root").rglob("*") if f.is_file() and not f.is_symlink())
        print(f"disk: two release folders {size / 1e6:.0f} MB, wheel cache "
              f"{sum(f.stat().st_size for f in (tmp / 'state').rglob('*.whl')) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
