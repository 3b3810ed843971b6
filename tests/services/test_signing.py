"""Request/response HMAC signing and Ed25519 document signatures."""
from __future__ import annotations

import hashlib
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.errors import SignatureError
from kiosk.services import signing

SECRET = b"test-secret"

methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
paths = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80).map(lambda s: "/" + s)
hosts = st.tuples(st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20})(\.[a-z0-9-]{1,20}){0,3}", fullmatch=True)
                  | st.sampled_from(["127.0.0.1", "[::1]", "backend.example"]),
                  st.integers(min_value=0, max_value=65535)).map(lambda hp: f"{hp[0]}:{hp[1]}")
content_types = st.sampled_from(["", "application/json", "application/json; charset=utf-8", "text/plain"])
idempotency_keys = st.from_regex(r"[A-Za-z0-9._:-]{0,128}", fullmatch=True)
nonces = st.binary(min_size=16, max_size=16).map(bytes.hex)
timestamps = st.integers(min_value=0, max_value=10**12 - 1)
bodies = st.binary(max_size=256)
requests_parts = st.builds(signing.RequestParts, methods, hosts, paths, bodies, content_types, idempotency_keys)


@given(requests_parts, timestamps, nonces)
def test_canonical_request_has_eight_lines_in_the_documented_order(parts, ts, nonce):
    lines = signing.canonical_request(parts, ts, nonce).decode("ascii").split("\n")
    assert lines == [parts.method, parts.host, parts.target, parts.content_type, parts.idempotency_key, str(ts), nonce,
                     hashlib.sha256(parts.body).hexdigest()]


@given(st.tuples(requests_parts, timestamps, nonces), st.tuples(requests_parts, timestamps, nonces))
def test_canonical_request_is_injective(a, b):
    # Two different requests never share the signed bytes (so never a signature).
    if a != b:
        assert signing.canonical_request(*a) != signing.canonical_request(*b)


@given(requests_parts, timestamps, nonces)
def test_signed_request_verifies(parts, ts, nonce):
    h = signing.sign_request(SECRET, parts, timestamp=ts, nonce=nonce)
    signing.verify_request(SECRET, parts, timestamp=h["X-Timestamp"], nonce=h["X-Nonce"],
                           signature=h["X-Signature"], now=ts)


def _changed(parts: signing.RequestParts, which: str) -> signing.RequestParts:
    """``parts`` with one field changed in the smallest way."""
    if which == "method":
        return replace(parts, method="GET" if parts.method != "GET" else "POST")
    if which == "host":  # the same host on another port
        name, _, port = parts.host.rpartition(":")
        return replace(parts, host=f"{name}:{(int(port) + 1) % 65536}")
    if which == "target":
        return replace(parts, target=parts.target + "x")
    if which == "body":
        return replace(parts, body=parts.body + b"\x00")
    if which == "content_type":
        return replace(parts, content_type="text/plain" if parts.content_type != "text/plain" else "")
    assert which == "idempotency_key"
    return replace(parts, idempotency_key=parts.idempotency_key[:-1] if parts.idempotency_key else "k")


@settings(max_examples=120)
@given(requests_parts, st.data())
def test_any_change_to_a_signed_request_fails(parts, data):
    ts = int(time.time())
    h = signing.sign_request(SECRET, parts, timestamp=ts)
    which = data.draw(st.sampled_from(["method", "host", "target", "body", "content_type", "idempotency_key",
                                       "timestamp", "nonce"]))
    timestamp, nonce, changed = h["X-Timestamp"], h["X-Nonce"], parts
    if which == "timestamp":
        timestamp = str(ts + 1)
    elif which == "nonce":
        nonce = ("0" if nonce[0] != "0" else "1") + nonce[1:]
    else:
        changed = _changed(parts, which)
        assert changed != parts
    with pytest.raises(SignatureError) as err:
        signing.verify_request(SECRET, changed, timestamp=timestamp, nonce=nonce, signature=h["X-Signature"])
    assert err.value.context["reason"] == "bad_signature"


@pytest.mark.parametrize("which", ["host", "content_type", "idempotency_key"])
def test_a_signature_binds_host_port_content_type_and_idempotency_key(which):
    parts = signing.RequestParts("POST", "backend.example:8443", "/api/v1/operations/household_certificate",
                                 b'{"item_id":"H01"}', "application/json", "txn-0001-operate-0")
    h = signing.sign_request(SECRET, parts)
    signing.verify_request(SECRET, parts, timestamp=h["X-Timestamp"], nonce=h["X-Nonce"], signature=h["X-Signature"])
    with pytest.raises(SignatureError) as err:
        signing.verify_request(SECRET, _changed(parts, which), timestamp=h["X-Timestamp"], nonce=h["X-Nonce"],
                               signature=h["X-Signature"])
    assert err.value.context["reason"] == "bad_signature"


@given(st.text(max_size=10), st.sampled_from("\n\r\t\x00\x7f"), st.text(max_size=10))
def test_parts_that_could_forge_a_line_have_no_canonical_form(before, bad, after):
    junk = before + bad + after
    base = signing.RequestParts("POST", "h:1", "/a")
    for changed in (replace(base, target="/a" + junk), replace(base, method="POST" + junk),
                    replace(base, host="h:1" + junk), replace(base, content_type="a/b" + junk),
                    replace(base, idempotency_key="k" + junk)):
        with pytest.raises(ValueError):
            signing.canonical_request(changed, 1, "0" * 32)
    with pytest.raises(ValueError):
        signing.canonical_request(base, 1, "0" * 32 + junk)
    with pytest.raises(ValueError):
        signing.canonical_response(200, "0" * 32, "1" + junk, b"")


@pytest.mark.parametrize("host", ["", "backend.example", "127.0.0.1", "[::1]", "backend.example:", "a b:80"])
def test_the_host_must_carry_its_port(host):
    with pytest.raises(ValueError):
        signing.canonical_request(signing.RequestParts("GET", host, "/"), 1, "0" * 32)


@pytest.mark.parametrize("url, host", [("https://backend.example", "backend.example:443"),
                                       ("https://backend.example/gw/", "backend.example:443"),
                                       ("http://127.0.0.1:8740", "127.0.0.1:8740"),
                                       ("http://backend.example", "backend.example:80"),
                                       ("https://[::1]:9443", "[::1]:9443")])
def test_host_header_spells_out_the_port(url, host):
    assert signing.host_header(url) == host


@pytest.mark.parametrize("nonce", ["", "0" * 31, "A" * 32, "g" * 32, "0" * 33])
def test_nonce_must_be_32_lowercase_hex(nonce):
    with pytest.raises(ValueError):
        signing.canonical_request(signing.RequestParts("GET", "h:1", "/"), 1, nonce)


def test_wrong_secret_and_stale_timestamp_are_told_apart():
    ts = int(time.time())
    parts = signing.RequestParts("GET", "backend.example:443", "/api/v1/health")
    h = signing.sign_request(SECRET, parts, timestamp=ts)
    with pytest.raises(SignatureError) as bad:
        signing.verify_request(b"other", parts, timestamp=h["X-Timestamp"],
                               nonce=h["X-Nonce"], signature=h["X-Signature"])
    assert bad.value.context["reason"] == "bad_signature"
    with pytest.raises(SignatureError) as stale:
        signing.verify_request(SECRET, parts, timestamp=h["X-Timestamp"],
                               nonce=h["X-Nonce"], signature=h["X-Signature"], now=ts + 301)
    assert stale.value.context["reason"] == "stale_timestamp"
    signing.verify_request(SECRET, parts, timestamp=h["X-Timestamp"],
                           nonce=h["X-Nonce"], signature=h["X-Signature"], now=ts + 300)


@given(st.integers(min_value=100, max_value=599), nonces, bodies)
def test_response_signature_is_bound_to_status_nonce_and_body(status, nonce, body):
    ts = int(time.time())
    h = signing.sign_response(SECRET, status, nonce, body, timestamp=ts)
    signing.verify_response(SECRET, status, nonce, body, timestamp=h["X-Timestamp"], signature=h["X-Signature"])
    other_nonce = ("1" if nonce[0] == "0" else "0") + nonce[1:]
    for args in ((status + 1 if status < 599 else 100, nonce, body), (status, other_nonce, body),
                 (status, nonce, body + b"!")):
        with pytest.raises(SignatureError):
            signing.verify_response(SECRET, *args, timestamp=h["X-Timestamp"], signature=h["X-Signature"])


def test_unsigned_response_is_refused():
    with pytest.raises(SignatureError) as err:
        signing.verify_response(SECRET, 200, "0" * 32, b"{}", timestamp=None, signature=None)
    assert err.value.context["reason"] == "missing"


def test_demo_document_key_matches_the_configured_public_key():
    assert signing.public_key_b64(signing.demo_backend_private_key()) == DEMO_BACKEND_PUBLIC_KEY


@settings(max_examples=40)
@given(st.text(max_size=300))
def test_document_signature_verifies_and_rejects_any_other_payload(payload):
    sig = signing.sign_document(signing.demo_backend_private_key(), payload)
    signing.verify_document(DEMO_BACKEND_PUBLIC_KEY, payload, sig)
    with pytest.raises(SignatureError):
        signing.verify_document(DEMO_BACKEND_PUBLIC_KEY, payload + " ", sig)


def test_document_signed_by_another_key_is_rejected():
    other = signing.private_key_from_seed(b"\x01" * 32)
    sig = signing.sign_document(other, '{"d":"D123456"}')
    with pytest.raises(SignatureError) as err:
        signing.verify_document(DEMO_BACKEND_PUBLIC_KEY, '{"d":"D123456"}', sig)
    assert err.value.context["reason"] == "bad_signature"
    with pytest.raises(SignatureError) as bad_key:
        signing.verify_document("not base64!", '{"d":"D123456"}', sig)
    assert bad_key.value.context["reason"] == "bad_key"
    with pytest.raises(SignatureError) as malformed:
        signing.verify_document(DEMO_BACKEND_PUBLIC_KEY, '{"d":"D123456"}', "%%%")
    assert malformed.value.context["reason"] == "malformed"
