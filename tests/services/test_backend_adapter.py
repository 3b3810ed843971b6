"""The adapter against the live simulator over HTTP: answers, typed failures, retries, payments, documents."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
import threading
import uuid
from dataclasses import replace
from typing import Any, Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from werkzeug.serving import make_server

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY, DEMO_HMAC_SECRET, DEMO_TERMINAL_ID, from_dict
from kiosk.errors import (BackendError, BackendProtocolError, BackendRefused, BackendRejected, BackendServerError,
                          BackendTimeout, BackendUnavailable, ConfigError, KioskError, SignatureError)
from kiosk.services import signing
from kiosk.services.backend import BackendClient, DocumentNotFound, IdempotencyConflict
from kiosk.backend_sim import registry
from kiosk.backend_sim.server import SimServer
from kiosk.services.catalog import Catalog, FieldSpec
from kiosk.services.document_payload import decode_payload, encode_payload

WANG = "37010219850315123X"
LIU = "410105197805204568"
SECRET = DEMO_HMAC_SECRET.encode()


# --- test-only operations (the real ones are the item operations' job) --------------------------------
CERTIFICATE_ITEM = replace(Catalog.load().get("H01"), id="Z93", operation="test_adapter_certificate",
                           fields=(FieldSpec("purpose", "用途", "Purpose", "text", required=False),))


@registry.operation("test_adapter_certificate", items=(CERTIFICATE_ITEM,))
def _certificate(ctx: registry.OpContext) -> dict[str, Any]:
    if ctx.resident is None:
        ctx.refuse("not_registered", "未查询到您的户籍信息。", "No household record was found for you.",
                   "请到户籍窗口办理。", "Please go to the household registration counter.")
    doc = ctx.issue_document("test_certificate", "测试证明", "Test certificate",
                             {"name": ctx.resident["name"], "purpose": ctx.fields.get("purpose", "")})
    return {"reference": ctx.new_reference("TC"),
            "display": [{"label_zh": "姓名", "label_en": "Name", "value": ctx.resident["name"]}],
            "document": doc}


@registry.lookup("test_adapter_fines")
def _fines(ctx: registry.OpContext) -> list[dict[str, Any]]:
    return [{"value": "F1", "label_zh": "闯红灯", "label_en": "Red light", "amount_fen": 20000}]


@pytest.fixture
def sim_client(sim: SimServer, make_backend_client) -> BackendClient:
    return make_backend_client(sim.url)


# --- a backend that lies (signs correctly, answers wrongly) ----------------------------------------------
class FakeBackend:
    """A tiny WSGI server: ``respond(method, path) -> (status, body_bytes)``; signs like the real one; counts hits."""

    def __init__(self, respond: Callable[[str, str], tuple[int, bytes]], sign: bool = True) -> None:
        self.hits = 0
        self._respond, self._sign = respond, sign
        self._httpd = make_server("127.0.0.1", 0, self._app, threaded=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.hits += 1
        status, body = self._respond(environ["REQUEST_METHOD"], environ["PATH_INFO"])
        headers = [("Content-Type", "application/json")]
        nonce = environ.get("HTTP_X_NONCE", "")
        if self._sign and nonce:
            headers += list(signing.sign_response(SECRET, status, nonce, body).items())
        start_response(f"{status} X", headers)
        return [body]

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def fake_backend() -> Iterator[Callable[..., FakeBackend]]:
    made: list[FakeBackend] = []

    def make(respond: Callable[[str, str], tuple[int, bytes]], sign: bool = True) -> FakeBackend:
        made.append(FakeBackend(respond, sign))
        return made[-1]

    yield make
    for fb in made:
        fb.stop()


# --- happy paths -------------------------------------------------------------------------------------------
def test_health(client):
    assert client.health()["status"] == "ok"


def test_lookup_identity_known_and_unknown(client):
    known = client.lookup_identity(WANG, "resident")
    assert known["known"] and known["resident"]["name"] == "王小明"
    assert known["resident"]["relation_to_head_en"] == "head of household"
    unknown = client.lookup_identity("110101199003077777", "resident")
    assert unknown == {"known": False, "resident": None}


def test_face_compare_is_deterministic_per_resident(client):
    assert client.compare_face(WANG, b"live-photo")["match"] is True
    liu = client.compare_face(LIU, b"live-photo")
    assert liu["match"] is False and liu["score"] < 0.5
    assert client.compare_face(LIU, b"another photo") == liu


def test_lookup_and_operate_with_document(sim_client):
    assert sim_client.lookup("test_adapter_fines", "T03", WANG, {})["options"][0]["amount_fen"] == 20000
    result = sim_client.operate("test_adapter_certificate", "Z93", WANG, {"purpose": "入学"},
                                idempotency_key=f"op-{uuid.uuid4().hex}")
    assert result["reference"].startswith("TC")
    doc = result["document"]
    assert doc["content"] == {"name": "王小明", "purpose": "入学"}
    assert doc["reference"] == result["reference"]
    signing.verify_document(sim_client.public_key_b64, doc["qr_payload"], doc["signature"])


def test_business_refusal_maps_to_backend_refused_with_both_languages(sim_client):
    with pytest.raises(BackendRefused) as err:
        sim_client.operate("test_adapter_certificate", "Z93", "110101199003077777", {})
    e = err.value
    assert e.rule == "not_registered"
    assert e.message("zh_CN") == "未查询到您的户籍信息。"
    assert e.message("en") == "No household record was found for you."
    assert (e.where_zh, e.where_en) == ("请到户籍窗口办理。", "Please go to the household registration counter.")


def test_document_fetch_needs_the_holders_id_hash(sim_client):
    doc = sim_client.operate("test_adapter_certificate", "Z93", WANG, {})["document"]
    again = sim_client.fetch_document(doc["document_id"], WANG)
    assert again["verification_code"] == doc["verification_code"] and again["content"] == doc["content"]
    with pytest.raises(DocumentNotFound) as err:
        sim_client.fetch_document(doc["document_id"], LIU)
    assert isinstance(err.value, BackendRejected) and err.value.code == "document_not_found"


def test_a_refusal_the_backend_would_not_sign_is_a_signature_error_naming_its_claim(sim):
    stranger = BackendClient(sim.url, DEMO_TERMINAL_ID, b"not the terminal's secret", DEMO_BACKEND_PUBLIC_KEY,
                             2, 5, 0, 0)
    with pytest.raises(SignatureError) as err:
        stranger.health()
    assert err.value.context["reason"] == "missing"  # unsigned: nothing in it is believed
    assert err.value.context["claimed_code"] == "bad_signature" and "claims 'bad_signature'" in err.value.detail


def test_reprint_lookups_send_a_keyed_hash_of_the_id_number_not_a_plain_sha256(sim_client):
    doc = sim_client.operate("test_adapter_certificate", "Z93", WANG, {})["document"]
    path = f"/documents/{doc['document_id']}"
    keyed = signing.document_lookup_hash(SECRET, WANG)
    assert keyed != hashlib.sha256(WANG.encode()).hexdigest()
    assert keyed != signing.document_lookup_hash(b"another terminal's secret", WANG)
    assert sim_client._call("GET", path, query={"id_hash": keyed})["document_id"] == doc["document_id"]
    # The unsalted hash anyone can compute for every possible ID number no longer finds the document.
    with pytest.raises(DocumentNotFound):
        sim_client._call("GET", path, query={"id_hash": hashlib.sha256(WANG.encode()).hexdigest()})
    with pytest.raises(DocumentNotFound):  # nor the number keyed with a secret other than the caller's
        sim_client._call("GET", path, query={"id_hash": signing.document_lookup_hash(b"guess", WANG)})


def test_verify_accepts_the_genuine_and_rejects_altered_foreign_and_unknown(sim_client):
    doc = sim_client.operate("test_adapter_certificate", "Z93", WANG, {})["document"]
    ok = sim_client.verify(doc["qr_payload"], doc["signature"])
    assert ok["valid"] and ok["reason"] == "ok"
    assert ok["document"]["verification_code"] == doc["verification_code"]
    assert ok["document"]["holder_masked"] == "王*明"
    fields = decode_payload(doc["qr_payload"])
    altered = encode_payload(dataclasses.replace(fields, verification_code="AAAA-BBBB-CCCC-DDDD"))
    assert sim_client.verify(altered, doc["signature"]) == {"valid": False, "reason": "bad_signature", "document": None}
    foreign_key = signing.private_key_from_seed(b"\x07" * 32)
    forged = sim_client.verify(doc["qr_payload"], signing.sign_document(foreign_key, doc["qr_payload"]))
    assert (forged["valid"], forged["reason"]) == (False, "bad_signature")
    demo_key = signing.demo_backend_private_key()
    unknown = sim_client.verify(altered, signing.sign_document(demo_key, altered))  # well signed, never issued
    assert (unknown["valid"], unknown["reason"]) == (False, "unknown_document")
    legacy = json.dumps({"v": 1, "d": "D00000000000000000000", "c": "AAAA-BBBB-CCCC-DDDD"}, separators=(",", ":"))
    old = sim_client.verify(legacy, signing.sign_document(demo_key, legacy))  # the JSON form of earlier documents
    assert (old["valid"], old["reason"]) == (False, "unknown_document")
    assert sim_client.verify("not json", doc["signature"])["reason"] == "malformed"
    assert sim_client.verify("KD2:NOT-BASE45", doc["signature"])["reason"] == "malformed"


def test_document_with_a_bad_signature_from_the_backend_is_refused(sim_client):
    doc = sim_client.operate("test_adapter_certificate", "Z93", WANG, {})["document"]
    other = BackendClient(sim_client.base_url, sim_client.terminal_id, SECRET,
                          signing.public_key_b64(signing.private_key_from_seed(b"\x09" * 32)), 2, 5, 0, 0)
    with pytest.raises(SignatureError):
        other.fetch_document(doc["document_id"], WANG)


# --- payments ----------------------------------------------------------------------------------------------
def test_payment_lifecycle_with_late_payment_reconcile_and_refund(fresh_backend_sim, make_backend_client):
    c = make_backend_client(fresh_backend_sim.url)
    order = c.create_order("T03", 20000, "REF-1", "交通违法罚款", idempotency_key=f"o-{uuid.uuid4().hex}")
    assert order["status"] == "pending" and order["qr_payload"] and order["amount_fen"] == 20000
    assert c.get_order(order["order_id"])["status"] == "pending"
    cancelled = c.cancel_order(order["order_id"], idempotency_key=f"c-{uuid.uuid4().hex}")
    assert cancelled["status"] == "cancelled"
    fresh_backend_sim.pay(order["order_id"])  # the phone pays after the kiosk gave up
    late = c.reconcile([order["order_id"], "PO99999999"])["orders"]
    assert [(o["order_id"], o["status"]) for o in late] == [(order["order_id"], "paid")]
    refund_key = f"r-{uuid.uuid4().hex}"
    refunded = c.refund_order(order["order_id"], idempotency_key=refund_key)
    assert refunded["status"] == "refunded" and refunded["refunded_at"]
    assert c.refund_order(order["order_id"], idempotency_key=refund_key)["status"] == "refunded"
    assert [e["kind"] for e in fresh_backend_sim.effects()] == [
        "payment_order", "payment_cancel", "payment_paid", "payment_refund"]


def test_cancel_of_a_paid_order_keeps_it_paid_and_unpaid_refund_is_rejected(client, backend_sim):
    order = client.create_order("E08", 12000, "REF-2", "出入境费用")
    with pytest.raises(BackendRejected) as err:
        client.refund_order(order["order_id"])
    assert err.value.context["remote_code"] == "order_not_refundable"
    backend_sim.pay(order["order_id"])
    assert client.cancel_order(order["order_id"])["status"] == "paid"


def test_unknown_order_is_rejected_not_retried(client):
    with pytest.raises(BackendRejected) as err:
        client.get_order("PO00000000")
    assert err.value.context["remote_code"] == "order_not_found"


# --- idempotency ----------------------------------------------------------------------------------------
def test_timed_out_post_retried_under_the_same_key_has_one_effect(fresh_backend_sim, make_backend_client):
    fresh_backend_sim.set_faults(fail_next=1, mode="timeout", timeout_s=1.5)
    c = make_backend_client(fresh_backend_sim.url, read_timeout=0.5, retries=2)
    key = f"o-{uuid.uuid4().hex}"
    order = c.create_order("T03", 100, "REF-3", "d", idempotency_key=key)
    effects = fresh_backend_sim.effects()
    assert [(e["kind"], e["idempotency_key"], e["reference"]) for e in effects] == [
        ("payment_order", key, order["order_id"])]


def test_reusing_a_key_for_another_request_is_an_idempotency_conflict(client):
    key = f"o-{uuid.uuid4().hex}"
    client.create_order("T03", 100, "REF-4", "d", idempotency_key=key)
    with pytest.raises(IdempotencyConflict):
        client.create_order("T03", 200, "REF-4", "d", idempotency_key=key)


# --- failures ------------------------------------------------------------------------------------------------
def test_tampered_response_raises_signature_error(fresh_backend_sim, make_backend_client):
    fresh_backend_sim.set_faults(fail_next=1, mode="tamper")
    with pytest.raises(SignatureError):
        make_backend_client(fresh_backend_sim.url).lookup_identity(WANG)


def test_response_replayed_onto_another_request_raises_signature_error(fake_backend, make_backend_client):
    recorded = b'{"status":"ok","time":"2026-01-01T00:00:00+08:00"}'
    stale_nonce = "ab" * 16
    headers = signing.sign_response(SECRET, 200, stale_nonce, recorded)

    def replay(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json"), *headers.items()])
        return [recorded]

    httpd = make_server("127.0.0.1", 0, replay, threaded=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with pytest.raises(SignatureError):
            make_backend_client(f"http://127.0.0.1:{httpd.server_address[1]}").health()
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_unsigned_answer_raises_signature_error(fake_backend, make_backend_client):
    fb = fake_backend(lambda m, p: (200, b'{"status":"ok","time":"2026-01-01T00:00:00+08:00"}'), sign=False)
    with pytest.raises(SignatureError):
        make_backend_client(fb.url).health()


def test_timeout_raises_backend_timeout(fresh_backend_sim, make_backend_client):
    fresh_backend_sim.set_faults(fail_next=10, mode="timeout", timeout_s=2)
    with pytest.raises(BackendTimeout):
        make_backend_client(fresh_backend_sim.url, read_timeout=0.3, retries=0).health()


def test_5xx_is_retried_for_idempotent_calls_then_backend_server_error(fake_backend, make_backend_client):
    fb = fake_backend(lambda m, p: (503, b'{"error":{"code":"x","message_zh":"x","message_en":"x"}}'))
    c = make_backend_client(fb.url, retries=2)
    with pytest.raises(BackendServerError):
        c.get_order("PO12345678")
    assert fb.hits == 3
    with pytest.raises(BackendServerError):
        c.create_order("T03", 100, "R", "d")  # a POST with an idempotency key: retried too
    assert fb.hits == 6


def test_4xx_is_never_retried(fake_backend, make_backend_client):
    body = b'{"error":{"code":"bad_request","message_zh":"\xe9\x94\x99","message_en":"bad"}}'
    fb = fake_backend(lambda m, p: (400, body))
    with pytest.raises(BackendRejected):
        make_backend_client(fb.url, retries=3).get_order("PO12345678")
    assert fb.hits == 1


def test_5xx_from_the_simulator_then_recovery_within_the_retries(fresh_backend_sim, make_backend_client):
    fresh_backend_sim.set_faults(fail_next=1, mode="error")
    assert make_backend_client(fresh_backend_sim.url, retries=1).health()["status"] == "ok"
    assert fresh_backend_sim.faults()["fail_next"] == 0


def test_garbage_body_raises_backend_protocol_error(fresh_backend_sim, make_backend_client):
    fresh_backend_sim.set_faults(fail_next=1, mode="garbage")
    with pytest.raises(BackendProtocolError):
        make_backend_client(fresh_backend_sim.url).lookup_identity(WANG)


@pytest.mark.parametrize("body", [
    b'{"status":5}',                                                   # wrong type, missing time
    b'{"error":{"code":"refused"}}',                                   # error without messages
    b'[1,2,3]',
])
def test_lying_backend_with_valid_signature_raises_protocol_error(fake_backend, make_backend_client, body):
    fb = fake_backend(lambda m, p: (200, body))
    with pytest.raises(BackendProtocolError):
        make_backend_client(fb.url).health()


def test_backend_down_raises_backend_unavailable(fresh_backend_sim, make_backend_client):
    fresh_backend_sim.set_faults(fail_next=5, mode="down")
    with pytest.raises(BackendUnavailable):
        make_backend_client(fresh_backend_sim.url, retries=1).health()
    with socket.socket() as s:  # and a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(BackendUnavailable):
        make_backend_client(closed, retries=0).health()


def test_from_config(backend_sim):
    cfg = from_dict({"backend": {"url": backend_sim.url, "retries": 0}})
    assert BackendClient.from_config(cfg).health()["status"] == "ok"
    with pytest.raises(ConfigError):
        BackendClient.from_config(from_dict({}))  # "embedded" needs the simulator's URL
    assert BackendClient.from_config(from_dict({}), base_url=backend_sim.url).health()["status"] == "ok"


ADAPTER_ERRORS: list[KioskError] = [
    BackendUnavailable("x"), BackendTimeout("x"), BackendServerError("x"), BackendProtocolError("x"),
    SignatureError("x"), BackendRejected("x"), DocumentNotFound("x"), IdempotencyConflict("x"),
    BackendRefused("some_rule"),
]


@pytest.mark.parametrize("err", ADAPTER_ERRORS, ids=lambda e: type(e).__name__)
def test_every_adapter_error_has_a_chinese_and_an_english_message(err):
    zh, en = err.message("zh_CN"), err.message("en")
    assert en and zh and zh != en
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh)
    assert isinstance(err, (BackendError, BackendRefused))


def test_every_simulator_error_body_carries_both_languages(sim):
    import requests

    bodies = [
        requests.post(f"{sim.url}/api/v1/identity/lookup", json={}, timeout=5).json(),       # unsigned
        requests.get(f"{sim.url}/api/v1/nothing", timeout=5).json(),                         # no route
        requests.post(f"{sim.url}/api/v1/sim/faults", json={"x": 1}, timeout=5).json(),     # bad knob
    ]
    for body in bodies:
        err = body["error"]
        assert err["message_en"] and any("\u4e00" <= ch <= "\u9fff" for ch in err["message_zh"])


@settings(max_examples=60, deadline=None)
@given(status=st.sampled_from([200, 400, 401, 404, 409, 422]),
       body=st.one_of(st.binary(max_size=120),
                      st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=12),
                                   lambda inner: st.lists(inner, max_size=3)
                                   | st.dictionaries(st.sampled_from(["error", "code", "status", "time", "x"]),
                                                     inner, max_size=3),
                                   max_leaves=10).map(lambda v: json.dumps(v).encode())))
def test_signed_answers_of_any_shape_become_typed_errors_or_documented_dicts(status, body):
    client = BackendClient("http://127.0.0.1:9", "JN-DEMO-0001", SECRET, signing.public_key_b64(
        signing.demo_backend_private_key()), 1, 1, 0, 0)
    sent = {"X-Terminal-Id": "JN-DEMO-0001",
            **signing.sign_request(SECRET, signing.RequestParts("GET", "127.0.0.1:9", "/api/v1/health"))}
    headers = {"Content-Type": "application/json", **signing.sign_response(SECRET, status, sent["X-Nonce"], body)}
    try:
        result = client._interpret("GET", "/api/v1/health", sent, None, b"", status, headers, body)
    except (BackendError, BackendRefused):
        return
    assert status == 200 and result["status"] == "ok" and isinstance(result["time"], str)


# --- an operation whose answer is lost: ask again under its key, or ask what became of it ------------------------
def test_operate_with_a_deadline_asks_again_through_garbled_answers_until_one_is_trusted(
        fresh_sim, make_backend_client):
    import time

    import requests

    def faults(**knobs: Any) -> None:
        requests.post(f"{fresh_sim.url}/api/v1/sim/faults", json=knobs, timeout=5).raise_for_status()

    c = make_backend_client(fresh_sim.url, retries=1, backoff=0.01)
    key = f"op-{uuid.uuid4().hex}"
    # Performed on the first request; its answer and the next replays arrive garbled or tampered.
    faults(fail_next=3, mode="garbage")
    with pytest.raises(BackendProtocolError):  # without a deadline a garbled answer is final
        c.operate("test_adapter_certificate", "Z93", WANG, {"purpose": "入学"}, idempotency_key=key)
    faults(fail_next=3, mode="tamper")
    result = c.operate("test_adapter_certificate", "Z93", WANG, {"purpose": "入学"}, idempotency_key=key,
                       until=time.monotonic() + 20)
    assert result["document"]["document_id"]
    assert [e["kind"] for e in requests_effects(fresh_sim.url)] == ["operation", "document"]  # done once


def test_a_rejection_is_never_asked_again_even_with_a_deadline(fake_backend, make_backend_client):
    import time

    body = b'{"error":{"code":"terminal_revoked","message_zh":"\xe5\x81\x9c","message_en":"revoked"}}'
    fb = fake_backend(lambda m, p: (403, body))
    from kiosk.services.backend import TerminalRevoked

    with pytest.raises(TerminalRevoked):
        make_backend_client(fb.url, retries=3).operate("x_op", "H01", WANG, {}, until=time.monotonic() + 10)
    assert fb.hits == 1


def test_outcome_of_a_key_performed_refused_or_never_taken(sim_client, sim):
    done_key, refused_key, lost_key = (f"{k}-{uuid.uuid4().hex}" for k in ("done", "refused", "lost"))
    result = sim_client.operate("test_adapter_certificate", "Z93", WANG, {"purpose": "入学"}, idempotency_key=done_key)
    with pytest.raises(BackendRefused):
        sim_client.operate("test_adapter_certificate", "Z93", "11010119900307001X", {}, idempotency_key=refused_key)

    performed = sim_client.outcome(done_key)
    assert performed["outcome"] == "performed" and performed["result"]["reference"] == result["reference"]
    assert performed["result"]["document"]["document_id"] == result["document"]["document_id"]
    refused = sim_client.outcome(refused_key)
    assert refused["outcome"] == "refused" and refused["refusal"]["rule"] == "not_registered"
    never = sim_client.outcome(lost_key)
    assert never == {"idempotency_key": lost_key, "outcome": "not_performed", "result": None, "refusal": None}
    # The answer is final: the request still on its way with that key no longer takes effect.
    before = len(requests_effects(sim.url))
    with pytest.raises(IdempotencyConflict):
        sim_client.operate("test_adapter_certificate", "Z93", WANG, {"purpose": "入学"}, idempotency_key=lost_key)
    assert len(requests_effects(sim.url)) == before
    assert sim_client.outcome(lost_key)["outcome"] == "not_performed"


def requests_effects(url: str) -> list[dict[str, Any]]:
    import requests

    return requests.get(f"{url}/api/v1/sim/effects", timeout=5).json()
