"""The technician's maintenance PIN: an scrypt hash, and a lockout that survives restarts.

The PIN is never stored, only ``scrypt(pin, random salt)`` with its cost parameters, and
checked with a constant-time compare. Five wrong PINs in a row lock maintenance for
``lockout_s`` (15 minutes by default); each further lockout before a correct PIN doubles the
wait, up to a day. The counter and the lock live in a small JSON file in the state folder,
written atomically (temporary file, fsync, ``os.replace``), so pulling the plug or
restarting the app does not reset them. While locked, a PIN is not even evaluated, so the
lock cannot be used as an oracle. A state file that cannot be read fails closed: locked
for one lockout period, never open.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from kiosk import localtime
from kiosk.durable import write_atomic
from kiosk.errors import KioskError

MAX_FAILURES = 5
LOCKOUT_S = 15 * 60
MAX_LOCKOUT_S = 24 * 3600
# scrypt cost: n=2^15, r=8 needs 32 MiB and ~0.1 s per guess on a kiosk PC, which is what
# makes an offline search of a 6-digit PIN space slow; p=1.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
PIN_MIN, PIN_MAX = 6, 12


class MaintenanceError(KioskError):
    """Root of maintenance-mode access failures."""

    code = "maintenance_error"
    message_en = "Maintenance mode is not available. Please contact the technician."
    exit_status = 77  # EX_NOPERM


class WrongPin(MaintenanceError):
    """The PIN did not match; ``attempts_left`` before maintenance locks."""

    code = "maintenance_wrong_pin"
    message_en = "Wrong PIN. Attempts left before maintenance locks: {attempts_left}"

    def __init__(self, attempts_left: int) -> None:
        super().__init__(f"wrong maintenance PIN; {attempts_left} attempts left", attempts_left=attempts_left)
        self.attempts_left = attempts_left

    def message(self, lang: str = "zh_CN") -> str:
        """The translated message with the number of attempts left."""
        return super().message(lang).format(attempts_left=self.attempts_left)


class LockedOut(MaintenanceError):
    """Too many wrong PINs: locked until ``until`` (unix time)."""

    code = "maintenance_locked_out"
    message_en = "Too many wrong PINs. Maintenance is locked for {minutes} more minutes."

    def __init__(self, until: float, now: float) -> None:
        super().__init__(f"maintenance locked until {localtime.stamp(until)}",
                         until=until)
        self.until = until
        self.remaining_s = max(0.0, until - now)

    def message(self, lang: str = "zh_CN") -> str:
        """The translated message with the minutes left (rounded up)."""
        return super().message(lang).format(minutes=max(1, int(-(-self.remaining_s // 60))))


class PinNotSet(MaintenanceError):
    """No technician PIN has been set on this terminal."""

    code = "maintenance_pin_not_set"
    message_en = "No maintenance PIN is set on this terminal."


class PinRejected(MaintenanceError):
    """A new PIN breaks the policy (6-12 digits, not one repeated digit, not a run like 123456)."""

    code = "maintenance_pin_rejected"
    message_en = "Choose a PIN of 6 to 12 digits that is not a repeated digit or a simple sequence."
    exit_status = 2


# --- hashing -------------------------------------------------------------------------------
def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$n$r$p$salt$hash`` for ``pin`` with a fresh random 16-byte salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p), dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def _maxmem(n: int, r: int, p: int) -> int:
    return 128 * r * (n + p + 2) + (1 << 20)  # what scrypt needs, plus slack (OpenSSL's default cap is 32 MiB)


def verify_pin(pin: str, encoded: str) -> bool:
    """True when ``pin`` matches the stored hash (constant-time compare). Raises ValueError on a malformed hash."""
    try:
        scheme, n, r, p, salt_b64, hash_b64 = encoded.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        n_i, r_i, p_i = int(n), int(r), int(p)
        salt, expected = base64.b64decode(salt_b64, validate=True), base64.b64decode(hash_b64, validate=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not an scrypt PIN hash: {exc}") from None
    digest = hashlib.scrypt(pin.encode("utf-8"), salt=salt, n=n_i, r=r_i, p=p_i, maxmem=_maxmem(n_i, r_i, p_i),
                            dklen=len(expected))
    return hmac.compare_digest(digest, expected)


def check_policy(pin: str) -> None:
    """Raise PinRejected unless ``pin`` is 6-12 digits, not one repeated digit and not a +1/-1 run."""
    if not (pin.isascii() and pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        raise PinRejected(f"PIN must be {PIN_MIN}-{PIN_MAX} digits")
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:])}
    if steps in ({0}, {1}, {9}):
        raise PinRejected("PIN is a repeated digit or a simple sequence")


# --- the persisted lock ----------------------------------------------------------------------
@dataclass(frozen=True)
class LockState:
    """What is persisted: the hash, consecutive failures, the lock and how many lockouts in a row."""

    pin_hash: str | None = None
    failures: int = 0
    locked_until: float = 0.0
    lockouts: int = 0

    def to_json(self) -> bytes:
        """The file's content."""
        return json.dumps({"version": 1, "pin_hash": self.pin_hash, "failures": self.failures,
                           "locked_until": self.locked_until, "lockouts": self.lockouts}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "LockState":
        """Parse the file. Raises ValueError on anything but a well-formed version-1 state."""
        data: Any = json.loads(raw)
        if not isinstance(data, dict) or data.get("version") != 1:
            raise ValueError("unknown maintenance state version")
        pin_hash = data.get("pin_hash")
        failures, until, lockouts = data.get("failures"), data.get("locked_until"), data.get("lockouts")
        if pin_hash is not None and not isinstance(pin_hash, str):
            raise ValueError("pin_hash")
        if not (isinstance(failures, int) and failures >= 0 and isinstance(lockouts, int) and lockouts >= 0
                and isinstance(until, (int, float)) and math.isfinite(until)):
            raise ValueError("counters")
        return cls(pin_hash, failures, float(until), lockouts)


@dataclass(frozen=True)
class AccessStatus:
    """For the maintenance entry screen: is a PIN set, how many tries are left, locked until when."""

    pin_set: bool
    attempts_left: int
    locked: bool
    locked_until: float


class MaintenanceAccess:
    """Checks the technician PIN against ``<state_dir>/maintenance.json`` with a persisted lockout."""

    def __init__(self, state_path: str | os.PathLike[str], *, max_failures: int = MAX_FAILURES,
                 lockout_s: float = LOCKOUT_S, max_lockout_s: float = MAX_LOCKOUT_S,
                 clock: Callable[[], float] = time.time, scrypt_n: int = SCRYPT_N) -> None:
        self.path = Path(state_path)
        self.max_failures = max_failures
        self.lockout_s = lockout_s
        self.max_lockout_s = max_lockout_s
        self.clock = clock
        self.scrypt_n = scrypt_n
        self._lock = threading.Lock()

    @classmethod
    def for_state_dir(cls, state_dir: str | os.PathLike[str], **kwargs: Any) -> "MaintenanceAccess":
        """The access check whose file lives in the terminal's state folder."""
        return cls(Path(state_dir) / "maintenance.json", **kwargs)

    # -- persistence ----------------------------------------------------------------------
    def _load(self, now: float) -> LockState:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return LockState()
        try:
            return LockState.from_json(raw)
        except (ValueError, UnicodeDecodeError):
            # fail closed: a damaged file must not become a way to reset the counter; the
            # lock is written at once so its release time does not move on every read
            closed = LockState(None, self.max_failures, now + self.lockout_s, 1)
            self._save(closed)
            return closed

    def _save(self, state: LockState) -> None:
        write_atomic(self.path, state.to_json(), 0o600)

    def _lockout_for(self, lockouts: int) -> float:
        return min(self.lockout_s * 2 ** max(lockouts - 1, 0), self.max_lockout_s)

    def _released(self, state: LockState, now: float) -> LockState:
        """Apply the time-based release (and clamp a lock that a clock set back would stretch)."""
        if state.locked_until and now >= state.locked_until:
            return LockState(state.pin_hash, 0, 0.0, state.lockouts)
        longest = self._lockout_for(state.lockouts)
        if state.locked_until > now + longest:
            return LockState(state.pin_hash, state.failures, now + longest, state.lockouts)
        return state

    # -- API --------------------------------------------------------------------------------
    def set_pin(self, pin: str) -> None:
        """Store a new PIN's hash and clear the counters. Raises PinRejected."""
        check_policy(pin)
        encoded = hash_pin(pin, n=self.scrypt_n)
        with self._lock:
            self._save(LockState(encoded))

    def status(self) -> AccessStatus:
        """Current access status (a due release applied; writes only to fail closed on a damaged file)."""
        with self._lock:
            now = self.clock()
            state = self._released(self._load(now), now)
            locked = state.locked_until > now
            left = 0 if locked else max(self.max_failures - state.failures, 0)
            return AccessStatus(state.pin_hash is not None, left, locked, state.locked_until)

    def check(self, pin: str) -> None:
        """Accept ``pin`` or raise: LockedOut (PIN not evaluated), WrongPin, PinNotSet."""
        with self._lock:
            now = self.clock()
            loaded = self._load(now)
            state = self._released(loaded, now)
            if state != loaded:
                self._save(state)
            if state.locked_until > now:
                raise LockedOut(state.locked_until, now)
            if state.pin_hash is None:
                raise PinNotSet("set a PIN with MaintenanceAccess.set_pin first")
            try:
                good = verify_pin(pin, state.pin_hash)
            except ValueError:
                good = False  # a damaged hash accepts nothing
            if good:
                self._save(LockState(state.pin_hash))
                return
            failures = state.failures + 1
            if failures >= self.max_failures:
                lockouts = state.lockouts + 1
                until = now + self._lockout_for(lockouts)
                self._save(LockState(state.pin_hash, failures, until, lockouts))
                raise LockedOut(until, now)
            self._save(LockState(state.pin_hash, failures, 0.0, state.lockouts))
            raise WrongPin(self.max_failures - failures)
