"""Heartbeats to the backend, kept on disk while it is away, and the remote commands they bring back.

Every beat makes one heartbeat (device states and supplies, app version, uptime, last
transaction, disk and memory: no personal data) and puts it in a bounded on-disk queue
(``<state_dir>/heartbeat/queue``, one file per heartbeat, written atomically); then the
queue is sent oldest first, each under an idempotency key of its own, and each file is
removed only when the backend took it. While the backend is unreachable the queue grows
up to ``max_queue`` (the oldest are dropped first: the newest state matters most) and is
flushed in order when it returns.

A heartbeat answer may carry remote commands (restart, enter/leave maintenance, an
out-of-service notice, a reprint). Each is a compact JSON payload signed by the backend's
Ed25519 key (``backend.public_key``) and names this terminal, a command id and an expiry.
A command that is badly signed, meant for another terminal, expired, not yet valid, of an
unknown kind, or already seen (replay: ids are remembered on disk until they expire) is
rejected and logged; an accepted one is handed to the :class:`CommandHandler`. Every
outcome is acknowledged in the next heartbeat, so the backend stops re-sending it.
"""
from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from kiosk import __version__
from kiosk.errors import BackendError, BackendRejected, KioskError, SignatureError
from kiosk.services import signing
from kiosk.services.journal import atomic_write

log = logging.getLogger(__name__)

COMMAND_KINDS = ("restart", "enter_maintenance", "leave_maintenance", "out_of_service_notice", "reprint")
MAX_COMMAND_LIFETIME_S = 86400  # issued_at to expires_at: a day covers a terminal offline overnight
DEFAULT_MAX_QUEUE = 500  # a day and a bit of 3-minute beats; older states are of little use
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
        atomic_write(self.path, _dump_store(self._seen, self.not_before))


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
    atomic_write(path, _dump_store({}, now))
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


# --- the queue -------------------------------------------------------------------------------
class HeartbeatQueue:
    """Heartbeats not yet taken by the backend, one JSON file each, oldest first, at most ``max_items``."""

    def __init__(self, folder: Path, max_items: int = DEFAULT_MAX_QUEUE) -> None:
        self.folder = folder
        self.max_items = max_items
        folder.mkdir(parents=True, exist_ok=True)
        for stray in folder.glob(".*.tmp"):  # a write cut short by a power loss
            stray.unlink(missing_ok=True)

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("hb-*.json"))

    def put(self, seq: int, body: Mapping[str, Any]) -> int:
        """Add one heartbeat; returns how many old ones were dropped to stay within the bound."""
        atomic_write(self.folder / f"hb-{seq:012d}.json", json.dumps(body, sort_keys=True).encode("utf-8"))
        files = self._files()
        dropped = files[:max(0, len(files) - self.max_items)]
        for f in dropped:
            f.unlink(missing_ok=True)
        if dropped:
            log.warning("heartbeat queue full (%d): dropped the %d oldest", self.max_items, len(dropped))
        return len(dropped)

    def pending(self) -> list[tuple[Path, dict[str, Any]]]:
        """(file, heartbeat) oldest first; unreadable files are dropped (logged)."""
        out = []
        for f in self._files():
            try:
                out.append((f, json.loads(f.read_text(encoding="utf-8"))))
            except (OSError, ValueError) as exc:
                log.error("dropping unreadable queued heartbeat %s: %s", f.name, exc)
                f.unlink(missing_ok=True)
        return out

    def __len__(self) -> int:
        return len(self._files())


# --- the sender ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandOutcome:
    """What became of one command in a heartbeat answer."""

    command_id: str
    kind: str
    status: str  # accepted, rejected, failed
    reason: str = ""


@dataclass(frozen=True)
class BeatResult:
    """One beat: how many heartbeats the backend took, how many wait, what the commands did."""

    sent: int
    queued: int
    commands: tuple[CommandOutcome, ...] = ()
    error: str = ""  # the code of the error that stopped the flush, if any


def _memory() -> dict[str, int]:
    try:
        fields = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("MemTotal", "MemAvailable"):
                fields[name] = int(rest.split()[0]) * 1024
        return {"total_bytes": fields["MemTotal"], "available_bytes": fields["MemAvailable"]}
    except (OSError, KeyError, ValueError, IndexError):
        return {}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class HeartbeatSender:
    """Builds, queues and sends heartbeats; hands verified remote commands to ``handler``.

    ``status_source()`` returns ``{device: DeviceStatus or its to_dict()}``; ``last_transaction()``
    the unix time of the last finished transaction (or None); ``metrics`` a KioskMetrics whose
    heartbeat gauge is set on every success.
    """

    backend: Any
    state_dir: Path
    terminal_id: str
    public_key_b64: str
    status_source: Callable[[], Mapping[str, Any]]
    handler: CommandHandler | None = None
    metrics: Any = None
    app_version: str = __version__
    last_transaction: Callable[[], float | None] | None = None
    max_queue: int = DEFAULT_MAX_QUEUE
    clock: Callable[[], float] = time.time
    max_skew_s: float = signing.DEFAULT_MAX_SKEW_S
    started_at: float = field(default_factory=time.time)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _beat_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.state_dir = Path(self.state_dir)
        self.folder = self.state_dir / "heartbeat"
        self.queue = HeartbeatQueue(self.folder / "queue", self.max_queue)
        self.verifier = CommandVerifier(self.public_key_b64, self.terminal_id, SeenCommands(self.folder / "seen.json"),
                                        max_skew_s=self.max_skew_s, clock=self.clock)
        self._counter_path = self.folder / "counter.json"
        self._acks_path = self.folder / "acks.json"

    @classmethod
    def from_runtime(cls, runtime: Any, handler: CommandHandler | None = None, metrics: Any = None,
                     **kwargs: Any) -> "HeartbeatSender":
        """A sender for an assembled Runtime (its backend, devices, journal and state folder)."""
        journal = runtime.journal

        def last_transaction() -> float | None:
            return max((e.updated_at for e in journal), default=None)

        return cls(runtime.backend, Path(runtime.config.paths.root()), runtime.config.terminal.id,
                   runtime.config.backend.public_key, runtime.devices.statuses, handler=handler, metrics=metrics,
                   last_transaction=last_transaction, max_skew_s=runtime.config.backend.max_clock_skew_s, **kwargs)

    # -- building -------------------------------------------------------------------------------
    def _next_seq(self) -> tuple[str, int]:
        try:
            data = json.loads(self._counter_path.read_text())
            instance, seq = str(data["instance"]), int(data["seq"]) + 1
        except (OSError, ValueError, KeyError, TypeError):
            # A new (or wiped) state folder: a new instance id keeps idempotency keys unique.
            instance, seq = secrets.token_hex(6), 1
            for f in self.queue._files():  # keep counting above anything still queued
                seq = max(seq, int(f.stem.removeprefix("hb-")) + 1)
        atomic_write(self._counter_path, json.dumps({"instance": instance, "seq": seq}).encode())
        return instance, seq

    def _take_acks(self) -> list[dict[str, Any]]:
        try:
            acks = json.loads(self._acks_path.read_text())
        except (OSError, ValueError):
            return []
        return [a for a in acks if isinstance(a, dict)][:100]

    def _add_ack(self, outcome: CommandOutcome) -> None:
        acks = self._take_acks()
        ack = {"command_id": outcome.command_id[:64], "status": outcome.status}
        if outcome.reason:
            ack["reason"] = outcome.reason[:200]
        acks.append(ack)
        atomic_write(self._acks_path, json.dumps(acks[-100:]).encode())

    def snapshot(self, seq: int = 1) -> dict[str, Any]:
        """The heartbeat body for now (without acknowledgements)."""
        devices = {}
        for name, st in self.status_source().items():
            d = st.to_dict() if hasattr(st, "to_dict") else dict(st)
            devices[str(name)] = {"state": str(d["state"]), "supplies": dict(d.get("supplies") or {}),
                                  "conditions": list(d.get("conditions") or [])}
        now = self.clock()
        last = self.last_transaction() if self.last_transaction else None
        body: dict[str, Any] = {"seq": seq, "sent_at": _iso(now), "app_version": self.app_version,
                                "uptime_s": round(max(0.0, now - self.started_at), 1),
                                "last_transaction_at": _iso(last) if last else None, "devices": devices}
        try:
            usage = shutil.disk_usage(self.state_dir)
            body["disk"] = {"total_bytes": usage.total, "free_bytes": usage.free}
        except OSError:
            pass
        memory = _memory()
        if memory:
            body["memory"] = memory
        return body

    # -- sending --------------------------------------------------------------------------------
    def beat(self) -> BeatResult:
        """Make a heartbeat, queue it, send the queue oldest first, and act on the commands that come back."""
        with self._beat_lock:
            instance, seq = self._next_seq()
            body = self.snapshot(seq)
            acks = self._take_acks()
            if acks:
                body["acked_commands"] = acks
            body["_key"] = f"hb-{instance}-{seq}"
            self.queue.put(seq, body)
            if acks:  # they now ride in a persisted heartbeat
                self._acks_path.unlink(missing_ok=True)
            sent, error = 0, ""
            answers: list[Mapping[str, Any]] = []
            for path, queued in self.queue.pending():
                key = str(queued.pop("_key", f"hb-{instance}-{path.stem}"))
                try:
                    answer = self.backend.heartbeat(queued, idempotency_key=key)
                except BackendRejected as exc:
                    code = exc.context.get("remote_code", exc.code)
                    if code in ("terminal_revoked", "unknown_terminal", "bad_signature", "certificate_mismatch",
                                "stale_timestamp"):
                        error = str(code)
                        log.error("heartbeat refused by the backend (%s); keeping %d queued", code, len(self.queue))
                        break
                    # This one will never be taken (schema, conflict): drop it, keep the others going.
                    log.error("heartbeat %s rejected by the backend (%s); dropped", path.stem, code)
                    path.unlink(missing_ok=True)
                    continue
                except BackendError as exc:
                    error = exc.code
                    log.warning("heartbeat not sent (%s); %d queued", exc.code, len(self.queue))
                    break
                path.unlink(missing_ok=True)
                sent += 1
                answers.append(answer)
                if self.metrics is not None:
                    self.metrics.heartbeat_succeeded(self.clock())
            if self.metrics is not None:
                self.metrics.heartbeat_round(len(self.queue), bool(error))
            outcomes = self._run_commands(answers)
            return BeatResult(sent, len(self.queue), tuple(outcomes), error)

    def _run_commands(self, answers: list[Mapping[str, Any]]) -> list[CommandOutcome]:
        outcomes: list[CommandOutcome] = []
        done_here: set[str] = set()
        for answer in answers:
            for signed in answer.get("commands") or []:
                payload_id = _peek_id(signed)
                if payload_id and payload_id in done_here:
                    continue  # the same command in several answers of one flush: once is enough
                outcome = self._run_one(signed)
                done_here.add(outcome.command_id or payload_id)
                outcomes.append(outcome)
                if outcome.command_id and outcome.reason != "replayed":
                    self._add_ack(outcome)
        return outcomes

    def _run_one(self, signed: Mapping[str, Any]) -> CommandOutcome:
        try:
            command = self.verifier.verify(signed)
        except CommandRejected as exc:
            log.warning("remote command rejected (%s): %s", exc.reason, exc.detail)
            if exc.reason == "replayed":
                # Already handled (its acknowledgement was lost): acknowledge the first outcome again.
                first = self.verifier.seen.get(exc.command_id) or {}
                self._add_ack(CommandOutcome(exc.command_id, _peek_kind(signed), str(first.get("status", "rejected")),
                                             "replayed"))
            return CommandOutcome(exc.command_id, _peek_kind(signed), "rejected", exc.reason)
        if self.handler is None:
            status, reason = "failed", "no_handler"
            log.error("remote command %s (%s) received but no handler is wired", command.command_id, command.kind)
        else:
            try:
                self.handler.handle_command(command)
                status, reason = "accepted", ""
                log.info("remote command %s accepted: %s", command.command_id, command.kind)
            except KioskError as exc:
                status, reason = "failed", exc.code
                log.error("remote command %s (%s) failed: %s", command.command_id, command.kind, exc.code)
        self.verifier.seen.set_status(command.command_id, status)
        return CommandOutcome(command.command_id, command.kind, status, reason)

    # -- running --------------------------------------------------------------------------------
    def start(self, interval_s: float = 60.0) -> None:
        """Beat every ``interval_s`` seconds in a background thread (the first beat right away)."""
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    self.beat()
                except Exception:  # a broken beat must not end the heartbeats: log and try again next time
                    log.exception("heartbeat failed")
                self._stop.wait(interval_s)

        self._thread = threading.Thread(target=loop, name="kiosk-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background beats (waits for a beat in progress)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None


def _peek(signed: Mapping[str, Any]) -> dict[str, Any]:
    try:
        data = json.loads(signed.get("payload") or "")
        return data if isinstance(data, dict) else {}
    except (TypeError, ValueError):
        return {}


def _peek_id(signed: Mapping[str, Any]) -> str:
    """The command id a payload claims (unverified: only for logs, acks and de-duplication)."""
    value = _peek(signed).get("command_id")
    return value if isinstance(value, str) and _COMMAND_ID.fullmatch(value) else ""


def _peek_kind(signed: Mapping[str, Any]) -> str:
    value = _peek(signed).get("kind")
    return value if isinstance(value, str) and value in COMMAND_KINDS else "unknown"
