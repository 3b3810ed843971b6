"""Signatures between the terminal and the backend, and on the documents the backend issues.

Requests and responses are signed with HMAC-SHA256 under the terminal's secret (see
docs/CONTRACTS.md, "Backend HTTP API"): the request form binds method, the Host header
as sent (always with its port), path with query, Content-Type, Idempotency-Key,
timestamp, nonce and body, so none of them can be changed on the way; the response form
binds status, the *request's* nonce, timestamp and body, so an answer cannot be replayed
onto another request. Documents
are signed with the backend's Ed25519 key so anyone holding the public key can check a
printed QR without the terminal's secret.

Each canonical form is one line per part. Parts that could contain a newline are
refused, which keeps the encoding injective: two different requests never share a
canonical form.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from kiosk.errors import SignatureError

if TYPE_CHECKING:  # cryptography is imported by the Ed25519 functions (~25 ms the kiosk's first frame need not wait)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DEFAULT_MAX_SKEW_S = 300
DEMO_BACKEND_SEED = hashlib.sha256(b"kiosk-demo-backend-ed25519-seed").digest()

_METHOD_RE = re.compile(r"^[A-Z]{3,7}$")
_NONCE_RE = re.compile(r"^[0-9a-f]{32}$")
_HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP_RE = re.compile(r"^[0-9]{1,12}$")
# A request target: printable ASCII without spaces, as it appears on the request line.
_PATH_RE = re.compile(r"^/[\x21-\x7e]*$")
# The Host header: a DNS name, IPv4 or bracketed IPv6 literal, and always a port.
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9-]{1,63})*"
                      r"|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}$")
_CONTENT_TYPE_RE = re.compile(r"^[\x20-\x7e]{0,200}$")
_IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9._:-]{0,128}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class RequestParts:
    """What a request signature covers besides its timestamp and nonce.

    ``host`` is the Host header exactly as sent, always ``name:port``; ``target`` the path
    with query as on the request line; ``content_type`` and ``idempotency_key`` the headers'
    values ("" when the request has none).
    """

    method: str
    host: str
    target: str
    body: bytes = b""
    content_type: str = ""
    idempotency_key: str = ""


def host_header(url: str) -> str:
    """The Host header for ``url`` with its port spelled out (80/443 when the URL leaves it implicit)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in _DEFAULT_PORTS:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{parts.port or _DEFAULT_PORTS[parts.scheme]}"


def body_hash(body: bytes) -> str:
    """Lowercase hex SHA-256 of a body (of b"" when there is none)."""
    return hashlib.sha256(body or b"").hexdigest()


def new_nonce() -> str:
    """A fresh 32-hex-digit nonce."""
    return secrets.token_hex(16)


def _check_timestamp(timestamp: str | int) -> str:
    ts = str(timestamp)
    if not _TIMESTAMP_RE.fullmatch(ts):
        raise ValueError("timestamp must be unix seconds")
    return ts


def canonical_request(parts: RequestParts, timestamp: str | int, nonce: str) -> bytes:
    """The bytes a request signature covers, one line each, in this order:

    METHOD, HOST (with port), PATH_WITH_QUERY, CONTENT_TYPE, IDEMPOTENCY_KEY, TIMESTAMP,
    NONCE, SHA256HEX(body). Raises ValueError for a part that has no canonical form.
    """
    if not _METHOD_RE.fullmatch(parts.method):
        raise ValueError("method must be an upper-case HTTP method")
    if not _HOST_RE.fullmatch(parts.host):
        raise ValueError("host must be name:port")
    if not _PATH_RE.fullmatch(parts.target):
        raise ValueError("path must start with '/' and hold printable ASCII only")
    if not _CONTENT_TYPE_RE.fullmatch(parts.content_type):
        raise ValueError("content type must be printable ASCII")
    if not _IDEMPOTENCY_KEY_RE.fullmatch(parts.idempotency_key):
        raise ValueError("idempotency key must be up to 128 of A-Z a-z 0-9 . _ : -")
    if not _NONCE_RE.fullmatch(nonce):
        raise ValueError("nonce must be 32 lowercase hex digits")
    ts = _check_timestamp(timestamp)
    return "\n".join((parts.method, parts.host, parts.target, parts.content_type, parts.idempotency_key, ts, nonce,
                      body_hash(parts.body))).encode("ascii")


def canonical_response(status: int, request_nonce: str, timestamp: str | int, body: bytes) -> bytes:
    """The bytes a response signature covers. Raises ValueError for a part that has no canonical form."""
    if not (100 <= int(status) <= 599):
        raise ValueError("status must be an HTTP status")
    if not _NONCE_RE.fullmatch(request_nonce):
        raise ValueError("nonce must be 32 lowercase hex digits")
    ts = _check_timestamp(timestamp)
    return "\n".join((str(int(status)), request_nonce, ts, body_hash(body))).encode("ascii")


def _mac(secret: bytes, message: bytes) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_request(secret: bytes, parts: RequestParts, *, timestamp: int | None = None,
                 nonce: str | None = None) -> dict[str, str]:
    """Headers X-Timestamp, X-Nonce and X-Signature for one request.

    The request must then carry Host, Content-Type and Idempotency-Key exactly as in ``parts``.
    """
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    sig = _mac(secret, canonical_request(parts, ts, nonce))
    return {"X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": sig}


def _check_skew(timestamp: str, now: float | None, max_skew_s: int) -> None:
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > max_skew_s:
        raise SignatureError("timestamp outside the allowed clock skew", reason="stale_timestamp")


def verify_request(secret: bytes, parts: RequestParts, *, timestamp: str, nonce: str, signature: str,
                   now: float | None = None, max_skew_s: int = DEFAULT_MAX_SKEW_S) -> None:
    """Check a request's signature and timestamp (the nonce's freshness is the caller's store).

    Raises SignatureError with context ``reason`` in malformed, bad_signature, stale_timestamp.
    """
    try:
        message = canonical_request(parts, timestamp, nonce)
    except ValueError as exc:
        raise SignatureError(f"malformed signed request: {exc}", reason="malformed") from None
    if not _HEX64_RE.fullmatch(signature or "") or not hmac.compare_digest(_mac(secret, message), signature):
        raise SignatureError("request signature does not verify", reason="bad_signature")
    _check_skew(timestamp, now, max_skew_s)


def sign_response(secret: bytes, status: int, request_nonce: str, body: bytes, *,
                  timestamp: int | None = None) -> dict[str, str]:
    """Headers X-Timestamp and X-Signature for one response to the request that carried ``request_nonce``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Timestamp": ts, "X-Signature": _mac(secret, canonical_response(status, request_nonce, ts, body))}


def verify_response(secret: bytes, status: int, request_nonce: str, body: bytes, *,
                    timestamp: str | None, signature: str | None,
                    now: float | None = None, max_skew_s: int = DEFAULT_MAX_SKEW_S) -> None:
    """Check that a response was signed by the backend for this very request.

    Raises SignatureError (reason missing, malformed, bad_signature, stale_timestamp).
    """
    if not timestamp or not signature:
        raise SignatureError("response is not signed", reason="missing")
    try:
        message = canonical_response(status, request_nonce, timestamp, body)
    except ValueError as exc:
        raise SignatureError(f"malformed response signature headers: {exc}", reason="malformed") from None
    if not _HEX64_RE.fullmatch(signature) or not hmac.compare_digest(_mac(secret, message), signature):
        raise SignatureError("response signature does not verify", reason="bad_signature")
    _check_skew(timestamp, now, max_skew_s)


# --- reprint lookups --------------------------------------------------------------------------
_LOOKUP_KEY_LABEL = b"kiosk document lookup v1"


def document_lookup_hash(secret: bytes, id_number: str) -> str:
    """The ``id_hash`` a reprint lookup sends: hex HMAC-SHA256 of the ID number (trimmed, upper case).

    Its key is HMAC-SHA256(terminal secret, "kiosk document lookup v1"), so the value in a
    URL or a log cannot be turned back into the number by hashing every possible ID number,
    as an unsalted SHA-256 could.
    """
    key = hmac.new(secret, _LOOKUP_KEY_LABEL, hashlib.sha256).digest()
    return hmac.new(key, id_number.strip().upper().encode("utf-8"), hashlib.sha256).hexdigest()


# --- documents (Ed25519) -------------------------------------------------------------------
def private_key_from_seed(seed: bytes) -> Ed25519PrivateKey:
    """The Ed25519 private key for a 32-byte seed."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)


def demo_backend_private_key() -> Ed25519PrivateKey:
    """The simulator's fixed document key (public on purpose; its public key is config.DEMO_BACKEND_PUBLIC_KEY)."""
    return private_key_from_seed(DEMO_BACKEND_SEED)


def public_key_b64(private_key: Ed25519PrivateKey) -> str:
    """The base64 raw public key of a private key."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign_document(private_key: Ed25519PrivateKey | bytes, payload: str) -> str:
    """Base64 Ed25519 signature over the payload's UTF-8 bytes (``private_key`` may be a 32-byte seed)."""
    key = private_key_from_seed(private_key) if isinstance(private_key, bytes) else private_key
    return base64.b64encode(key.sign(payload.encode("utf-8"))).decode("ascii")


def verify_document(public_key_b64: str, payload: str, sig: str) -> None:
    """Check a document signature. Raises SignatureError (reason bad_key, malformed, bad_signature)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key_b64, validate=True))
    except (ValueError, binascii.Error):
        raise SignatureError("the configured document public key is not a base64 Ed25519 key",
                             reason="bad_key") from None
    try:
        raw_sig = base64.b64decode(sig, validate=True)
    except (ValueError, binascii.Error):
        raise SignatureError("document signature is not base64", reason="malformed") from None
    try:
        key.verify(raw_sig, payload.encode("utf-8"))
    except InvalidSignature:
        raise SignatureError("document signature does not verify", reason="bad_signature") from None
