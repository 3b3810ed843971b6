"""Where releases and update state live: ``<root>/opt/police-kiosk/{releases/VERSION,current}`` and ``<state>/update``.

A release folder is a virtual environment built in place (its scripts name their own
path). It counts as installed only once its marker — the verified manifest, written last,
after the self-test passed — is in it; a folder without the marker is what an interrupted
apply left and is removed. ``current`` is a relative symlink (``releases/VERSION``),
replaced by renaming a new link over it, so it always names a whole release and stays valid
wherever the tree is copied.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from kiosk.durable import fsync_dir as _fsync_dir
from provisioning.atomic import write_atomic
from provisioning.release.manifest import Manifest, ManifestInvalid

INSTALL_DIR = "opt/police-kiosk"
RELEASE_MARKER = "police-kiosk-release.json"
# What systemd's ExecStart names on a terminal whose releases this tool installs.
CURRENT_KIOSK_BIN = f"/{INSTALL_DIR}/current/bin/kiosk"


def _is_version(name: str) -> bool:
    try:
        return str(Version(name)) == name
    except InvalidVersion:
        return False


@dataclass(frozen=True)
class ReleaseLayout:
    """The release folders under one file-system root (``/`` on a terminal, a staging folder with ``--root``)."""

    root: Path

    @property
    def base(self) -> Path:
        """``<root>/opt/police-kiosk``."""
        return self.root / INSTALL_DIR

    @property
    def releases(self) -> Path:
        """``<root>/opt/police-kiosk/releases``."""
        return self.base / "releases"

    @property
    def current(self) -> Path:
        """``<root>/opt/police-kiosk/current``: the symlink naming the running release."""
        return self.base / "current"

    def release_dir(self, version: str) -> Path:
        """The folder of one release."""
        return self.releases / version

    def installed_version(self) -> str | None:
        """The version ``current`` names, or None when nothing is installed."""
        try:
            target = os.readlink(self.current)
        except OSError:  # no link, or not a link
            return None
        name = Path(target).name
        return name if _is_version(name) else None

    def is_complete(self, version: str) -> bool:
        """True when the release folder holds its marker (built and self-tested)."""
        return (self.release_dir(version) / RELEASE_MARKER).is_file()

    def complete_manifests(self) -> list[Manifest]:
        """The manifests of every complete release folder."""
        found = []
        if not self.releases.is_dir():
            return found
        for folder in sorted(self.releases.iterdir()):
            try:
                found.append(Manifest.from_json((folder / RELEASE_MARKER).read_bytes()))
            except (OSError, ManifestInvalid):
                continue
        return found

    def mark_complete(self, manifest: Manifest) -> None:
        """Write the marker: from now on this folder is an installed release."""
        write_atomic(self.release_dir(manifest.version) / RELEASE_MARKER, manifest.to_json(), mode=0o644)

    def remove_incomplete(self) -> list[str]:
        """Remove what an interrupted apply left: release folders without a marker, a link not yet renamed."""
        removed = []
        if self.base.is_dir():
            for link in self.base.glob(".current.*"):
                link.unlink()
                removed.append(link.name)
        if not self.releases.is_dir():
            return removed
        running = self.installed_version()
        for folder in sorted(self.releases.iterdir()):
            if folder.name == running or (folder / RELEASE_MARKER).is_file():
                continue
            remove_tree(folder)
            removed.append(folder.name)
        return removed

    def switch_current(self, version: str) -> None:
        """Point ``current`` at ``version`` in one rename (a new link renamed over the old one)."""
        if not self.is_complete(version):
            raise FileNotFoundError(f"release {version} is not complete; not switching to it")
        self.base.mkdir(parents=True, exist_ok=True)
        tmp = self.base / f".current.{os.getpid()}.{secrets.token_hex(4)}"
        os.symlink(f"releases/{version}", tmp)
        try:
            os.replace(tmp, self.current)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.base)


def remove_tree(path: Path) -> None:
    """Remove a folder (or a link or file) whatever it holds."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class UpdateState:
    """``<state_dir>/update``: the trusted TUF metadata, the wheel cache and what the last run did.

    Kept in the state folder so it survives restarts and updates: ngclient's rollback and
    freeze protection rests on the metadata it trusted last time.
    """

    dir: Path

    @property
    def metadata_dir(self) -> Path:
        """The TUF client's metadata folder (root history, timestamp, snapshot, targets)."""
        return self.dir / "tuf"

    @property
    def wheels_dir(self) -> Path:
        """Verified wheels by content: ``wheels/SHA256/FILE``."""
        return self.dir / "wheels"

    @property
    def downloads_dir(self) -> Path:
        """Downloads in progress; nothing in it is ever used."""
        return self.dir / "downloads"

    @property
    def lock_file(self) -> Path:
        """Held while check or apply runs (ngclient wants one client at a time)."""
        return self.dir / "lock"

    @property
    def bad_versions_file(self) -> Path:
        """Versions this terminal will not take again (written when a release fails on it)."""
        return self.dir / "bad_versions.json"

    @property
    def last_outcome_file(self) -> Path:
        """The last apply's outcome, for heartbeats and metrics."""
        return self.dir / "last.json"

    def has_trusted_root(self) -> bool:
        """True when the metadata folder already holds a root (later runs trust only it)."""
        return (self.metadata_dir / "root.json").exists()

    def clear_downloads(self) -> None:
        """Drop partial downloads an interrupted run left (they were never used)."""
        remove_tree(self.downloads_dir)

    def wheel_path(self, sha256: str, file: str) -> Path:
        """Where a verified wheel is kept."""
        return self.wheels_dir / sha256 / file

    def bad_versions(self) -> tuple[str, ...]:
        """The versions marked bad, sorted; a damaged file counts as none (it is rewritten on the next mark)."""
        try:
            raw = json.loads(self.bad_versions_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ()
        if not isinstance(raw, list):
            return ()
        return tuple(sorted({v for v in raw if isinstance(v, str) and _is_version(v)}, key=Version))

    def mark_bad(self, version: str) -> None:
        """Never take ``version`` again (part of rollback)."""
        versions = sorted(set(self.bad_versions()) | {version}, key=Version)
        write_atomic(self.bad_versions_file, json.dumps(versions).encode(), mode=0o644)

    def record_outcome(self, outcome: dict[str, Any], now: datetime | None = None) -> None:
        """Keep ``{"outcome", "version", "reason", "at"}`` of the last apply."""
        at = (now or datetime.now(timezone.utc)).replace(microsecond=0).isoformat()
        record = {"outcome": outcome.get("outcome"), "version": outcome.get("version"),
                  "reason": outcome.get("reason"), "at": at}
        write_atomic(self.last_outcome_file, json.dumps(record).encode(), mode=0o644)

    def last_outcome(self) -> dict[str, Any] | None:
        """The record kept by :meth:`record_outcome`, or None."""
        try:
            raw = json.loads(self.last_outcome_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return raw if isinstance(raw, dict) else None

    def prune_wheels(self, keep: set[str]) -> int:
        """Remove cached wheels whose SHA-256 is not in ``keep``; returns the bytes freed."""
        freed = 0
        if not self.wheels_dir.is_dir():
            return 0
        for folder in self.wheels_dir.iterdir():
            if folder.name in keep:
                continue
            freed += sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) if folder.is_dir() else 0
            remove_tree(folder)
        return freed
