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
from kiosk.backend_sim.db import iso
from kiosk.services.document_payload import DocumentPayload, content_digest, decode_payload, encode_payload, is_compact
from kiosk.backend_sim.registry import OpContext

# No 0/O, 1/I: the code is typed in by people checking a paper copy.
_CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def _verification_code() -> str:
    raw = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(16))
    return "-".join(raw[i:i + 4] for i in range(0, 16, 4))



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
        payload = encode_payload(DocumentPayload(code, int(ctx.now.timestamp()), ctx.item_id,
                                                 content_digest(content)))
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
            if is_compact(qr_payload):  # KD2: the verification code names the document
                column, key = "verification_code", decode_payload(qr_payload).verification_code
            else:  # the JSON payload of a document issued before KD2:
                column, key = "document_id", json.loads(qr_payload)["d"]
            if not isinstance(key, str):
                raise TypeError
        except (ValueError, TypeError, KeyError):
            return verdict("malformed")
        try:
            signing.verify_document(self.public_key_b64, qr_payload, signature)
        except SignatureError:
            return verdict("bad_signature")
        row = conn.execute(f"SELECT * FROM documents WHERE {column} = ?", (key,)).fetchone()
        if row is None:
            return verdict("unknown_document")
        if row["qr_payload"] != qr_payload:
            return verdict("mismatch")
        return verdict("ok", {k: row[k] for k in ("document_id", "doc_type", "verification_code", "title_zh",
                                                  "title_en", "issued_at", "holder_masked")})
