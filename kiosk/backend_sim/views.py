"""The simulator's views: one method per API endpoint, each given a transaction and the checked call.

A view reads and writes the simulator's SQLite database inside the transaction the pipeline
(:mod:`kiosk.backend_sim.pipeline`) opened, and answers a dict that the pipeline validates
against the OpenAPI document, stores for idempotency and signs. Item operations are
dispatched to the registry (:mod:`kiosk.backend_sim.operations`).
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Callable

from flask import Response, request

from kiosk.backend_sim import documents as docs
from kiosk.backend_sim import fleet, payments, registry, retention
from kiosk.backend_sim.ca import CsrRejected, SimCA
from kiosk.backend_sim.db import Database, dumps, effects, iso, now, record_effect
from kiosk.backend_sim.faults import FaultState
from kiosk.backend_sim.pipeline import CLOSED_KEY, ApiError, Call, is_loopback
from kiosk.backend_sim.registry import OpContext, Refusal
from kiosk.errors import FieldError, UnknownItemError
from kiosk.privacy import mask_id_number, mask_name
from kiosk.services import signing
from kiosk.services.backend import API_PREFIX
from kiosk.services.catalog import Catalog, CatalogItem

if TYPE_CHECKING:
    from kiosk.backend_sim.app import SimSettings

log = logging.getLogger("kiosk.backend_sim")

VERSION = "sim-1.0"


class SimViews:
    """The API's views and the simulator's own /sim controls (mixed into SimApp)."""

    settings: "SimSettings"
    db: Database
    faults: FaultState
    documents: docs.DocumentStore
    catalog: Catalog
    ca: SimCA
    api_url: str | None

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
        """GET /fleet: the operators' page, problems first (loopback only); ?q= searches, ?status= filters."""
        from kiosk.backend_sim.fleet_page import render_fleet_page

        if not is_loopback(request.remote_addr or ""):
            return Response("loopback only", status=403, mimetype="text/plain")
        with self.db.lock:
            rows = fleet.terminal_rows(self.db.conn, self.settings.terminals)
            codes = fleet.unused_enrollment_codes(self.db.conn)
        args = request.args
        from kiosk.backend_sim.fleet_releases import offered_releases

        page = render_fleet_page(rows, now(), args.get("lang", "zh_CN"), codes=codes, query=args.get("q", ""),
                                 status=args.get("status", ""), notice=args.get("notice", "")[:200],
                                 releases=offered_releases(self.settings.update_repo))
        return Response(page, mimetype="text/html")

    def fleet_confirm(self) -> Response:
        """GET /fleet/confirm?terminal=&kind=: ask before an action is queued (loopback only)."""
        from kiosk.backend_sim.fleet_page import ACTIONS, render_confirm_page

        if not is_loopback(request.remote_addr or ""):
            return Response("loopback only", status=403, mimetype="text/plain")
        terminal, kind = request.args.get("terminal", ""), request.args.get("kind", "")
        if kind not in ACTIONS or not terminal:
            return Response("unknown action", status=400, mimetype="text/plain")
        return Response(render_confirm_page(terminal, kind, request.args.get("lang", "zh_CN")), mimetype="text/html")

    def fleet_command(self) -> Response:
        """POST /fleet/commands (the confirmation form): queue the action for the terminal, back to the page."""
        from urllib.parse import urlencode

        from kiosk.backend_sim.fleet_page import ACTION_TITLES, ACTIONS
        from kiosk.i18n import translate

        if not is_loopback(request.remote_addr or ""):
            return Response("loopback only", status=403, mimetype="text/plain")
        form = request.form
        terminal, kind, lang = form.get("terminal", ""), form.get("kind", ""), form.get("lang", "zh_CN")
        if kind not in ACTIONS or not terminal or form.get("confirm") != "yes":
            return Response("confirm the action on /fleet/confirm first", status=400, mimetype="text/plain")
        with self.db.transaction() as conn:
            queued = fleet.queue_command(conn, self.settings.private_key, terminal, kind, {})
        log.warning("operator queued %s for terminal %s (%s)", kind, terminal, queued["command_id"])
        notice = translate("Queued \u201c{action}\u201d for terminal {terminal}; it is sent with the next heartbeat "
                           "answer.", lang).format(action=translate(ACTION_TITLES[kind], lang), terminal=terminal)
        return Response(status=303, headers={"Location": "/fleet?" + urlencode({"lang": lang, "notice": notice})})


def _terminal(call: Call) -> str:
    """The calling terminal: payment orders are its own (an unsigned call owns none)."""
    return call.caller.terminal_id if call.caller else ""

