"""ESC/POS framing: where each command in a byte stream ends, and what kind of unit it is.

A printer, real or virtual, must answer a DLE EOT status query the moment it arrives, in
the middle of a job; for that it has to know the length of every command before it. The
tokenizer knows the length of every command the kiosk sends and of the common others, and
runs incrementally on a stream (``final=False`` stops before an incomplete command).
Outside bytes are never trusted: any input tokenizes without raising; what could not be
understood comes out as ``junk`` tokens. Reading a whole receipt back into lines, images and
QR codes is :mod:`print_templates.escpos_decode`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

ESC, GS, FS, DLE = 0x1B, 0x1D, 0x1C, 0x10


@dataclass(frozen=True)
class Token:
    """One unit of the stream: ``kind`` is text, lf, cmd, raster, qr_store, qr_print or junk."""

    kind: str
    start: int
    end: int
    name: str = ""  # command mnemonic, e.g. "ESC @", "FS &", "DLE EOT"
    args: bytes = b""
    data: bytes = b""


class _Incomplete(Exception):
    pass


# ESC x -> number of fixed parameter bytes
_ESC_FIXED = {
    b"@": 0, b"a": 1, b"E": 1, b"!": 1, b"-": 1, b"d": 1, b"J": 1, b"2": 0, b"3": 1, b"M": 1,
    b"t": 1, b"R": 1, b"G": 1, b"{": 1, b"V": 1, b"p": 3, b"$": 2, b"\\": 2, b"i": 0, b"m": 0,
    b" ": 1, b"%": 1, b"=": 1, b"r": 1, b"U": 1, b"L": 0, b"S": 0, b"T": 1, b"c": 2, b"e": 1,
    b"K": 1, b"<": 0, b"?": 1, b"W": 8,
}
# GS x -> fixed parameter bytes
_GS_FIXED = {
    b"!": 1, b"B": 1, b"H": 1, b"h": 1, b"w": 1, b"L": 2, b"W": 2, b"f": 1, b"a": 1, b"r": 1,
    b"I": 1, b"b": 1, b"P": 2, b"/": 1, b"E": 1, b"$": 2, b"\\": 2, b"^": 3, b":": 0, b"T": 1,
    b"g": 3, b"z": 1, b"Q": 0,
}
_FS_FIXED = {b"&": 0, b".": 0, b"!": 1, b"-": 1, b"C": 1, b"W": 1, b"S": 2, b"p": 2, b"q": 1}


def _need(data: bytes, end: int) -> None:
    if end > len(data):
        raise _Incomplete


def _command(data: bytes, i: int) -> Token:
    """The command starting at ``data[i]`` (an ESC, GS, FS or DLE byte). Raises _Incomplete."""
    lead = data[i]
    _need(data, i + 2)
    op = data[i + 1:i + 2]
    prefix = {ESC: "ESC", GS: "GS", FS: "FS", DLE: "DLE"}[lead]
    name = f"{prefix} {op.decode('latin-1')}"
    if lead == DLE:
        if op == b"\x04":  # DLE EOT n (n = 7, 8 take one more byte)
            _need(data, i + 3)
            extra = 1 if data[i + 2] in (7, 8) else 0
            _need(data, i + 3 + extra)
            return Token("cmd", i, i + 3 + extra, "DLE EOT", data[i + 2:i + 3 + extra])
        if op == b"\x05":  # DLE ENQ n
            _need(data, i + 3)
            return Token("cmd", i, i + 3, "DLE ENQ", data[i + 2:i + 3])
        if op == b"\x14":  # DLE DC4 fn a b
            _need(data, i + 5)
            return Token("cmd", i, i + 5, "DLE DC4", data[i + 2:i + 5])
        return Token("junk", i, i + 1, "DLE", data[i:i + 1])
    if lead == ESC:
        if op == b"*":  # ESC * m nL nH d1..dk (bit image)
            _need(data, i + 5)
            m, n = data[i + 2], data[i + 3] | data[i + 4] << 8
            k = n * (3 if m in (32, 33) else 1)
            _need(data, i + 5 + k)
            return Token("cmd", i, i + 5 + k, name, data[i + 2:i + 5], data[i + 5:i + 5 + k])
        if op == b"D":  # ESC D n1..nk NUL (tab positions)
            end = data.find(b"\x00", i + 2)
            if end < 0:
                raise _Incomplete
            return Token("cmd", i, end + 1, name, data[i + 2:end])
        fixed = _ESC_FIXED.get(op)
    elif lead == GS:
        if op == b"V":  # GS V m [n]
            _need(data, i + 3)
            m = data[i + 2]
            extra = 1 if m in (65, 66, 97, 98, 103, 104) else 0
            _need(data, i + 3 + extra)
            return Token("cmd", i, i + 3 + extra, "GS V", data[i + 2:i + 3 + extra])
        if op == b"(":  # GS ( fn pL pH data
            _need(data, i + 5)
            fn, n = data[i + 2:i + 3], data[i + 3] | data[i + 4] << 8
            _need(data, i + 5 + n)
            body = data[i + 5:i + 5 + n]
            if fn == b"k" and len(body) >= 3 and body[0] == 49 and body[1] == 80:
                return Token("qr_store", i, i + 5 + n, "GS ( k", body[:3], body[3:])
            if fn == b"k" and len(body) >= 3 and body[0] == 49 and body[1] == 81:
                return Token("qr_print", i, i + 5 + n, "GS ( k", body)
            return Token("cmd", i, i + 5 + n, f"GS ( {fn.decode('latin-1')}", body)
        if op == b"8":  # GS 8 L p1..p4 data
            _need(data, i + 7)
            n = int.from_bytes(data[i + 3:i + 7], "little")
            _need(data, i + 7 + n)
            return Token("cmd", i, i + 7 + n, "GS 8 L", data[i + 7:i + 7 + n])
        if op == b"v":  # GS v 0 m xL xH yL yH data
            _need(data, i + 8)
            xb = data[i + 4] | data[i + 5] << 8
            y = data[i + 6] | data[i + 7] << 8
            _need(data, i + 8 + xb * y)
            return Token("raster", i, i + 8 + xb * y, "GS v 0", data[i + 2:i + 8],
                         data[i + 8:i + 8 + xb * y])
        if op == b"k":  # GS k m ... (barcode)
            _need(data, i + 3)
            m = data[i + 2]
            if m <= 6:
                end = data.find(b"\x00", i + 3)
                if end < 0:
                    raise _Incomplete
                return Token("cmd", i, end + 1, name, data[i + 2:i + 3], data[i + 3:end])
            _need(data, i + 4)
            n = data[i + 3]
            _need(data, i + 4 + n)
            return Token("cmd", i, i + 4 + n, name, data[i + 2:i + 4], data[i + 4:i + 4 + n])
        if op == b"*":  # GS * x y d (downloaded bit image)
            _need(data, i + 4)
            k = data[i + 2] * data[i + 3] * 8
            _need(data, i + 4 + k)
            return Token("cmd", i, i + 4 + k, name, data[i + 2:i + 4], data[i + 4:i + 4 + k])
        fixed = _GS_FIXED.get(op)
    else:
        if op == b"(":  # FS ( fn pL pH data
            _need(data, i + 5)
            n = data[i + 3] | data[i + 4] << 8
            _need(data, i + 5 + n)
            return Token("cmd", i, i + 5 + n, f"FS ( {data[i + 2:i + 3].decode('latin-1')}",
                         data[i + 5:i + 5 + n])
        fixed = _FS_FIXED.get(op)
    if fixed is None:
        return Token("junk", i, i + 2, name, data[i:i + 2])
    _need(data, i + 2 + fixed)
    return Token("cmd", i, i + 2 + fixed, name, data[i + 2:i + 2 + fixed])


def tokenize(data: bytes, *, final: bool = True) -> Iterator[Token]:
    """Split ESC/POS bytes into tokens. With ``final=False`` stop before an incomplete command."""
    i, n = 0, len(data)
    while i < n:
        b = data[i]
        if b in (ESC, GS, FS, DLE):
            try:
                tok = _command(data, i)
            except _Incomplete:
                if not final:
                    return
                yield Token("junk", i, n, "truncated", data[i:])
                return
            yield tok
            i = tok.end
        elif b == 0x0A:
            yield Token("lf", i, i + 1)
            i += 1
        elif b < 0x20 or b == 0x7F:
            i += 1  # CR, HT, NUL, CAN...: nothing printable
        else:
            j = i
            while j < n and data[j] >= 0x20 and data[j] != 0x7F:
                j += 1
            yield Token("text", i, j, data=data[i:j])
            i = j
