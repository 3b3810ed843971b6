"""The verification QR: what text it carries and how it is drawn.

A printed document's QR carries the backend-signed payload and its Ed25519 signature in one
string, ``<qr_payload>|<signature>``. ``qr_payload`` is compact JSON and may contain any
character, but base64 never contains ``|``, so splitting at the last ``|`` is unambiguous.
"""
from __future__ import annotations

from dataclasses import dataclass

SEPARATOR = "|"


@dataclass(frozen=True)
class SignedPayload:
    """A payload and its base64 signature, as read back from a scanned QR."""

    payload: str
    signature: str


def qr_text(payload: str, signature: str = "") -> str:
    """The text encoded in a document's QR: the payload, then ``|`` and the signature if any."""
    return f"{payload}{SEPARATOR}{signature}" if signature else payload


def parse_qr_text(text: str) -> SignedPayload:
    """Split a scanned QR text into payload and signature (empty signature when unsigned)."""
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
