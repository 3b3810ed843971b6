"""Heartbeats to the backend, kept on disk while it is away, and the remote commands they bring back.

Every beat makes one heartbeat (device states and supplies, app version, uptime, last
transaction, disk and memory: no personal data) and puts it in a bounded on-disk queue
(``<state_dir>/heartbeat/queue``, one file per heartbeat, written atomically); then the
queue is sent oldest first, each under an idempotency key of its own, and each file is
removed only when the backend took it. While the backend is unreachable the queue grows
up to ``max_queue`` (the oldest are dropped first: the newest state matters most) and is
flushed in order when it returns.

A heartbeat answer may carry remote commands (restart, enter/leave maintenance, an
out-of-service notice, a reprint, update_now), verified by kiosk.services.remote_commands (signature,
terminal, expiry, kind, replay); an accepted one is handed to the :class:`CommandHandler`,
a rejected one logged. Every outcome is acknowledged in the next heartbeat, so the backend
stops re-sending it. Each heartbeat also names the terminal's ``name`` and ``location``
(its [terminal] config) for the operators' fleet page.
"""
from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping

from kiosk import __version__
from kiosk.errors import BackendError, BackendRejected, KioskError
from kiosk.services import signing
from kiosk.durable import write_atomic
from kiosk.services.update_status import update_report
# Re-exported: callers import the command side from here, as before the split.
from kiosk.services.remote_commands import (_COMMAND_ID, COMMAND_KINDS, MAX_COMMAND_LIFETIME_S,  # noqa: F401
                                            MAX_NOTICE_CHARS, CommandHandler, CommandRejected, CommandVerifier,
                                            RemoteCommand, ReplayStoreReset, SeenCommands, reset_replay_store)

log = logging.getLogger(__name__)

DEFAULT_MAX_QUEUE = 500  # a day and a bit of 3-minute beats; older states are of little use


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
        write_atomic(self.folder / f"hb-{seq:012d}.json", json.dumps(body, sort_keys=True).encode("utf-8"))
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
    name: str = ""  # [terminal] name and location, shown on the operators' fleet page
    location: str = ""
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
                   runtime.config.backend.public_key, runtime.device_statuses, handler=handler, metrics=metrics,
                   last_transaction=last_transaction, max_skew_s=runtime.config.backend.max_clock_skew_s,
                   name=runtime.config.terminal.name, location=runtime.config.terminal.location, **kwargs)

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
        write_atomic(self._counter_path, json.dumps({"instance": instance, "seq": seq}).encode())
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
        write_atomic(self._acks_path, json.dumps(acks[-100:]).encode())

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
                                "last_transaction_at": _iso(last) if last else None, "devices": devices,
                                "update": update_report(self.state_dir, self.app_version)}
        body.update({k: v[:128] for k, v in (("name", self.name), ("location", self.location)) if v})
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
