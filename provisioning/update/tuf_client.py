"""The kiosk's TUF client: every byte of a release comes through python-tuf's ngclient and its verification.

The metadata folder (``<state>/update/tuf``) persists between runs. On first use it is
empty and ngclient is bootstrapped with the provisioned root.json (``--tuf-root`` or
``update.tuf_root``), which it copies into the folder; from then on the terminal trusts
only the metadata stored there, so a repository that goes back to older metadata (rollback)
or stops changing (freeze, caught by expiry) is refused. TUF's exceptions become the
refusal reasons of ``apply``.
"""
from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Iterator

from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, TargetFile
from tuf.api.serialization import DeserializationError
from tuf.ngclient import Updater
from tuf.ngclient.fetcher import FetcherInterface

from kiosk.durable import replace_durably
from provisioning.release.manifest import Manifest, ManifestInvalid, WheelRef, version_of_target_path
from provisioning.update.layout import UpdateState
from provisioning.update.outcome import UpdateRefused
from provisioning.update.rollout import OfferedRelease, parse_release_entry

log = logging.getLogger("provisioning.update")


@contextlib.contextmanager
def refusal_reasons() -> Iterator[None]:
    """Turn what ngclient raises into UpdateRefused with the matching reason."""
    try:
        yield
    except UpdateRefused:
        raise
    except tuf_errors.ExpiredMetadataError as exc:
        raise UpdateRefused("expired_metadata", f"the repository's signed metadata has expired: {exc}") from None
    except tuf_errors.BadVersionNumberError as exc:
        raise UpdateRefused("rollback_attack", f"the repository went back to older metadata: {exc}") from None
    except tuf_errors.DownloadLengthMismatchError as exc:  # more bytes than the signed length
        raise UpdateRefused("verification_failed", f"a file is longer than its signed length: {exc}") from None
    except (tuf_errors.RepositoryError, DeserializationError) as exc:
        raise UpdateRefused("verification_failed", f"{type(exc).__name__}: {exc}") from None
    except tuf_errors.DownloadError as exc:
        raise UpdateRefused("download_failed", f"{type(exc).__name__}: {exc}") from None
    except OSError as exc:  # connection refused, DNS, disk full while persisting
        raise UpdateRefused("download_failed", f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:
        # urllib3 lets a connection error through as its own MaxRetryError (not an OSError)
        if type(exc).__module__.startswith("urllib3"):
            raise UpdateRefused("download_failed", f"{type(exc).__name__}: {exc}") from None
        raise


class ReleaseRepository:
    """One repository URL R (``R/metadata/``, ``R/targets/``) as this terminal trusts it."""

    def __init__(self, url: str, state: UpdateState, tuf_root: Path | None = None,
                 fetcher: FetcherInterface | None = None) -> None:
        self.url = url.rstrip("/")
        self.state = state
        self.downloaded_files = 0
        self.downloaded_bytes = 0
        bootstrap: bytes | None = None
        if not state.has_trusted_root():
            if tuf_root is None:
                raise UpdateRefused("no_tuf_root", "no trusted root.json yet: give --tuf-root FILE "
                                                   "(or run `kiosk-provision init --tuf-root FILE`)")
            try:
                bootstrap = Path(tuf_root).read_bytes()
            except OSError as exc:
                raise UpdateRefused("no_tuf_root", f"cannot read the TUF root {tuf_root}: {exc.strerror}") from None
        state.metadata_dir.mkdir(parents=True, exist_ok=True)
        try:
            with refusal_reasons():
                self.updater = Updater(str(state.metadata_dir), f"{self.url}/metadata/",
                                       target_base_url=f"{self.url}/targets/", fetcher=fetcher, bootstrap=bootstrap)
        except (UpdateRefused, ValueError, TypeError, KeyError) as err:
            if bootstrap is not None:  # the provisioned file is no root: the terminal still has none
                detail = err.detail if isinstance(err, UpdateRefused) else f"{type(err).__name__}: {err}"
                raise UpdateRefused("no_tuf_root", f"{tuf_root} is not a usable TUF root: {detail}") from None
            raise

    def refresh(self) -> None:
        """Fetch and verify timestamp, snapshot and targets (root rotations first). Raises UpdateRefused."""
        with refusal_reasons():
            self.updater.refresh()

    def releases(self) -> list[OfferedRelease]:
        """The releases the verified targets metadata lists (entries that are not well formed are skipped)."""
        # ngclient has no listing call: the names come from the targets metadata it verified and
        # persisted during refresh(); each entry is then taken from its trusted set.
        with refusal_reasons():
            stored = Metadata.from_bytes((self.state.metadata_dir / "targets.json").read_bytes())
            found = []
            for path in stored.signed.targets:
                if version_of_target_path(path) is None:
                    continue
                info = self.updater.get_targetinfo(path)
                if info is None:
                    continue
                try:
                    found.append(parse_release_entry(path, info.custom))
                except ManifestInvalid as exc:
                    log.warning("ignoring a malformed release entry: %s", exc.detail)
        return found

    def _info(self, target_path: str) -> TargetFile:
        with refusal_reasons():
            info = self.updater.get_targetinfo(target_path)
        if info is None:
            raise UpdateRefused("verification_failed", f"{target_path} is not in the signed targets metadata")
        return info

    def _download(self, info: TargetFile, dest: Path) -> Path:
        """Download ``info`` to a partial name, verify, then rename it to ``dest``; a leftover partial is discarded."""
        self.state.downloads_dir.mkdir(parents=True, exist_ok=True)
        part = self.state.downloads_dir / (info.path.replace("/", "_") + ".part")
        part.unlink(missing_ok=True)
        with refusal_reasons():
            self.updater.download_target(info, filepath=str(part))
            if self.updater.find_cached_target(info, str(part)) is None:  # the copy on disk, checked again
                raise tuf_errors.LengthOrHashMismatchError(f"{info.path}: the stored copy does not verify")
            dest.parent.mkdir(parents=True, exist_ok=True)
            replace_durably(part, dest)  # a power cut leaves the old file or the whole verified one
        self.downloaded_files += 1
        self.downloaded_bytes += info.length
        return dest

    def manifest(self, release: OfferedRelease) -> Manifest:
        """The release's manifest, downloaded and verified, and consistent with its entry. Raises UpdateRefused."""
        info = self._info(release.target_path)
        dest = self.state.downloads_dir / f"{info.hashes.get('sha256', 'x')}.manifest.json"
        try:
            data = self._download(info, dest).read_bytes()
        finally:
            dest.unlink(missing_ok=True)
        try:
            manifest = Manifest.from_json(data)
        except ManifestInvalid as exc:
            raise UpdateRefused("verification_failed", f"{release.target_path}: {exc.detail}",
                                version=release.version) from None
        if manifest.version != release.version:
            raise UpdateRefused("verification_failed", f"{release.target_path} holds the manifest of "
                                f"{manifest.version}", version=release.version)
        return manifest

    def _wheel_info(self, ref: WheelRef) -> TargetFile:
        info = self._info(ref.target_path)
        if info.length != ref.size or info.hashes.get("sha256") != ref.sha256:
            raise UpdateRefused("verification_failed", f"{ref.file}: the manifest and the signed targets disagree")
        return info

    def fetch_wheel(self, ref: WheelRef) -> Path:
        """The verified wheel in the cache, downloaded only when the cache lacks it. Raises UpdateRefused."""
        info = self._wheel_info(ref)
        dest = self.state.wheel_path(ref.sha256, ref.file)
        if self.updater.find_cached_target(info, str(dest)) is not None:
            return dest
        dest.unlink(missing_ok=True)  # a damaged copy: fetched again
        return self._download(info, dest)

    def verified_wheel(self, ref: WheelRef) -> Path:
        """The cached wheel, checked against the signed metadata right before it is used. Raises UpdateRefused."""
        info = self._wheel_info(ref)
        dest = self.state.wheel_path(ref.sha256, ref.file)
        if self.updater.find_cached_target(info, str(dest)) is None:
            raise UpdateRefused("verification_failed", f"{ref.file} in the cache no longer verifies")
        return dest
