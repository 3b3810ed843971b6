"""Who may call the simulator: terminal signatures, clock skew, nonce replay; response signing."""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Mapping

from kiosk.errors import SignatureError
from kiosk.services import signing

_NONCE_RE = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Caller:
    """An authenticated terminal and the nonce its request carried (the response is bound to it)."""

    terminal_id: str
    secret: bytes
    nonce: str


class AuthError(Exception):
    """A request that fails authentication (HTTP 401 with ``code``)."""

    def __init__(self, code: str, message_zh: str, message_en: str) -> None:
        super().__init__(code)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en


class NonceStore:
    """Nonces seen within the skew window, per terminal; a second use is a replay."""

    def __init__(self, window_s: int) -> None:
        self._window = window_s
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._last_prune = time.monotonic()

    def first_use(self, terminal_id: str, nonce: str) -> bool:
        """Record the nonce; False when it was already seen (a replay)."""
        now = time.time()
        with self._lock:
            if time.monotonic() - self._last_prune > 30:
                # A nonce older than twice the window cannot pass the timestamp check any more.
                self._seen = {k: t for k, t in self._seen.items() if now - t < 2 * self._window}
                self._last_prune = time.monotonic()
            key = (terminal_id, nonce)
            if key in self._seen:
                return False
            self._seen[key] = now
            return True


def signer_for(headers: Mapping[str, str], terminals: Mapping[str, bytes]) -> tuple[bytes, str] | None:
    """(secret, nonce) to sign the answer with, when the request names a known terminal and a well-formed nonce."""
    secret = terminals.get(headers.get("X-Terminal-Id", ""))
    nonce = headers.get("X-Nonce", "")
    if secret is None or not _NONCE_RE.fullmatch(nonce):
        return None
    return secret, nonce


def authenticate(headers: Mapping[str, str], method: str, target: str, body: bytes,
                 terminals: Mapping[str, bytes], nonces: NonceStore, max_skew_s: int) -> Caller:
    """Check signature, timestamp and nonce of a request. Raises AuthError."""
    terminal_id = headers.get("X-Terminal-Id", "")
    ts, nonce, sig = (headers.get(h, "") for h in ("X-Timestamp", "X-Nonce", "X-Signature"))
    if not (terminal_id and ts and nonce and sig):
        raise AuthError("missing_signature", "请求缺少签名信息。", "The request is not signed.")
    secret = terminals.get(terminal_id)
    if secret is None:
        raise AuthError("unknown_terminal", "终端未登记。", "This terminal is not enrolled.")
    try:
        signing.verify_request(secret, method, target, body, timestamp=ts, nonce=nonce, signature=sig,
                               max_skew_s=max_skew_s)
    except SignatureError as exc:
        reason = exc.context.get("reason", "bad_signature")
        if reason == "stale_timestamp":
            raise AuthError("stale_timestamp", "请求时间与服务器时间相差过大。",
                            "The request time is too far from the server time.") from None
        raise AuthError("bad_signature", "请求签名校验失败。", "The request signature does not verify.") from None
    if not nonces.first_use(terminal_id, nonce):
        raise AuthError("replayed_nonce", "重复的请求已被拒绝。", "A replayed request was rejected.")
    return Caller(terminal_id, secret, nonce)
