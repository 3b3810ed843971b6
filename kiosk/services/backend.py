"""The adapter to the e-Jingtong backend: signed HTTP calls, verified answers, typed errors.

Every call is signed (see :mod:`kiosk.services.signing`), every answer must carry a valid
response signature bound to the call's nonce, and must match the OpenAPI document
(``openapi.yaml`` next to this file) — a backend that answers garbage or the wrong shape
is a :class:`BackendProtocolError`, never a half-parsed dict. Retries with backoff happen
only where repeating is harmless: GETs, and POSTs, which always carry an idempotency key
(the caller's, or one made here and kept across the retries of this call); and only on
connect errors, timeouts and 5xx, never on 4xx. Which failures are asked again is decided
by the error's type, here and nowhere else: callers do not stack retries of their own.

A call whose side effect must not be lost (an item's operation) passes ``until`` (a
``time.monotonic()`` deadline) instead: it is asked again under the same key until an
answer can be trusted or the deadline passes, also when the answer arrived garbled or
unsigned (the backend replays its stored answer to a repeated key). What the backend
made of a key whose answer never arrived is asked with :meth:`BackendClient.outcome`.
"""
from __future__ import annotations

import functools
import json
import logging
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlencode, urlsplit

from kiosk.errors import (BackendError, BackendProtocolError, BackendRefused, BackendRejected,
                          BackendServerError, BackendTimeout, BackendUnavailable, ConfigError, SignatureError)
from kiosk.services import signing

if TYPE_CHECKING:  # requests, yaml and werkzeug load at the first call, not on the kiosk's start-up path
    import requests

log = logging.getLogger(__name__)

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")
API_PREFIX = "/api/v1"


# --- the OpenAPI document, shared with the simulator ----------------------------------------
@functools.lru_cache(maxsize=1)
def api_spec() -> Any:
    """The parsed OpenAPI document as an openapi-core ``OpenAPI`` object (loaded once)."""
    import yaml
    from openapi_core import Config, OpenAPI

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml parses it ten times faster
    with OPENAPI_PATH.open(encoding="utf-8") as fh:
        document = yaml.load(fh, Loader=loader)  # noqa: S506 - a safe loader
    # The document's own validity is checked by tests/services/test_openapi.py, not at every start.
    return OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))


@dataclass
class ApiRequest:
    """A request as openapi-core sees it (the protocol openapi_core.protocols.Request)."""

    path: str  # from /api/v1 on, without the query
    method: str  # lower case
    body: bytes | None
    headers: Mapping[str, str]
    query: Mapping[str, str] = field(default_factory=dict)
    host_url: str = "http://backend"
    content_type: str = "application/json"

    def __post_init__(self) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        # One object: openapi-core writes the resolved path parameters into it.
        self.parameters = RequestParameters(query=ImmutableMultiDict(list(self.query.items())),
                                            header=Headers(dict(self.headers)))


@dataclass
class ApiResponse:
    """A response as openapi-core sees it."""

    status_code: int
    data: bytes
    headers: Mapping[str, str]
    content_type: str = "application/json"


def spec_errors(exc: Exception) -> str:
    """A short readable reason from an openapi-core validation error."""
    cause = exc.__cause__
    inner = getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None)
    if inner:
        return "; ".join(getattr(e, "message", repr(e)) for e in list(inner)[:3])
    try:
        return str(cause or exc)
    except Exception:  # some openapi-core errors cannot render undecodable input
        return type(cause or exc).__name__


# --- the client -------------------------------------------------------------------------------
class DocumentNotFound(BackendRejected):
    """The backend holds no document with that id for this ID card (a reprint with the wrong card)."""

    code = "document_not_found"
    message_en = "No document was found for this ID card. Please place the same ID card you used before."


class IdempotencyConflict(BackendRejected):
    """An idempotency key was reused with a different request (a programming error, never retried)."""

    code = "idempotency_conflict"


class TerminalRevoked(BackendRejected):
    """The backend revoked this terminal (reported stolen): every call is refused until it is enrolled again."""

    code = "terminal_revoked"
    message_en = "This terminal has been taken out of service. Please use another terminal or a service counter."


class EnrollmentCodeUsed(BackendRejected):
    """The one-time enrollment code was already used (by this terminal or another)."""

    code = "enrollment_code_used"
    message_en = "This enrollment code was already used. Ask the operator for a new code."
    exit_status = 77  # EX_NOPERM


class EnrollmentCodeInvalid(BackendRejected):
    """The enrollment code is unknown, expired, or issued for another terminal id."""

    code = "enrollment_code_invalid"
    message_en = "The enrollment code is not valid for this terminal. Check it, or ask the operator for a new code."
    exit_status = 77


class OrderNotRefundable(BackendRejected):
    """The order cannot be refunded: it was never paid (or is already settled otherwise)."""

    code = "order_not_refundable"


class OrderConsumed(OrderNotRefundable):
    """The order paid for an operation that was delivered: there is nothing to give back."""

    code = "order_consumed"


class BackendTlsError(BackendUnavailable):
    """The TLS handshake failed: the backend refused our client certificate, or its certificate is not the pinned CA's."""

    code = "backend_tls_failed"
    message_en = "The secure connection to the police service system failed. Please ask the staff for help."


# Failures on the way that the same request may get past when sent again.
RETRY_ON: tuple[type[BackendError], ...] = (BackendTimeout, BackendServerError, BackendUnavailable)
# The same bytes or the same certificate will not fare better.
NEVER_RETRY: tuple[type[BackendError], ...] = (BackendTlsError,)
# An answer that came but cannot be trusted: asked again only by a call with a deadline (``until``),
# whose repeated key makes the backend replay what it did.
UNREADABLE: tuple[type[BackendError], ...] = (BackendProtocolError, SignatureError)
UNTIL_MAX_BACKOFF_S = 2.0
UNTIL_LAST_TRY_S = 0.1  # less time than this left: no further try

_REJECTED_BY_CODE: dict[str, type[BackendRejected]] = {
    "document_not_found": DocumentNotFound,
    "idempotency_conflict": IdempotencyConflict,
    "order_not_refundable": OrderNotRefundable,
    "order_consumed": OrderConsumed,
    "terminal_revoked": TerminalRevoked,
    "enrollment_code_used": EnrollmentCodeUsed,
    "enrollment_code_invalid": EnrollmentCodeInvalid,
    "enrollment_code_expired": EnrollmentCodeInvalid,
}


class BackendClient:
    """Signed, verified calls to the backend; methods mirror the API's endpoints and return plain dicts."""

    def __init__(self, base_url: str, terminal_id: str, secret: bytes, public_key_b64: str,
                 connect_timeout: float = 3.0, read_timeout: float = 10.0, retries: int = 2,
                 backoff: float = 0.2, *, max_skew_s: int = signing.DEFAULT_MAX_SKEW_S,
                 ca_file: str = "", client_cert: tuple[str, str] | None = None,
                 session: requests.Session | None = None, secret_file: str = "") -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"backend URL must be http(s)://host[:port][/prefix]; got {base_url!r}",
                              key="backend.url", value=base_url)
        self.base_url = base_url.rstrip("/")
        self._prefix = parts.path.rstrip("/")  # a gateway prefix before /api/v1, signed as part of the path
        self._host = signing.host_header(self.base_url)  # sent and signed with its port, even 443
        self.terminal_id = terminal_id
        self._secret = secret
        # Enrollment keeps the secret in a file that `kiosk-provision rotate-secret` replaces while the
        # kiosk runs; the file's identity is checked before each call so the new secret is picked up.
        self._secret_file = Path(secret_file) if secret_file else None
        self._secret_stamp = self._file_stamp()
        self.public_key_b64 = public_key_b64
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_skew_s = max_skew_s
        self._ca_file = ca_file
        self._client_cert = client_cert
        self._session_lock = threading.Lock()
        self._session = self._set_up(session) if session is not None else None
        # Run before every call: the runtime waits here for an embedded simulator still being built.
        self.before_call: Callable[[], None] | None = None

    @classmethod
    def from_config(cls, cfg: Any, base_url: str | None = None) -> "BackendClient":
        """A client for ``cfg`` (a KioskConfig); ``base_url`` overrides backend.url (e.g. the embedded simulator)."""
        b = cfg.backend
        url = base_url or b.url
        if url == "embedded":
            raise ConfigError("backend.url is 'embedded': start the simulator and pass its URL as base_url",
                              key="backend.url", value=url)
        cert = (b.client_cert_file, b.client_key_file) if b.client_cert_file else None
        return cls(url, cfg.terminal.id, b.secret(), b.public_key, b.connect_timeout_s, b.read_timeout_s,
                   b.retries, b.backoff_s, max_skew_s=b.max_clock_skew_s, ca_file=b.ca_file, client_cert=cert,
                   secret_file=b.hmac_secret_file)

    @property
    def session(self) -> "requests.Session":
        """The HTTP session, made at its first use: importing requests cost the kiosk's first frame 0.1 s."""
        with self._session_lock:  # the health, heartbeat and UI threads may make the first call together
            if self._session is None:
                import requests

                self._session = self._set_up(requests.Session())
            return self._session

    def _set_up(self, session: "requests.Session") -> "requests.Session":
        session.trust_env = False  # a proxy from the environment must not sit between kiosk and backend
        if self._ca_file:
            session.verify = self._ca_file
        if self._client_cert:
            session.cert = self._client_cert
        return session

    # -- endpoints --------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``{status, time}``. Raises BackendError."""
        return self._call("GET", "/health")

    def lookup_identity(self, id_number: str, card_type: str = "resident") -> dict[str, Any]:
        """``{known, resident}`` for an identity document's number. Raises BackendError."""
        return self._call("POST", "/identity/lookup", {"id_number": id_number, "card_type": card_type})

    def compare_face(self, id_number: str, image: bytes) -> dict[str, Any]:
        """``{match, score}``: is the live photo the holder of ``id_number``? Raises BackendError."""
        import base64

        return self._call("POST", "/identity/face",
                          {"id_number": id_number, "image_b64": base64.b64encode(image).decode("ascii")})

    def lookup(self, source: str, item_id: str, id_number: str | None = None,
               fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{options: [...]}`` for a form field fed by the backend. Raises BackendError, BackendRefused."""
        return self._call("POST", f"/lookups/{source}",
                          {"item_id": item_id, "id_number": id_number, "fields": dict(fields or {})})

    def operate(self, operation: str, item_id: str, id_number: str | None = None,
                fields: Mapping[str, Any] | None = None, payment_order_id: str | None = None,
                idempotency_key: str | None = None, *, until: float | None = None) -> dict[str, Any]:
        """Run an item's operation; ``{operation, item_id, reference, display, document, data}``.

        ``until`` (a ``time.monotonic()`` deadline): ask again under the same key until a
        trustworthy answer arrives or the deadline passes. The document's Ed25519 signature
        is checked too. Raises BackendError, BackendRefused.
        """
        result = self._call("POST", f"/operations/{operation}",
                            {"item_id": item_id, "id_number": id_number, "fields": dict(fields or {}),
                             "payment_order_id": payment_order_id}, idempotency_key=idempotency_key, until=until)
        if result.get("document") is not None:
            self._check_document(result["document"])
        return result

    def outcome(self, idempotency_key: str) -> dict[str, Any]:
        """What became of an operation sent under ``idempotency_key`` whose answer never arrived.

        ``{idempotency_key, outcome: performed|refused|not_performed, result, refusal}``;
        ``not_performed`` is final: the backend closes the key, so the request can no
        longer take effect. A performed result's document signature is checked.
        Raises BackendError.
        """
        answer = self._call("POST", "/outcomes", {"idempotency_key": idempotency_key})
        result = answer.get("result")
        if answer.get("outcome") == "performed" and isinstance(result, dict) and result.get("document") is not None:
            self._check_document(result["document"])
        return answer

    def fetch_document(self, document_id: str, id_number: str) -> dict[str, Any]:
        """An issued document again (reprint), proving its holder by a keyed hash of ``id_number``.

        Raises DocumentNotFound, BackendError.
        """
        key = self._current_secret()
        doc = self._call("GET", f"/documents/{document_id}",
                         query={"id_hash": signing.document_lookup_hash(key, id_number)}, secret=key)
        self._check_document(doc)
        return doc

    def create_order(self, item_id: str, amount_fen: int, reference: str, description: str,
                     idempotency_key: str | None = None) -> dict[str, Any]:
        """A new QR payment order (status pending). Raises BackendError."""
        return self._call("POST", "/payments/orders",
                          {"item_id": item_id, "amount_fen": amount_fen, "reference": reference,
                           "description": description}, idempotency_key=idempotency_key)

    def get_order(self, order_id: str) -> dict[str, Any]:
        """The order now (poll). Raises BackendError."""
        return self._call("GET", f"/payments/orders/{order_id}")

    def cancel_order(self, order_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
        """Cancel a pending order; returns the order in its resulting state (paid stays paid). Raises BackendError."""
        return self._call("POST", f"/payments/orders/{order_id}/cancel", {}, idempotency_key=idempotency_key)

    def refund_order(self, order_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
        """Refund a paid order nothing was produced for. Raises BackendRejected (not refundable), BackendError."""
        return self._call("POST", f"/payments/orders/{order_id}/refund", {}, idempotency_key=idempotency_key)

    def reconcile(self, order_ids: list[str]) -> dict[str, Any]:
        """``{orders: [...]}``, the current state of the known orders among ``order_ids``. Raises BackendError."""
        return self._call("POST", "/payments/reconcile", {"order_ids": list(order_ids)})

    def verify(self, qr_payload: str, signature: str) -> dict[str, Any]:
        """The backend's verdict on a scanned document QR: ``{valid, reason, document}``. Raises BackendError."""
        return self._call("POST", "/verify", {"qr_payload": qr_payload, "signature": signature})

    # -- fleet: heartbeats and credentials ------------------------------------------------------
    def open_help_request(self, body: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """Call the duty officer (``{screen, asked_at, item_id?, step?, identity_masked?, screenshot?}``) →
        ``{ticket, status}``. Raises BackendError."""
        return self._call("POST", "/help-requests", dict(body), idempotency_key=idempotency_key)

    def get_help_request(self, ticket: str) -> dict[str, Any]:
        """The help request now: ``{ticket, status, reply?, answered_at?}``. Raises BackendError."""
        return self._call("GET", f"/help-requests/{ticket}")

    def cancel_help_request(self, ticket: str, idempotency_key: str | None = None) -> dict[str, Any]:
        """Close an open help request; an answered one stays answered. Raises BackendError."""
        return self._call("POST", f"/help-requests/{ticket}/cancel", {}, idempotency_key=idempotency_key)

    def upload_help_screenshot(self, ticket: str, screen: str, screenshot: Mapping[str, str],
                               idempotency_key: str | None = None) -> dict[str, Any]:
        """The request's latest masked screenshot (``{media_type, data_b64}``). Raises BackendError."""
        return self._call("POST", f"/help-requests/{ticket}/screenshots",
                          {"screen": screen, "screenshot": dict(screenshot)}, idempotency_key=idempotency_key)

    def heartbeat(self, body: Mapping[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
        """Post one heartbeat; ``{received_at, commands: [{payload, signature}]}``. Raises BackendError."""
        return self._call("POST", "/heartbeats", dict(body), idempotency_key=idempotency_key)

    def rotate_secret(self, idempotency_key: str | None = None) -> str:
        """Ask for a new HMAC secret (pending until confirmed; the current one keeps working). Raises BackendError."""
        return str(self._call("POST", "/credentials/rotate", {}, idempotency_key=idempotency_key)["hmac_secret"])

    def confirm_rotation(self, new_secret: bytes) -> dict[str, Any]:
        """Confirm a rotation with a call signed by ``new_secret``, then use it. Raises BackendError."""
        result = self._call("POST", "/credentials/rotate/confirm", {}, secret=new_secret)
        self.set_secret(new_secret)
        return result

    def set_secret(self, secret: bytes) -> None:
        """Sign from now on with ``secret`` (after a rotation)."""
        self._secret = secret
        self._secret_stamp = self._file_stamp()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        if self._secret_file is None:
            return None
        try:
            st = self._secret_file.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _current_secret(self) -> bytes:
        """The secret to sign with: reread from the enrollment file when it was replaced since."""
        stamp = self._file_stamp()
        if stamp is not None and stamp != self._secret_stamp:
            try:
                fresh = self._secret_file.read_bytes().strip()  # type: ignore[union-attr]
            except OSError as exc:
                log.warning("cannot reread the HMAC secret file: %s; keeping the one in use", exc.strerror)
                return self._secret
            if fresh:
                if fresh != self._secret:
                    log.info("HMAC secret file replaced: signing with the new secret")
                self._secret = fresh
                self._secret_stamp = stamp
        return self._secret

    # -- the machinery ------------------------------------------------------------------------
    def _check_document(self, doc: Mapping[str, Any]) -> None:
        signing.verify_document(self.public_key_b64, doc["qr_payload"], doc["signature"])

    def _call(self, method: str, path: str, body: Any = None, *, query: Mapping[str, str] | None = None,
              idempotency_key: str | None = None, secret: bytes | None = None,
              unsigned_errors_ok: bool = False, until: float | None = None) -> dict[str, Any]:
        if self.before_call is not None:
            self.before_call()
        key = self._current_secret() if secret is None else secret
        api_path = API_PREFIX + path
        target = self._prefix + api_path + (("?" + urlencode(query)) if query else "")
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8") if body is not None else b""
        base_headers = {"X-Terminal-Id": self.terminal_id, "Accept": "application/json", "Host": self._host}
        if data:
            base_headers["Content-Type"] = "application/json"
        if method == "POST":
            # One key for every attempt of this call: a retry is then a replay, never a second effect.
            base_headers["Idempotency-Key"] = idempotency_key or f"auto-{uuid.uuid4().hex}"
        parts = signing.RequestParts(method, self._host, target, data, base_headers.get("Content-Type", ""),
                                     base_headers.get("Idempotency-Key", ""))
        attempt = 0
        while True:
            headers = {**base_headers, **signing.sign_request(key, parts)}
            try:
                return self._attempt(method, api_path, target, query, data, headers, key, unsigned_errors_ok, until)
            except BackendError as err:
                if isinstance(err, BackendRejected) or not self._again(err, until):
                    raise
                last = err
            attempt += 1
            delay = self.backoff * (2 ** (attempt - 1)) * (1 + random.random() * 0.25)
            if until is not None:
                left = until - time.monotonic()
                if left < UNTIL_LAST_TRY_S:
                    log.warning("backend %s %s: no trustworthy answer by the deadline after %d attempts: %s",
                                method, api_path, attempt, last.code)
                    raise last
                delay = min(delay, UNTIL_MAX_BACKOFF_S, left - UNTIL_LAST_TRY_S / 2)  # one last try at the deadline
            elif attempt > self.retries:
                raise last
            log.warning("backend %s %s attempt %d failed: %s; asking again", method, api_path, attempt, last.code)
            time.sleep(delay)

    @staticmethod
    def _again(err: BackendError, until: float | None) -> bool:
        """Whether a failed attempt is worth sending again (by the error's type)."""
        if isinstance(err, NEVER_RETRY):
            return False
        return isinstance(err, RETRY_ON) or (until is not None and isinstance(err, UNREADABLE))

    def _attempt(self, method: str, api_path: str, target: str, query: Mapping[str, str] | None, data: bytes,
                 headers: Mapping[str, str], key: bytes, unsigned_errors_ok: bool,
                 until: float | None) -> dict[str, Any]:
        """One request and its verified answer. Raises BackendError, BackendRefused."""
        import requests

        timeout = self.timeout
        if until is not None:  # never wait on one answer past the caller's deadline
            timeout = (self.timeout[0], max(0.5, min(self.timeout[1], until - time.monotonic())))
        try:
            resp = self.session.request(method, self.base_url.removesuffix(self._prefix) + target,
                                        data=data or None, headers=dict(headers), timeout=timeout,
                                        allow_redirects=False)
            resp_body = resp.content
        except (requests.ConnectTimeout, requests.ReadTimeout) as exc:
            raise BackendTimeout(f"{method} {api_path}: no answer in time ({type(exc).__name__})") from None
        except requests.exceptions.SSLError as exc:
            raise BackendTlsError(f"{method} {api_path}: TLS handshake failed ({_reason(exc)})") from None
        except requests.ConnectionError as exc:
            raise BackendUnavailable(f"{method} {api_path}: cannot connect ({_reason(exc)})") from None
        except requests.RequestException as exc:
            # A broken transfer (bad chunking, truncated body): the bytes are not an answer.
            raise BackendProtocolError(f"{method} {api_path}: broken response ({type(exc).__name__})") from None
        if resp.status_code >= 500:
            raise BackendServerError(f"{method} {api_path}: HTTP {resp.status_code}", status=resp.status_code)
        return self._interpret(method, api_path, headers, query, data, resp.status_code, resp.headers, resp_body,
                               key, unsigned_errors_ok)

    def _interpret(self, method: str, api_path: str, sent: Mapping[str, str], query: Mapping[str, str] | None,
                   data: bytes, status: int, headers: Mapping[str, str], body: bytes, key: bytes | None = None,
                   unsigned_errors_ok: bool = False) -> dict[str, Any]:
        key = self._secret if key is None else key
        try:
            signing.verify_response(key, status, sent["X-Nonce"], body,
                                    timestamp=headers.get("X-Timestamp"), signature=headers.get("X-Signature"),
                                    max_skew_s=self.max_skew_s)
        except SignatureError as exc:
            # An enrollment refusal for a wrong code cannot be signed with it; a refusal is still
            # only a refusal (nothing is acted on), a success must always verify.
            if not (unsigned_errors_ok and status != 200):
                # The backend signs no answer to a request it could not authenticate (a stale clock, a
                # wrong secret, a replay): what the unsigned body claims is only a hint for the log.
                claim = _claimed_code(body) if exc.context.get("reason") == "missing" else ""
                hint = f" (HTTP {status}, unsigned, claims {claim!r})" if claim else ""
                raise SignatureError(f"{method} {api_path}: {exc.detail}{hint}", **exc.context,
                                     **({"claimed_code": claim} if claim else {})) from None
        try:
            parsed = json.loads(body)
        except ValueError:
            raise BackendProtocolError(f"{method} {api_path}: HTTP {status} body is not JSON") from None
        request = ApiRequest(api_path, method.lower(), data or None, sent, dict(query or {}))
        response = ApiResponse(status, body, dict(headers),
                               headers.get("Content-Type", "").split(";")[0].strip().lower())
        try:
            api_spec().validate_response(request, response)
        except Exception as exc:  # openapi-core raises many types; all mean "not the documented shape"
            raise BackendProtocolError(f"{method} {api_path}: answer does not match the API: {spec_errors(exc)}") from None
        if status == 200:
            if not isinstance(parsed, dict):
                raise BackendProtocolError(f"{method} {api_path}: answer is not an object")
            return parsed
        err = parsed.get("error", {}) if isinstance(parsed, dict) else {}
        code = str(err.get("code", "unknown"))
        if status == 422 and code == "refused":
            raise BackendRefused(str(err.get("rule", "refused")), f"{method} {api_path}: refused",
                                 message_zh=err.get("message_zh", ""), message_en=err.get("message_en", ""),
                                 where_zh=err.get("where_zh", ""), where_en=err.get("where_en", ""))
        cls = _REJECTED_BY_CODE.get(code, BackendRejected)
        raise cls(f"{method} {api_path}: HTTP {status} {code}", remote_code=code, status=status,
                  remote_message_zh=err.get("message_zh", ""), remote_message_en=err.get("message_en", ""))


def enroll(base_url: str, terminal_id: str, code: str, csr_pem: str, *, ca_file: str = "",
           connect_timeout: float = 5.0, read_timeout: float = 20.0, retries: int = 2) -> dict[str, Any]:
    """Register with a one-time enrollment ``code``; the backend's answer (secret, certificate, CA, API URL).

    The call is signed with SHA-256 of the code and so is the answer: the code never crosses
    the wire and a tampered answer is refused. The answer carries the terminal's HMAC secret,
    so the server must be the real one: over https its certificate is checked against
    ``ca_file``, which must be given; plain http is allowed only to a backend on this very
    machine (the simulator), never across a network. Raises ConfigError (before any
    connection), EnrollmentCodeUsed, EnrollmentCodeInvalid, BackendError.
    """
    import hashlib

    parts = urlsplit(base_url)
    if parts.scheme == "https":
        if not ca_file:
            raise ConfigError("enrollment over https needs the backend's CA to check the server against (--ca-file); "
                              "without it anyone on the way could take the terminal's secret", key="ca_file", value="")
        if not Path(ca_file).is_file():
            raise ConfigError(f"the CA file {ca_file} does not exist", key="ca_file", value=ca_file)
    elif not _is_loopback(parts.hostname or ""):
        raise ConfigError("enrollment hands the terminal its secret: plain http only to a backend on this machine; "
                          "use https and --ca-file", key="backend_url", value=base_url)
    client = BackendClient(base_url, terminal_id, hashlib.sha256(code.strip().encode("utf-8")).digest(), "",
                           connect_timeout, read_timeout, retries, ca_file=ca_file)
    return client._call("POST", "/enrollment", {"csr_pem": csr_pem}, unsigned_errors_ok=True)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _claimed_code(body: bytes) -> str:
    """The error code an (unverified) answer claims, when it looks like one: for logs only, never acted on."""
    try:
        code = json.loads(body)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return ""
    return code if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code) else ""


def _reason(exc: Exception) -> str:
    text = str(exc)
    for hint in ("Connection refused", "RemoteDisconnected", "Connection reset", "Name or service not known",
                 "Connection aborted"):
        if hint in text:
            return hint
    return type(exc).__name__
