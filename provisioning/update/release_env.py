"""A release folder built from verified wheels only, and the new release's own self-test run inside it.

The folder is a virtual environment made with the system's Python (``python -m venv``,
whose pip comes from the Python installation itself) and filled by that pip with
``--no-index`` from a folder holding exactly the release's verified wheels. pip runs with
no configuration file and no ``PIP_*`` variables, so no index, find-links or cache of the
machine can slip other bytes in. Then ``bin/kiosk selftest --release`` of the new release
runs with the terminal's config: it opens no device (see kiosk/release_selftest.py).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from provisioning.release.manifest import PROJECT, Manifest

VENV_TIMEOUT_S = 300
PIP_TIMEOUT_S = 1200
SELFTEST_TIMEOUT_S = 300


class ReleaseEnvFailed(Exception):
    """The release folder could not be built, or its self-test failed; ``detail`` says what happened."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _tail(proc: subprocess.CompletedProcess[str], lines: int = 12) -> str:
    return "\n".join((proc.stdout + "\n" + proc.stderr).strip().splitlines()[-lines:])


def isolated_pip_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment pip runs in: no PIP_* settings, no configuration files, no user site."""
    env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("PIP_")}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONNOUSERSITE="1")
    return env


def build_release_env(release_dir: Path, manifest: Manifest, wheels: Sequence[Path],
                      python: str = sys.executable) -> None:
    """Create the virtual environment at ``release_dir`` and install the release from ``wheels``. Raises ReleaseEnvFailed."""
    proc = subprocess.run([python, "-m", "venv", str(release_dir)], capture_output=True, text=True,
                          timeout=VENV_TIMEOUT_S)
    if proc.returncode != 0:
        raise ReleaseEnvFailed(f"python -m venv failed: {_tail(proc)}")
    with tempfile.TemporaryDirectory(prefix=".wheels-", dir=release_dir.parent) as links_name:
        links = Path(links_name)
        for wheel in wheels:  # exactly this release's wheels, nothing else for pip to find
            try:
                os.link(wheel, links / wheel.name)
            except OSError:
                os.symlink(wheel, links / wheel.name)
        cmd = [str(release_dir / "bin" / "python"), "-m", "pip", "install", "--no-index", "--find-links", str(links),
               "--no-cache-dir", "--only-binary", ":all:", "--no-warn-script-location",
               f"{PROJECT}=={manifest.version}"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                  env=isolated_pip_env())
        except subprocess.TimeoutExpired:
            raise ReleaseEnvFailed(f"pip install took longer than {PIP_TIMEOUT_S} s") from None
    if proc.returncode != 0:
        raise ReleaseEnvFailed(f"pip install from the verified wheels failed: {_tail(proc)}")


@dataclass(frozen=True)
class SelftestReport:
    """What ``kiosk selftest --release --json`` of the new release printed."""

    ok: bool
    version: str | None
    checks: tuple[dict[str, Any], ...]
    output: str


def selftest_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The self-test's environment: offscreen Kivy with no config, logs or arguments of its own."""
    env = dict(base if base is not None else os.environ)
    env.update(SDL_VIDEODRIVER="offscreen", KIVY_NO_ARGS="1", KIVY_NO_CONFIG="1", KIVY_NO_FILELOG="1",
               KIVY_LOG_MODE="PYTHON", PYTHONNOUSERSITE="1")
    env.pop("KIVY_HOME", None)  # the self-test makes its own
    env.pop("PYTHONPATH", None)  # the release runs its own code only, never a checkout's
    return env


def run_release_selftest(release_dir: Path, manifest: Manifest, config_path: str | None = None,
                         timeout_s: float = SELFTEST_TIMEOUT_S) -> SelftestReport:
    """Run the new release's ``kiosk selftest --release --json``. Raises ReleaseEnvFailed when it does not pass."""
    cmd = [str(release_dir / "bin" / "kiosk")]
    if config_path:
        cmd += ["--config", str(config_path)]
    cmd += ["selftest", "--release", "--json"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, env=selftest_env(),
                              cwd=str(release_dir))
    except subprocess.TimeoutExpired:
        raise ReleaseEnvFailed(f"the self-test of {manifest.version} took longer than {timeout_s:.0f} s") from None
    except OSError as exc:
        raise ReleaseEnvFailed(f"the self-test of {manifest.version} could not start: {exc}") from None
    try:
        answer = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ReleaseEnvFailed(f"the self-test of {manifest.version} printed no report (exit {proc.returncode}): "
                               f"{_tail(proc)}")
    checks = tuple(c for c in answer.get("checks", []) if isinstance(c, dict))
    report = SelftestReport(bool(answer.get("ok")) and proc.returncode == 0, answer.get("version"), checks,
                            proc.stdout + proc.stderr)
    if not report.ok:
        failed = [f"{c.get('name')}: {c.get('detail')}" for c in checks if not c.get("ok")]
        raise ReleaseEnvFailed(f"the self-test of {manifest.version} failed: " + ("; ".join(failed) or _tail(proc)))
    if report.version != manifest.version:
        raise ReleaseEnvFailed(f"the release folder of {manifest.version} runs version {report.version}")
    return report
