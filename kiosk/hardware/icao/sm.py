"""3DES secure messaging (ICAO 9303-11 §9.8) for both ends, with the SSC kept as 8 bytes.

``SecureChannel`` wraps the terminal's command APDUs and checks the chip's answers;
``ChipChannel`` is the chip's side (used by the virtual chip). A MAC that does not verify,
or answers that do not parse, raise DeviceProtocolError (``SecureMessagingError``).
"""
from __future__ import annotations

import hmac
from dataclasses import dataclass

from kiosk.errors import DeviceProtocolError
from kiosk.hardware.icao.bac import SessionKeys
from kiosk.hardware.icao.crypto import pad, retail_mac, tdes_decrypt, tdes_encrypt, unpad
from kiosk.hardware.icao.lds import parse_tlvs, tlv


class SecureMessagingError(DeviceProtocolError):
    """A secure-messaging object failed to verify or parse."""

    code = "sm_failed"


@dataclass(frozen=True)
class CommandApdu:
    """A plain short command APDU; ``le`` None when absent (0 means 256)."""

    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes = b""
    le: int | None = None

    def to_bytes(self) -> bytes:
        """Encode as a short APDU."""
        out = bytes([self.cla, self.ins, self.p1, self.p2])
        if self.data:
            out += bytes([len(self.data)]) + self.data
        if self.le is not None:
            out += bytes([self.le & 0xFF])
        return out


def parse_apdu(apdu: bytes) -> CommandApdu:
    """Split a short command APDU (cases 1-4). Raises SecureMessagingError."""
    if len(apdu) < 4:
        raise SecureMessagingError("APDU shorter than its header")
    cla, ins, p1, p2 = apdu[:4]
    body = apdu[4:]
    if not body:
        return CommandApdu(cla, ins, p1, p2)
    if len(body) == 1:
        return CommandApdu(cla, ins, p1, p2, le=body[0])
    lc = body[0]
    if lc == 0:
        raise SecureMessagingError("extended APDUs are not used here")
    if len(body) == 1 + lc:
        return CommandApdu(cla, ins, p1, p2, bytes(body[1:]))
    if len(body) == 2 + lc:
        return CommandApdu(cla, ins, p1, p2, bytes(body[1:1 + lc]), body[-1])
    raise SecureMessagingError("APDU length byte does not match its body")


def _counter_bytes(ssc: int) -> bytes:
    return (ssc % (1 << 64)).to_bytes(8, "big")


class _Channel:
    def __init__(self, keys: SessionKeys) -> None:
        self.enc, self.mac = keys.enc, keys.mac
        self.ssc = int.from_bytes(keys.ssc, "big")

    @property
    def ssc_bytes(self) -> bytes:
        """The send sequence counter as the 8 bytes the MAC covers."""
        return _counter_bytes(self.ssc)

    def _next(self) -> bytes:
        self.ssc = (self.ssc + 1) % (1 << 64)
        return self.ssc_bytes

    def _mac(self, data: bytes) -> bytes:
        return retail_mac(self.mac, pad(data))

    def _encrypt_do87(self, data: bytes) -> bytes:
        return tlv(0x87, b"\x01" + tdes_encrypt(self.enc, pad(data)))

    def _decrypt_do87(self, value: bytes) -> bytes:
        if not value or value[0] != 0x01:
            raise SecureMessagingError("DO87 without padding-content indicator 01")
        try:
            return unpad(tdes_decrypt(self.enc, value[1:]))
        except ValueError as exc:
            raise SecureMessagingError(f"DO87: {exc}") from None


class SecureChannel(_Channel):
    """The terminal's end: protect commands, unprotect answers."""

    def protect(self, apdu: bytes | CommandApdu) -> bytes:
        """Wrap a plain command APDU into its secure-messaging form."""
        cmd = apdu if isinstance(apdu, CommandApdu) else parse_apdu(apdu)
        header = bytes([cmd.cla | 0x0C, cmd.ins, cmd.p1, cmd.p2])
        do87 = self._encrypt_do87(cmd.data) if cmd.data else b""
        do97 = tlv(0x97, bytes([cmd.le & 0xFF])) if cmd.le is not None else b""
        cc = self._mac(self._next() + pad(header) + do87 + do97)
        body = do87 + do97 + tlv(0x8E, cc)
        return header + bytes([len(body)]) + body + b"\x00"

    def unprotect(self, response: bytes) -> tuple[bytes, int]:
        """Check and open a protected answer (data || SW1 SW2); return (data, SW).

        A plain error status (no SM objects) is returned as is. Raises SecureMessagingError.
        """
        if len(response) < 2:
            raise SecureMessagingError("answer shorter than its status word")
        body, sw = response[:-2], int.from_bytes(response[-2:], "big")
        if not body:
            self._next()  # the chip counted this exchange too
            if sw == 0x9000:
                raise SecureMessagingError("success answer without secure-messaging objects")
            return b"", sw
        objects = parse_tlvs(body)
        do87 = next((o for o in objects if o.tag == 0x87), None)
        do99 = next((o for o in objects if o.tag == 0x99), None)
        do8e = next((o for o in objects if o.tag == 0x8E), None)
        if do8e is None or do99 is None:
            raise SecureMessagingError("answer lacks DO99 or DO8E")
        covered = (do87.raw if do87 else b"") + do99.raw
        if not hmac.compare_digest(self._mac(self._next() + covered), do8e.value):
            raise SecureMessagingError("answer MAC does not verify")
        if len(do99.value) != 2:
            raise SecureMessagingError("DO99 is not a status word")
        data = self._decrypt_do87(do87.value) if do87 else b""
        return data, int.from_bytes(do99.value, "big")


class ChipChannel(_Channel):
    """The chip's end: unprotect commands, protect answers (virtual chip)."""

    def unprotect(self, apdu: bytes) -> CommandApdu:
        """Check and open a protected command. Raises SecureMessagingError."""
        outer = parse_apdu(apdu)
        if outer.cla & 0x0C != 0x0C:
            raise SecureMessagingError("command is not protected")
        objects = parse_tlvs(outer.data)
        do87 = next((o for o in objects if o.tag == 0x87), None)
        do97 = next((o for o in objects if o.tag == 0x97), None)
        do8e = next((o for o in objects if o.tag == 0x8E), None)
        if do8e is None:
            raise SecureMessagingError("command lacks DO8E")
        header = bytes([outer.cla, outer.ins, outer.p1, outer.p2])
        covered = pad(header) + (do87.raw if do87 else b"") + (do97.raw if do97 else b"")
        if not hmac.compare_digest(self._mac(self._next() + covered), do8e.value):
            raise SecureMessagingError("command MAC does not verify")
        data = self._decrypt_do87(do87.value) if do87 else b""
        le = do97.value[0] if do97 and do97.value else None
        return CommandApdu(outer.cla & ~0x0C & 0xFF, outer.ins, outer.p1, outer.p2, data, le)

    def protect(self, data: bytes, sw: int) -> bytes:
        """Wrap an answer: [DO87] DO99 DO8E, then 90 00."""
        do87 = self._encrypt_do87(data) if data else b""
        do99 = tlv(0x99, sw.to_bytes(2, "big"))
        cc = self._mac(self._next() + do87 + do99)
        return do87 + do99 + tlv(0x8E, cc) + b"\x90\x00"
