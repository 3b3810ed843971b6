"""Remote commands from the backend: verified (signature, terminal, expiry, kind, arguments), remembered against replay.

A heartbeat answer may carry remote commands (restart, enter/leave maintenance, an
out-of-service notice, a reprint). Each is a compact JSON payload signed by the backend's
Ed25519 key (``backend.public_key``) and names this terminal, a command id and an expiry.
A command that is badly signed, meant for another terminal, expired, not yet valid, of an
unknown kind, or already seen (replay: ids are remembered on disk until they expire) is
rejected. Moved out of kiosk.services.heartbeat, which sends them back acknowledged.
"""
from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Protocol

from kiosk.errors import KioskError, SignatureError
from kiosk.services import signing
from kiosk.durable import write_atomic

log = logging.getLogger("kiosk.services.heartbeat")

COMMAND_KINDS = ("restart", "enter_maintenance", "leave_maintenance", "out_of_service_notice", "reprint",
                 "update_now")
MAX_COMMAND_LIFETIME_S = 86400  # issued_at to expires_at: a day covers a terminal offline overnight
MAX_NOTICE_CHARS = 500
_DOCUMENT_ID = re.compile(r"^D[0-9A-Za-z]{6,40}$")
_COMMAND_ID = re.compile(r"^[A-Za-z0-9_-]{4,64}$")


# --- commands --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RemoteCommand:
    """A verified command from the backend. ``args``: ``text`` for out_of_service_notice, ``document_id`` for reprint."""

    command_id: str
    kind: str
    args: Mapping[str, Any]
    issued_at: datetime
    expires_at: datetime


class CommandHandler(Protocol):
    """What carries out accepted remote commands (the app provides it)."""

    def handle_command(self, command: RemoteCommand) -> None:
        """Carry out ``command`` (or schedule it). Raise a KioskError when it cannot be done."""


class CommandRejected(KioskError):
    """A remote command that was not carried out; ``reason`` says why (logged, acknowledged as rejected)."""

    code = "remote_command_rejected"

    def __init__(self, reason: str, detail: str = "", command_id: str = "") -> None:
        super().__init__(detail or reason, reason=reason, command_id=command_id)
        self.reason = reason
        self.command_id = command_id


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a timestamp")
    t = datetime.fromisoformat(value)
    if t.tzinfo is None:
        raise ValueError("timestamp without offset")
    return t


class SeenCommands:
    """Command ids already handled, with their expiry and outcome, in one JSON file (replay protection).

    An id is kept until its command expires (plus the clock skew): after that the command is
    refused as expired anyway. The file is bounded: when it is full the earliest-expiring go first.

    A file that cannot be read is never emptied or replaced here: the store is ``damaged`` and
    every command is refused (reason ``replay_store_damaged``) until a technician resets it
    (:func:`reset_replay_store`, ``kiosk-provision reset-command-store``). A reset records
    ``not_before``, the moment it happened: a command issued earlier is refused
    (``issued_before_reset``), since it may be one the lost file had already seen.
    """

    VERSION = 2

    def __init__(self, path: Path, max_entries: int = 2000) -> None:
        self.path = path
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self.damaged = ""  # why the file cannot be trusted ("" when it can)
        self.not_before = 0.0
        self._seen: dict[str, dict[str, Any]] = {}
        self._reload()

    def _reload(self) -> None:
        try:
            self._seen, self.not_before = _parse_store(self.path.read_bytes())
            self.damaged = ""
        except FileNotFoundError:
            self._seen, self.not_before, self.damaged = {}, 0.0, ""
        except (OSError, ValueError) as exc:
            if not self.damaged:
                log.error("remote command replay store %s is damaged (%s): every remote command is refused "
                          "until a technician runs `kiosk-provision reset-command-store`", self.path, exc)
            self._seen, self.damaged = {}, str(exc)[:200] or type(exc).__name__

    def check_usable(self, command_id: str = "") -> None:
        """Raise CommandRejected(replay_store_damaged) while the file is damaged (rereading it: a reset clears that)."""
        with self._lock:
            if self.damaged:
                self._reload()
            if self.damaged:
                raise CommandRejected("replay_store_damaged",
                                      f"the replay store {self.path.name} is damaged ({self.damaged}); "
                                      "a technician must reset it", command_id)

    def get(self, command_id: str) -> dict[str, Any] | None:
        """The stored record of a command id, or None when it was never seen."""
        with self._lock:
            return self._seen.get(command_id)

    def add(self, command_id: str, expires_at: float, status: str, now: float, skew_s: float) -> None:
        """Remember a command id (before it is carried out) and persist. Raises CommandRejected while damaged."""
        with self._lock:
            if self.damaged:  # never write over the evidence, never "repair" it by forgetting
                raise CommandRejected("replay_store_damaged", "the replay store is damaged", command_id)
            self._seen = {k: v for k, v in self._seen.items() if v.get("expires_at", 0) + skew_s > now}
            self._seen[command_id] = {"expires_at": expires_at, "status": status}
            if len(self._seen) > self.max_entries:
                keep = sorted(self._seen.items(), key=lambda kv: kv[1]["expires_at"])[-self.max_entries:]
                self._seen = dict(keep)
            self._save()

    def set_status(self, command_id: str, status: str) -> None:
        """Record how a remembered command ended."""
        with self._lock:
            if command_id in self._seen and not self.damaged:
                self._seen[command_id]["status"] = status
                self._save()

    def _save(self) -> None:
        write_atomic(self.path, _dump_store(self._seen, self.not_before))


def _dump_store(seen: Mapping[str, Any], not_before: float) -> bytes:
    return json.dumps({"version": SeenCommands.VERSION, "not_before": not_before, "seen": dict(seen)},
                      sort_keys=True).encode("utf-8")


def _parse_store(raw: bytes) -> tuple[dict[str, dict[str, Any]], float]:
    """(seen ids, not_before) from the file's bytes. Raises ValueError for anything but a well-formed store."""
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    if "version" in data:
        if data.get("version") != SeenCommands.VERSION or not isinstance(data.get("seen"), dict):
            raise ValueError(f"unknown store version {data.get('version')!r}")
        seen, not_before = data["seen"], data.get("not_before") or 0.0
    else:  # the first format: the id map alone
        seen, not_before = data, 0.0
    if not isinstance(not_before, (int, float)) or isinstance(not_before, bool):
        raise ValueError("not_before is not a time")
    for key, value in seen.items():
        if not (isinstance(value, dict) and isinstance(value.get("expires_at"), (int, float))
                and isinstance(value.get("status", ""), str)):
            raise ValueError(f"entry {str(key)[:64]!r} is malformed")
    return {str(k): dict(v) for k, v in seen.items()}, float(not_before)


@dataclass(frozen=True)
class ReplayStoreReset:
    """What :func:`reset_replay_store` did."""

    path: Path
    was_damaged: str  # why the old file could not be trusted ("" when it could, or there was none)
    set_aside: Path | None  # the old file, kept for inspection
    not_before: float


def reset_replay_store(state_dir: str | os.PathLike[str], now: float | None = None) -> ReplayStoreReset:
    """Start the remote-command replay store afresh (the technician's fix for a damaged one).

    The old file is kept beside it; the new one refuses every command issued before ``now``,
    so nothing the old file had seen can be replayed.
    """
    path = Path(state_dir) / "heartbeat" / "seen.json"
    now = time.time() if now is None else now
    damaged, aside = "", None
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raw = None
    if raw is not None:
        try:
            _parse_store(raw)
        except ValueError as exc:
            damaged = str(exc)[:200] or "unreadable"
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = path.with_name(f"seen.{stamp}.{'damaged' if damaged else 'old'}.json")
        os.replace(path, aside)
    write_atomic(path, _dump_store({}, now))
    folder = path.parent.stat()
    if os.geteuid() == 0 and (folder.st_uid, folder.st_gid) != (0, 0):
        # Run by root on site: the kiosk's own user must be able to read the store, or it stays "damaged".
        os.chown(path, folder.st_uid, folder.st_gid)
    log.warning("remote command replay store reset%s; commands issued before now are refused",
                f" (was damaged: {damaged})" if damaged else "")
    return ReplayStoreReset(path, damaged, aside, now)


class CommandVerifier:
    """Checks signed commands for one terminal against the backend's Ed25519 key and the replay store."""

    def __init__(self, public_key_b64: str, terminal_id: str, seen: SeenCommands, *,
                 max_skew_s: float = signing.DEFAULT_MAX_SKEW_S, clock: Callable[[], float] = time.time) -> None:
        self.public_key_b64 = public_key_b64
        self.terminal_id = terminal_id
        self.seen = seen
        self.max_skew_s = max_skew_s
        self.clock = clock

    def verify(self, signed: Mapping[str, Any]) -> RemoteCommand:
        """The command in ``signed`` ({payload, signature}), remembered as seen. Raises CommandRejected."""
        payload, sig = signed.get("payload"), signed.get("signature")
        if not isinstance(payload, str) or not isinstance(sig, str):
            raise CommandRejected("malformed", "a command needs a payload and a signature")
        try:
            signing.verify_document(self.public_key_b64, payload, sig)
        except SignatureError as exc:
            raise CommandRejected("bad_signature", f"command signature: {exc.detail}") from None
        try:
            data = json.loads(payload)
            command_id, kind, args = data["command_id"], data["kind"], data.get("args") or {}
            issued, expires = _parse_time(data["issued_at"]), _parse_time(data["expires_at"])
            target = data["terminal_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise CommandRejected("malformed", f"command payload: {exc}") from None
        if not isinstance(command_id, str) or not _COMMAND_ID.fullmatch(command_id) or not isinstance(args, dict):
            raise CommandRejected("malformed", "command id or args malformed")
        if target != self.terminal_id:
            raise CommandRejected("wrong_terminal", f"command {command_id} is for {target!r}", command_id)
        self.seen.check_usable(command_id)
        lifetime = expires.timestamp() - issued.timestamp()
        if lifetime <= 0:
            raise CommandRejected("malformed", f"command {command_id} expires before it is issued", command_id)
        if lifetime > MAX_COMMAND_LIFETIME_S:
            # A long-lived signed command is one a captured copy of could be replayed for years.
            raise CommandRejected("lifetime_too_long", f"command {command_id} would be valid for {lifetime:.0f} s, "
                                                       f"more than {MAX_COMMAND_LIFETIME_S} s", command_id)
        now = self.clock()
        if issued.timestamp() < self.seen.not_before:
            raise CommandRejected("issued_before_reset", f"command {command_id} was issued before the replay store "
                                                         "was reset", command_id)
        if expires.timestamp() <= now:
            raise CommandRejected("expired", f"command {command_id} expired at {expires.isoformat()}", command_id)
        if issued.timestamp() > now + self.max_skew_s:
            raise CommandRejected("not_yet_valid", f"command {command_id} is issued in the future", command_id)
        if self.seen.get(command_id) is not None:
            raise CommandRejected("replayed", f"command {command_id} was already received", command_id)
        if kind not in COMMAND_KINDS:
            raise CommandRejected("unknown_kind", f"command {command_id}: unknown kind {kind!r}", command_id)
        _check_args(kind, args, command_id)
        self.seen.add(command_id, expires.timestamp(), "received", now, self.max_skew_s)
        return RemoteCommand(command_id, kind, dict(args), issued, expires)


def _check_args(kind: str, args: Mapping[str, Any], command_id: str) -> None:
    if kind == "out_of_service_notice":
        text = args.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_NOTICE_CHARS:
            raise CommandRejected("bad_args", f"command {command_id}: the notice needs a text of "
                                              f"1-{MAX_NOTICE_CHARS} characters", command_id)
    elif kind == "reprint":
        doc = args.get("document_id")
        if not isinstance(doc, str) or not _DOCUMENT_ID.fullmatch(doc):
            raise CommandRejected("bad_args", f"command {command_id}: reprint needs a document_id", command_id)
