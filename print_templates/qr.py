"""The verification QR: what text it carries and how it is drawn.

A printed document's QR carries the backend-signed payload and its Ed25519 signature in one
string. For a compact payload (``KD2:``, :mod:`kiosk.services.document_payload`) that is the
payload followed by the 64-byte signature in base45, 96 characters: 151 characters in all, every
one in QR's alphanumeric set, so the symbol stays at version 6 and prints with modules large
enough for a 150 dpi copy. The JSON payloads of older documents keep their old form,
``<qr_payload>|<signature>``: base64 never contains ``|``, so splitting at the last ``|`` is
unambiguous.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from kiosk.services.document_payload import SIGNATURE_BYTES, b45decode, b45encode, is_compact

SEPARATOR = "|"
_SIGNATURE_CHARS = SIGNATURE_BYTES // 2 * 3  # base45 of 64 bytes


@dataclass(frozen=True)
class SignedPayload:
    """A payload and its base64 signature, as read back from a scanned QR."""

    payload: str
    signature: str


def qr_text(payload: str, signature: str = "") -> str:
    """The text encoded in a document's QR: the payload and its signature (base45 after a KD2: payload)."""
    if not signature:
        return payload
    if is_compact(payload):
        try:
            raw = base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error):
            raw = b""
        if len(raw) == SIGNATURE_BYTES:
            return payload + b45encode(raw)
    return f"{payload}{SEPARATOR}{signature}"


def parse_qr_text(text: str) -> SignedPayload:
    """Split a scanned QR text into payload and base64 signature (empty signature when unsigned)."""
    if is_compact(text) and len(text) > _SIGNATURE_CHARS:
        try:
            raw = b45decode(text[-_SIGNATURE_CHARS:])
        except ValueError:
            return SignedPayload(text, "")
        return SignedPayload(text[:-_SIGNATURE_CHARS], base64.b64encode(raw).decode("ascii"))
    payload, sep, signature = text.rpartition(SEPARATOR)
    if not sep or not signature or any(c not in _B64 for c in signature):
        return SignedPayload(text, "")
    return SignedPayload(payload, signature)


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_")


def qr_matrix(text: str, *, error_correction: str = "M") -> list[list[bool]]:
    """The QR module matrix (True = dark) for ``text``, without the quiet zone."""
    import qrcode
    from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q

    levels = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}
    qr = qrcode.QRCode(error_correction=levels[error_correction], border=0)
    qr.add_data(text.encode("utf-8"))
    qr.make(fit=True)
    return [[bool(cell) for cell in row] for row in qr.get_matrix()]


def qr_image(text: str, *, module_px: int = 1, border: int = 4, error_correction: str = "M"):
    """The QR as a 1-bit Pillow image: ``module_px`` pixels per module, ``border`` quiet modules."""
    from PIL import Image

    matrix = qr_matrix(text, error_correction=error_correction)
    n = len(matrix) + 2 * border
    img = Image.new("1", (n, n), 1)
    px = img.load()
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if dark:
                px[x + border, y + border] = 0
    if module_px != 1:
        img = img.resize((n * module_px, n * module_px), Image.NEAREST)
    return img
