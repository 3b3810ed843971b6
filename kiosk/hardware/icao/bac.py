"""Basic access control (ICAO 9303-11 §4.3): key derivation and MUTUAL AUTHENTICATE."""
from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Callable

from kiosk.errors import BacFailed, DeviceProtocolError
from kiosk.hardware.icao.crypto import derive_key, pad, retail_mac, tdes_decrypt, tdes_encrypt
from kiosk.hardware.icao.mrz import bac_seed_input


@dataclass(frozen=True, repr=False)
class BacKeys:
    """The document basic access keys. Secret: never logged."""

    seed: bytes
    enc: bytes
    mac: bytes

    def __repr__(self) -> str:
        return "BacKeys(<secret>)"


def derive_bac_keys(document_number: str, birth_date: str, expiry_date: str) -> BacKeys:
    """Kseed = SHA-1(MRZ_information)[:16]; Kenc, Kmac by the KDF with counters 1 and 2."""
    seed = hashlib.sha1(bac_seed_input(document_number, birth_date, expiry_date).encode("ascii")).digest()[:16]
    return BacKeys(seed, derive_key(seed, 1), derive_key(seed, 2))


@dataclass(frozen=True, repr=False)
class SessionKeys:
    """Secure-messaging session keys and the initial send sequence counter (8 bytes)."""

    enc: bytes
    mac: bytes
    ssc: bytes

    def __repr__(self) -> str:
        return "SessionKeys(<secret>)"


def session_keys(k_ifd: bytes, k_ic: bytes, rnd_ic: bytes, rnd_ifd: bytes) -> SessionKeys:
    """KSseed = K.IFD xor K.IC; SSC = last 4 bytes of RND.IC || last 4 bytes of RND.IFD."""
    seed = bytes(a ^ b for a, b in zip(k_ifd, k_ic))
    return SessionKeys(derive_key(seed, 1), derive_key(seed, 2), rnd_ic[-4:] + rnd_ifd[-4:])


def authenticate_command(keys: BacKeys, rnd_ic: bytes, rnd_ifd: bytes, k_ifd: bytes) -> bytes:
    """The 40-byte MUTUAL AUTHENTICATE data: E_IFD (32) || M_IFD (8)."""
    e_ifd = tdes_encrypt(keys.enc, rnd_ifd + rnd_ic + k_ifd)
    return e_ifd + retail_mac(keys.mac, pad(e_ifd))


def check_authenticate_response(keys: BacKeys, response: bytes, rnd_ifd: bytes) -> bytes:
    """Verify the chip's E_IC || M_IC and return K.IC. Raises BacFailed, DeviceProtocolError."""
    if len(response) != 40:
        raise DeviceProtocolError(f"MUTUAL AUTHENTICATE answer of {len(response)} bytes, expected 40")
    e_ic, m_ic = response[:32], response[32:]
    if not hmac.compare_digest(retail_mac(keys.mac, pad(e_ic)), m_ic):
        raise BacFailed("chip's authentication MAC does not verify")
    r = tdes_decrypt(keys.enc, e_ic)
    if not hmac.compare_digest(r[8:16], rnd_ifd):
        raise BacFailed("chip did not return our challenge")
    return r[16:32]


Transmit = Callable[[bytes], tuple[bytes, int]]  # APDU -> (data, SW)


def mutual_authenticate(transmit: Transmit, keys: BacKeys, *, rng: Callable[[int], bytes] = os.urandom,
                        device: str = "") -> SessionKeys:
    """GET CHALLENGE then MUTUAL AUTHENTICATE over ``transmit``; the session keys.

    Raises BacFailed (wrong MRZ data: 6300/6982/bad MAC), DeviceProtocolError.
    """
    rnd_ic, sw = transmit(bytes.fromhex("0084000008"))
    if sw != 0x9000 or len(rnd_ic) != 8:
        raise DeviceProtocolError(f"GET CHALLENGE failed (SW {sw:04X})", device=device)
    rnd_ifd, k_ifd = rng(8), rng(16)
    data = authenticate_command(keys, rnd_ic, rnd_ifd, k_ifd)
    response, sw = transmit(bytes.fromhex("00820000") + b"\x28" + data + b"\x28")
    if sw in (0x6300, 0x6982, 0x6A80, 0x6988):
        raise BacFailed(f"chip refused MUTUAL AUTHENTICATE (SW {sw:04X})", device=device)
    if sw != 0x9000:
        raise DeviceProtocolError(f"MUTUAL AUTHENTICATE failed (SW {sw:04X})", device=device)
    try:
        k_ic = check_authenticate_response(keys, response, rnd_ifd)
    except BacFailed as err:
        err.device = device
        raise
    return session_keys(k_ifd, k_ic, rnd_ic, rnd_ifd)
