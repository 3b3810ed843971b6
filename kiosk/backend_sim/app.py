"""The simulator's Flask application: its state, its settings and the routes of openapi.yaml.

:class:`SimApp` holds the database, faults, nonces, document keys, CA and enrolled terminals,
and maps each route to a view (:mod:`kiosk.backend_sim.views`) run through the request
pipeline (:mod:`kiosk.backend_sim.pipeline`: checks, idempotency, faults, signing).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask import Flask, Response

from kiosk.backend_sim import documents as docs
from kiosk.backend_sim import fleet, limits, retention, update_repo
from kiosk.backend_sim.ca import SimCA
from kiosk.backend_sim.db import Database, now
from kiosk.backend_sim.faults import FaultState
from kiosk.backend_sim.pipeline import ApiError, RequestPipeline, View
from kiosk.backend_sim.security import NonceStore
from kiosk.backend_sim.views import SimViews
from kiosk.config import DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.services import signing
from kiosk.services.backend import API_PREFIX, api_spec
from kiosk.services.catalog import Catalog


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


class SimApp(RequestPipeline, SimViews):
    """The simulator's state, its routes, and the pipeline every request runs through."""

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
        app.add_url_rule("/fleet/confirm", "fleet_confirm", self.fleet_confirm, methods=["GET"])
        app.add_url_rule("/fleet/commands", "fleet_command", self.fleet_command, methods=["POST"])
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
