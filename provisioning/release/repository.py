"""The publisher's side of the TUF repository: keys, root, and the signed list of releases (python-tuf Metadata API).

Layout of a repository folder R (served as-is by any web server at some URL):

- ``R/metadata/``: ``1.root.json`` (and ``root.json``, the same bytes, for provisioning),
  ``N.targets.json``, ``N.snapshot.json``, ``timestamp.json``. The root asks for consistent
  snapshots, so every version of targets and snapshot stays under its own name and a kiosk
  that refreshes while a release is being published never mixes two states.
- ``R/targets/``: ``releases/HASH.police-kiosk-VERSION.json`` and ``wheels/SHA256/HASH.FILE``
  (consistent snapshots prefix a target's file name with its hash; the target paths in the
  metadata are ``releases/police-kiosk-VERSION.json`` and ``wheels/SHA256/FILE``).

Keys live in a separate folder (``ROLE.pem``, mode 0600), one ed25519 key per top-level
role, threshold 1. Files of a change are written first, then targets, snapshot and, last,
timestamp: the new timestamp is what makes the change visible, so a failure halfway
leaves the repository as it was.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner
from tuf.api.metadata import (Metadata, MetaFile, Root, Signed, Snapshot, TargetFile, Targets, Timestamp)
from tuf.api.serialization.json import JSONSerializer

from provisioning.atomic import write_atomic
from provisioning.errors import ProvisionError
from provisioning.release.build import sha256_file
from provisioning.release.manifest import (Manifest, ManifestInvalid, parse_version, release_target_path,
                                           version_of_target_path)

ROLES = (Root.type, Targets.type, Snapshot.type, Timestamp.type)
DEFAULT_ROOT_DAYS = 365
# How long each role's signature holds, at most (never beyond the root's own --expires-days).
# The timestamp is short on purpose: a kiosk shown a frozen repository notices within a week.
# `kiosk-release refresh` re-signs them; run it daily on the publishing host.
ROLE_DAYS = {Targets.type: 90, Snapshot.type: 30, Timestamp.type: 7}
SPEC_VERSION = "1.0.31"
_SERIALIZER = JSONSerializer(compact=False)


class PublishRefused(ProvisionError):
    """The repository was left as it was: the request does not fit it (keys, versions, layout)."""

    code = "publish_refused"
    exit_status = 65


@dataclass(frozen=True)
class ReleaseEntry:
    """One published release as the signed targets list it."""

    version: str
    rollout_percent: int
    halted: bool
    path: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form for `kiosk-release list --json`."""
        return {"version": self.version, "rollout_percent": self.rollout_percent, "halted": self.halted,
                "path": self.path}


def custom_metadata(version: str, rollout_percent: int, halted: bool) -> dict[str, Any]:
    """The custom metadata of a manifest's target entry."""
    return {"version": version, "rollout_percent": rollout_percent, "halted": halted}


def check_percent(percent: Any) -> int:
    """A rollout percentage, 0..100. Raises PublishRefused."""
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise PublishRefused(f"a rollout percentage is a whole number from 0 to 100, got {percent!r}")
    return percent


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _write_key(path: Path, signer: CryptoSigner) -> None:
    write_atomic(path, signer.private_bytes, mode=0o600)


def _load_key(path: Path) -> CryptoSigner:
    try:
        return CryptoSigner(load_pem_private_key(path.read_bytes(), None))
    except (OSError, ValueError, TypeError) as exc:
        raise PublishRefused(f"cannot load the key {path}: {exc}") from None


class Publisher:
    """A repository folder and its keys, loaded at their newest signed state."""

    def __init__(self, repo: Path, keys: Path, now: Callable[[], datetime] = _utcnow) -> None:
        self.repo = Path(repo)
        self.keys = Path(keys)
        self.now = now
        self.metadata_dir = self.repo / "metadata"
        self.targets_dir = self.repo / "targets"
        try:
            self.timestamp: Metadata[Timestamp] = Metadata.from_file(str(self.metadata_dir / "timestamp.json"))
            snap_version = self.timestamp.signed.snapshot_meta.version
            self.snapshot: Metadata[Snapshot] = Metadata.from_file(
                str(self.metadata_dir / f"{snap_version}.snapshot.json"))
            targets_version = self.snapshot.signed.meta["targets.json"].version
            self.targets: Metadata[Targets] = Metadata.from_file(
                str(self.metadata_dir / f"{targets_version}.targets.json"))
            self.root: Metadata[Root] = Metadata.from_file(str(self.metadata_dir / "root.json"))
        except (OSError, ValueError, KeyError) as exc:
            raise PublishRefused(f"{self.repo} is not a repository made by `kiosk-release init`: {exc}") from None
        self.signers = {role: _load_key(self.keys / f"{role}.pem") for role in ROLES}
        for role, signer in self.signers.items():
            if signer.public_key.keyid not in self.root.signed.roles[role].keyids:
                raise PublishRefused(f"the {role} key in {self.keys} is not one the repository's root trusts")

    # --- creating -----------------------------------------------------------------------
    @classmethod
    def init(cls, repo: Path, keys: Path, expires_days: int = DEFAULT_ROOT_DAYS,
             now: Callable[[], datetime] = _utcnow) -> "Publisher":
        """New keys, a root trusting them and an empty signed list of releases. Refuses to overwrite either."""
        repo, keys = Path(repo), Path(keys)
        if not 1 <= expires_days <= 3650:
            raise PublishRefused(f"--expires-days must be 1..3650, got {expires_days}")
        if (repo / "metadata").exists():
            raise PublishRefused(f"{repo}/metadata exists: this is a repository already")
        if any((keys / f"{role}.pem").exists() for role in ROLES):
            raise PublishRefused(f"{keys} already holds keys; keep them, or give another folder")
        keys.mkdir(parents=True, exist_ok=True)
        os.chmod(keys, 0o700)
        signers = {role: CryptoSigner.generate_ed25519() for role in ROLES}
        moment = now()
        root = Root(expires=moment + timedelta(days=expires_days), consistent_snapshot=True,
                    spec_version=SPEC_VERSION)
        for role, signer in signers.items():
            root.add_key(signer.public_key, role)
        root_md = Metadata(root)
        root_md.sign(signers[Root.type])
        meta_dir = repo / "metadata"
        meta_dir.mkdir(parents=True)
        (repo / "targets").mkdir(exist_ok=True)
        for role, signer in signers.items():
            _write_key(keys / f"{role}.pem", signer)
        data = root_md.to_bytes(_SERIALIZER)
        write_atomic(meta_dir / "1.root.json", data, mode=0o644)
        write_atomic(meta_dir / "root.json", data, mode=0o644)
        targets = Metadata(Targets(version=1, expires=moment, spec_version=SPEC_VERSION))
        snapshot = Metadata(Snapshot(version=1, expires=moment, spec_version=SPEC_VERSION))
        timestamp = Metadata(Timestamp(version=1, expires=moment, spec_version=SPEC_VERSION))
        _commit(meta_dir, root_md, targets, snapshot, timestamp, signers, moment, first=True)
        return cls(repo, keys, now)

    # --- reading ------------------------------------------------------------------------
    def releases(self) -> list[ReleaseEntry]:
        """Every published release, oldest version first."""
        found = []
        for path, target in self.targets.signed.targets.items():
            version = version_of_target_path(path)
            custom = target.custom or {}
            if version is None or not isinstance(custom, dict):
                continue
            found.append(ReleaseEntry(version, int(custom.get("rollout_percent", 0)), bool(custom.get("halted")),
                                      path))
        return sorted(found, key=lambda e: parse_version(e.version))

    def _entry(self, version: str) -> TargetFile:
        path = release_target_path(str(parse_version(version)))
        target = self.targets.signed.targets.get(path)
        if target is None:
            raise PublishRefused(f"release {version} is not published in {self.repo}")
        return target

    # --- changing -----------------------------------------------------------------------
    def publish(self, manifest_path: Path, rollout_percent: int = 100) -> ReleaseEntry:
        """Add the release whose manifest is at ``manifest_path`` (its wheels lie beside it). Raises PublishRefused."""
        check_percent(rollout_percent)
        manifest_path = Path(manifest_path)
        try:
            raw = manifest_path.read_bytes()
            manifest = Manifest.from_json(raw)
        except OSError as exc:
            raise PublishRefused(f"cannot read {manifest_path}: {exc.strerror}") from None
        except ManifestInvalid as exc:
            raise PublishRefused(f"{manifest_path}: {exc.detail}") from None
        if manifest_path.name != manifest.file_name:
            raise PublishRefused(f"{manifest_path.name} holds release {manifest.version}; "
                                 f"its file must be named {manifest.file_name}")
        if manifest.target_path in self.targets.signed.targets:
            raise PublishRefused(f"release {manifest.version} is published already; a version is never reused "
                                 "(use `kiosk-release rollout` or `halt` to change its rollout)")
        new_targets: dict[str, TargetFile] = {}
        for ref in manifest.wheels:
            local = manifest_path.parent / ref.file
            if not local.is_file():
                raise PublishRefused(f"{ref.file} is not beside {manifest_path.name}")
            if local.stat().st_size != ref.size or sha256_file(local) != ref.sha256:
                raise PublishRefused(f"{ref.file} is not the file the manifest names (size or SHA-256 differ)")
            new_targets[ref.target_path] = self._place(ref.target_path, local, ref.sha256)
        manifest_sha = sha256_file(manifest_path)
        info = self._place(manifest.target_path, manifest_path, manifest_sha)
        info.unrecognized_fields["custom"] = custom_metadata(manifest.version, rollout_percent, False)
        new_targets[manifest.target_path] = info
        self.targets.signed.targets.update(new_targets)
        self._commit()
        return self._release(manifest.version)

    def set_rollout(self, version: str, percent: int) -> ReleaseEntry:
        """Offer ``version`` to ``percent`` % of the terminals (a halted release stays halted)."""
        check_percent(percent)
        target = self._entry(version)
        custom = dict(target.custom or {})
        if custom.get("halted"):
            raise PublishRefused(f"release {version} is halted; publish a fixed release instead of resuming it")
        custom["rollout_percent"] = percent
        target.unrecognized_fields["custom"] = custom
        self._commit()
        return self._release(version)

    def halt(self, version: str) -> ReleaseEntry:
        """Stop offering ``version``: halted, rollout 0 %. Terminals that installed it keep it."""
        target = self._entry(version)
        custom = dict(target.custom or {})
        custom.update(halted=True, rollout_percent=0)
        target.unrecognized_fields["custom"] = custom
        self._commit()
        return self._release(version)

    def refresh(self) -> None:
        """Re-sign targets, snapshot and timestamp with fresh expiry times (nothing else changes)."""
        self._commit()

    def resign_timestamp(self, expires: datetime, signer: CryptoSigner | None = None) -> None:
        """A new timestamp expiring at ``expires``, signed by ``signer`` (the timestamp key by default).

        For drills and tests: an expired or wrongly signed timestamp is what a kiosk must refuse.
        """
        self.timestamp.signed.version += 1
        self.timestamp.signed.expires = expires
        self.timestamp.sign(signer or self.signers[Timestamp.type])
        write_atomic(self.metadata_dir / "timestamp.json", self.timestamp.to_bytes(_SERIALIZER), mode=0o644)

    def _release(self, version: str) -> ReleaseEntry:
        return next(e for e in self.releases() if e.version == version)

    def _place(self, target_path: str, local: Path, sha256: str) -> TargetFile:
        """Copy ``local`` to its consistent-snapshot name under targets/ (once); its target entry."""
        folder, _, name = target_path.rpartition("/")
        dest = self.targets_dir / folder / f"{sha256}.{name}"
        if not dest.exists():
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_name(f".{dest.name}.tmp")
            shutil.copyfile(local, tmp)
            os.replace(tmp, dest)
        return TargetFile(length=local.stat().st_size, hashes={"sha256": sha256}, path=target_path)

    def _commit(self) -> None:
        _commit(self.metadata_dir, self.root, self.targets, self.snapshot, self.timestamp, self.signers, self.now())


def _expiry(role: str, root: Root, moment: datetime) -> datetime:
    return min(moment + timedelta(days=ROLE_DAYS[role]), root.expires)


def _bump(md: Metadata[Any], role: str, root: Root, moment: datetime, signer: CryptoSigner, first: bool) -> None:
    signed: Signed = md.signed
    if not first:
        signed.version += 1
    signed.expires = _expiry(role, root, moment)
    md.sign(signer)


def _commit(meta_dir: Path, root: Metadata[Root], targets: Metadata[Targets], snapshot: Metadata[Snapshot],
            timestamp: Metadata[Timestamp], signers: dict[str, CryptoSigner], moment: datetime,
            first: bool = False) -> None:
    """New versions of targets, snapshot and timestamp (version 1 when ``first``), written in that order."""
    _bump(targets, Targets.type, root.signed, moment, signers[Targets.type], first)
    write_atomic(meta_dir / f"{targets.signed.version}.targets.json", targets.to_bytes(_SERIALIZER), mode=0o644)
    snapshot.signed.meta["targets.json"] = MetaFile(version=targets.signed.version)
    _bump(snapshot, Snapshot.type, root.signed, moment, signers[Snapshot.type], first)
    write_atomic(meta_dir / f"{snapshot.signed.version}.snapshot.json", snapshot.to_bytes(_SERIALIZER), mode=0o644)
    timestamp.signed.snapshot_meta = MetaFile(version=snapshot.signed.version)
    _bump(timestamp, Timestamp.type, root.signed, moment, signers[Timestamp.type], first)
    write_atomic(meta_dir / "timestamp.json", timestamp.to_bytes(_SERIALIZER), mode=0o644)
