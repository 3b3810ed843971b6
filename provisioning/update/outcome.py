"""What `kiosk-provision update` reports: outcomes, reasons, and the refusal that carries one.

The outcome and reason words are a contract (heartbeats and operators read them, see
docs/CONTRACTS.md); `apply` prints ``{"outcome", "version", "reason"}`` and exits 0 for
every outcome but ``refused``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kiosk.errors import KioskError

INSTALLED, UP_TO_DATE, NOT_IN_ROLLOUT, DEFERRED, REFUSED = (
    "installed", "up_to_date", "not_in_rollout", "deferred", "refused")
ROLLED_BACK = "rolled_back"  # switched, failed the health gate, switched back (exit 1, like refused)
OUTCOMES = (INSTALLED, UP_TO_DATE, NOT_IN_ROLLOUT, DEFERRED, REFUSED, ROLLED_BACK)
SUCCESSFUL_OUTCOMES = frozenset({INSTALLED, UP_TO_DATE, NOT_IN_ROLLOUT, DEFERRED})
# Runs that changed nothing keep the last outcome that did (heartbeats and metrics show that one).
QUIET_OUTCOMES = frozenset({UP_TO_DATE, NOT_IN_ROLLOUT})

REASONS = ("verification_failed", "expired_metadata", "no_tuf_root", "rollback_attack", "download_failed",
           "selftest_failed", "session_open", "outside_window", "bad_version")
# Why the health gate failed (the reason of a rolled_back outcome).
GATE_REASONS = ("kiosk_exited", "not_ready", "not_healthy")
REFUSED_EXIT = 1


class UpdateRefused(KioskError):
    """An update was stopped before anything was switched; ``reason`` is one of REASONS."""

    code = "update_refused"
    message_en = "The update was refused; the running release is unchanged."
    exit_status = REFUSED_EXIT

    def __init__(self, reason: str, detail: str = "", *, version: str | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown refusal reason {reason!r}")
        super().__init__(detail or reason, reason=reason)
        self.code = reason
        self.reason = reason
        self.version = version


@dataclass(frozen=True)
class CheckResult:
    """`update check`: what runs, what the repository offers this terminal, and the versions it will not take."""

    installed: str | None
    offered: str | None
    in_rollout: bool
    bad_versions: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """`check --json`."""
        return {"installed": self.installed, "offered": self.offered, "in_rollout": self.in_rollout,
                "bad_versions": list(self.bad_versions)}


@dataclass(frozen=True)
class ApplyResult:
    """`update apply`: the outcome, the version it concerns, and why (for refused, deferred and skipped)."""

    outcome: str
    version: str | None
    reason: str | None = None
    detail: str = ""
    downloaded_files: int = 0
    downloaded_bytes: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # switch_ms, gate_s, rollback_ms when measured

    @property
    def ok(self) -> bool:
        """True for every outcome but refused."""
        return self.outcome in SUCCESSFUL_OUTCOMES

    @property
    def exit_status(self) -> int:
        """0, or REFUSED_EXIT."""
        return 0 if self.ok else REFUSED_EXIT

    def to_dict(self) -> dict[str, Any]:
        """`apply --json`: the three contract fields, then what was downloaded and the detail."""
        return {"outcome": self.outcome, "version": self.version, "reason": self.reason,
                "detail": self.detail, "downloaded_files": self.downloaded_files,
                "downloaded_bytes": self.downloaded_bytes, "timings": dict(self.timings)}

    @classmethod
    def refused(cls, err: UpdateRefused, version: str | None = None, downloaded: tuple[int, int] = (0, 0)
                ) -> "ApplyResult":
        """The result of a refusal."""
        return cls(REFUSED, err.version or version, err.reason, err.detail, downloaded[0], downloaded[1])

    def human(self) -> str:
        """One line for the technician."""
        what = {INSTALLED: f"installed {self.version}", UP_TO_DATE: "up to date",
                NOT_IN_ROLLOUT: f"{self.version} is offered, but not yet to this terminal",
                DEFERRED: f"{self.version} deferred", REFUSED: f"refused {self.version or ''}".rstrip(),
                ROLLED_BACK: f"{self.version} failed its health gate and was rolled back"}[self.outcome]
        if self.reason:
            what += f" ({self.reason}{': ' + self.detail if self.detail and self.detail != self.reason else ''})"
        if self.downloaded_files:
            what += f"; downloaded {self.downloaded_files} files, {self.downloaded_bytes / 1e6:.1f} MB"
        return what
