"""The switch-over: ``current`` to the new release, the health gate, and the rollback when it fails.

Every step that changes what runs is written down first in ``<state>/update/pending.json``
(``{"version", "previous", "phase", "trial_pid", "reason", "detail"}``), so a run killed at
any point (a power cut) leaves either the old or the new release in ``current``, and the
next run finishes the job before it looks for anything new:

- phase ``gate``: the switch may or may not have happened. If ``current`` still names the
  previous release, the record is dropped and the run goes on as usual (the release is
  complete and is only switched to). If it names the new one, the gate runs again.
- phase ``rollback``: the gate failed; the version is marked bad first (never retried),
  then ``current`` goes back, the kiosk restarts and the failed folder is removed.

After a pass the running release and the one before it are kept (for the next rollback);
older release folders and wheels no release uses are removed.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from provisioning.atomic import write_atomic
from provisioning.update import outcome as oc
from provisioning.update.gate import Gate, stop_leftover
from provisioning.update.layout import ReleaseLayout, UpdateState, remove_tree
from provisioning.update.outcome import ApplyResult

log = logging.getLogger("provisioning.update")

PENDING_FILE = "pending.json"
Downloaded = tuple[int, int]  # (files, bytes) fetched by this run, for the result


def _pending_path(state: UpdateState) -> Path:
    return state.dir / PENDING_FILE


def read_pending(state: UpdateState) -> dict[str, Any] | None:
    """The switch an earlier run began and did not finish, or None."""
    try:
        raw = json.loads(_pending_path(state).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) and isinstance(raw.get("version"), str) else None


def _write_pending(state: UpdateState, record: dict[str, Any]) -> None:
    write_atomic(_pending_path(state), json.dumps(record).encode(), mode=0o644)


def _clear_pending(state: UpdateState) -> None:
    _pending_path(state).unlink(missing_ok=True)


def prune_releases(layout: ReleaseLayout, keep: set[str]) -> list[str]:
    """Remove release folders other than ``keep`` and the running one; returns their names."""
    removed: list[str] = []
    if not layout.releases.is_dir():
        return removed
    running = layout.installed_version()
    for folder in sorted(layout.releases.iterdir()):
        if folder.name in keep or folder.name == running or folder.name.startswith("."):
            continue
        remove_tree(folder)
        removed.append(folder.name)
    return removed


def _prune_wheels(layout: ReleaseLayout, state: UpdateState) -> None:
    state.prune_wheels({ref.sha256 for m in layout.complete_manifests() for ref in m.wheels})


class Switchover:
    """Switch, gate, and roll back, with each step recorded before it is taken."""

    def __init__(self, layout: ReleaseLayout, state: UpdateState, gate: Gate | None) -> None:
        self.layout = layout
        self.state = state
        self.gate = gate

    def switch(self, version: str, downloaded: Downloaded = (0, 0)) -> ApplyResult:
        """Point ``current`` at the complete release ``version``, restart, and gate it."""
        record = {"version": version, "previous": self.layout.installed_version(), "phase": "gate",
                  "trial_pid": None, "reason": None, "detail": ""}
        _write_pending(self.state, record)
        started = time.monotonic()
        self.layout.switch_current(version)
        timings = {"switch_ms": round((time.monotonic() - started) * 1000, 1)}
        log.info("current → %s (was %s)", version, record["previous"])
        return self._gate(record, downloaded, timings)

    def resume(self) -> ApplyResult | None:
        """Finish what a killed run left (None: nothing was pending, or the switch never happened)."""
        record = read_pending(self.state)
        if record is None:
            return None
        if stop_leftover(record.get("trial_pid"), self.layout.base):
            log.warning("stopped the trial kiosk an interrupted gate left (pid %s)", record.get("trial_pid"))
        version = record["version"]
        if record.get("phase") == "rollback":
            log.warning("finishing the rollback of %s an interrupted run began", version)
            return self._roll_back(record, (0, 0), {})
        if self.layout.installed_version() != version:
            log.warning("an interrupted run had not switched to %s yet; starting over", version)
            _clear_pending(self.state)
            return None
        log.warning("an interrupted run switched to %s; running its health gate again", version)
        return self._gate(record, (0, 0), {})

    def _gate(self, record: dict[str, Any], downloaded: Downloaded, timings: dict[str, float]) -> ApplyResult:
        version = record["version"]
        if self.gate is None:  # a library caller that switches without watching (no service to restart)
            return self._passed(record, downloaded, timings)

        def started(pid: int) -> None:
            _write_pending(self.state, {**record, "trial_pid": pid})

        verdict = self.gate.watch(version, on_started=started)
        timings = {**timings, "gate_s": round(verdict.seconds, 2)}
        if verdict.ready_s is not None:
            timings["ready_s"] = round(verdict.ready_s, 2)
        if verdict.ok:
            log.info("gate passed: %s ready and serving after %.1f s", version, verdict.seconds)
            return self._passed(record, downloaded, timings)
        log.error("gate failed for %s: %s (%s)", version, verdict.reason, verdict.detail)
        failed = {**record, "phase": "rollback", "trial_pid": None, "reason": verdict.reason,
                  "detail": verdict.detail}
        _write_pending(self.state, failed)
        return self._roll_back(failed, downloaded, timings)

    def _passed(self, record: dict[str, Any], downloaded: Downloaded, timings: dict[str, float]) -> ApplyResult:
        keep = {record["version"]} | ({record["previous"]} if record.get("previous") else set())
        removed = prune_releases(self.layout, keep)
        if removed:
            log.info("removed older releases: %s", ", ".join(removed))
        _prune_wheels(self.layout, self.state)
        _clear_pending(self.state)
        return ApplyResult(oc.INSTALLED, record["version"], None, "", *downloaded, timings=timings)

    def _roll_back(self, record: dict[str, Any], downloaded: Downloaded, timings: dict[str, float]) -> ApplyResult:
        version, previous = record["version"], record.get("previous")
        started = time.monotonic()
        self.state.mark_bad(version)  # first: whatever happens next, this version is never taken again
        if previous and self.layout.is_complete(previous):
            self.layout.switch_current(previous)
        elif self.layout.installed_version() == version:  # a first install has nothing to go back to
            self.layout.current.unlink(missing_ok=True)
        if self.gate is not None:
            self.gate.restart()
        # measured to here: the previous release is back and restarting; the clean-up below runs beside it
        timings = {**timings, "rollback_ms": round((time.monotonic() - started) * 1000, 1)}
        remove_tree(self.layout.release_dir(version))
        _prune_wheels(self.layout, self.state)
        _clear_pending(self.state)
        log.error("rolled back %s → %s: %s", version, previous or "nothing", record.get("reason"))
        return ApplyResult(oc.ROLLED_BACK, version, record.get("reason") or "kiosk_exited",
                           str(record.get("detail") or ""), *downloaded, timings=timings)

