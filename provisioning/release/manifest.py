"""A release's manifest, ``police-kiosk-VERSION.json``: its version and the wheels that make it, checked on read.

The same file is written by ``kiosk-release build``, signed into the repository by
``kiosk-release publish`` and read back by a kiosk after ngclient verified it; every field
is checked here, so a manifest that is not exactly this shape is refused as a whole.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from provisioning.errors import ProvisionError

PROJECT = "police-kiosk"
PROJECT_WHEEL_PREFIX = "police_kiosk-"
MANIFEST_PREFIX = f"{PROJECT}-"
RELEASES_DIR = "releases"  # target path of a manifest: releases/police-kiosk-VERSION.json
WHEELS_DIR = "wheels"  # target path of a wheel: wheels/SHA256/FILE
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
# name-version(-build)?-python-abi-platform.whl, as PEP 427 spells a wheel's file name
_WHEEL = re.compile(r"^[A-Za-z0-9_.]+-[A-Za-z0-9_.!+]+(-[0-9][A-Za-z0-9_.]*)?-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+"
                    r"-[A-Za-z0-9_.]+\.whl$")
FIELDS = ("version", "requires_python", "wheels", "built_at", "min_from_version")


class ManifestInvalid(ProvisionError):
    """A manifest (or a version string) is not what a release's manifest must be."""

    code = "manifest_invalid"
    exit_status = 65  # EX_DATAERR


def parse_version(text: Any, what: str = "version") -> Version:
    """A PEP 440 version spelled in its normal form (so file and target names are canonical). Raises ManifestInvalid."""
    if not isinstance(text, str):
        raise ManifestInvalid(f"{what}: expected a version string, got {text!r}")
    try:
        version = Version(text)
    except InvalidVersion:
        raise ManifestInvalid(f"{what}: {text!r} is not a PEP 440 version") from None
    if str(version) != text:
        raise ManifestInvalid(f"{what}: {text!r} is not in normal form; write {str(version)!r}")
    return version


def manifest_file_name(version: str) -> str:
    """``police-kiosk-VERSION.json``."""
    return f"{MANIFEST_PREFIX}{version}.json"


def release_target_path(version: str) -> str:
    """The TUF target path of a release's manifest."""
    return f"{RELEASES_DIR}/{manifest_file_name(version)}"


def version_of_target_path(path: str) -> str | None:
    """The version named by a manifest's target path, or None when ``path`` is not one."""
    prefix, suffix = f"{RELEASES_DIR}/{MANIFEST_PREFIX}", ".json"
    if not (path.startswith(prefix) and path.endswith(suffix)):
        return None
    version = path[len(prefix):-len(suffix)]
    return version if version and "/" not in version else None


@dataclass(frozen=True, order=True)
class WheelRef:
    """One wheel of a release, named by its content."""

    file: str
    sha256: str
    size: int

    @property
    def target_path(self) -> str:
        """``wheels/SHA256/FILE``: the same bytes have the same path in every release."""
        return f"{WHEELS_DIR}/{self.sha256}/{self.file}"

    def to_dict(self) -> dict[str, Any]:
        """The manifest's form."""
        return {"file": self.file, "sha256": self.sha256, "size": self.size}

    @classmethod
    def from_dict(cls, raw: Any, index: int) -> "WheelRef":
        """Check one entry of ``wheels``. Raises ManifestInvalid."""
        where = f"wheels[{index}]"
        if not isinstance(raw, dict) or set(raw) != {"file", "sha256", "size"}:
            raise ManifestInvalid(f"{where}: expected exactly file, sha256 and size")
        file, sha, size = raw["file"], raw["sha256"], raw["size"]
        if not isinstance(file, str) or not _WHEEL.match(file):
            raise ManifestInvalid(f"{where}.file: {file!r} is not a wheel's file name")
        if not isinstance(sha, str) or not _SHA256.match(sha):
            raise ManifestInvalid(f"{where}.sha256: expected 64 lower-case hex digits, got {sha!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
            raise ManifestInvalid(f"{where}.size: expected a positive integer, got {size!r}")
        return cls(file, sha, size)


@dataclass(frozen=True)
class Manifest:
    """What one release is: its version, the Python it needs, its wheels, and what it can update from."""

    version: str
    requires_python: str
    wheels: tuple[WheelRef, ...]
    built_at: str
    min_from_version: str | None = None

    @property
    def file_name(self) -> str:
        """``police-kiosk-VERSION.json``."""
        return manifest_file_name(self.version)

    @property
    def target_path(self) -> str:
        """``releases/police-kiosk-VERSION.json``."""
        return release_target_path(self.version)

    @property
    def total_size(self) -> int:
        """Bytes of all wheels together."""
        return sum(w.size for w in self.wheels)

    def project_wheel(self) -> WheelRef:
        """The wheel of the kiosk software itself (police_kiosk-VERSION-...)."""
        prefix = f"{PROJECT_WHEEL_PREFIX}{self.version}-"
        found = [w for w in self.wheels if w.file.startswith(prefix)]
        if len(found) != 1:
            raise ManifestInvalid(f"release {self.version} must hold exactly one {prefix}*.whl, holds {len(found)}")
        return found[0]

    def python_supported(self, python_version: str) -> bool:
        """True when a Python of ``python_version`` (e.g. 3.11.2) satisfies ``requires_python``."""
        return SpecifierSet(self.requires_python).contains(python_version, prereleases=True)

    def reachable_from(self, installed: str | None) -> bool:
        """True when a terminal running ``installed`` (None: nothing yet) may update to this release directly."""
        if self.min_from_version is None or installed is None:
            return True
        return Version(installed) >= Version(self.min_from_version)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's JSON form."""
        return {"version": self.version, "requires_python": self.requires_python,
                "wheels": [w.to_dict() for w in self.wheels], "built_at": self.built_at,
                "min_from_version": self.min_from_version}

    def to_json(self) -> bytes:
        """The file's bytes (stable key order, UTF-8)."""
        return (json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, raw: Any) -> "Manifest":
        """Check every field. Raises ManifestInvalid naming the first bad one."""
        if not isinstance(raw, dict):
            raise ManifestInvalid("a manifest is a JSON object")
        missing = [f for f in FIELDS if f not in raw]
        extra = sorted(set(raw) - set(FIELDS))
        if missing or extra:
            raise ManifestInvalid(f"manifest fields: missing {missing}, unknown {extra}")
        version = str(parse_version(raw["version"]))
        requires = raw["requires_python"]
        try:
            if not isinstance(requires, str):
                raise InvalidSpecifier(repr(requires))
            SpecifierSet(requires)
        except InvalidSpecifier:
            raise ManifestInvalid(f"requires_python: {requires!r} is not a version specifier") from None
        built_at = raw["built_at"]
        try:
            if not isinstance(built_at, str):
                raise ValueError(built_at)
            datetime.fromisoformat(built_at.replace("Z", "+00:00"))
        except ValueError:
            raise ManifestInvalid(f"built_at: {built_at!r} is not an ISO 8601 time") from None
        min_from = raw["min_from_version"]
        if min_from is not None:
            parse_version(min_from, "min_from_version")
        if not isinstance(raw["wheels"], list) or not raw["wheels"]:
            raise ManifestInvalid("wheels: expected a non-empty list")
        wheels = tuple(WheelRef.from_dict(w, i) for i, w in enumerate(raw["wheels"]))
        if len({w.file for w in wheels}) != len(wheels):
            raise ManifestInvalid("wheels: a file is listed twice")
        manifest = cls(version, requires, wheels, built_at, min_from)
        manifest.project_wheel()
        return manifest

    @classmethod
    def from_json(cls, data: bytes) -> "Manifest":
        """Parse a manifest file's bytes. Raises ManifestInvalid."""
        try:
            raw = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ManifestInvalid(f"not a JSON manifest: {exc}") from None
        return cls.from_dict(raw)
