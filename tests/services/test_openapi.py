"""The OpenAPI document: valid, and in step with the simulator's routes."""
from __future__ import annotations

import re

import yaml
from openapi_spec_validator import validate

from kiosk.services.backend import API_PREFIX, OPENAPI_PATH
from kiosk.backend_sim.app import SimApp, SimSettings


def _document() -> dict:
    return yaml.safe_load(OPENAPI_PATH.read_text(encoding="utf-8"))


def test_document_is_a_valid_openapi_document():
    validate(_document())  # raises on any violation of the OpenAPI 3.1 schema


def test_every_operation_documents_its_error_answer():
    for path, item in _document()["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            assert "200" in codes, (method, path)
            assert "default" in codes or {"401", "500"} <= codes, (method, path)


def test_signed_operations_require_the_signature_headers_and_posts_an_idempotency_key():
    doc = _document()
    params = doc["components"]["parameters"]
    for path, item in doc["paths"].items():
        if path.startswith("/sim/") or path == "/health":
            continue
        for method, op in item.items():
            names = {params[p["$ref"].split("/")[-1]]["name"] if "$ref" in p else p["name"]
                     for p in op.get("parameters", [])}
            required = {"X-Terminal-Id", "X-Timestamp", "X-Nonce", "X-Signature"}
            if method == "post":
                required.add("Idempotency-Key")
            assert required <= names, (method, path, required - names)


def test_simulator_routes_and_document_paths_are_the_same_set():
    app = SimApp(SimSettings())
    try:
        routes = set()
        for rule in app.flask.url_map.iter_rules():
            if rule.endpoint == "static" or not rule.rule.startswith(API_PREFIX):
                continue  # pages outside the API (the operators' /fleet page) are HTML, not in the document
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule).removeprefix(API_PREFIX)
            for method in rule.methods - {"HEAD", "OPTIONS"}:
                routes.add((method.lower(), path))
        documented = {(m, p) for p, item in _document()["paths"].items() for m in item}
        assert routes == documented
    finally:
        app.db.close()
