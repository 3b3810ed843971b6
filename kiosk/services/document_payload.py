"""The signed payload of a printed document's verification QR, in its compact form (``KD2:``).

A photocopy or a fax of a certificate must still verify, so the QR has to be small enough
to print with large modules: the payload is 34 bytes, written in base45 (RFC 9285), whose 45
characters are exactly QR's alphanumeric set (5.5 bits a character, against 8 for bytes),
and the QR adds the 64-byte Ed25519 signature in base45 too. Layout (docs/CONTRACTS.md):

====== ====== ==========================================================================
offset bytes  field
====== ====== ==========================================================================
0      11     verification code: its 16 characters (0-9 A-Z, dashes dropped) read as a
              base-36 number, big-endian; it is unique per document and is what S02 and
              ``POST /verify`` look the document up by
11     4      issued at, unix seconds, big-endian
15     3      item id, ASCII (``H01``)
18     16     content digest: the first 16 bytes of SHA-256 over the content as canonical
              JSON (sorted keys, no spaces, UTF-8)
====== ====== ==========================================================================

``qr_payload`` = ``"KD2:" + base45(those 34 bytes)`` (55 characters) is what the backend
signs (Ed25519 over its ASCII bytes) and stores. Documents issued before carry a compact
JSON payload instead; both verify.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

PREFIX = "KD2:"
PAYLOAD_BYTES = 34
SIGNATURE_BYTES = 64

BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_B45_VALUE = {c: i for i, c in enumerate(BASE45)}
_CODE_RE = re.compile(r"^[0-9A-Z]{4}-?[0-9A-Z]{4}-?[0-9A-Z]{4}-?[0-9A-Z]{4}$")
_ITEM_RE = re.compile(r"^[A-Z][0-9]{2}$")


# --- base45 (RFC 9285) -----------------------------------------------------------------------
def b45encode(data: bytes) -> str:
    """Base45 of ``data``: each 2 bytes become 3 characters, a last single byte 2."""
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        c, n = n % 45, n // 45
        d, e = n % 45, n // 45
        out += (BASE45[c], BASE45[d], BASE45[e])
    if len(data) % 2:
        c, d = data[-1] % 45, data[-1] // 45
        out += (BASE45[c], BASE45[d])
    return "".join(out)


def b45decode(text: str) -> bytes:
    """The bytes of a base45 text. Raises ValueError for a character, length or value base45 cannot hold."""
    if len(text) % 3 == 1:
        raise ValueError("base45 text length leaves a single character")
    try:
        values = [_B45_VALUE[c] for c in text]
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]!r} is not a base45 character") from None
    out = bytearray()
    for i in range(0, len(values), 3):
        group = values[i:i + 3]
        n = sum(v * 45 ** k for k, v in enumerate(group))
        if len(group) == 3:
            if n > 0xFFFF:
                raise ValueError("base45 group above 65535")
            out += n.to_bytes(2, "big")
        else:
            if n > 0xFF:
                raise ValueError("base45 group above 255")
            out.append(n)
    return bytes(out)


# --- the payload --------------------------------------------------------------------------------
def content_digest(content: Mapping[str, Any]) -> bytes:
    """The first 16 bytes of SHA-256 over ``content`` as canonical JSON."""
    canon = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).digest()[:16]


@dataclass(frozen=True)
class DocumentPayload:
    """What a compact QR payload says: which document, when, for which item, over which content."""

    verification_code: str  # XXXX-XXXX-XXXX-XXXX
    issued_at: int  # unix seconds
    item_id: str
    digest: bytes  # 16 bytes

    @property
    def issued(self) -> dt.datetime:
        """``issued_at`` as an aware datetime in UTC."""
        return dt.datetime.fromtimestamp(self.issued_at, dt.timezone.utc)


def encode_payload(payload: DocumentPayload) -> str:
    """The ``qr_payload`` text: ``KD2:`` and base45 of the 34-byte layout. Raises ValueError for a field it cannot hold."""
    code = payload.verification_code.upper()
    if not _CODE_RE.match(code):
        raise ValueError("verification code must be 16 characters of 0-9 A-Z")
    if not _ITEM_RE.match(payload.item_id):
        raise ValueError("item id must be a capital and two digits")
    if len(payload.digest) != 16 or not 0 <= payload.issued_at < 2 ** 32:
        raise ValueError("digest must be 16 bytes and issued_at fit 32 bits")
    raw = (int(code.replace("-", ""), 36).to_bytes(11, "big") + payload.issued_at.to_bytes(4, "big")
           + payload.item_id.encode("ascii") + payload.digest)
    return PREFIX + b45encode(raw)


def is_compact(qr_payload: str) -> bool:
    """True for a ``KD2:`` payload (the JSON payloads of older documents are not)."""
    return qr_payload.startswith(PREFIX)


def decode_payload(qr_payload: str) -> DocumentPayload:
    """The fields of a ``KD2:`` payload. Raises ValueError for anything else."""
    if not is_compact(qr_payload):
        raise ValueError("not a KD2: payload")
    raw = b45decode(qr_payload[len(PREFIX):])
    if len(raw) != PAYLOAD_BYTES:
        raise ValueError(f"KD2: payload of {len(raw)} bytes, not {PAYLOAD_BYTES}")
    number = int.from_bytes(raw[:11], "big")
    if number >= 36 ** 16:
        raise ValueError("verification code out of range")
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    chars = []
    for _ in range(16):
        number, rest = divmod(number, 36)
        chars.append(digits[rest])
    code = "".join(reversed(chars))
    item = raw[15:18].decode("ascii", errors="replace")
    if not _ITEM_RE.match(item):
        raise ValueError("KD2: payload holds no item id")
    return DocumentPayload("-".join(code[i:i + 4] for i in range(0, 16, 4)), int.from_bytes(raw[11:15], "big"),
                           item, raw[18:34])
