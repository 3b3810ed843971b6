"""Request/response HMAC signing and Ed25519 document signatures."""
from __future__ import annotations

import hashlib
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiosk.config import DEMO_BACKEND_PUBLIC_KEY
from kiosk.errors import SignatureError
from kiosk.services import signing

SECRET = b"test-secret"

methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"])
paths = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80).map(lambda s: "/" + s)
nonces = st.binary(min_size=16, max_size=16).map(bytes.hex)
timestamps = st.integers(min_value=0, max_value=10**12 - 1)
bodies = st.binary(max_size=256)


@given(methods, paths, timestamps, nonces, bodies)
def test_canonical_request_has_five_lines_that_name_each_part(method, path, ts, nonce, body):
    lines = signing.canonical_request(method, path, ts, nonce, body).decode("ascii").split("\n")
    assert lines == [method, path, str(ts), nonce, hashlib.sha256(body).hexdigest()]


@given(st.tuples(methods, paths, timestamps, nonces, bodies), st.tuples(methods, paths, timestamps, nonces, bodies))
def test_canonical_request_is_injective(a, b):
    # Two different requests never share the signed bytes (so never a signature).
    if a != b:
        assert signing.canonical_request(*a) != signing.canonical_request(*b)


@given(methods, paths, timestamps, nonces, bodies)
def test_signed_request_verifies(method, path, ts, nonce, body):
    h = signing.sign_request(SECRET, method, path, body, timestamp=ts, nonce=nonce)
    signing.verify_request(SECRET, method, path, body, timestamp=h["X-Timestamp"], nonce=h["X-Nonce"],
                           signature=h["X-Signature"], now=ts)


@settings(max_examples=60)
@given(methods, paths, bodies, st.data())
def test_any_change_to_a_signed_request_fails(method, path, body, data):
    ts = int(time.time())
    h = signing.sign_request(SECRET, method, path, body, timestamp=ts)
    parts = {"method": method, "path": path, "body": body, "timestamp": h["X-Timestamp"], "nonce": h["X-Nonce"]}
    which = data.draw(st.sampled_from(sorted(parts)))
    changed = dict(parts)
    if which == "method":
        changed["method"] = "GET" if method != "GET" else "POST"
    elif which == "path":
        changed["path"] = path + "x"
    elif which == "body":
        changed["body"] = body + b"\x00"
    elif which == "timestamp":
        changed["timestamp"] = str(ts + 1)
    else:
        changed["nonce"] = ("0" if h["X-Nonce"][0] != "0" else "1") + h["X-Nonce"][1:]
    with pytest.raises(SignatureError) as err:
        signing.verify_request(SECRET, changed["method"], changed["path"], changed["body"],
                               timestamp=changed["timestamp"], nonce=changed["nonce"], signature=h["X-Signature"])
    assert err.value.context["reason"] == "bad_signature"


@given(st.text(max_size=10), st.sampled_from("\n\r\t \x00\x7f"), st.text(max_size=10))
def test_parts_that_could_forge_a_line_have_no_canonical_form(before, bad, after):
    junk = before + bad + after
    with pytest.raises(ValueError):
        signing.canonical_request("POST", "/a" + junk, 1, "0" * 32, b"")
    with pytest.raises(ValueError):
        signing.canonical_request("POST", "/a", 1, "0" * 32 + junk, b"")
    with pytest.raises(ValueError):
        signing.canonical_request("POST" + junk, "/a", 1, "0" * 32, b"")
    with pytest.raises(ValueError):
        signing.canonical_response(200, "0" * 32, "1" + junk, b"")


@pytest.mark.parametrize("nonce", ["", "0" * 31, "A" * 32, "g" * 32, "0" * 33])
def test_nonce_must_be_32_lowercase_hex(nonce):
    with pytest.raises(ValueError):
        signing.canonical_request("GET", "/", 1, nonce, b"")


def test_wrong_secret_and_stale_timestamp_are_told_apart():
    ts = int(time.time())
    h = signing.sign_request(SECRET, "GET", "/api/v1/health", b"", timestamp=ts)
    with pytest.raises(SignatureError) as bad:
        signing.verify_request(b"other", "GET", "/api/v1/health", b"", timestamp=h["X-Timestamp"],
                               nonce=h["X-Nonce"], signature=h["X-Signature"])
    assert bad.value.context["reason"] == "bad_signature"
    with pytest.raises(SignatureError) as stale:
        signing.verify_request(SECRET, "GET", "/api/v1/health", b"", timestamp=h["X-Timestamp"],
                               nonce=h["X-Nonce"], signature=h["X-Signature"], now=ts + 301)
    assert stale.value.context["reason"] == "stale_timestamp"
    signing.verify_request(SECRET, "GET", "/api/v1/health", b"", timestamp=h["X-Timestamp"],
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
