"""The simulator's request pipeline: faults, authentication, validation, idempotency, signing.

Every API request goes through :meth:`RequestPipeline.handle`: fault draw and latency →
signature, timestamp and nonce → request validated against the OpenAPI document → (POST)
idempotency replay or conflict → the view, in one transaction → the answer validated
against the document (a mismatch is a simulator bug: 500, logged) → stored for idempotency
→ signed with the request's nonce → output faults. The views themselves live in
:mod:`kiosk.backend_sim.views`; :class:`kiosk.backend_sim.app.SimApp` joins the two.
"""
from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from flask import Response, request

from kiosk.backend_sim import fleet, retention
from kiosk.backend_sim.db import Database, dumps, iso, now
from kiosk.backend_sim.faults import FaultState
from kiosk.backend_sim.fleet import TerminalDirectory
from kiosk.backend_sim.registry import Refusal
from kiosk.backend_sim.security import (AuthError, Caller, NonceStore, authenticate,
                                        authenticate_enrollment)
from kiosk.services import signing
from kiosk.services.backend import ApiRequest, ApiResponse, api_spec, spec_errors

if TYPE_CHECKING:
    from kiosk.backend_sim.app import SimSettings

log = logging.getLogger("kiosk.backend_sim")

CLOSED_KEY = "closed"  # idempotency fingerprint of a key closed by POST /outcomes (matches no request)
LISTENER_KEY = "kiosk_sim.listener"  # WSGI environ key: which listener a request came in on


class ApiError(Exception):
    """An error answer: HTTP ``status`` with a typed body."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str, **extra: str) -> None:
        super().__init__(code)
        self.status = status
        self.body = {"error": {"code": code, "message_zh": message_zh, "message_en": message_en, **extra}}


@dataclass
class Call:
    """One API request as the views see it."""

    caller: Caller | None
    body: dict[str, Any]
    args: dict[str, str]
    query: dict[str, str]
    idempotency_key: str | None


View = Callable[[Any, Call], dict[str, Any] | list[Any]]


class RequestPipeline:
    """The checks every request runs through, around the view that answers it (mixed into SimApp)."""

    settings: "SimSettings"
    db: Database
    faults: FaultState
    nonces: NonceStore
    terminals: TerminalDirectory
    listeners: dict[str, tuple[frozenset[str] | None, int]]
    v_health: View
    v_operation: View

    def handle(self, view: View, args: dict[str, str], signed: bool | str) -> Response:
        """Run one API request through faults, checks, idempotency, the view, validation and signing.

        ``signed``: True (a terminal's HMAC), False (optional), or "enrollment" (an enrollment code's key).
        """
        mode, latency, stall = self.faults.draw()
        if latency:
            time.sleep(latency)
        if mode == "down":
            return self._drop_connection()
        headers = {k: v for k, v in request.headers.items()}
        target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        raw = request.get_data(cache=True)
        caller: Caller | None = None
        api_request = ApiRequest(request.path, request.method.lower(), raw or None, headers,
                                 request.args.to_dict(), content_type=(request.mimetype or "application/json"))
        try:
            if mode == "error":
                raise ApiError(503, "service_unavailable", "服务暂时不可用，请稍后再试。",
                               "The service is temporarily unavailable. Please try again later.")
            if request.environ.get(LISTENER_KEY) == "enrollment" and signed != "enrollment" and view != self.v_health:
                raise ApiError(403, "client_certificate_required", "此接口需要终端证书。",
                               "This endpoint needs the terminal's client certificate (mutual TLS).")
            try:
                caller = self._authenticate(headers, target, raw, signed)
            except AuthError as exc:
                caller = exc.caller  # proved the secret, refused for its standing: that refusal is signed
                raise ApiError(exc.status, exc.code, exc.message_zh, exc.message_en) from None
            status, body = self._process(view, args, api_request, caller, raw)
        except ApiError as exc:
            status, body = exc.status, exc.body
        except Exception:
            log.exception("simulator failure on %s %s", request.method, request.path)
            status, body = 500, ApiError(500, "internal_error", "服务内部错误。", "Internal server error.").body
        if view == self.v_operation and status in (200, 422) and self.faults.lose_answer(args.get("operation", "")):
            # Done and stored: only the answer is lost on its way back (the kiosk's read fails).
            log.info("%s %s -> %d [fault answer_lost]", request.method, request.path, status)
            return self._drop_connection()
        # Only a caller that proved its secret gets a signed answer, signed with the key that proved it
        # (the new one during a rotation). An answer signed for anyone naming a terminal and a nonce
        # would hand an eavesdropper signed refusals to put in front of that terminal's own requests.
        signer = (caller.secret, caller.nonce) if caller is not None else None
        payload = dumps(body)
        out_headers = {"Content-Type": "application/json; charset=utf-8"}
        if signer is not None:
            out_headers.update(signing.sign_response(signer[0], status, signer[1], payload))
        if mode == "garbage":
            payload = b"<html><body>502 upstream hiccup\x00\xff</body></html>"
            if signer is not None:  # the gateway signed whatever the app produced
                out_headers.update(signing.sign_response(signer[0], status, signer[1], payload))
        elif mode == "tamper":
            payload = payload.replace(b'"', b"'", 1) if payload else b"x"
        elif mode == "timeout":
            time.sleep(stall)
        log.info("%s %s -> %d%s", request.method, request.path, status, f" [fault {mode}]" if mode else "")
        return Response(payload, status=status, headers=out_headers)

    def _host_is_ours(self, host: str) -> bool:
        """True when ``host`` (a Host header) names the listener the request came in on."""
        expected = self.listeners.get(request.environ.get(LISTENER_KEY, ""))
        if expected is None:  # not served by serve() (a WSGI test client): nothing to compare with
            return True
        names, port = expected
        name, _, given_port = host.rpartition(":")
        return given_port == str(port) and (names is None or name.strip("[]").lower() in names)

    def _authenticate(self, headers: dict[str, str], target: str, raw: bytes, signed: bool | str) -> Caller | None:
        """The caller a signed request proves (None for an unsigned call where signing is optional). Raises AuthError."""
        if not signed and "X-Signature" not in headers:
            return None
        if signed == "enrollment":
            return authenticate_enrollment(headers, request.method, target, raw, self.terminals, self.nonces,
                                           self.settings.max_skew_s, host_ok=self._host_is_ours)
        return authenticate(headers, request.method, target, raw, self.terminals, self.nonces,
                            self.settings.max_skew_s, peer_cert=_peer_certificate(), host_ok=self._host_is_ours)

    def _process(self, view: View, args: dict[str, str], api_request: ApiRequest, caller: Caller | None,
                 raw: bytes) -> tuple[int, Any]:
        try:
            api_spec().validate_request(api_request)
        except Exception as exc:  # openapi-core: many types, all "not the documented request"
            raise ApiError(400, "bad_request", "请求格式不正确。", "The request is malformed.",
                           detail=spec_errors(exc)[:500]) from None
        body = json.loads(raw) if raw else {}
        key = api_request.headers.get("Idempotency-Key") if api_request.method == "post" else None
        call = Call(caller, body, args, dict(api_request.query), key)
        fingerprint = f"{api_request.method} {api_request.path} {signing.body_hash(raw)}"
        terminal = caller.terminal_id if caller else ""
        with self.db.transaction() as conn:
            if key is not None:
                stored = conn.execute("SELECT fingerprint, status, body FROM idempotency WHERE terminal_id = ? AND key = ?",
                                      (terminal, key)).fetchone()
                if stored is not None:
                    if stored["fingerprint"] != fingerprint:
                        raise ApiError(409, "idempotency_conflict", "同一业务编号对应了不同的请求。",
                                       "The idempotency key was already used for a different request.")
                    answer = json.loads(stored["body"])
                    if answer.get(retention.EXPIRED):
                        raise ApiError(409, "answer_expired", "该业务已办理，原答复已过保存期限。",
                                       "This request was already handled; its answer is past keeping.")
                    return stored["status"], answer
            conn.execute("SAVEPOINT view")
            try:
                status, result = 200, view(conn, call)
            except fleet.FleetError as exc:
                conn.execute("ROLLBACK TO view")
                raise ApiError(exc.status, exc.code, exc.message_zh, exc.message_en) from None
            except Refusal as r:
                conn.execute("ROLLBACK TO view")
                status, result = 422, ApiError(422, "refused", r.message_zh, r.message_en, rule=r.rule,
                                               where_zh=r.where_zh, where_en=r.where_en).body
            except ApiError:
                conn.execute("ROLLBACK TO view")
                raise
            except Exception:
                conn.execute("ROLLBACK TO view")
                log.exception("simulator view %s failed", api_request.path)
                raise ApiError(500, "internal_error", "服务内部错误。", "Internal server error.") from None
            conn.execute("RELEASE view")
            self._check_answer(api_request, status, result, conn)
            if key is not None:
                conn.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                             (terminal, key, fingerprint, status, dumps(result), iso(now())))
        return status, result

    def _check_answer(self, api_request: ApiRequest, status: int, result: Any, conn: Any) -> None:
        try:
            api_spec().validate_response(api_request, ApiResponse(status, dumps(result), {}))
        except Exception as exc:
            log.error("simulator bug: answer to %s %s does not match the API: %s",
                      api_request.method.upper(), api_request.path, spec_errors(exc))
            # Undo the view's writes: a caller that gets a 500 must not find an effect behind it.
            raise _Rollback() from None

    def handle_sim(self, view: View, args: dict[str, str]) -> Response:
        """The /sim endpoints: loopback only, unsigned, validated like the rest (on either listener with TLS)."""
        if not is_loopback(request.remote_addr or ""):
            return self._plain(403, ApiError(403, "forbidden", "仅限本机访问。", "Loopback only.").body)
        raw = request.get_data(cache=True)
        api_request = ApiRequest(request.path, request.method.lower(), raw or None, dict(request.headers.items()),
                                 request.args.to_dict(), content_type=(request.mimetype or "application/json"))
        try:
            try:
                api_spec().validate_request(api_request)
            except Exception as exc:
                raise ApiError(400, "bad_request", "请求格式不正确。", "The request is malformed.",
                               detail=spec_errors(exc)[:500]) from None
            body = json.loads(raw) if raw else {}
            with self.db.transaction() as conn:
                result = view(conn, Call(None, body, args, request.args.to_dict(), None))
                self._check_answer(api_request, 200, result, conn)
            status: int = 200
        except fleet.FleetError as exc:
            status, result = exc.status, ApiError(exc.status, exc.code, exc.message_zh, exc.message_en).body
        except ApiError as exc:
            status, result = exc.status, exc.body
        return self._plain(status, result)

    @staticmethod
    def _plain(status: int, body: Any) -> Response:
        return Response(dumps(body), status=status, headers={"Content-Type": "application/json; charset=utf-8"})

    @staticmethod
    def _drop_connection() -> Response:
        # "Backend down" mid-flight: close the socket without answering, as a crashed upstream does.
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        return Response(b"", status=500)


def _peer_certificate() -> dict[str, Any] | None:
    """The verified client certificate of a mutual-TLS connection (None over plain HTTP)."""
    sock = request.environ.get("werkzeug.socket")
    getpeercert = getattr(sock, "getpeercert", None)
    if getpeercert is None:
        return None
    try:
        return getpeercert() or None
    except (ValueError, OSError):
        return None


class _Rollback(ApiError):
    """A simulator answer that breaks the API document: the transaction is undone and the caller gets 500."""

    def __init__(self) -> None:
        super().__init__(500, "internal_error", "服务内部错误。", "Internal server error (the simulator broke its API).")


def is_loopback(addr: str) -> bool:
    """True for a 127.x or ::1 peer: the /sim controls and /fleet answer only there."""
    return addr.startswith("127.") or addr == "::1"
