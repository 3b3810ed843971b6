"""`kiosk-provision update check` and `apply`: from the signed list of releases to a tested release folder.

apply, in order — nothing the running kiosk uses changes before the last step:

1. refresh the TUF metadata (refused: verification_failed, expired_metadata, rollback_attack,
   download_failed, no_tuf_root);
2. pick the release (see rollout.py; a downgrade-only repository is a rollback_attack);
   its manifest is downloaded and verified;
3. ask the policy whether it may go ahead now (part 2's session marker and maintenance
   window plug in here; deferred: session_open, outside_window);
4. download the wheels the cache lacks, each verified before it is kept;
5. build ``releases/VERSION`` from the verified wheels and run its self-test
   (selftest_failed removes the folder);
6. mark it complete, ask the policy again (a session may have opened meanwhile), and
   switch ``current`` to it by renaming a new symlink over the old one;
7. restart the kiosk and hold it to the health gate; on failure switch back, restart, and
   mark the version bad (switch.py, gate.py).

Every run holds a lock in the state folder, removes release folders an interrupted run left,
finishes a switch or rollback an interrupted run began, and keeps the last outcome for
heartbeats (runs that changed nothing keep the one before).
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Protocol

if TYPE_CHECKING:
    from provisioning.update.gate import Gate

from provisioning.release.manifest import Manifest
from provisioning.update import outcome as oc
from provisioning.update.layout import ReleaseLayout, UpdateState, remove_tree
from provisioning.update.outcome import ApplyResult, CheckResult, UpdateRefused
from provisioning.update.release_env import ReleaseEnvFailed, build_release_env, run_release_selftest
from provisioning.update.rollout import (OfferedRelease, candidates, in_rollout, is_downgrade_only,
                                         skipped_as_bad)
from provisioning.update.switch import Switchover
from provisioning.update.tuf_client import ReleaseRepository

log = logging.getLogger("provisioning.update")


class ApplyPolicy(Protocol):
    """Whether an update may be installed now; returns a deferral reason (session_open, outside_window) or None."""

    def deferral(self, force: bool) -> str | None:
        """None to go ahead."""


class AnyTime:
    """Part 1's policy: always now. Part 2 reads the session marker and the maintenance window instead."""

    def deferral(self, force: bool) -> str | None:
        """Never defers."""
        return None


Builder = Callable[[Path, Manifest, list[Path]], None]
SelfTest = Callable[[Path, Manifest, "str | None"], object]


@dataclass
class UpdateRequest:
    """Everything check and apply need, resolved from flags and config."""

    repo_url: str
    terminal_id: str
    state: UpdateState
    layout: ReleaseLayout
    tuf_root: Path | None = None
    config_path: str | None = None
    force: bool = False
    python_version: str = field(default_factory=platform.python_version)
    policy: ApplyPolicy | None = None  # when a switch may happen (AnyTime when None)
    gate: "Gate | None" = None  # restarts and watches the new kiosk (None: switch only, nothing to restart)


@contextlib.contextmanager
def update_lock(state: UpdateState) -> Iterator[None]:
    """One check or apply at a time on a terminal (a second one waits)."""
    state.dir.mkdir(parents=True, exist_ok=True)
    with open(state.lock_file, "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class Selection:
    """What the repository offers this terminal now."""

    installed: str | None
    chosen: OfferedRelease | None  # the release to take (in rollout)
    offered: OfferedRelease | None  # chosen, else the newest reachable release (not in rollout)
    manifest: Manifest | None
    bad_skipped: str | None
    bad_versions: tuple[str, ...]


def select(req: UpdateRequest, repo: ReleaseRepository) -> Selection:
    """Refresh and choose. Raises UpdateRefused (rollback_attack for a downgrade-only repository)."""
    repo.refresh()
    installed = req.layout.installed_version()
    bad = req.state.bad_versions()
    listed = repo.releases()
    if is_downgrade_only(listed, installed):
        newest = max(listed, key=lambda r: r.key).version
        raise UpdateRefused("rollback_attack", f"the repository offers only releases older than the installed "
                            f"{installed} (newest: {newest})", version=newest)
    offered = chosen = None
    manifest = None
    for release in candidates(listed, installed, bad):
        try:
            found = repo.manifest(release)
        except UpdateRefused as err:
            err.version = err.version or release.version
            raise
        if not found.python_supported(req.python_version):
            log.info("skipping %s: needs Python %s", release.version, found.requires_python)
            continue
        if not found.reachable_from(installed):
            log.info("skipping %s: not reachable from %s", release.version, installed)
            continue
        if offered is None:
            offered, manifest = release, found
        if in_rollout(req.terminal_id, release.rollout_percent, release.halted):
            chosen, offered, manifest = release, release, found
            break
    return Selection(installed, chosen, offered, manifest, skipped_as_bad(listed, installed, bad), bad)


def check(req: UpdateRequest) -> CheckResult:
    """`update check`: refresh and report, installing nothing. Raises UpdateRefused."""
    with update_lock(req.state):
        repo = ReleaseRepository(req.repo_url, req.state, req.tuf_root)
        sel = select(req, repo)
    return CheckResult(sel.installed, sel.offered.version if sel.offered else None, sel.chosen is not None,
                       sel.bad_versions)


def apply(req: UpdateRequest, policy: ApplyPolicy | None = None, builder: Builder = build_release_env,
          selftest: SelfTest = run_release_selftest) -> ApplyResult:
    """`update apply`: never raises for an update that fails; the result says why. Nothing switches unless all passed."""
    policy = policy or req.policy or AnyTime()
    with update_lock(req.state):
        repo: ReleaseRepository | None = None
        removed = req.layout.remove_incomplete()
        if removed:
            log.warning("removed what an interrupted apply left: %s", ", ".join(removed))
        req.state.clear_downloads()
        result = Switchover(req.layout, req.state, req.gate).resume()
        if result is None:
            try:
                repo = ReleaseRepository(req.repo_url, req.state, req.tuf_root)
                result = _apply(req, repo, policy, builder, selftest)
            except UpdateRefused as err:
                downloaded = (repo.downloaded_files, repo.downloaded_bytes) if repo else (0, 0)
                result = ApplyResult.refused(err, downloaded=downloaded)
        if result.outcome not in oc.QUIET_OUTCOMES or req.state.last_outcome() is None:
            req.state.record_outcome(result.to_dict())
        done = getattr(policy, "done", None)
        if result.outcome != oc.DEFERRED and done is not None:
            done()  # an update_now request is used up by a run that got past the window
    return result


def _apply(req: UpdateRequest, repo: ReleaseRepository, policy: ApplyPolicy, builder: Builder,
           selftest: SelfTest) -> ApplyResult:
    sel = select(req, repo)
    if sel.offered is None or sel.manifest is None:
        if sel.bad_skipped:
            return ApplyResult(oc.UP_TO_DATE, sel.bad_skipped, "bad_version",
                               f"{sel.bad_skipped} failed on this terminal before; it is not taken again")
        return ApplyResult(oc.UP_TO_DATE, sel.installed)
    if sel.chosen is None:
        return ApplyResult(oc.NOT_IN_ROLLOUT, sel.offered.version, None,
                           f"offered to {sel.offered.rollout_percent} % of terminals")
    manifest = sel.manifest
    version = manifest.version

    def downloaded(outcome: str, reason: str | None = None, detail: str = "") -> ApplyResult:
        return ApplyResult(outcome, version, reason, detail, repo.downloaded_files, repo.downloaded_bytes)

    try:
        return _install(req, repo, policy, builder, selftest, manifest, downloaded)
    except UpdateRefused as err:
        err.version = err.version or version  # every refusal from here on concerns this release
        raise


def _install(req: UpdateRequest, repo: ReleaseRepository, policy: ApplyPolicy, builder: Builder, selftest: SelfTest,
             manifest: Manifest, downloaded: Callable[..., ApplyResult]) -> ApplyResult:
    version = manifest.version
    deferral = policy.deferral(req.force)
    if deferral:
        return downloaded(oc.DEFERRED, deferral)
    if not req.layout.is_complete(version):
        for ref in manifest.wheels:
            repo.fetch_wheel(ref)
        release_dir = req.layout.release_dir(version)
        remove_tree(release_dir)
        req.layout.releases.mkdir(parents=True, exist_ok=True)
        try:
            builder(release_dir, manifest, [repo.verified_wheel(ref) for ref in manifest.wheels])
            selftest(release_dir, manifest, req.config_path)
        except ReleaseEnvFailed as exc:
            remove_tree(release_dir)
            raise UpdateRefused("selftest_failed", exc.detail, version=version) from None
        except BaseException:
            remove_tree(release_dir)
            raise
        req.layout.mark_complete(manifest)
    deferral = policy.deferral(req.force)
    if deferral:  # the release stays built; the next run only switches
        return downloaded(oc.DEFERRED, deferral)
    done = downloaded(oc.INSTALLED)  # what was fetched, for the result of the switch
    return Switchover(req.layout, req.state, req.gate).switch(version, (done.downloaded_files,
                                                                        done.downloaded_bytes))
