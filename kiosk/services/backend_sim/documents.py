"""Issued documents: storage, the signed QR payload, reprint fetch and verification."""
from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.errors import SignatureError
from kiosk.privacy import mask_name
from kiosk.services import signing
from kiosk.services.backend_sim.db import iso
from kiosk.services.backend_sim.registry import OpContext

# No 0/O, 1/I: the code is typed in by people checking a paper copy.
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _verification_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))


def _content_digest(content: dict[str, Any]) -> str:
    canon = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:32]


class DocumentStore:
    """Issues and finds documents, signing with the backend's Ed25519 key."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self.private_key = private_key
        self.public_key_b64 = signing.public_key_b64(private_key)

    def issue(self, ctx: OpContext, doc_type: str, title_zh: str, title_en: str,
              content: dict[str, Any]) -> dict[str, Any]:
        """Store a new document for the context's resident and return it in the API's shape."""
        document_id = "D" + secrets.token_hex(10)
        code = _verification_code()
        issued_at = iso(ctx.now)
        payload = json.dumps({"v": 1, "d": document_id, "t": doc_type, "c": code, "i": issued_at,
                              "h": _content_digest(content)}, separators=(",", ":"), sort_keys=True)
        signature = signing.sign_document(self.private_key, payload)
        holder = (ctx.resident or {}).get("name", "")
        ctx.db.execute(
            "INSERT INTO documents (document_id, doc_type, verification_code, title_zh, title_en, issued_at,"
            " content, qr_payload, signature, holder_id, holder_masked, item_id) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (document_id, doc_type, code, title_zh, title_en, issued_at,
             json.dumps(content, ensure_ascii=False), payload, signature,
             (ctx.id_number or "").strip().upper(), mask_name(holder), ctx.item_id))
        return {"document_id": document_id, "doc_type": doc_type, "verification_code": code,
                "title_zh": title_zh, "title_en": title_en, "issued_at": issued_at, "content": content,
                "qr_payload": payload, "signature": signature, "item_id": ctx.item_id}

    @staticmethod
    def set_reference(conn: sqlite3.Connection, document_id: str, reference: str) -> None:
        """Tie a document to the operation reference it was issued under."""
        conn.execute("UPDATE documents SET reference = ? WHERE document_id = ?", (reference, document_id))

    @staticmethod
    def fetch(conn: sqlite3.Connection, document_id: str, holder_hash: str, secret: bytes) -> dict[str, Any] | None:
        """The document when it exists and ``holder_hash`` is its holder's lookup hash under the caller's ``secret``."""
        row = conn.execute("SELECT * FROM documents WHERE document_id = ?", (document_id,)).fetchone()
        if row is None or not row["holder_id"]:
            return None
        if not secrets.compare_digest(signing.document_lookup_hash(secret, row["holder_id"]), holder_hash):
            return None
        doc = {k: row[k] for k in ("document_id", "doc_type", "verification_code", "title_zh", "title_en",
                                   "issued_at", "qr_payload", "signature", "item_id")}
        doc["content"] = json.loads(row["content"])
        if row["reference"]:
            doc["reference"] = row["reference"]
        return doc

    def verify(self, conn: sqlite3.Connection, qr_payload: str, signature: str) -> dict[str, Any]:
        """The verdict on a scanned QR: ``{valid, reason, document}``."""
        def verdict(reason: str, document: dict[str, Any] | None = None) -> dict[str, Any]:
            return {"valid": reason == "ok", "reason": reason, "document": document}

        try:
            fields = json.loads(qr_payload)
            document_id = fields["d"]
            if not isinstance(document_id, str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return verdict("malformed")
        try:
            signing.verify_document(self.public_key_b64, qr_payload, signature)
        except SignatureError:
            return verdict("bad_signature")
        row = conn.execute("SELECT * FROM documents WHERE document_id = ?", (document_id,)).fetchone()
        if row is None:
            return verdict("unknown_document")
        if row["qr_payload"] != qr_payload:
            return verdict("mismatch")
        return verdict("ok", {k: row[k] for k in ("document_id", "doc_type", "verification_code", "title_zh",
                                                  "title_en", "issued_at", "holder_masked")})
