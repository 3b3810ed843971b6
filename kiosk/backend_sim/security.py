"""Who may call the simulator: terminal signatures, clock skew, nonce replay; response signing."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from kiosk.errors import SignatureError
from kiosk.services import signing
from kiosk.backend_sim.db import Database
from kiosk.backend_sim.fleet import Credentials, TerminalDirectory


@dataclass(frozen=True)
class Caller:
    """An authenticated terminal and the nonce its request carried (the response is bound to it)."""

    terminal_id: str
    secret: bytes  # the secret that verified the request (during a rotation: the old or the new one)
    nonce: str
    kind: str = "terminal"  # terminal, or enrollment (signed with an enrollment code's key)


class AuthError(Exception):
    """A request that fails authentication (HTTP ``status``, 401 unless said otherwise, with ``code``).

    ``caller`` is set only when the request did prove the terminal's secret and is refused for
    its standing (revoked, wrong certificate): only then may the refusal be signed.
    """

    def __init__(self, code: str, message_zh: str, message_en: str, status: int = 401,
                 caller: "Caller | None" = None) -> None:
        super().__init__(code)
        self.code = code
        self.message_zh = message_zh
        self.message_en = message_en
        self.status = status
        self.caller = caller


Terminals = Mapping[str, bytes] | TerminalDirectory


def _credentials(terminals: Terminals, terminal_id: str) -> Credentials | None:
    if isinstance(terminals, TerminalDirectory):
        return terminals.credentials(terminal_id)
    secret = terminals.get(terminal_id)
    return Credentials((secret,)) if secret is not None else None


class NonceStore:
    """Nonces of authenticated requests, per terminal, in the simulator's database: a second use is a replay.

    A nonce is kept until its request's timestamp leaves the skew window (after that the
    request fails the timestamp check anyway), so a request captured and replayed after a
    restart of the simulator is still refused. Only requests whose signature and timestamp
    verified are recorded: a stale or forged request stores nothing.
    """

    def __init__(self, db: Database, window_s: int) -> None:
        self._db = db
        self._window = window_s
        self._next_prune = 0.0

    def first_use(self, terminal_id: str, nonce: str, timestamp: str | int) -> bool:
        """Record the nonce; False when it was already seen (a replay)."""
        now = time.time()
        with self._db.transaction() as conn:
            if now >= self._next_prune:
                conn.execute("DELETE FROM nonces WHERE expires_at < ?", (int(now),))
                self._next_prune = now + 30
            cur = conn.execute("INSERT OR IGNORE INTO nonces (terminal_id, nonce, expires_at) VALUES (?, ?, ?)",
                               (terminal_id, nonce, int(timestamp) + self._window))
            return cur.rowcount == 1


def request_parts(headers: Mapping[str, str], method: str, target: str, body: bytes) -> signing.RequestParts:
    """What the signature of a request as received must cover (the headers exactly as they arrived)."""
    return signing.RequestParts(method, headers.get("Host", ""), target, body, headers.get("Content-Type", ""),
                                headers.get("Idempotency-Key", ""))


def _verify_with(keys: tuple[bytes, ...] | list[bytes], parts: signing.RequestParts, ts: str, nonce: str,
                 sig: str, max_skew_s: int) -> bytes:
    """The key among ``keys`` that verifies the request. Raises AuthError."""
    stale = False
    for key in keys:
        try:
            signing.verify_request(key, parts, timestamp=ts, nonce=nonce, signature=sig, max_skew_s=max_skew_s)
            return key
        except SignatureError as exc:
            stale = stale or exc.context.get("reason") == "stale_timestamp"
    if stale:
        raise AuthError("stale_timestamp", "请求时间与服务器时间相差过大。",
                        "The request time is too far from the server time.")
    raise AuthError("bad_signature", "请求签名校验失败。", "The request signature does not verify.")


def _signed_parts(headers: Mapping[str, str]) -> tuple[str, str, str, str]:
    terminal_id = headers.get("X-Terminal-Id", "")
    ts, nonce, sig = (headers.get(h, "") for h in ("X-Timestamp", "X-Nonce", "X-Signature"))
    if not (terminal_id and ts and nonce and sig):
        raise AuthError("missing_signature", "请求缺少签名信息。", "The request is not signed.")
    return terminal_id, ts, nonce, sig


def _any_host(host: str) -> bool:
    return True


def _check_host(headers: Mapping[str, str], host_ok: Callable[[str], bool]) -> None:
    if not host_ok(headers.get("Host", "")):
        # Signed for another server (or another port of this one): a captured request sent elsewhere.
        raise AuthError("wrong_host", "请求不是发给本服务器的。", "The request was signed for another server.")


def authenticate(headers: Mapping[str, str], method: str, target: str, body: bytes,
                 terminals: Terminals, nonces: NonceStore, max_skew_s: int, *,
                 peer_cert: Mapping[str, Any] | None = None, host_ok: Callable[[str], bool] = _any_host) -> Caller:
    """Check signature, timestamp, Host and nonce of a request, the terminal's standing and (mTLS) its certificate.

    ``host_ok(host)`` says whether a Host header names this server. Raises AuthError: 401
    missing_signature, unknown_terminal, bad_signature, stale_timestamp, wrong_host,
    replayed_nonce; 403 terminal_revoked, certificate_mismatch.
    """
    terminal_id, ts, nonce, sig = _signed_parts(headers)
    creds = _credentials(terminals, terminal_id)
    if creds is None or not creds.secrets:
        raise AuthError("unknown_terminal", "终端未登记。", "This terminal is not enrolled.")
    secret = _verify_with(creds.secrets, request_parts(headers, method, target, body), ts, nonce, sig, max_skew_s)
    _check_host(headers, host_ok)
    if not nonces.first_use(terminal_id, nonce, ts):
        raise AuthError("replayed_nonce", "重复的请求已被拒绝。", "A replayed request was rejected.")
    caller = Caller(terminal_id, secret, nonce)
    if creds.revoked:
        # Checked after the signature: only the terminal itself learns that it was revoked.
        raise AuthError("terminal_revoked", "本终端已被停用，请联系管理员。",
                        "This terminal has been revoked. Please contact the operator.", status=403, caller=caller)
    if peer_cert is not None and not _certificate_matches(peer_cert, terminal_id, creds):
        raise AuthError("certificate_mismatch", "客户端证书与终端不符。",
                        "The client certificate does not belong to this terminal.", status=403, caller=caller)
    return caller


def _certificate_matches(peer_cert: Mapping[str, Any], terminal_id: str, creds: Credentials) -> bool:
    common_names = [value for rdn in peer_cert.get("subject", ()) for (key, value) in rdn if key == "commonName"]
    if common_names != [terminal_id]:
        return False
    # An enrolled terminal's certificate is the one issued last; a re-enrollment retires the old one.
    if creds.cert_serial is None:
        return True
    try:
        return int(str(peer_cert.get("serialNumber", "")), 16) == int(creds.cert_serial, 16)
    except ValueError:
        return False


def authenticate_enrollment(headers: Mapping[str, str], method: str, target: str, body: bytes,
                            directory: TerminalDirectory, nonces: NonceStore, max_skew_s: int, *,
                            host_ok: Callable[[str], bool] = _any_host) -> Caller:
    """Check an enrollment request, signed with the key of one of the codes issued for its terminal. Raises AuthError."""
    terminal_id, ts, nonce, sig = _signed_parts(headers)
    keys = directory.enrollment_keys(terminal_id)
    try:
        key = _verify_with(keys, request_parts(headers, method, target, body), ts, nonce, sig, max_skew_s)
    except AuthError as exc:
        if exc.code == "stale_timestamp":
            raise
        raise AuthError("enrollment_code_invalid", "登记码无效。", "The enrollment code is not valid.") from None
    _check_host(headers, host_ok)
    if not nonces.first_use("enroll:" + terminal_id, nonce, ts):
        raise AuthError("replayed_nonce", "重复的请求已被拒绝。", "A replayed request was rejected.")
    return Caller(terminal_id, key, nonce, kind="enrollment")
