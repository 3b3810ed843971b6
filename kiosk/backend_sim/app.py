"""The simulator's Flask application: the API of openapi.yaml with checks, idempotency and faults.

Every API request goes through one pipeline (:meth:`SimApp.handle`): fault draw and
latency → signature, timestamp and nonce → request validated against the OpenAPI
document → (POST) idempotency replay or conflict → the view, in one transaction →
the answer validated against the document (a mismatch is a simulator bug: 500, logged)
→ stored for idempotency → signed with the request's nonce → output faults.
"""
from __future__ import annotations

import json
import logging
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, Response, request

from kiosk.config import DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.errors import FieldError, UnknownItemError
from kiosk.privacy import mask_id_number, mask_name
from kiosk.services import signing
from kiosk.services.backend import API_PREFIX, ApiRequest, ApiResponse, api_spec, spec_errors
from kiosk.backend_sim import documents as docs
from kiosk.backend_sim import fleet, payments, registry, update_repo
from kiosk.backend_sim import fleet, limits, payments, registry, retention
from kiosk.backend_sim.ca import CsrRejected, SimCA
from kiosk.backend_sim.db import Database, dumps, effects, iso, now, record_effect
from kiosk.backend_sim.faults import FaultState
from kiosk.backend_sim.registry import OpContext, Refusal
from kiosk.backend_sim.security import (AuthError, Caller, NonceStore, authenticate,
                                                 authenticate_enrollment)
from kiosk.services.catalog import Catalog, CatalogItem

log = logging.getLogger("kiosk.backend_sim")

VERSION = "sim-1.0"


class ApiError(Exception):
    """An error answer: HTTP ``status`` with a typed body."""

    def __init__(self, status: int, code: str, message_zh: str, message_en: str, **extra: str) -> None:
        super().__init__(code)
        self.status = status
        self.body = {"error": {"code": code, "message_zh": message_zh, "message_en": message_en, **extra}}


@dataclass
class SimSettings:
    """What the simulator is started with."""

    db_path: str | None = None
    faults: dict[str, Any] | None = None
    terminals: dict[str, bytes] = field(default_factory=lambda: {DEMO_TERMINAL_ID: DEMO_HMAC_SECRET.encode()})
    order_ttl_s: int = 900
    max_skew_s: int = signing.DEFAULT_MAX_SKEW_S
    idempotency_window_s: float = retention.DEFAULT_WINDOW_S  # stored answers are deleted after it
    private_key: Ed25519PrivateKey = field(default_factory=signing.demo_backend_private_key)
    update_repo: str | None = None  # a TUF repository folder served at /updates/ (demo)


@dataclass
class Call:
    """One API request as the views see it."""

    caller: Caller | None
    body: dict[str, Any]
    args: dict[str, str]
    query: dict[str, str]
    idempotency_key: str | None


View = Callable[[Any, Call], dict[str, Any] | list[Any]]


class SimApp:
    """The simulator's state and the pipeline every request runs through."""

    def __init__(self, settings: SimSettings) -> None:
        self.settings = settings
        self.db = Database.open(settings.db_path)
        self.faults = FaultState(settings.faults)
        self.nonces = NonceStore(self.db, settings.max_skew_s)
        self.documents = docs.DocumentStore(settings.private_key)
        self.catalog = Catalog.load()
        with self.db.transaction() as conn:
            # executescript would commit on its own: run the statements one by one inside the transaction.
            for statement in fleet.FLEET_SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            self.ca = SimCA.load_or_create(conn)
        self.terminals = fleet.TerminalDirectory(self.db.conn, self.db.lock, settings.terminals)
        self.api_url: str | None = None  # set by serve(): where enrolled terminals call (the mTLS listener)
        # Set by serve(): listener name -> (host names it answers to, or None when bound to every
        # address; its port). A signed request must name this very server in its Host header.
        self.listeners: dict[str, tuple[frozenset[str] | None, int]] = {}
        api_spec()  # parse the document now, not on the first request
        self.flask = self._build()

    # -- routing ------------------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("kiosk.backend_sim")
        routes: list[tuple[str, str, View, bool]] = [
            ("/health", "GET", self.v_health, False),
            ("/identity/lookup", "POST", self.v_identity_lookup, True),
            ("/identity/face", "POST", self.v_face, True),
            ("/lookups/<source>", "POST", self.v_lookup, True),
            ("/operations/<operation>", "POST", self.v_operation, True),
            ("/outcomes", "POST", self.v_outcome, True),
            ("/documents/<document_id>", "GET", self.v_document, True),
            ("/verify", "POST", self.v_verify, True),
            ("/payments/orders", "POST", self.v_order_create, True),
            ("/payments/orders/<order_id>", "GET", self.v_order_get, True),
            ("/payments/orders/<order_id>/cancel", "POST", self.v_order_cancel, True),
            ("/payments/orders/<order_id>/refund", "POST", self.v_order_refund, True),
            ("/payments/reconcile", "POST", self.v_reconcile, True),
            ("/enrollment", "POST", self.v_enroll, "enrollment"),
            ("/credentials/rotate", "POST", self.v_rotate, True),
            ("/credentials/rotate/confirm", "POST", self.v_rotate_confirm, True),
            ("/heartbeats", "POST", self.v_heartbeat, True),
        ]
        for rule, method, view, signed in routes:
            app.add_url_rule(API_PREFIX + rule, view.__name__, self._endpoint(view, signed), methods=[method])
        sim_routes: list[tuple[str, str, View]] = [
            ("/sim/faults", "GET", self.v_sim_faults_get),
            ("/sim/faults", "POST", self.v_sim_faults_set),
            ("/sim/faults/applied", "GET", self.v_sim_faults_applied),
            ("/sim/effects", "GET", self.v_sim_effects),
            ("/sim/payments/<order_id>/pay", "POST", self.v_sim_pay),
            ("/sim/payments/<order_id>/expire", "POST", self.v_sim_expire),
            ("/sim/enrollment-codes", "POST", self.v_sim_enrollment_code),
            ("/sim/terminals", "GET", self.v_sim_terminals),
            ("/sim/terminals/<terminal_id>/revoke", "POST", self.v_sim_revoke),
            ("/sim/terminals/<terminal_id>/commands", "POST", self.v_sim_command),
            ("/sim/heartbeats", "GET", self.v_sim_heartbeats),
        ]
        for rule, method, view in sim_routes:
            app.add_url_rule(API_PREFIX + rule, view.__name__, self._sim_endpoint(view), methods=[method])
        app.add_url_rule("/fleet", "fleet_page", self.fleet_page, methods=["GET"])
        update_repo.register(app, self.settings.update_repo)
        limits.install(app)
        retention.install(app, self.db, self.settings.idempotency_window_s, now)

        @app.errorhandler(404)
        def not_found(_: Exception) -> Response:
            return self._plain(404, ApiError(404, "not_found", "没有这个接口。", "No such endpoint.").body)

        @app.errorhandler(405)
        def not_allowed(_: Exception) -> Response:
            return self._plain(405, ApiError(405, "method_not_allowed", "不支持该请求方法。",
                                             "Method not allowed.").body)
        return app

    def _endpoint(self, view: View, signed: bool | str) -> Callable[..., Response]:
        def endpoint(**args: str) -> Response:
            return self.handle(view, args, signed)
        endpoint.__name__ = view.__name__
        return endpoint

    def _sim_endpoint(self, view: View) -> Callable[..., Response]:
        def endpoint(**args: str) -> Response:
            return self.handle_sim(view, args)
        endpoint.__name__ = view.__name__
        return endpoint

    # -- the pipeline -------------------------------------------------------------------------
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
        if not _is_loopback(request.remote_addr or ""):
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

    # -- views: identity ---------------------------------------------------------------------------
    def v_health(self, conn: Any, call: Call) -> dict[str, Any]:
        return {"status": "ok", "time": iso(now()), "version": VERSION}

    @staticmethod
    def _resident(conn: Any, id_number: str | None) -> dict[str, Any] | None:
        if not id_number:
            return None
        row = conn.execute("SELECT r.*, m.relation_to_head_zh, m.relation_to_head_en FROM residents r"
                           " LEFT JOIN household_members m ON m.id_number = r.id_number"
                           " AND m.household_id = r.household_id WHERE r.id_number = ?", (id_number,)).fetchone()
        return dict(row) if row is not None else None

    def v_identity_lookup(self, conn: Any, call: Call) -> dict[str, Any]:
        r = self._resident(conn, call.body["id_number"])
        if r is None:
            return {"known": False, "resident": None}
        keys = ("id_number", "name", "sex", "birth_date", "ethnicity", "address", "status", "household_id",
                "relation_to_head_zh", "relation_to_head_en", "hukou_city", "living_city", "living_address")
        resident = {k: r[k] for k in keys}
        resident["phone_masked"] = (r["phone"][:3] + "****" + r["phone"][-4:]) if r["phone"] else ""
        log.info("identity lookup for %s (%s)", mask_name(r["name"]), mask_id_number(r["id_number"]))
        return {"known": True, "resident": resident}

    def v_face(self, conn: Any, call: Call) -> dict[str, Any]:
        r = self._resident(conn, call.body["id_number"])
        if r is None or r["status"] != "active":
            return {"match": False, "score": 0.0}
        return {"match": bool(r["face_match"]), "score": float(r["face_score"])}

    # -- views: items -----------------------------------------------------------------------------
    def _context(self, conn: Any, call: Call, operation: str = "") -> OpContext:
        id_number = call.body.get("id_number")
        return OpContext(db=conn, item_id=call.body["item_id"], fields=dict(call.body.get("fields") or {}),
                         resident=self._resident(conn, id_number), id_number=id_number, now=now(),
                         payment_order_id=call.body.get("payment_order_id"), operation=operation,
                         _issuer=self.documents.issue)

    def v_lookup(self, conn: Any, call: Call) -> dict[str, Any]:
        source = call.args["source"]
        handler = registry.LOOKUPS.get(source)
        if handler is None:
            raise ApiError(404, "unknown_lookup", "没有这个查询来源。", f"No lookup source {source!r}.")
        return {"options": list(handler(self._context(conn, call)))}

    def _item(self, item_id: str, operation: str) -> CatalogItem:
        """The catalog item ``item_id`` when ``operation`` is the one it names. Raises ApiError (400)."""
        try:
            item = self.catalog.get(item_id)
        except UnknownItemError:
            item = registry.EXTRA_ITEMS.get(item_id)
            if item is None:
                raise ApiError(400, "unknown_item", "没有这个业务事项。", f"No item {item_id!r}.") from None
        if item.operation != operation:
            raise ApiError(400, "operation_not_for_item", "该业务操作不属于所选事项。",
                           f"The operation {operation!r} does not belong to item {item_id}.")
        return item

    @staticmethod
    def _valid_fields(item: CatalogItem, fields: dict[str, Any]) -> dict[str, str]:
        """The form values normalised by the item's field rules (empty ones left out). Raises ApiError (400)."""
        known = {spec.name for spec in item.fields}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise ApiError(400, "invalid_field", "提交了本事项没有的填写项。",
                           f"Item {item.id} has no field {unknown[0]!r}.", field=unknown[0])
        try:
            values = item.validate(fields, today=now().date())
        except FieldError as exc:
            raise ApiError(400, "invalid_field", "填写的内容不符合要求。",
                           f"The field {exc.field!r} of item {item.id} is not valid ({exc.detail}).",
                           field=exc.field) from None
        return {name: value for name, value in values.items() if value != ""}

    def v_operation(self, conn: Any, call: Call) -> dict[str, Any]:
        name = call.args["operation"]
        handler = registry.OPERATIONS.get(name)
        if handler is None:
            raise ApiError(404, "unknown_operation", "没有这项业务操作。", f"No operation {name!r}.")
        item = self._item(call.body["item_id"], name)
        # What a resident typed reaches a signed document: it must pass the same rules as on the kiosk.
        call.body["fields"] = self._valid_fields(item, dict(call.body.get("fields") or {}))
        ctx = self._context(conn, call, name)
        order_id = ctx.payment_order_id
        if order_id:
            rule = payments.consume(conn, order_id, ctx.now, _terminal(call))
            if rule is not None:
                raise Refusal(rule, "本业务的费用尚未支付成功。", "The fee for this service has not been paid.",
                              "请重新缴费或到窗口办理。", "Please pay again or go to a service counter.")
        result = handler(ctx) or {}
        reference = result.get("reference") or ctx.new_reference("R")
        document = result.get("document")
        if document is None and ctx.issued:
            document = ctx.issued[-1]
        terminal = call.caller.terminal_id if call.caller else None
        record_effect(conn, terminal_id=terminal, idempotency_key=call.idempotency_key, kind="operation",
                      operation=name, reference=reference)
        for doc in ctx.issued:
            self.documents.set_reference(conn, doc["document_id"], reference)
            doc["reference"] = reference
            record_effect(conn, terminal_id=terminal, idempotency_key=call.idempotency_key, kind="document",
                          operation=name, reference=doc["document_id"])
        if order_id:
            payments.mark_consumed(conn, order_id, reference)
        return {"operation": name, "item_id": ctx.item_id, "reference": reference,
                "display": list(result.get("display", [])), "document": document,
                "data": dict(result.get("data", {}))}

    def v_outcome(self, conn: Any, call: Call) -> dict[str, Any]:
        key, terminal = call.body["idempotency_key"], _terminal(call)
        stored = conn.execute("SELECT fingerprint, status, body FROM idempotency WHERE terminal_id = ? AND key = ?",
                              (terminal, key)).fetchone()
        answer: dict[str, Any] = {"idempotency_key": key, "outcome": "not_performed", "result": None, "refusal": None}
        if stored is None:
            # Close the key: a request still on its way with it must not take effect after this answer.
            body = ApiError(409, "idempotency_conflict", "该业务编号已作废。",
                            "This idempotency key was closed: the request was not performed.").body
            conn.execute("INSERT INTO idempotency VALUES (?, ?, ?, ?, ?, ?)",
                         (terminal, key, CLOSED_KEY, 409, dumps(body), iso(now())))
            return answer
        if stored["fingerprint"] == CLOSED_KEY:
            return answer
        if not stored["fingerprint"].startswith(f"post {API_PREFIX}/operations/"):
            raise ApiError(409, "not_an_operation", "该业务编号不是业务办理请求。",
                           "This idempotency key was used for something other than an operation.")
        stored_body = json.loads(stored["body"])
        stored_body.pop(retention.EXPIRED, None)  # past the window: only what holds no personal data
        if stored["status"] == 200:
            return {**answer, "outcome": "performed", "result": stored_body}
        error = stored_body["error"]
        return {**answer, "outcome": "refused",
                "refusal": {k: error[k] for k in ("rule", "message_zh", "message_en", "where_zh", "where_en")
                            if k in error}}

    # -- views: documents ---------------------------------------------------------------------------
    def v_document(self, conn: Any, call: Call) -> dict[str, Any]:
        assert call.caller is not None  # a signed endpoint
        doc = self.documents.fetch(conn, call.args["document_id"], call.query.get("id_hash", ""), call.caller.secret)
        if doc is None:
            raise ApiError(404, "document_not_found", "未找到与本证件对应的文书。",
                           "No document was found for this ID card.")
        return doc

    def v_verify(self, conn: Any, call: Call) -> dict[str, Any]:
        return self.documents.verify(conn, call.body["qr_payload"], call.body["signature"])

    # -- views: payments ----------------------------------------------------------------------------
    def _order_call(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except payments.OrderError as exc:
            raise ApiError(exc.status, exc.code, exc.message_zh, exc.message_en) from None

    def _effect(self, conn: Any, call: Call, kind: str, reference: str) -> None:
        record_effect(conn, terminal_id=call.caller.terminal_id if call.caller else None,
                      idempotency_key=call.idempotency_key, kind=kind, operation=None, reference=reference)

    def v_order_create(self, conn: Any, call: Call) -> dict[str, Any]:
        b = call.body
        order = payments.create(conn, terminal_id=call.caller.terminal_id if call.caller else "",
                                item_id=b["item_id"], amount_fen=b["amount_fen"], reference=b["reference"],
                                description=b["description"], now=now(), ttl_s=self.settings.order_ttl_s)
        self._effect(conn, call, "payment_order", order["order_id"])
        return order

    def v_order_get(self, conn: Any, call: Call) -> dict[str, Any]:
        return self._order_call(lambda: payments.get(conn, call.args["order_id"], now(), _terminal(call)))

    def v_order_cancel(self, conn: Any, call: Call) -> dict[str, Any]:
        order, changed = self._order_call(lambda: payments.cancel(conn, call.args["order_id"], now(),
                                                                  _terminal(call)))
        if changed:
            self._effect(conn, call, "payment_cancel", order["order_id"])
        return order

    def v_order_refund(self, conn: Any, call: Call) -> dict[str, Any]:
        order, changed = self._order_call(lambda: payments.refund(conn, call.args["order_id"], now(),
                                                                  _terminal(call)))
        if changed:
            self._effect(conn, call, "payment_refund", order["order_id"])
        return order

    def v_reconcile(self, conn: Any, call: Call) -> dict[str, Any]:
        return {"orders": payments.reconcile(conn, call.body["order_ids"], now(), _terminal(call))}

    # -- views: simulator controls ------------------------------------------------------------------
    def v_sim_faults_get(self, conn: Any, call: Call) -> dict[str, Any]:
        return self.faults.snapshot()

    def v_sim_faults_set(self, conn: Any, call: Call) -> dict[str, Any]:
        try:
            return self.faults.update(call.body)
        except ValueError as exc:
            raise ApiError(400, "bad_request", "故障参数不正确。", str(exc)) from None

    def v_sim_faults_applied(self, conn: Any, call: Call) -> dict[str, Any]:
        return {"applied": self.faults.applied()}

    def v_sim_effects(self, conn: Any, call: Call) -> list[dict[str, Any]]:
        return effects(conn, call.query.get("kind"))

    def v_sim_pay(self, conn: Any, call: Call) -> dict[str, Any]:
        order = self._order_call(lambda: payments.pay(conn, call.args["order_id"], now()))
        self._effect(conn, call, "payment_paid", order["order_id"])
        return order

    def v_sim_expire(self, conn: Any, call: Call) -> dict[str, Any]:
        return self._order_call(lambda: payments.expire(conn, call.args["order_id"], now()))


    # -- views: fleet (enrollment, credentials, heartbeats) -------------------------------------------
    def v_enroll(self, conn: Any, call: Call) -> dict[str, Any]:
        assert call.caller is not None and call.caller.kind == "enrollment"

        def issue(terminal_id: str) -> Any:
            try:
                return self.ca.sign_csr(call.body["csr_pem"], terminal_id)
            except CsrRejected as exc:
                raise ApiError(400, "csr_rejected", "证书请求不合格。", f"The certificate request was refused: {exc}.")

        creds = fleet.enroll(conn, call.caller.terminal_id, call.caller.secret.hex(), issue)
        log.info("terminal %s enrolled", call.caller.terminal_id)
        return {"terminal_id": call.caller.terminal_id, **creds, "ca_pem": self.ca.cert_pem.decode("ascii"),
                "public_key": signing.public_key_b64(self.settings.private_key), "api_url": self.api_url}

    def v_rotate(self, conn: Any, call: Call) -> dict[str, Any]:
        assert call.caller is not None
        return fleet.start_rotation(conn, call.caller.terminal_id)

    def v_rotate_confirm(self, conn: Any, call: Call) -> dict[str, Any]:
        assert call.caller is not None
        result = fleet.confirm_rotation(conn, call.caller.terminal_id, call.caller.secret)
        log.info("terminal %s rotated its secret", call.caller.terminal_id)
        return result

    def v_heartbeat(self, conn: Any, call: Call) -> dict[str, Any]:
        assert call.caller is not None
        return fleet.store_heartbeat(conn, call.caller.terminal_id, call.body)

    def v_sim_enrollment_code(self, conn: Any, call: Call) -> dict[str, Any]:
        return fleet.new_enrollment_code(conn, call.body["terminal_id"], int(call.body.get("ttl_s", 86400)))

    def v_sim_terminals(self, conn: Any, call: Call) -> list[dict[str, Any]]:
        return fleet.terminal_rows(conn, self.settings.terminals)

    def v_sim_revoke(self, conn: Any, call: Call) -> dict[str, Any]:
        result = fleet.revoke(conn, call.args["terminal_id"])
        log.warning("terminal %s revoked by the operator", call.args["terminal_id"])
        return result

    def v_sim_command(self, conn: Any, call: Call) -> dict[str, Any]:
        b = call.body
        return fleet.queue_command(conn, self.settings.private_key, call.args["terminal_id"], b["kind"],
                                   dict(b.get("args") or {}), int(b.get("ttl_s", 600)))

    def v_sim_heartbeats(self, conn: Any, call: Call) -> list[dict[str, Any]]:
        return fleet.heartbeats(conn, call.query.get("terminal_id"))

    def fleet_page(self) -> Response:
        """GET /fleet: the operators' page, every terminal with its status colour (loopback only)."""
        from kiosk.backend_sim.fleet_page import render_fleet_page

        if not _is_loopback(request.remote_addr or ""):
            return Response("loopback only", status=403, mimetype="text/plain")
        with self.db.lock:
            rows = fleet.terminal_rows(self.db.conn, self.settings.terminals)
        return Response(render_fleet_page(rows, now(), request.args.get("lang", "zh_CN")), mimetype="text/html")


CLOSED_KEY = "closed"  # idempotency fingerprint of a key closed by POST /outcomes (matches no request)
LISTENER_KEY = "kiosk_sim.listener"  # WSGI environ key: which listener a request came in on


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


def _terminal(call: Call) -> str:
    """The calling terminal: payment orders are its own (an unsigned call owns none)."""
    return call.caller.terminal_id if call.caller else ""


def _is_loopback(addr: str) -> bool:
    return addr.startswith("127.") or addr == "::1"
