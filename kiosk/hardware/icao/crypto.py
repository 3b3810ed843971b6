"""DES primitives of ICAO 9303-11: 3DES-CBC, the retail MAC (ISO 9797-1 alg. 3), key derivation."""
from __future__ import annotations

import hashlib
import warnings

from cryptography.hazmat.primitives.ciphers import Cipher, modes

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from cryptography.hazmat.decrepit.ciphers.algorithms import TripleDES

BLOCK = 8


def pad(data: bytes) -> bytes:
    """ISO 9797-1 padding method 2: 0x80 then zeros to a multiple of 8."""
    data = data + b"\x80"
    return data + bytes(-len(data) % BLOCK)


def unpad(data: bytes) -> bytes:
    """Remove padding method 2. Raises ValueError when it is malformed."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= BLOCK:
        raise ValueError("bad ISO 9797-1 padding")
    return stripped[:-1]


def _key24(key: bytes) -> bytes:
    # cryptography wants 24-byte keys; K1 K2 K1 is two-key 3DES, K K K is single DES
    if len(key) == 16:
        return key + key[:8]
    if len(key) == 8:
        return key * 3
    return key


def tdes_encrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """Two-key 3DES in CBC mode (data already padded)."""
    enc = Cipher(TripleDES(_key24(key)), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def tdes_decrypt(key: bytes, data: bytes, iv: bytes = bytes(8)) -> bytes:
    """Two-key 3DES CBC decryption. Raises ValueError for a length not a multiple of 8."""
    if len(data) % BLOCK:
        raise ValueError("ciphertext is not a whole number of blocks")
    dec = Cipher(TripleDES(_key24(key)), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def _des_ecb(key8: bytes, block: bytes, decrypt: bool = False) -> bytes:
    cipher = Cipher(TripleDES(key8 * 3), modes.ECB())
    ctx = cipher.decryptor() if decrypt else cipher.encryptor()
    return ctx.update(block) + ctx.finalize()


def retail_mac(key: bytes, data: bytes) -> bytes:
    """ISO 9797-1 MAC algorithm 3 with DES (the caller pads): single-DES CBC, then 3DES on the last block."""
    ka, kb = key[:8], key[8:16]
    h = bytes(BLOCK)
    for i in range(0, len(data), BLOCK):
        h = _des_ecb(ka, bytes(a ^ b for a, b in zip(h, data[i:i + BLOCK])))
    return _des_ecb(ka, _des_ecb(kb, h, decrypt=True))


def adjust_parity(key: bytes) -> bytes:
    """Set each byte's low bit so the byte has odd parity (DES keys)."""
    out = bytearray()
    for b in key:
        b &= 0xFE
        out.append(b | (bin(b).count("1") % 2 == 0))
    return bytes(out)


def derive_key(seed: bytes, counter: int) -> bytes:
    """9303-11 §9.7.1 KDF for 3DES: SHA-1(seed || counter)[:16] with DES parity."""
    return adjust_parity(hashlib.sha1(seed + counter.to_bytes(4, "big")).digest()[:16])
