"""Which release a terminal takes: the signed list of releases, the rollout rule, and what is never taken.

Pure functions over data that already passed TUF verification; nothing here reads the
network or the disk.

- A terminal is in a release's rollout when the SHA-256 of its terminal id (UTF-8), read
  as a big-endian integer, mod 100, is below the release's ``rollout_percent`` and the
  release is not halted. A terminal keeps its bucket for every release, so raising the
  percentage only ever adds terminals.
- Candidates are the releases newer than the installed one that are neither halted nor
  marked bad on this terminal, newest first; the first one in rollout is taken (so a
  terminal outside a new release's first 10 % still gets the release before it).
- A repository whose newest release is older than the installed one, and which does not
  list the installed one at all, offers a downgrade: that is a rollback attack, whatever
  the signatures say (a halted release stays listed, so halting one never looks like it).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

from packaging.version import Version

from provisioning.release.manifest import ManifestInvalid, parse_version, version_of_target_path


def bucket(terminal_id: str) -> int:
    """The terminal's rollout bucket, 0..99."""
    return int.from_bytes(hashlib.sha256(terminal_id.encode("utf-8")).digest(), "big") % 100


def in_rollout(terminal_id: str, percent: int, halted: bool = False) -> bool:
    """True when the terminal takes a release offered to ``percent`` % of terminals."""
    return not halted and bucket(terminal_id) < percent


@dataclass(frozen=True)
class OfferedRelease:
    """One release as the verified targets metadata lists it."""

    version: str
    rollout_percent: int
    halted: bool
    target_path: str

    @property
    def key(self) -> Version:
        """For ordering by version."""
        return Version(self.version)


def parse_release_entry(target_path: str, custom: Any) -> OfferedRelease:
    """A manifest's target entry: its path and custom metadata must agree. Raises ManifestInvalid."""
    named = version_of_target_path(target_path)
    if named is None:
        raise ManifestInvalid(f"{target_path!r} is not a release manifest's target path")
    if not isinstance(custom, dict):
        raise ManifestInvalid(f"{target_path}: custom metadata missing")
    version = str(parse_version(custom.get("version"), f"{target_path} custom version"))
    if version != named:
        raise ManifestInvalid(f"{target_path}: custom metadata names version {version}")
    percent = custom.get("rollout_percent")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ManifestInvalid(f"{target_path}: rollout_percent must be 0..100, got {percent!r}")
    halted = custom.get("halted")
    if not isinstance(halted, bool):
        raise ManifestInvalid(f"{target_path}: halted must be true or false, got {halted!r}")
    return OfferedRelease(version, percent, halted, target_path)


def is_downgrade_only(releases: Iterable[OfferedRelease], installed: str | None) -> bool:
    """True when the repository lists releases, all older than ``installed``, and not ``installed`` itself."""
    listed = list(releases)
    if installed is None or not listed:
        return False
    newest = max(r.key for r in listed)
    return newest < Version(installed) and all(r.version != installed for r in listed)


def candidates(releases: Iterable[OfferedRelease], installed: str | None,
               bad_versions: Iterable[str] = ()) -> list[OfferedRelease]:
    """Releases newer than ``installed``, not halted, not marked bad; newest first."""
    bad = set(bad_versions)
    floor = Version(installed) if installed is not None else None
    found = [r for r in releases
             if (floor is None or r.key > floor) and not r.halted and r.version not in bad]
    return sorted(found, key=lambda r: r.key, reverse=True)


def skipped_as_bad(releases: Iterable[OfferedRelease], installed: str | None,
                   bad_versions: Iterable[str]) -> str | None:
    """The newest release newer than ``installed`` that is passed over only because it is marked bad."""
    bad = set(bad_versions)
    floor = Version(installed) if installed is not None else None
    passed = [r for r in releases if r.version in bad and not r.halted and (floor is None or r.key > floor)]
    return max(passed, key=lambda r: r.key).version if passed else None
