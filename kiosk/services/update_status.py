"""What the kiosk and its updater tell each other through the state folder, and what operators see of updates.

The kiosk runs as the unprivileged ``kiosk`` user, the updater (``kiosk-provision update
apply``, from kiosk-update.service) as root; they share nothing but files in the kiosk's
state folder, each written whole (a new file renamed over the old):

- ``session-open.json`` (kiosk → updater): present while a resident's transaction is open,
  ``{"pid", "boot_id", "since"}``. A marker whose process is gone (a crash, a reboot) counts
  as closed, so a kiosk that died mid-session never blocks updates for good.
- ``update-now.json`` (kiosk → updater): a verified ``update_now`` remote command,
  ``{"command_id", "expires_at"}``; until it expires it lifts the maintenance window (never
  an open session). The updater removes it once a run got past the window.
- ``run-status.json`` (kiosk → updater's health gate): ``{"version", "pid", "started_at",
  "at", "serving"}``, rewritten every few seconds from the UI clock while the kiosk serves.
- ``update/last.json`` (updater → kiosk): the last update outcome, for heartbeats and metrics.
"""
from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping

from kiosk.durable import write_atomic

log = logging.getLogger(__name__)

SESSION_MARKER = "session-open.json"
UPDATE_NOW_FILE = "update-now.json"
RUN_STATUS_FILE = "run-status.json"
LAST_OUTCOME_FILE = "update/last.json"
RUN_STATUS_EVERY_S = 2.0
# Every outcome an update run can end with (provisioning.update.outcome spells the same words).
UPDATE_OUTCOMES = ("installed", "up_to_date", "not_in_rollout", "deferred", "refused", "rolled_back")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


# --- the maintenance window ----------------------------------------------------------------------
def parse_window(text: str) -> tuple[int, int]:
    """``"HH:MM-HH:MM"`` → (start, end) in minutes after midnight. Raises ValueError."""
    m = _WINDOW.match(text or "")
    if not m:
        raise ValueError(f"must be HH:MM-HH:MM (24-hour station time), got {text!r}")
    return int(m[1]) * 60 + int(m[2]), int(m[3]) * 60 + int(m[4])


def in_window(text: str, at: datetime) -> bool:
    """Whether the station-time instant ``at`` lies in the window: start included, end excluded, may cross
    midnight; a window that ends where it starts ("00:00-00:00") is the whole day."""
    start, end = parse_window(text)
    minute = at.hour * 60 + at.minute
    if start == end:
        return True
    return start <= minute < end if start < end else (minute >= start or minute < end)


# --- helpers -------------------------------------------------------------------------------------
def boot_id() -> str:
    """This boot's id (a marker from before a reboot is stale whatever its pid)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def pid_alive(pid: Any) -> bool:
    """True when a process with this pid exists (ours or another user's)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, belongs to another user
        return True
    return True


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return raw if isinstance(raw, dict) else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).replace(microsecond=0).isoformat()


# --- the session marker --------------------------------------------------------------------------
class SessionMarker:
    """``<state>/session-open.json``: written while a resident's transaction is open."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / SESSION_MARKER

    def open(self) -> None:
        """A resident's transaction began (failures are logged: residents come first)."""
        try:
            write_atomic(self.path, json.dumps({"pid": os.getpid(), "boot_id": boot_id(),
                                                "since": _iso(time.time())}).encode())
        except OSError as exc:
            log.error("session marker not written: %s", exc.strerror)

    def close(self) -> None:
        """No resident's transaction is open any more."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.error("session marker not removed: %s", exc.strerror)

    def is_open(self) -> bool:
        """True while the marker names a live kiosk process of this boot."""
        marker = _read_json(self.path)
        if marker is None:
            return self.path.exists()  # present but unreadable: being written, count it as open
        return marker.get("boot_id") == boot_id() and pid_alive(marker.get("pid"))


# --- the update_now request ----------------------------------------------------------------------
def request_update_now(state_dir: str | os.PathLike[str], command_id: str, expires_at: datetime) -> Path:
    """Keep a verified ``update_now`` command for the updater until it expires."""
    path = Path(state_dir) / UPDATE_NOW_FILE
    write_atomic(path, json.dumps({"command_id": command_id, "expires_at": expires_at.isoformat()}).encode())
    os.chmod(path, 0o644)
    return path


def pending_update_now(state_dir: str | os.PathLike[str], now: datetime | None = None) -> dict[str, Any] | None:
    """The ``update_now`` request still valid at ``now``, or None (an expired or damaged one counts as none)."""
    request = _read_json(Path(state_dir) / UPDATE_NOW_FILE)
    if request is None:
        return None
    try:
        expires = datetime.fromisoformat(str(request.get("expires_at")))
    except ValueError:
        return None
    if expires.tzinfo is None:
        return None
    return request if (now or datetime.now(timezone.utc)) < expires else None


def clear_update_now(state_dir: str | os.PathLike[str]) -> None:
    """The request was acted on."""
    (Path(state_dir) / UPDATE_NOW_FILE).unlink(missing_ok=True)


# --- the run status (the health gate reads it) ---------------------------------------------------
class RunStatusWriter:
    """``<state>/run-status.json``, rewritten from the UI clock while the kiosk runs."""

    def __init__(self, state_dir: str | os.PathLike[str], version: str) -> None:
        self.path = Path(state_dir) / RUN_STATUS_FILE
        self.version = version
        self.started_at = time.time()

    def write(self, serving: bool) -> None:
        """Say the kiosk is alive, and whether it serves residents (a write that fails is only logged)."""
        body = {"version": self.version, "pid": os.getpid(), "started_at": self.started_at, "at": time.time(),
                "serving": bool(serving)}
        try:
            write_atomic(self.path, json.dumps(body).encode())
            os.chmod(self.path, 0o644)
        except OSError as exc:
            log.error("run status not written: %s", exc.strerror)


def read_run_status(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The kiosk's last run status, or None."""
    return _read_json(Path(state_dir) / RUN_STATUS_FILE)


# --- what operators see: heartbeat and metrics ---------------------------------------------------
def last_update(state_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``update/last.json`` as the updater wrote it, or None."""
    return _read_json(Path(state_dir) / LAST_OUTCOME_FILE)


def update_report(state_dir: str | os.PathLike[str], running_version: str) -> dict[str, Any]:
    """The heartbeat's ``update``: the release the last outcome concerns, the outcome, its reason and when."""
    last = last_update(state_dir) or {}
    outcome = last.get("outcome") if last.get("outcome") in UPDATE_OUTCOMES else None
    version = last.get("version") if outcome and isinstance(last.get("version"), str) else running_version
    reason = last.get("reason") if outcome and isinstance(last.get("reason"), str) else None
    at = last.get("at") if outcome and isinstance(last.get("at"), str) else None
    return {"version": version[:64], "last_outcome": outcome, "reason": reason[:64] if reason else None, "at": at}


class UpdateCollector:
    """Prometheus collector: ``kiosk_release_info{version}`` = 1 and ``kiosk_update_last_outcome{outcome}``.

    Read from the state folder at each scrape, so an outcome the updater recorded while the
    kiosk ran shows at once.
    """

    def __init__(self, state_dir: str | os.PathLike[str], version: str) -> None:
        self.state_dir = Path(state_dir)
        self.version = version

    def describe(self) -> list[Any]:
        """Nothing up front (the registry then does not call collect at registration)."""
        return []

    def collect(self) -> Iterator[Any]:
        """The two gauge families."""
        from prometheus_client.core import GaugeMetricFamily

        info = GaugeMetricFamily("kiosk_release_info", "1, labelled with the release this kiosk runs.",
                                 labels=["version"])
        info.add_metric([self.version], 1)
        yield info
        last: Mapping[str, Any] = last_update(self.state_dir) or {}
        outcome = GaugeMetricFamily("kiosk_update_last_outcome",
                                    "1 for the outcome of the last update run, 0 for the others.",
                                    labels=["outcome"])
        for name in UPDATE_OUTCOMES:
            outcome.add_metric([name], 1 if last.get("outcome") == name else 0)
        yield outcome
