"""The compact verification payload (KD2:): base45 against RFC 9285, the 34-byte layout, and the
QR text that joins it with its signature."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given, strategies as st

from kiosk.services.document_payload import (BASE45, DocumentPayload, b45decode, b45encode, content_digest,
                                             decode_payload, encode_payload)
from print_templates.qr import SignedPayload, parse_qr_text, qr_text


@pytest.mark.parametrize("raw, text", [(b"AB", "BB8"), (b"Hello!!", "%69 VD92EX0"), (b"base-45", "UJCLQE7W581"),
                                       (b"ietf!", "QED8WEX0"), (b"", "")])
def test_base45_matches_rfc_9285(raw: bytes, text: str) -> None:
    assert b45encode(raw) == text and b45decode(text) == raw


@given(st.binary(max_size=200))
def test_base45_round_trips(raw: bytes) -> None:
    assert b45decode(b45encode(raw)) == raw


@pytest.mark.parametrize("text", ["GGW", "A", "AB!", "ab8"])  # 65536, a lone character, not in the set
def test_base45_refuses_what_it_cannot_hold(text: str) -> None:
    with pytest.raises(ValueError):
        b45decode(text)


_CODE = st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=16, max_size=16).map(
    lambda c: "-".join(c[i:i + 4] for i in range(0, 16, 4)))
_PAYLOAD = st.builds(DocumentPayload, _CODE, st.integers(0, 2 ** 32 - 1),
                     st.from_regex(r"[A-Z][0-9]{2}", fullmatch=True), st.binary(min_size=16, max_size=16))


@given(_PAYLOAD)
def test_payload_round_trips_in_55_qr_alphanumeric_characters(payload: DocumentPayload) -> None:
    text = encode_payload(payload)
    assert decode_payload(text) == payload
    assert len(text) == 55 and set(text) <= set(BASE45)


@given(_PAYLOAD, st.binary(min_size=64, max_size=64))
def test_qr_text_joins_and_splits_payload_and_signature(payload: DocumentPayload, sig: bytes) -> None:
    text = encode_payload(payload)
    signature = base64.b64encode(sig).decode()
    joined = qr_text(text, signature)
    assert len(joined) == 151 and set(joined) <= set(BASE45)
    assert parse_qr_text(joined) == SignedPayload(text, signature)


@given(st.text(max_size=300))
def test_any_scanned_text_splits_without_raising(text: str) -> None:
    parsed = parse_qr_text(text)
    assert isinstance(parsed, SignedPayload)
    try:
        decode_payload(parsed.payload)
    except ValueError:
        pass


@pytest.mark.parametrize("field, value", [("verification_code", "7K3F-9Q2M"), ("item_id", "H1"),
                                          ("digest", b"short"), ("issued_at", -1)])
def test_a_field_the_layout_cannot_hold_is_refused(field: str, value: object) -> None:
    good = dict(verification_code="7K3F-9Q2M-XW4R-8TBN", issued_at=0, item_id="H01", digest=bytes(16))
    with pytest.raises(ValueError):
        encode_payload(DocumentPayload(**{**good, field: value}))


def test_content_digest_is_over_canonical_json() -> None:
    assert content_digest({"b": 1, "a": "王"}) == content_digest({"a": "王", "b": 1})
    assert len(content_digest({})) == 16
