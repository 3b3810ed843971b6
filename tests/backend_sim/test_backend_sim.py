"""The backend simulator on the wire: signature, replay, schema, idempotency, faults, seed data.

Requests here are built and signed by hand with `requests`, so what is tested is the server,
not the adapter. Operations of the real items are helper B's; the few used here are
registered by this module and served by an in-process server (still over real HTTP).
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.config import DEMO_HMAC_SECRET, DEMO_TERMINAL_ID
from kiosk.hardware.simulators.cards import DEMO_CARDS
from kiosk.services import signing
from kiosk.backend_sim import registry, seed
from kiosk.backend_sim.server import SimServer, serve
from kiosk.services.catalog import Catalog, CatalogItem, Choice, FieldSpec

SECRET = DEMO_HMAC_SECRET.encode()
WANG = "37010219850315123X"


# --- test-only operations, and the items they serve ----------------------------------------------
def _test_item(item_id: str, operation: str, *fields: FieldSpec) -> CatalogItem:
    return replace(Catalog.load().get("G05"), id=item_id, operation=operation, fields=fields, rating=None)


NOTE_ITEM = _test_item("Z91", "test_sim_note", FieldSpec("text", "备注", "Note", "text", required=False),
                       FieldSpec("refuse", "拒绝", "Refuse", "choice", required=False,
                                 choices=(Choice("yes", "是", "Yes"),)))
BROKEN_ITEM = _test_item("Z92", "test_sim_broken")


@registry.operation("test_sim_note", items=(NOTE_ITEM,))
def _note(ctx: registry.OpContext) -> dict[str, Any]:
    ctx.db.execute("INSERT INTO test_notes VALUES (?)", (ctx.fields.get("text", ""),))
    if ctx.fields.get("refuse"):
        ctx.refuse("test_rule", "测试拒绝。", "Refused for the test.", "请到窗口办理。", "Go to a counter.")
    return {"display": [{"label_zh": "备注", "label_en": "Note", "value": str(ctx.fields.get("text", ""))}],
            "data": {"resident_known": ctx.resident is not None}}


@registry.operation("test_sim_broken", items=(BROKEN_ITEM,))
def _broken(ctx: registry.OpContext) -> dict[str, Any]:
    ctx.db.execute("INSERT INTO test_notes VALUES ('broken')")
    return {"display": [{"label_zh": "x"}]}  # breaks the DisplayLine schema: a simulator bug


@registry.lookup("test_sim_slots")
def _slots(ctx: registry.OpContext) -> list[dict[str, Any]]:
    return [{"value": "09:00", "label_zh": "上午9点", "label_en": "9 am", "amount_fen": 0}]


# --- helpers -----------------------------------------------------------------------------------
def signed(method: str, url: str, path: str, body: Any = None, *, key: str | None = None,
           timestamp: int | None = None, secret: bytes = SECRET, terminal: str = DEMO_TERMINAL_ID,
           nonce: str | None = None) -> requests.PreparedRequest:
    """A signed request, prepared (so the exact bytes can be sent again); ``key=""`` sends a POST without a key."""
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"X-Terminal-Id": terminal, "Content-Type": "application/json", "Host": signing.host_header(url)}
    if method == "POST" and key != "":
        headers["Idempotency-Key"] = key or f"t-{uuid.uuid4().hex}"
    headers.update(signing.sign_request(secret, parts_of(method, url, path, data, headers), timestamp=timestamp,
                                        nonce=nonce))
    return requests.Request(method, url + path, data=data or None, headers=headers).prepare()


def parts_of(method: str, url: str, path: str, data: bytes, headers: dict[str, str]) -> signing.RequestParts:
    """What the signature of a request to ``url + path`` with ``headers`` covers."""
    return signing.RequestParts(method, signing.host_header(url), path, data, headers.get("Content-Type", ""),
                                headers.get("Idempotency-Key", ""))


def send(req: requests.PreparedRequest) -> requests.Response:
    with requests.Session() as s:
        return s.send(req, timeout=10)


def error_code(resp: requests.Response) -> str:
    return resp.json()["error"]["code"]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    server = serve("127.0.0.1", 0)
    with server.app.db.lock:
        server.app.db.conn.execute("CREATE TABLE test_notes (text TEXT)")
    try:
        yield server
    finally:
        server.stop()


def effects(url: str, kind: str | None = None) -> list[dict[str, Any]]:
    return requests.get(f"{url}/api/v1/sim/effects", params={"kind": kind} if kind else None, timeout=5).json()


# --- the subprocess ---------------------------------------------------------------------------------
def test_cli_simulator_answers_health_signed_for_a_signed_request(backend_sim):
    req = signed("GET", backend_sim.url, "/api/v1/health")
    resp = send(req)
    assert resp.status_code == 200 and resp.json()["status"] == "ok"
    signing.verify_response(SECRET, 200, req.headers["X-Nonce"], resp.content,
                            timestamp=resp.headers["X-Timestamp"], signature=resp.headers["X-Signature"])


def test_cli_simulator_stops_on_sigterm_by_pid(fresh_backend_sim):
    fresh_backend_sim.stop()
    assert fresh_backend_sim.proc.returncode == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{fresh_backend_sim.url}/api/v1/health", timeout=2)


def test_database_file_survives_a_restart(tmp_path: Path, start_backend_sim, make_backend_client):
    db = str(tmp_path / "sim.sqlite3")
    first = start_backend_sim(db)
    order = make_backend_client(first.url).create_order("T03", 5000, "REF-RESTART", "fine")
    first.stop()
    second = start_backend_sim(db)
    again = make_backend_client(second.url).get_order(order["order_id"])
    assert again["order_id"] == order["order_id"] and again["status"] == "pending"
    assert len(second.effects("payment_order")) == 1


# --- authentication -----------------------------------------------------------------------------------
def test_replayed_request_is_rejected(sim):
    req = signed("POST", sim.url, "/api/v1/identity/lookup", {"id_number": WANG, "card_type": "resident"})
    assert send(req).status_code == 200
    again = send(req)  # the very same signed bytes
    assert again.status_code == 401 and error_code(again) == "replayed_nonce"


def test_a_request_captured_before_a_restart_is_refused_after_it(tmp_path: Path):
    db = str(tmp_path / "sim.sqlite3")
    first = serve("127.0.0.1", 0, db_path=db)
    port = first.port
    try:
        captured = signed("POST", first.url, "/api/v1/identity/lookup", {"id_number": WANG, "card_type": "resident"})
        assert send(captured).status_code == 200
    finally:
        first.stop()
    second = serve("127.0.0.1", port, db_path=db)  # the same backend, restarted
    try:
        replayed = send(captured)
        assert replayed.status_code == 401 and error_code(replayed) == "replayed_nonce"
        fresh = signed("POST", second.url, "/api/v1/identity/lookup", {"id_number": WANG, "card_type": "resident"})
        assert send(fresh).status_code == 200
    finally:
        second.stop()


def test_a_stale_request_is_refused_without_spending_its_nonce(sim):
    nonce = signing.new_nonce()
    stale = send(signed("GET", sim.url, "/api/v1/payments/orders/PO0000000003", timestamp=int(time.time()) - 301,
                        nonce=nonce))
    assert stale.status_code == 401 and error_code(stale) == "stale_timestamp"
    with sim.app.db.lock:
        stored = sim.app.db.conn.execute("SELECT COUNT(*) FROM nonces WHERE nonce = ?", (nonce,)).fetchone()[0]
    assert stored == 0
    # The nonce was not spent: the terminal's real request with it still goes through.
    assert send(signed("GET", sim.url, "/api/v1/payments/orders/PO0000000003", nonce=nonce)).status_code == 404
    with sim.app.db.lock:
        row = sim.app.db.conn.execute("SELECT expires_at FROM nonces WHERE nonce = ?", (nonce,)).fetchone()
    assert abs(row["expires_at"] - (time.time() + sim.app.settings.max_skew_s)) < 30  # kept only while it could pass


def test_nonces_whose_requests_left_the_window_are_pruned(tmp_path: Path):
    from kiosk.backend_sim.db import Database
    from kiosk.backend_sim.security import NonceStore

    db = Database.open(str(tmp_path / "n.sqlite3"))
    store = NonceStore(db, 300)
    assert store.first_use("T1", "a" * 32, int(time.time()) - 400)  # its request left the window 100 s ago
    assert not store.first_use("T1", "a" * 32, int(time.time()) - 400)
    store._next_prune = 0.0  # the next use prunes
    assert store.first_use("T1", "b" * 32, int(time.time()))
    assert [r[0] for r in db.conn.execute("SELECT nonce FROM nonces ORDER BY nonce")] == ["b" * 32]
    db.close()


def test_a_signed_request_sent_to_another_server_is_refused(sim, tmp_path: Path):
    other = serve("127.0.0.1", 0)  # another backend (another port) that knows the same terminal
    try:
        meant_for_other = signed("POST", other.url, "/api/v1/identity/lookup",
                                 {"id_number": WANG, "card_type": "resident"})
        meant_for_other.url = meant_for_other.url.replace(other.url, sim.url)
        resp = send(meant_for_other)
        assert resp.status_code == 401 and error_code(resp) == "wrong_host"
    finally:
        other.stop()


def test_stale_timestamp_is_rejected(sim):
    req = signed("GET", sim.url, "/api/v1/payments/orders/PO0000000000", timestamp=int(time.time()) - 301)
    resp = send(req)
    assert resp.status_code == 401 and error_code(resp) == "stale_timestamp"


def test_tampered_body_wrong_secret_unknown_terminal_and_unsigned_are_rejected(sim):
    req = signed("POST", sim.url, "/api/v1/identity/lookup", {"id_number": WANG, "card_type": "resident"})
    req.body = req.body.replace(b"X", b"0")
    assert error_code(send(req)) == "bad_signature"
    wrong = signed("GET", sim.url, "/api/v1/payments/orders/PO0000000001", secret=b"guess")
    assert error_code(send(wrong)) == "bad_signature"
    stranger = signed("GET", sim.url, "/api/v1/payments/orders/PO0000000001", terminal="JN-UNKNOWN-9")
    resp = send(stranger)
    assert resp.status_code == 401 and error_code(resp) == "unknown_terminal"
    plain = requests.post(f"{sim.url}/api/v1/identity/lookup", json={"id_number": WANG, "card_type": "resident"})
    assert plain.status_code == 401 and error_code(plain) == "missing_signature"


@pytest.mark.parametrize("header", ["Idempotency-Key", "Content-Type", "Host"])
def test_a_signed_header_changed_on_the_way_is_rejected(sim, header):
    order = {"item_id": "T03", "amount_fen": 100, "reference": "REF-BENT", "description": "fine"}
    assert send(signed("POST", sim.url, "/api/v1/payments/orders", order)).status_code == 200  # unchanged: fine
    req = signed("POST", sim.url, "/api/v1/payments/orders", order)
    changed = {"Idempotency-Key": f"t-{uuid.uuid4().hex}",  # another key: a second effect
               "Content-Type": "application/json; charset=latin-1",
               "Host": f"127.0.0.1:{sim.port + 1}"}[header]  # the same host on another port
    assert req.headers[header] != changed
    req.headers[header] = changed
    resp = send(req)
    assert resp.status_code == 401 and error_code(resp) == "bad_signature"


def test_a_host_header_without_its_port_is_rejected(sim):
    req = signed("GET", sim.url, "/api/v1/payments/orders/PO0000000002")
    req.headers["Host"] = "127.0.0.1"
    resp = send(req)
    assert resp.status_code == 401 and error_code(resp) == "bad_signature"


@pytest.mark.parametrize("case", ["bad_signature", "stale_timestamp", "replayed_nonce", "wrong_host"])
def test_error_answers_to_callers_not_authenticated_are_not_signed(sim, case):
    # An eavesdropper that names the demo terminal and the nonce of a request it saw must not get a
    # signed refusal it could put in front of that request's real answer.
    path = "/api/v1/payments/orders/PO0000000004"
    if case == "bad_signature":
        req = signed("GET", sim.url, path, secret=b"a guess")
    elif case == "stale_timestamp":
        req = signed("GET", sim.url, path, timestamp=int(time.time()) - 3600)
    elif case == "replayed_nonce":
        req = signed("GET", sim.url, path)
        first = send(req)
        assert first.status_code == 404 and "X-Signature" in first.headers  # authenticated: signed
    else:
        req = signed("GET", f"http://127.0.0.1:{sim.port + 1}", path)  # signed for another port ...
        req.url = sim.url + path  # ... and sent here
    resp = send(req)
    assert resp.status_code == 401 and error_code(resp) == case
    assert "X-Signature" not in resp.headers and "X-Timestamp" not in resp.headers


def test_signature_covers_the_query_string(sim):
    req = signed("GET", sim.url, "/api/v1/documents/D0000000000?id_hash=" + "0" * 64)
    req.url = req.url.replace("0" * 64, "1" * 64)
    assert error_code(send(req)) == "bad_signature"


def test_health_is_open_unsigned(sim):
    resp = requests.get(f"{sim.url}/api/v1/health", timeout=5)
    assert resp.status_code == 200 and "X-Signature" not in resp.headers


# --- schema -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"id_number": WANG},                                                 # missing card_type
    {"id_number": WANG, "card_type": "library_card"},                     # not in the enum
    {"id_number": "37010219850315123x", "card_type": "resident"},         # lower-case check char
    {"id_number": WANG, "card_type": "resident", "extra": 1},             # unknown property
])
def test_request_outside_the_document_is_a_typed_400(sim, body):
    resp = send(signed("POST", sim.url, "/api/v1/identity/lookup", body))
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["code"] == "bad_request" and err["message_zh"] and err["message_en"] and err["detail"]


def test_post_without_idempotency_key_is_a_400(sim):
    req = signed("POST", sim.url, "/api/v1/identity/lookup", {"id_number": WANG, "card_type": "resident"}, key="")
    assert "Idempotency-Key" not in req.headers
    assert send(req).status_code == 400


def test_answer_that_breaks_the_document_is_a_500_and_leaves_no_trace(sim):
    before = len(effects(sim.url))
    resp = send(signed("POST", sim.url, "/api/v1/operations/test_sim_broken", {"item_id": "Z92", "fields": {}}))
    assert resp.status_code == 500 and error_code(resp) == "internal_error"
    assert len(effects(sim.url)) == before
    assert sim.app.db.conn.execute("SELECT count(*) FROM test_notes WHERE text = 'broken'").fetchone()[0] == 0


# --- operations, lookups, idempotency --------------------------------------------------------------------
def test_operation_runs_once_per_key_and_replays_its_answer(sim):
    key = f"k-{uuid.uuid4().hex}"
    body = {"item_id": "Z91", "id_number": WANG, "fields": {"text": "once"}}
    first = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body, key=key))
    second = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body, key=key))
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["data"] == {"resident_known": True}
    assert first.headers["X-Signature"] != second.headers["X-Signature"]  # re-signed for the new nonce
    mine = [e for e in effects(sim.url) if e["idempotency_key"] == key]
    assert [(e["kind"], e["operation"]) for e in mine] == [("operation", "test_sim_note")]
    assert mine[0]["reference"] == first.json()["reference"]


def test_same_key_other_body_is_an_idempotency_conflict(sim):
    key = f"k-{uuid.uuid4().hex}"
    send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", {"item_id": "Z91", "fields": {"text": "a"}},
                key=key))
    resp = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note",
                       {"item_id": "Z91", "fields": {"text": "b"}}, key=key))
    assert resp.status_code == 409 and error_code(resp) == "idempotency_conflict"


def test_refusal_is_422_with_rule_and_rolls_back_the_handler(sim):
    key = f"k-{uuid.uuid4().hex}"
    body = {"item_id": "Z91", "fields": {"text": "refused-note", "refuse": "yes"}}
    resp = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body, key=key))
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert (err["code"], err["rule"], err["where_en"]) == ("refused", "test_rule", "Go to a counter.")
    rows = sim.app.db.conn.execute("SELECT count(*) FROM test_notes WHERE text = 'refused-note'").fetchone()[0]
    assert rows == 0
    assert not [e for e in effects(sim.url) if e["idempotency_key"] == key]
    replay = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body, key=key))
    assert replay.status_code == 422 and replay.json() == resp.json()


def _operate(sim: SimServer, operation: str, item_id: str, fields: dict[str, Any]) -> requests.Response:
    return send(signed("POST", sim.url, f"/api/v1/operations/{operation}",
                       {"item_id": item_id, "id_number": WANG, "fields": fields}))


def test_a_form_value_outside_the_catalog_rules_is_a_400_and_nothing_is_issued(sim):
    before = len(effects(sim.url, "document"))
    resp = _operate(sim, "household_certificate", "H01", {"purpose": "证明此人无任何违法记录"})  # not a purpose
    assert resp.status_code == 400 and error_code(resp) == "invalid_field"
    assert resp.json()["error"]["field"] == "purpose"
    for fields in ({}, {"purpose": "employment", "note": "x"}, {"purpose": ["employment"]}):
        bad = _operate(sim, "household_certificate", "H01", fields)
        assert bad.status_code == 400 and error_code(bad) == "invalid_field", fields
    assert len(effects(sim.url, "document")) == before
    ok = _operate(sim, "household_certificate", "H01", {"purpose": "employment"})
    assert ok.status_code == 200 and ok.json()["document"]["content"]["purpose"] == "就业"


def test_an_operation_of_another_item_or_an_unknown_item_is_a_400(sim):
    before = len(effects(sim.url, "operation"))
    other = _operate(sim, "no_criminal_record_certificate", "H01", {"purpose": "employment"})
    assert other.status_code == 400 and error_code(other) == "operation_not_for_item"
    unknown = _operate(sim, "household_certificate", "X99", {"purpose": "employment"})
    assert unknown.status_code == 400 and error_code(unknown) == "unknown_item"
    assert len(effects(sim.url, "operation")) == before


def test_unknown_operation_and_lookup_are_404(sim):
    resp = send(signed("POST", sim.url, "/api/v1/operations/no_such_op", {"item_id": "G05", "fields": {}}))
    assert resp.status_code == 404 and error_code(resp) == "unknown_operation"
    resp = send(signed("POST", sim.url, "/api/v1/lookups/no_such_source", {"item_id": "G05", "fields": {}}))
    assert resp.status_code == 404 and error_code(resp) == "unknown_lookup"


def test_lookup_returns_the_handlers_options(sim):
    resp = send(signed("POST", sim.url, "/api/v1/lookups/test_sim_slots", {"item_id": "G01", "fields": {}}))
    assert resp.json() == {"options": [{"value": "09:00", "label_zh": "上午9点", "label_en": "9 am",
                                        "amount_fen": 0}]}


def test_operation_with_an_unpaid_order_is_refused(sim):
    order = send(signed("POST", sim.url, "/api/v1/payments/orders",
                        {"item_id": "H18", "amount_fen": 2000, "reference": "R", "description": "fee"})).json()
    body = {"item_id": "Z91", "fields": {"text": "paid?"}, "payment_order_id": order["order_id"]}
    resp = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body))
    assert resp.status_code == 422 and resp.json()["error"]["rule"] == "payment_not_paid"
    requests.post(f"{sim.url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=5).raise_for_status()
    assert send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body)).status_code == 200
    again = send(signed("POST", sim.url, "/api/v1/operations/test_sim_note", body))
    assert again.json()["error"]["rule"] == "payment_already_used"


# --- faults ----------------------------------------------------------------------------------------------
def test_fault_knobs_round_trip_and_reject_unknown_ones(sim):
    r = requests.post(f"{sim.url}/api/v1/sim/faults", json={"latency_ms": 5, "mode": "garbage"}, timeout=5).json()
    assert (r["latency_ms"], r["mode"]) == (5, "garbage")
    assert requests.get(f"{sim.url}/api/v1/sim/faults", timeout=5).json() == r
    bad = requests.post(f"{sim.url}/api/v1/sim/faults", json={"explode": True}, timeout=5)
    assert bad.status_code == 400
    reset = requests.post(f"{sim.url}/api/v1/sim/faults", json={"reset": True}, timeout=5).json()
    assert reset["latency_ms"] == 0 and reset["mode"] == "error"


def test_fail_next_error_fails_exactly_n_requests_before_any_effect(fresh_backend_sim):
    fresh_backend_sim.set_faults(fail_next=2, mode="error")
    body = {"item_id": "T03", "amount_fen": 100, "reference": "R", "description": "d"}
    codes = [send(signed("POST", fresh_backend_sim.url, "/api/v1/payments/orders", body)).status_code
             for _ in range(3)]
    assert codes == [503, 503, 200]
    assert len(fresh_backend_sim.effects("payment_order")) == 1


def test_random_error_rate_is_seeded_and_deterministic(sim):
    def run() -> list[int]:
        requests.post(f"{sim.url}/api/v1/sim/faults", json={"reset": True, "error_rate": 0.5, "seed": 7}, timeout=5)
        return [requests.get(f"{sim.url}/api/v1/health", timeout=5).status_code for _ in range(12)]

    try:
        first, second = run(), run()
    finally:
        requests.post(f"{sim.url}/api/v1/sim/faults", json={"reset": True}, timeout=5)
    assert first == second and 503 in first and 200 in first


# --- seed data --------------------------------------------------------------------------------------------
def _seeded() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    seed.seed_core(conn)
    return conn


def test_every_demo_card_holder_is_a_resident_with_a_valid_number():
    conn = _seeded()
    numbers = {r["id_number"] for r in conn.execute("SELECT id_number FROM residents")}
    assert {c.id_number for c in DEMO_CARDS} <= numbers
    assert all(seed.gb11643_valid(n) for n in numbers)
    assert {r.id_number for r in seed.DEMO_RESIDENTS} == {c.id_number for c in DEMO_CARDS}


def test_seeded_people_carry_the_rules_they_exercise():
    conn = _seeded()
    wang_household = {r["id_number"] for r in conn.execute(
        "SELECT id_number FROM household_members WHERE household_id = "
        "(SELECT household_id FROM residents WHERE id_number = ?)", (WANG,))}
    assert wang_household == {seed.WANG_XIAOMING, seed.SUN_LI, seed.WANG_SIQI}
    assert conn.execute("SELECT former_name FROM former_names WHERE id_number = ?",
                        (seed.LI_XIUYING,)).fetchone()[0] == "李秀芳"
    zhang = conn.execute("SELECT m.status, m.deregistration_reason, m.death_date, m.death_certificate_no, r.status"
                         " FROM household_members m JOIN residents r USING (id_number) WHERE id_number = ?",
                         (seed.ZHANG_JIANGUO,)).fetchone()
    assert tuple(zhang) == ("deregistered", "death", seed.ZHANG_JIANGUO_DEATH_DATE,
                            seed.ZHANG_JIANGUO_DEATH_CERTIFICATE, "deceased")
    assert conn.execute("SELECT relation FROM relationships WHERE id_number = ? AND relative_id_number = ?",
                        (seed.LI_XIUYING, seed.ZHANG_JIANGUO)).fetchone()[0] == "spouse"
    flags = {r["id_number"]: r for r in conn.execute("SELECT * FROM residents")}
    assert flags[seed.ZHANG_WEI]["criminal_record"] == 1
    assert flags[seed.ZHAO_GUOQIANG]["case_under_review"] == 1
    assert (flags[seed.LIU_FANG]["hukou_city"], flags[seed.LIU_FANG]["living_city"]) == ("郑州市", "济南市")
    assert [n for n, r in flags.items() if r["status"] == "active" and not r["face_match"]] == [seed.LIU_FANG]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=200),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                                   lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                                   max_leaves=12).map(lambda v: json.dumps(v).encode())))
def test_any_signed_garbage_body_gets_a_typed_4xx_never_a_crash(sim, body):
    req = signed("POST", sim.url, "/api/v1/payments/orders")
    req.prepare_body(body, None)
    req.headers.update(signing.sign_request(SECRET, parts_of("POST", sim.url, "/api/v1/payments/orders", body,
                                                             dict(req.headers))))
    resp = send(req)
    assert 400 <= resp.status_code < 500, resp.content
    assert resp.json()["error"]["message_zh"]


def test_cli_faults_at_start_apply_to_the_first_requests(start_backend_sim):
    sim = start_backend_sim(faults={"fail_next": 2, "mode": "error"})
    codes = [requests.get(f"{sim.url}/api/v1/health", timeout=5).status_code for _ in range(3)]
    assert codes == [503, 503, 200]


def test_expired_order_can_still_be_paid_late(sim):
    order = send(signed("POST", sim.url, "/api/v1/payments/orders",
                        {"item_id": "H18", "amount_fen": 2000, "reference": "R", "description": "fee"})).json()
    expired = requests.post(f"{sim.url}/api/v1/sim/payments/{order['order_id']}/expire", timeout=5).json()
    assert expired["status"] == "expired"
    polled = send(signed("GET", sim.url, f"/api/v1/payments/orders/{order['order_id']}")).json()
    assert polled["status"] == "expired"
    late = requests.post(f"{sim.url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=5).json()
    assert late["status"] == "paid" and late["paid_at"]
    twice = requests.post(f"{sim.url}/api/v1/sim/payments/{order['order_id']}/pay", timeout=5)
    assert twice.status_code == 409 and twice.json()["error"]["code"] == "order_already_paid"


# --- payment orders: whose they are, and ids nobody can guess ---------------------------------------------
OTHER = "JN-OTHER-0002"
OTHER_SECRET = b"another-terminal-secret"


def test_payment_orders_belong_to_the_terminal_that_created_them():
    server = serve("127.0.0.1", 0, terminals={DEMO_TERMINAL_ID: SECRET, OTHER: OTHER_SECRET})
    try:
        with server.app.db.lock:
            server.app.db.conn.execute("CREATE TABLE test_notes (text TEXT)")
        url = server.url
        order = send(signed("POST", url, "/api/v1/payments/orders",
                            {"item_id": "H18", "amount_fen": 2000, "reference": "R", "description": "fee"})).json()
        oid = order["order_id"]
        requests.post(f"{url}/api/v1/sim/payments/{oid}/pay", timeout=5).raise_for_status()

        def other(method: str, path: str, body: Any = None) -> requests.Response:
            return send(signed(method, url, path, body, secret=OTHER_SECRET, terminal=OTHER))

        # Another terminal cannot read, cancel, refund, reconcile or spend it: for it the order does not exist.
        for resp in (other("GET", f"/api/v1/payments/orders/{oid}"),
                     other("POST", f"/api/v1/payments/orders/{oid}/cancel", {}),
                     other("POST", f"/api/v1/payments/orders/{oid}/refund", {})):
            assert resp.status_code == 404 and error_code(resp) == "order_not_found", resp.text
        assert other("POST", "/api/v1/payments/reconcile", {"order_ids": [oid]}).json() == {"orders": []}
        spend = other("POST", "/api/v1/operations/test_sim_note",
                      {"item_id": "Z91", "fields": {"text": "x"}, "payment_order_id": oid})
        assert spend.status_code == 422 and spend.json()["error"]["rule"] == "payment_unknown"
        # The terminal that made it still can, and it is still paid and unspent.
        mine = send(signed("GET", url, f"/api/v1/payments/orders/{oid}"))
        assert mine.status_code == 200 and mine.json()["status"] == "paid"
        used = send(signed("POST", url, "/api/v1/operations/test_sim_note",
                           {"item_id": "Z91", "fields": {"text": "x"}, "payment_order_id": oid}))
        assert used.status_code == 200
    finally:
        server.stop()


def test_order_ids_are_not_guessable(sim):
    ids = [send(signed("POST", sim.url, "/api/v1/payments/orders",
                       {"item_id": "T03", "amount_fen": 100, "reference": "R", "description": "d"})).json()["order_id"]
           for _ in range(3)]
    # 128 random bits each: no date, no counter, nothing shared between neighbours.
    for oid in ids:
        assert oid.startswith("PO") and len(oid) == 34 and int(oid[2:], 16) >= 0
    assert len({oid[2:10] for oid in ids}) == 3 and len({oid[-8:] for oid in ids}) == 3
    stamp = time.strftime("%Y%m%d")
    assert not any(stamp in oid for oid in ids)


def test_lost_answers_are_done_and_stored_and_each_loss_is_counted(fresh_sim):
    url = fresh_sim.url
    with fresh_sim.app.db.lock:
        fresh_sim.app.db.conn.execute("CREATE TABLE test_notes (text TEXT)")
    knobs = requests.post(f"{url}/api/v1/sim/faults", json={"lose_answers_of": "test_sim_note", "lose_answers": 2},
                          timeout=5).json()
    assert (knobs["lose_answers_of"], knobs["lose_answers"]) == ("test_sim_note", 2)
    key = f"lost-{uuid.uuid4().hex}"
    for _ in range(2):  # done, then its answer lost; the replay's answer lost too
        with pytest.raises(requests.ConnectionError):
            send(signed("POST", url, "/api/v1/operations/test_sim_note", {"item_id": "Z91", "fields": {"text": "kept"}},
                        key=key))
    other = send(signed("POST", url, "/api/v1/lookups/test_sim_slots", {"item_id": "H01", "fields": {}}))
    assert other.status_code == 200  # only that operation's answers are lost
    fresh = signed("POST", url, "/api/v1/operations/test_sim_note", {"item_id": "Z91", "fields": {"text": "kept"}},
                   key=key)
    answer = send(fresh)
    assert answer.status_code == 200 and answer.json()["display"][0]["value"] == "kept"
    assert [e["kind"] for e in effects(url)] == ["operation"]  # done once, answered from the store
    applied = requests.get(f"{url}/api/v1/sim/faults/applied", timeout=5).json()
    assert applied == {"applied": {"answer_lost": 2}}
    bad = requests.post(f"{url}/api/v1/sim/faults", json={"lose_answers": -2}, timeout=5)
    assert bad.status_code == 400
def test_a_database_from_before_keyed_lookups_keeps_its_residents_documents_reprintable(tmp_path: Path):
    import hashlib

    db_path = tmp_path / "old.sqlite3"
    first = serve("127.0.0.1", 0, db_path=str(db_path))
    try:
        issued = _operate(first, "household_certificate", "H01", {"purpose": "employment"}).json()["document"]
    finally:
        first.stop()
    with sqlite3.connect(db_path) as conn:  # as the table was: an unsalted sha256 of the holder's number
        conn.execute("ALTER TABLE documents ADD COLUMN id_hash TEXT NOT NULL DEFAULT ''")
        conn.execute("UPDATE documents SET id_hash = ?", (hashlib.sha256(WANG.encode()).hexdigest(),))
        conn.execute("ALTER TABLE documents DROP COLUMN holder_id")
    second = serve("127.0.0.1", 0, db_path=str(db_path))
    try:
        columns = {r[1] for r in second.app.db.conn.execute("PRAGMA table_info(documents)")}
        assert "holder_id" in columns and "id_hash" not in columns
        query = signing.document_lookup_hash(SECRET, WANG)
        resp = send(signed("GET", second.url, f"/api/v1/documents/{issued['document_id']}?id_hash={query}"))
        assert resp.status_code == 200 and resp.json()["verification_code"] == issued["verification_code"]
    finally:
        second.stop()


def test_reseed_records_undoes_what_residents_did_and_keeps_the_simulator_state(tmp_path: Path) -> None:
    from kiosk.backend_sim.db import Database

    db = Database.open(str(tmp_path / "r.sqlite3"))
    try:
        with db.transaction() as conn:
            conn.execute("UPDATE violations SET status = 'paid' WHERE violation_id = 'WF0001'")
            conn.execute("DELETE FROM household_members")  # rows other tables' rows point at go too
            conn.execute("INSERT INTO meta VALUES ('marker', 'kept')")
        db.reseed_records()
        status = db.conn.execute("SELECT status FROM violations WHERE violation_id = 'WF0001'").fetchone()[0]
        members = db.conn.execute("SELECT COUNT(*) FROM household_members").fetchone()[0]
        marker = db.conn.execute("SELECT value FROM meta WHERE key = 'marker'").fetchone()
        assert status == "unhandled"
        assert members > 0
        assert marker is not None and marker[0] == "kept"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        db.close()
